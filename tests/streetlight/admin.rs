//! The admin's work: creating, updating, importing and deleting lights, and managing users and
//! their roles. Each test starts from the admin, an operator and a viewer.

use reqwest::Method;
use serde_json::json;

use crate::{Api, Envelope, token};

#[tokio::test]
async fn only_admins_create_and_update_lights_with_valid_fields() {
    let api = Api::start().await;
    let (admin, op, _) = api.users().await;
    api.create(&op, "SL009", "Delhi").await.assert_error(403);
    api.post("/lights/create", &admin, json!({"lightId": "SL009", "name": "x", "city": "Delhi", "latitude": 91.0, "longitude": 0.0})).await.assert_error(400);
    api.post("/lights/create", &admin, json!({"lightId": "bad id!", "name": "x", "city": "Delhi", "latitude": 1.0, "longitude": 0.0})).await.assert_error(400);
    api.post(
        "/lights/create",
        &admin,
        json!({"lightId": "SL009", "name": "x", "city": "Delhi"}),
    )
    .await
    .assert_error(400);
    api.post("/lights/create", &admin, json!({"lightId": "SL009", "name": "x", "city": "Delhi", "latitude": "north", "longitude": 0.0})).await.assert_error(400);
    api.create(&admin, "SL001", "Delhi").await;

    let upd = api
        .put(
            "/lights/update",
            &admin,
            json!({"lightId": "SL001", "name": "Renamed", "brightness": 40}),
        )
        .await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    assert_eq!(upd.data()["name"], "Renamed");
    assert_eq!(upd.data()["brightness"], 40);
    api.put(
        "/lights/update",
        &admin,
        json!({"lightId": "SL001", "brightness": 400}),
    )
    .await
    .assert_error(400);
    api.put(
        "/lights/update",
        &admin,
        json!({"lightId": "SL001", "city": "Mumbai"}),
    )
    .await
    .assert_error(400);
    api.put(
        "/lights/update",
        &op,
        json!({"lightId": "SL001", "name": "x"}),
    )
    .await
    .assert_error(403);
    api.put(
        "/lights/update",
        &admin,
        json!({"lightId": "NOPE", "name": "x"}),
    )
    .await
    .assert_error(404);
}

#[tokio::test]
async fn admins_import_and_delete_lights() {
    let api = Api::start().await;
    let (admin, op, viewer) = api.users().await;
    api.create(&admin, "SL001", "Delhi").await;

    // Bulk import, CSV and JSON; bad rows are reported, good rows land.
    let csv = "lightId,name,city,latitude,longitude,address,status\nSL010,Ten,Delhi,28.1,77.1,Ring Road,on\nSL011,Eleven,Delhi,28.2,77.2,,off\nSL001,Dup,Delhi,28.0,77.0,,off\nSL012,Bad,Delhi,north,77.0,,off\n";
    let import = |kind, body| api.raw(Method::POST, "/lights/import", &admin, kind, body);
    let imported = import("text/csv", csv).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(imported.data()["created"], 2);
    let failed = imported.data()["failed"].as_array().unwrap();
    assert_eq!(
        failed
            .iter()
            .map(|f| f["row"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4]
    );
    let json_import = api.post("/lights/import", &admin, json!({"lights": [{"lightId": "SL020", "name": "Twenty", "city": "Delhi", "latitude": 1.0, "longitude": 2.0}]})).await;
    assert_eq!(json_import.data()["created"], 1);
    import("application/xml", "<x/>").await.assert_error(415);
    api.post("/lights/import", &viewer, json!({"lights": []}))
        .await
        .assert_error(403);

    let s = api.get("/lights/summary", &viewer).await;
    assert_eq!(
        (
            s.data()["total_lights"].as_i64(),
            s.data()["lights_on"].as_i64(),
            s.data()["lights_off"].as_i64()
        ),
        (Some(4), Some(1), Some(3))
    );

    let del = api.delete("/lights/delete?lightId=SL010", &admin).await;
    assert_eq!(del.status, 200);
    api.delete("/lights/delete?lightId=SL010", &admin)
        .await
        .assert_error(404);
    api.delete("/lights/delete?lightId=SL011", &op)
        .await
        .assert_error(403);
    let s = api.get("/lights/summary", &viewer).await;
    assert_eq!(
        (
            s.data()["total_lights"].as_i64(),
            s.data()["lights_on"].as_i64()
        ),
        (Some(3), Some(0))
    );
}

#[tokio::test]
async fn admins_list_users_and_change_roles() {
    let api = Api::start().await;
    let (admin, op, _) = api.users().await;
    api.create(&admin, "SL001", "Delhi").await;

    // Users: list and role changes, admin only; a new role applies from the next refresh.
    let users = api.get("/users", &admin).await;
    assert_eq!(users.data().as_array().unwrap().len(), 3);
    api.get("/users", &op).await.assert_error(403);
    api.post(
        "/users/role",
        &op,
        json!({"email": "viewer@example.com", "role": "admin"}),
    )
    .await
    .assert_error(403);
    api.post(
        "/users/role",
        &admin,
        json!({"email": "ghost@example.com", "role": "operator"}),
    )
    .await
    .assert_error(404);
    api.post(
        "/users/role",
        &admin,
        json!({"email": "viewer@example.com", "role": "owner"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/users/role",
        &admin,
        json!({"email": "admin@example.com", "role": "viewer"}),
    )
    .await
    .assert_error(400);
    let promoted = api
        .post(
            "/users/role",
            &admin,
            json!({"email": "viewer@example.com", "role": "operator"}),
        )
        .await;
    assert_eq!(promoted.data()["role"], "operator");
    let login = api
        .post(
            "/auth/login",
            None,
            json!({"email": "viewer@example.com", "password": "password123"}),
        )
        .await;
    let new_token = token(&login);
    let ctl = api
        .post(
            "/lights/control",
            &new_token,
            json!({"lightId": "SL001", "action": "on"}),
        )
        .await;
    assert_eq!(ctl.status, 200);
}
