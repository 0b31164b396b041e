//! Cameras and their counting lines as the seed describes them, the OpenAPI document, CORS and
//! bearer tokens.

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Api;

/// The seed's cameras: `GATE_A` (id 1), then the cURL example `GATE_C` (2) and the Python
/// example `GATE_B` (3). Each test of cameras or lines starts from them.
async fn seed_cameras(api: &Api) {
    let seed = json!({"camera_id": "GATE_A", "camera_name": "Gate A Entrance", "location": "Main Gate", "camera_type": "entry_only", "max_occupancy": 100, "resolution_width": 1920, "resolution_height": 1080});
    let created = api.post("/cameras", None, seed.clone()).await;
    let cam = created.is(201).clone();
    for (k, v) in [
        ("id", json!(1)),
        ("camera_id", json!("GATE_A")),
        ("camera_name", json!("Gate A Entrance")),
        ("location", json!("Main Gate")),
        ("camera_type", json!("entry_only")),
        ("is_active", json!(true)),
        ("max_occupancy", json!(100)),
    ] {
        assert_eq!(cam[k], v, "{k} in {cam}");
    }
    assert_eq!(
        api.post("/cameras", None, seed).await.detail(409),
        "Camera with ID 'GATE_A' already exists"
    );
    // The seed's cURL and Python examples.
    let curl = api
        .post(
            "/cameras",
            None,
            json!({"camera_id": "GATE_C", "camera_name": "Gate A", "camera_type": "entry_only"}),
        )
        .await;
    assert_eq!(curl.is(201)["max_occupancy"], Value::Null);
    let python = api.post("/cameras", None, json!({"camera_id": "GATE_B", "camera_name": "Gate B", "camera_type": "exit_only", "max_occupancy": 150})).await;
    assert_eq!(python.is(201)["id"], 3);
}

#[tokio::test]
async fn cameras_follow_the_seed() {
    let api = Api::start(&[]).await;
    seed_cameras(&api).await;

    let list = api.get("/cameras", None).await;
    let ids: Vec<&str> = list
        .is(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["camera_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["GATE_A", "GATE_C", "GATE_B"]);
    assert_eq!(
        api.get("/cameras/1", None).await.is(200)["camera_name"],
        "Gate A Entrance"
    );
    assert_eq!(
        api.get("/cameras/999", None).await.detail(404),
        "Camera 999 not found"
    );
    assert_eq!(
        api.get("/cameras/999/", None).await.detail(404),
        "Camera 999 not found"
    );

    let updated = api
        .put(
            "/cameras/1",
            None,
            json!({"camera_name": "Gate A Main Entrance", "max_occupancy": 120}),
        )
        .await;
    let updated = updated.is(200);
    assert_eq!(
        (
            updated["id"].clone(),
            updated["camera_name"].clone(),
            updated["max_occupancy"].clone()
        ),
        (json!(1), json!("Gate A Main Entrance"), json!(120))
    );
    assert_eq!(updated["camera_type"], "entry_only");
    assert_eq!(
        api.put("/cameras/999", None, json!({"camera_name": "x"}))
            .await
            .detail(404),
        "Camera 999 not found"
    );
    // Deactivated cameras leave the list of active cameras.
    api.put("/cameras/2", None, json!({"is_active": false}))
        .await
        .is(200);
    assert_eq!(api.count("/cameras").await, 2);
}

#[tokio::test]
async fn lines_follow_the_seed() {
    let api = Api::start(&[]).await;
    seed_cameras(&api).await;

    let line = api.post("/lines", None, json!({"camera_id": 1, "line_name": "Entrance A", "x1": 0, "y1": 300, "x2": 1920, "y2": 300, "direction": "entry", "confidence_threshold": 0.5})).await;
    let line = line.is(201).clone();
    for (k, v) in [
        ("id", json!(1)),
        ("camera_id", json!(1)),
        ("line_name", json!("Entrance A")),
        ("x1", json!(0)),
        ("y1", json!(300)),
        ("x2", json!(1920)),
        ("y2", json!(300)),
        ("direction", json!("entry")),
        ("is_active", json!(true)),
    ] {
        assert_eq!(line[k], v, "{k} in {line}");
    }
    assert!(line["created_at"].as_str().unwrap().ends_with('Z'));
    let lines = api.get("/cameras/1/lines", None).await;
    assert_eq!(lines.is(200).as_array().unwrap().len(), 1);
    assert_eq!(api.get("/cameras/3/lines", None).await.is(200), &json!([]));
    assert_eq!(
        api.get("/cameras/999/lines", None).await.detail(404),
        "Camera 999 not found"
    );
    assert_eq!(
        api.get("/lines/1", None).await.is(200)["line_name"],
        "Entrance A"
    );
    let changed = api
        .put("/lines/1", None, json!({"confidence_threshold": 0.6}))
        .await;
    assert_eq!(
        (
            changed.is(200)["id"].clone(),
            changed.body["confidence_threshold"].clone()
        ),
        (json!(1), json!(0.6))
    );
    assert_eq!(
        api.get("/lines/999", None).await.detail(404),
        "Line 999 not found"
    );
    assert_eq!(
        api.post(
            "/lines",
            None,
            json!({"camera_id": 999, "line_name": "x", "x1": 0, "y1": 0, "x2": 1, "y2": 1})
        )
        .await
        .detail(404),
        "Camera 999 not found"
    );
}

#[tokio::test]
async fn swagger_ui_and_the_document_name_the_ingest_extension() {
    let api = Api::start(&[]).await;
    let spec = api
        .assert_documented(&[
            "/api/occupancy/cameras/{camera_id}/events",
            "/api/occupancy/facility/stats",
        ])
        .await;
    assert!(spec["paths"]["/api/occupancy/cameras/{camera_id}/events"]["post"].is_object());
    assert!(spec["paths"]["/api/occupancy/facility/stats"]["get"].is_object());
}

#[tokio::test]
async fn bearer_tokens_can_be_required() {
    let api = Api::start(&[("OCCUPANCY_REQUIRE_AUTH", "true")]).await;
    assert_eq!(
        api.get("/cameras", None).await.detail(401),
        "Authentication token is required"
    );
    api.get("/cameras", "not-a-token").await.detail(401);

    // An occupancy access token signed with the platform's key for this app.
    let mut key = std::fs::read(api.server.data_dir.join("jwt-secret")).unwrap();
    key.extend_from_slice(b":civic:occupancy");
    let now = Utc::now().timestamp();
    let claims = json!({"sub": "ops", "role": "viewer", "typ": "access", "aud": "occupancy", "iss": "civic", "iat": now, "exp": now + 600, "jti": "t1"});
    let sign = |claims: &Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(&key),
        )
        .unwrap()
    };
    assert_eq!(
        api.get("/cameras", &sign(&claims)).await.is(200),
        &json!([])
    );
    // A token of another app is refused.
    let mut other = claims.clone();
    other["aud"] = "streetlight".into();
    api.get("/cameras", &sign(&other)).await.detail(401);
}

#[tokio::test]
async fn listed_browser_origins_get_cors() {
    let api = Api::start(&[("OCCUPANCY_CORS_ORIGINS", "http://dash.example")]).await;
    let preflight = |origin: &'static str| {
        api.http
            .request(Method::OPTIONS, api.url("/cameras"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("http://dash.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://dash.example"
    );
    let other = preflight("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
