//! Outlets: staff create and update them, users list and read them.

use civic_testkit::api::Auth;
use serde_json::json;

use crate::{Api, OzoneResp, Session};

/// The active outlet "Outlet Name" (with an address and a contact) and the inactive "Closed".
pub(crate) async fn two_outlets(api: &Api, admin: &Session) -> (i64, i64) {
    let outlet = api.post("/outlets/", admin, json!({"name": "Outlet Name", "address": "Address", "contact_person": "Contact Name", "is_active": true})).await;
    let other = api
        .post(
            "/outlets/",
            admin,
            json!({"name": "Closed", "is_active": false}),
        )
        .await;
    (
        outlet.body["id"].as_i64().unwrap(),
        other.body["id"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn staff_create_outlets_and_bad_ones_are_400() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    api.post("/outlets/", &viewer, json!({"name": "Nope"}))
        .await
        .assert_error(403);
    api.post("/outlets/", Auth::None, json!({"name": "Nope"}))
        .await
        .assert_error(401);
    let missing = api.post("/outlets/", &admin, json!({"address": "x"})).await;
    assert_eq!(
        missing.assert_error(400)["name"],
        json!(["This field is required."])
    );
    api.post(
        "/outlets/",
        &admin,
        json!({"name": "X", "is_active": "yes please"}),
    )
    .await
    .assert_error(400);
    let created = api.post("/outlets/", &admin, json!({"name": "Outlet Name", "address": "Address", "contact_person": "Contact Name", "is_active": true})).await;
    assert_eq!(created.status, 201);
    assert!(created.body["id"].is_i64(), "{}", created.text);
    assert_eq!(
        (&created.body["name"], &created.body["contact_person"]),
        (&json!("Outlet Name"), &json!("Contact Name"))
    );
}

#[tokio::test]
async fn users_list_and_read_outlets_and_staff_update_them() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let outlet = two_outlets(&api, &admin).await.0;
    assert_eq!(
        api.get("/outlets/", &viewer)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let active = api.get("/outlets/?is_active=true", &viewer).await;
    assert_eq!(
        active
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![outlet]
    );
    assert_eq!(
        api.get(&format!("/outlets/{outlet}/"), &viewer).await.body["address"],
        "Address"
    );
    api.get("/outlets/999/", &viewer).await.assert_error(404);
    api.get("/outlets/abc/", &viewer).await.assert_error(404);
    let put = api
        .put(
            &format!("/outlets/{outlet}/"),
            &admin,
            json!({"name": "Renamed", "total_sva": 4}),
        )
        .await;
    assert_eq!(
        (
            &put.ok()["name"],
            &put.body["total_sva"],
            &put.body["address"]
        ),
        (&json!("Renamed"), &json!(4), &json!("Address"))
    );
    api.put(&format!("/outlets/{outlet}/"), &admin, json!({"name": ""}))
        .await
        .assert_error(400);
    api.put(
        &format!("/outlets/{outlet}/"),
        &viewer,
        json!({"name": "v"}),
    )
    .await
    .assert_error(403);
}
