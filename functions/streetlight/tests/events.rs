//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda.

use axum::body::Body;
use civic_core::{Limits, Platform};
use civic_store::Backend;
use http::StatusCode;
use serde_json::{Value, json};
use tower::ServiceExt;

fn event(name: &str) -> http::Request<Body> {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("sample event");
    lambda_http::request::from_str(&text)
        .expect("valid API Gateway v2 event")
        .map(Body::new)
}

async fn call(
    f: &civic_core::Function,
    p: &Platform,
    req: http::Request<Body>,
) -> (StatusCode, Value) {
    let (router, _) = f.build(p);
    let res = civic_core::layers::into_service(router)
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn platform(dir: &std::path::Path) -> Platform {
    Platform::local(dir, Backend::embedded(dir).unwrap(), Limits::default()).unwrap()
}

#[tokio::test]
async fn sample_events_reach_their_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());

    let (status, body) = call(&streetlight::AUTH, &p, event("streetlight-auth")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["user"]["email"], "john@example.com");
    assert_eq!(body["data"]["user"]["role"], "admin");
    let token = body["data"]["token"].as_str().unwrap().to_owned();

    // With the event's placeholder token the request is refused in the app's envelope...
    let (status, body) = call(&streetlight::LIGHTS, &p, event("streetlight-lights")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], 401);

    // ...and with a real one it reaches the handler (no lights in Delhi yet: the seed's 404).
    let mut req = event("streetlight-lights");
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (status, body) = call(&streetlight::LIGHTS, &p, req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"status": 404, "message": "No data for city", "data": null})
    );
}
