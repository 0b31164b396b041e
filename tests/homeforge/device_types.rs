//! Device types: proposed by users, reviewed by staff, and then visible to everyone.

use serde_json::json;

use crate::{Api, Expect, fan, ids};

#[tokio::test]
async fn device_types_are_proposed_with_a_valid_definition_and_template() {
    let api = Api::start().await;
    let u = api.users().await;
    let proposed = api.post("/device-types/propose/", &u.user, fan()).await;
    let t = proposed.is(201).clone();
    assert_eq!(t["approved"], false);
    assert_eq!(t["status"], "pending");
    assert_eq!(t["proposed_by"], u.user_id);
    assert_eq!(t["definition"]["structure"][1]["id"], "relay_1");
    assert_eq!(t["card_template"]["controls"][1]["step"], 10.0);

    let dup = api.propose(&u.admin, "smart FAN").await;
    assert_eq!(
        dup.field(400, "name"),
        ["A device type with this name already exists."]
    );
    let mut bad = fan();
    bad["name"] = "Broken".into();
    bad["card_template"]["controls"][0]["variable_mapping"] = "relay_9".into();
    let res = api.post("/device-types/propose/", &u.user, bad).await;
    assert!(res.field(400, "card_template")[0].contains("relay_9"));
    let mut bad = fan();
    bad["name"] = "Broken".into();
    bad["card_template"]["controls"][0]["widget_type"] = "LASER".into();
    api.post("/device-types/propose/", &u.user, bad)
        .await
        .field(400, "card_template");
    let res = api
        .post("/device-types/propose/", &u.user, json!({"name": "Bare"}))
        .await;
    assert_eq!(res.field(400, "definition"), ["This field is required."]);
    assert_eq!(res.field(400, "card_template"), ["This field is required."]);
    let res = api
        .post("/device-types/propose/", &u.user, json!({"name": "Odd", "definition": {"name": "x", "structure": "no"}, "card_template": {}}))
        .await;
    res.field(400, "definition");
    api.post("/device-types/propose/", &u.viewer, fan())
        .await
        .detail(403);
    api.post("/device-types/propose/", None, fan())
        .await
        .detail(401);
}

#[tokio::test]
async fn pending_types_are_for_staff_to_approve_and_then_visible() {
    let api = Api::start().await;
    let u = api.users().await;
    let id = api.propose(&u.user, "Smart Fan").await.is(201)["id"]
        .as_i64()
        .unwrap();

    // Pending: visible to staff (everything, and the review queue), not to users.
    assert!(ids(api.get("/device-types/", &u.user).await.is(200)).is_empty());
    assert_eq!(ids(api.get("/device-types/", &u.admin).await.is(200)), [id]);
    let queue = api.get("/admin/device-types/pending/", &u.owner).await;
    assert_eq!(ids(queue.is(200)), [id]);
    assert_eq!(
        queue.body[0]["card_template"]["controls"][0]["label"],
        "Master Power"
    );
    for token in [&u.user, &u.viewer] {
        api.get("/admin/device-types/pending/", token)
            .await
            .detail(403);
        api.post(
            &format!("/admin/device-types/{id}/approve/"),
            token,
            json!({}),
        )
        .await
        .detail(403);
        api.post(
            &format!("/admin/device-types/{id}/deny/"),
            token,
            json!({"reason": "x"}),
        )
        .await
        .detail(403);
    }

    let approved = api
        .post(
            &format!("/admin/device-types/{id}/approve/"),
            &u.admin,
            json!({}),
        )
        .await;
    assert_eq!(approved.is(200)["approved"], true);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["reviewed_by"], u.admin_id);
    api.post(
        &format!("/admin/device-types/{id}/approve/"),
        &u.admin,
        json!({}),
    )
    .await
    .detail(400);
    api.post("/admin/device-types/999/approve/", &u.admin, json!({}))
        .await
        .detail(404);
    assert_eq!(
        ids(api.get("/device-types/", &u.viewer).await.is(200)),
        [id]
    );
    assert!(
        ids(api
            .get("/admin/device-types/pending/", &u.owner)
            .await
            .is(200))
        .is_empty()
    );
}

#[tokio::test]
async fn a_denial_needs_a_reason_the_proposer_sees_and_frees_the_name() {
    let api = Api::start().await;
    let u = api.users().await;
    let id = api.approved_type(&u.user, &u.admin, "Smart Fan").await;

    // Denial needs a reason, which the proposer sees; the name is free again.
    let other = api.propose(&u.user, "Smart Lamp").await.is(201)["id"]
        .as_i64()
        .unwrap();
    let deny = format!("/admin/device-types/{other}/deny/");
    api.post(&deny, &u.owner, json!({}))
        .await
        .field(400, "reason");
    api.post(&deny, &u.owner, json!({"reason": "  "}))
        .await
        .field(400, "reason");
    let denied = api
        .post(
            &deny,
            &u.owner,
            json!({"reason": "Invalid specificaton text."}),
        )
        .await;
    assert_eq!(denied.is(200)["status"], "denied");
    assert_eq!(denied.body["denial_reason"], "Invalid specificaton text.");
    api.post(
        &format!("/admin/device-types/{other}/approve/"),
        &u.owner,
        json!({}),
    )
    .await
    .detail(400);
    let mine = api.get("/device-types/mine/", &u.user).await;
    assert_eq!(ids(mine.is(200)), [id, other]);
    assert_eq!(mine.body[1]["denial_reason"], "Invalid specificaton text.");
    assert_eq!(mine.body[0]["status"], "approved");
    let seen = api.get(&format!("/device-types/{other}/"), &u.user).await;
    assert_eq!(seen.is(200)["denial_reason"], "Invalid specificaton text.");
    api.get(&format!("/device-types/{other}/"), &u.viewer)
        .await
        .detail(404);
    api.get(&format!("/device-types/{id}/"), &u.viewer)
        .await
        .is(200);
    assert!(ids(api.get("/device-types/mine/", &u.viewer).await.is(200)).is_empty());
    assert_eq!(ids(api.get("/device-types/", &u.user).await.is(200)), [id]);
    api.propose(&u.user, "Smart Lamp").await.is(201);
}
