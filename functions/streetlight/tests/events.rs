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

#[tokio::test]
async fn the_sample_iot_event_reports_a_lights_status() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let light = json!({"lightId": "SL001", "name": "Main", "city": "Delhi", "latitude": 28.6, "longitude": 77.2});
    let state = streetlight::State::new(&p);
    streetlight::lights::create_light(state.table.as_ref(), serde_json::from_value(light).unwrap())
        .await
        .unwrap();
    let path = format!(
        "{}/../../events/streetlight-iot.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let report = (streetlight::STATUS_IN.handler)(&p)(sample).await.unwrap();
    assert_eq!(report["status"], "error");
    assert_eq!(report["error_details"], "Lamp failure detected");

    let unknown = json!({"status": "on", "lightId": "SL404"});
    let err = (streetlight::STATUS_IN.handler)(&p)(unknown)
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
    let wrong = json!({"status": "dim", "lightId": "SL001"});
    let err = (streetlight::STATUS_IN.handler)(&p)(wrong)
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}
