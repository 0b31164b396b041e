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

/// IoT Core's request for a browser's CONNECT: refused with the sample's placeholder password,
/// granted Streetlight's live topics with a real access token in its place.
#[tokio::test]
async fn the_sample_authorizer_event_checks_the_password() {
    use base64::Engine;
    use civic_runtime::live::{Account, decide};

    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let (_, body) = call(&streetlight::AUTH, &p, event("streetlight-auth")).await;
    let token = body["data"]["token"].as_str().unwrap().to_owned();
    let authorizer = (streetlight::live::LIVE.authorizer)(&p);
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:streetlight-live-auth";
    let account = Account::of_function(arn, None).unwrap();
    let now = civic_core::time::now().unix_timestamp();
    let sample: Value = serde_json::from_str(&text("streetlight-live-auth")).unwrap();

    let res = decide("streetlight", &authorizer, sample.clone(), now, &account);
    assert!(!res.await.unwrap().is_authenticated);

    let mut real = sample;
    real["protocolData"]["mqtt"]["password"] = base64::engine::general_purpose::STANDARD
        .encode(&token)
        .into();
    let res = decide("streetlight", &authorizer, real, now, &account)
        .await
        .unwrap();
    assert!(res.is_authenticated);
    let policy = serde_json::to_value(&res.policy_documents).unwrap();
    assert_eq!(
        policy[0]["Statement"][1]["Resource"][0],
        "arn:aws:iot:eu-west-1:123456789012:topicfilter/streetlight/live/*"
    );
}
