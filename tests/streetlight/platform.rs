//! What every app gets from the platform, seen through Streetlight: durable writes, the API
//! documents and the same API on the AWS backend.

use civic_testkit::local::LocalServer;
use serde_json::json;

use crate::{Api, BIN, Envelope, token};

#[tokio::test]
async fn acknowledged_writes_survive_a_crash() {
    let api = Api::start().await;
    let (admin, _, _) = api.users().await;
    assert_eq!(api.create(&admin, "SL001", "Delhi").await.status, 201);
    assert_eq!(
        api.post(
            "/lights/control",
            &admin,
            json!({"lightId": "SL001", "action": "on"})
        )
        .await
        .status,
        200
    );
    let dir = api.server.data_dir.clone();
    let tmp = api.0.server.crash().await;
    let api = Api::on(LocalServer::start_in(BIN, &dir, &[], &[]).await);
    // The signing secret persisted too, so the old token still works.
    let d = api.get("/lights/detail?lightId=SL001", &admin).await;
    assert_eq!(d.status, 200);
    assert_eq!(d.data()["light"]["status"], "on");
    assert_eq!(d.data()["recentLogs"].as_array().unwrap().len(), 1);
    drop(tmp);
}

#[tokio::test]
async fn docs_and_openapi_are_served() {
    let api = Api::start().await;
    api.assert_documented(&[
        "/api/auth/register",
        "/api/auth/login",
        "/api/lights/list",
        "/api/lights/detail",
        "/api/lights/summary",
        "/api/lights/map",
        "/api/lights/control",
        "/api/lights/update-status",
        "/api/lights/create",
        "/api/lights/logs",
        "/api/users/role",
    ])
    .await;
}

#[tokio::test]
async fn the_aws_backend_serves_the_same_api_on_moto() {
    let api = Api::on(LocalServer::start_on_moto(BIN, &[]).await);
    // moto keeps tables between tests: use a unique email so this run is the table's first user or not.
    let reg = api
        .register(&civic_testkit::moto::unique("u"), None, None)
        .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    let t = token(&reg);
    let list = api.get("/lights/list?city=nowhere-city", &t).await;
    assert_eq!(list.status, 200);
    // The caller's record (role, city, token version), then the city's 16 index shards, queried
    // at once (STREETLIGHT_INDEX_SHARDS): a number that does not grow with the lights.
    assert_eq!(list.round_trips(), 17);
}
