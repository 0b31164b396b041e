//! Status and health of the stores, and the OpenAPI document.

use serde_json::{Value, json};

use crate::Api;

#[tokio::test]
async fn status_and_health_report_the_stores() {
    let api = Api::start().await;
    let status = api.get("/status/", None).await;
    assert_eq!(
        status.is(200),
        &json!({"status": "OK", "message": "Ecoflow system is operational."})
    );
    let health = api.get("/health/", None).await;
    assert_eq!(
        health.is(200),
        &json!({"overall_status": "OK", "database": "OK", "external_service": "OK"})
    );

    // Take the blob store away for real: its directory disappears under the running server.
    let objects = api.server.data_dir.join("blobs/objects");
    std::fs::remove_dir_all(&objects).unwrap();
    // Not through `send`, which fails any 5xx.
    let res = api.http.get(api.url("/health/")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"overall_status": "DEGRADED", "database": "OK", "external_service": "DOWN"})
    );
    // Status only says the process answers.
    api.get("/status", None).await.is(200);

    std::fs::create_dir_all(&objects).unwrap();
    assert_eq!(
        api.get("/health", None).await.is(200)["overall_status"],
        "OK"
    );
}

#[tokio::test]
async fn openapi_documents_every_route_and_the_extensions() {
    let api = Api::start().await;
    let spec = api
        .assert_documented(&[
            "/api/auth/register",
            "/api/auth/login",
            "/api/auth/refresh",
            "/api/auth/me",
            "/api/organizations",
            "/api/organizations/{id}",
            "/api/zones",
            "/api/zones/{id}",
            "/api/cameras",
            "/api/cameras/{id}",
            "/api/alerts",
            "/api/alerts/{id}",
            "/api/alerts/{id}/acknowledge",
            "/api/alerts/{id}/close",
            "/api/notifications",
            "/api/notifications/{id}",
            "/api/status",
            "/api/health",
            "/api/sensor/detect",
            "/api/sensor/uploads",
            "/api/sensor/detections",
            "/api/carbon/stats",
        ])
        .await;
    assert!(spec["paths"]["/api/auth/me"].get("patch").is_some());
}
