//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda.

use civic_core::fields::Body;
use civic_testkit::lambda::{bearer, call, event, platform, text};
use http::StatusCode;
use serde_json::{Value, json};

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
    let lights = bearer(event("streetlight-lights"), &token);
    let (status, body) = call(&streetlight::LIGHTS, &p, lights).await;
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
    streetlight::lights::create_light(
        state.table.as_ref(),
        state.config.index_shards,
        Body::of(light).read().unwrap(),
    )
    .await
    .unwrap();
    let sample: Value = serde_json::from_str(&text("streetlight-iot")).unwrap();
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
