//! Rooms: owners and admins manage them; a user and a viewer see their own.

use serde_json::{Value, json};

use crate::{Api, Expect, Users, ids};

/// The owner's Kitchen, owned by the user, and the admin's Office; as created.
async fn kitchen_and_office(api: &Api, u: &Users) -> (Value, Value) {
    let kitchen = api
        .post(
            "/rooms/",
            &u.owner,
            json!({"name": "Kitchen", "description": "Ground floor", "owner": u.user_id}),
        )
        .await;
    let office = api
        .post("/rooms/", &u.admin, json!({"name": "Office"}))
        .await;
    (kitchen.is(201).clone(), office.is(201).clone())
}

/// The ids of [`kitchen_and_office`].
async fn room_ids(api: &Api, u: &Users) -> (i64, i64) {
    let (kitchen, office) = kitchen_and_office(api, u).await;
    (
        kitchen["id"].as_i64().unwrap(),
        office["id"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn rooms_belong_to_an_owner_and_users_see_only_their_own() {
    let api = Api::start().await;
    let u = api.users().await;
    let (kitchen, office) = kitchen_and_office(&api, &u).await;
    assert_eq!(kitchen["owner"], u.user_id);
    assert_eq!(kitchen["description"], "Ground floor");
    assert_eq!(office["owner"], u.admin_id);
    let (k, o) = (
        kitchen["id"].as_i64().unwrap(),
        office["id"].as_i64().unwrap(),
    );

    // Owners and admins see all rooms; a user and a viewer see their own.
    assert_eq!(ids(api.get("/rooms/", &u.owner).await.is(200)), [k, o]);
    assert_eq!(ids(api.get("/rooms", &u.admin).await.is(200)), [k, o]);
    assert_eq!(ids(api.get("/rooms/", &u.user).await.is(200)), [k]);
    assert_eq!(
        ids(api.get("/rooms/", &u.viewer).await.is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        api.get(&format!("/rooms/{k}/"), &u.user).await.is(200)["name"],
        "Kitchen"
    );
    api.get(&format!("/rooms/{o}/"), &u.user).await.detail(404);
    api.get(&format!("/rooms/{o}/"), &u.owner).await.is(200);
}

#[tokio::test]
async fn only_owners_and_admins_write_rooms() {
    let api = Api::start().await;
    let u = api.users().await;
    let (k, _) = room_ids(&api, &u).await;
    // Only owners and admins create, change and delete rooms.
    for token in [&u.user, &u.viewer] {
        let res = api.post("/rooms/", token, json!({"name": "Mine"})).await;
        assert_eq!(
            res.detail(403),
            "Only Admins/Owners can perform this action."
        );
        api.put(&format!("/rooms/{k}/"), token, json!({"name": "x"}))
            .await
            .detail(403);
        api.delete(&format!("/rooms/{k}/"), token).await.detail(403);
    }
    api.get("/rooms/", None).await.detail(401);
    api.post("/rooms/", None, json!({"name": "x"}))
        .await
        .detail(401);
}

#[tokio::test]
async fn bad_rooms_are_400_per_field() {
    let api = Api::start().await;
    let u = api.users().await;
    // Validation.
    api.post("/rooms/", &u.owner, json!({"name": "  "}))
        .await
        .field(400, "name");
    api.post("/rooms/", &u.owner, json!({}))
        .await
        .field(400, "name");
    let nobody = api
        .post("/rooms/", &u.owner, json!({"name": "x", "owner": 999}))
        .await;
    assert_eq!(
        nobody.field(400, "owner"),
        ["Invalid pk \"999\" - object does not exist."]
    );
    api.post("/rooms/", &u.owner, json!({"name": "x", "owner": true}))
        .await
        .field(400, "owner");
    api.post("/rooms/", &u.owner, json!({"name": 5}))
        .await
        .detail(400);
}

#[tokio::test]
async fn rooms_are_updated_moved_to_another_owner_and_deleted() {
    let api = Api::start().await;
    let u = api.users().await;
    let (k, o) = room_ids(&api, &u).await;
    // Update (also moving it to another owner), delete.
    let moved = api
        .put(
            &format!("/rooms/{o}/"),
            &u.admin,
            json!({"name": "Study", "owner": u.user_id}),
        )
        .await;
    assert_eq!(moved.is(200)["name"], "Study");
    assert_eq!(moved.body["owner"], u.user_id);
    assert_eq!(moved.body["description"], "", "absent fields stay");
    assert_eq!(ids(api.get("/rooms/", &u.user).await.is(200)), [k, o]);
    api.put("/rooms/999/", &u.admin, json!({"name": "x"}))
        .await
        .detail(404);
    api.delete(&format!("/rooms/{o}/"), &u.owner).await.is(204);
    api.delete(&format!("/rooms/{o}/"), &u.owner)
        .await
        .detail(404);
    api.get(&format!("/rooms/{o}/"), &u.owner).await.detail(404);
    api.get("/rooms/abc/", &u.owner).await.detail(404);
}
