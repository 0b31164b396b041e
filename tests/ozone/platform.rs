//! The platform around the routes: errors in Ozone's format, body limits, the OpenAPI
//! document, and the AWS backend on moto.

use civic_testkit::http;
use civic_testkit::local::LocalServer;
use reqwest::{Client, Method, header};
use serde_json::json;

use crate::telemetry::latest_is_the_event_received_last;
use crate::{Api, BIN, MAC, OzoneResp, Session, series};

#[tokio::test]
async fn platform_errors_use_the_ozone_format() {
    let api = Api::with(&["--body-limit", "65536"], &[]).await;
    let (admin, _) = api.users().await;
    let nf = api.get("/outlets/1/nope/", &admin).await;
    nf.assert_error(404);
    api.patch("/outlets/", &admin, json!({}))
        .await
        .assert_error(405);
    // An oversize body is refused from its Content-Length, before it is read (a raw request,
    // so the client is not still writing when the answer comes).
    let head = "POST /ozone/api/handshake/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n{";
    let raw = http::raw(&api.server.base, head).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains(r#""success":false"#), "{raw}");
    // Paths work with and without the trailing slash.
    api.get("/outlets", &admin).await.ok();
    api.get("/outlets/", &admin).await.ok();
    api.assert_documented(&[
        "/api/handshake",
        "/api/device/events",
        "/api/iot",
        "/api/devices/assign",
        "/api/test/stats-export.csv",
        "/api/flush",
        "/api/outlets/{id}",
    ])
    .await;
}

/// Drops the Ozone table on moto so this run starts from an empty table (moto keeps tables
/// between runs; only this test uses `civic-ozone` there).
async fn drop_moto_table() {
    let res = Client::new()
        .post(civic_testkit::moto::moto_url())
        .header("x-amz-target", "DynamoDB_20120810.DeleteTable")
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
        .header(header::AUTHORIZATION, "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
        .body(r#"{"TableName": "civic-ozone"}"#)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success() || res.status() == 400,
        "{}",
        res.status()
    );
}

/// On DynamoDB: a repeated event is acknowledged alike and stored once, and the rollups add up.
async fn events_are_idempotent_on_dynamodb(api: &Api, viewer: &Session, token: &str) {
    // Idempotency rests on DynamoDB's conditional transaction, and so do the rollups.
    let first = api
        .event(
            token,
            "esp32-001",
            "d-1",
            "BASIC",
            Some("2025-09-16T12:00:00Z"),
        )
        .await;
    let again = api
        .event(
            token,
            "esp32-001",
            "d-1",
            "BASIC",
            Some("2025-09-16T12:00:00Z"),
        )
        .await;
    assert_eq!(first.ok(), &again.body);
    api.event(
        token,
        "esp32-001",
        "d-2",
        "PREMIUM",
        Some("2025-09-16T13:00:00Z"),
    )
    .await
    .ok();
    api.event(token, "dev-x", "d-3", "PREMIUM", None)
        .await
        .assert_error(401);
    let st = api
        .get(
            "/test/stats/?start=2025-09-16&end=2025-09-16&granularity=hour",
            viewer,
        )
        .await;
    assert_eq!(
        st.body["totals"],
        json!({"total": 2, "BASIC": 1, "STANDARD": 0, "PREMIUM": 1})
    );
    assert_eq!(
        api.get("/events/?days=3660", viewer)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// On DynamoDB: a machine binds the device to an outlet's stats, and a flush clears them.
async fn machines_and_flush_on_dynamodb(api: &Api, admin: &Session, viewer: &Session, token: &str) {
    let outlet = api
        .post("/outlets/", admin, json!({"name": "O"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let reg = api
        .post(
            "/machines/register/",
            admin,
            json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "M"}),
        )
        .await;
    assert_eq!(reg.status, 201, "{}", reg.text);
    api.event(
        token,
        "esp32-001",
        "d-4",
        "STANDARD",
        Some("2025-09-16T14:00:00Z"),
    )
    .await
    .ok();
    let st = api
        .get(
            &format!("/test/stats/?outlet_id={outlet}&start=2025-09-16&end=2025-09-16"),
            viewer,
        )
        .await;
    assert_eq!(series(&st.body, "STANDARD"), vec![1.0]);
    let flushed = api.call(Method::POST, "/flush/", admin, None).await;
    assert_eq!(flushed.ok()["complete"], true);
    assert_eq!(
        api.get("/test/stats/?start=2025-09-16&end=2025-09-16", viewer)
            .await
            .body["totals"]["total"],
        0
    );
}

#[tokio::test]
async fn the_aws_backend_serves_ozone_on_moto() {
    drop_moto_table().await;
    let api = Api::on(LocalServer::start_on_moto(BIN, &[]).await);
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    events_are_idempotent_on_dynamodb(&api, &viewer, &token).await;
    machines_and_flush_on_dynamodb(&api, &admin, &viewer, &token).await;
    // The same-second tie-break on DynamoDB's sort keys.
    latest_is_the_event_received_last(&api, &admin, &viewer).await;
}
