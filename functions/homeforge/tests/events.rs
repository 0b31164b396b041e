//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda.

use axum::body::Body;
use civic_core::{Function, Limits, Platform};
use civic_store::Backend;
use http::StatusCode;
use serde_json::{Value, json};
use tower::ServiceExt;

fn event(name: &str, token: Option<&str>) -> http::Request<Body> {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("sample event");
    let mut req = lambda_http::request::from_str(&text)
        .expect("valid API Gateway v2 event")
        .map(Body::new);
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

async fn call(f: &Function, p: &Platform, req: http::Request<Body>) -> (StatusCode, Value) {
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

#[tokio::test]
async fn sample_events_reach_their_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let p = Platform::local(dir.path(), backend, Limits::default()).unwrap();

    // The first registration makes the owner, whatever role it asked for.
    let (status, body) = call(&homeforge::AUTH, &p, event("homeforge-auth", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], "johndoe");
    assert_eq!(body["profile"]["role"], "owner");

    // The events carry a placeholder token: refused in DRF's shape...
    let (status, body) = call(&homeforge::USERS, &p, event("homeforge-users", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"detail": "Given token not valid for any token type"})
    );

    // ...and with a real one each reaches its handler.
    let login = lambda_http::request::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../events/homeforge-auth.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .replace("/api/register/", "/api/login/"),
    )
    .unwrap()
    .map(Body::new);
    let (status, body) = call(&homeforge::AUTH, &p, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access"].as_str().unwrap().to_owned();
    let t = Some(token.as_str());

    let (status, body) = call(&homeforge::USERS, &p, event("homeforge-users", t)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email"], "john@example.com");

    let (status, body) = call(&homeforge::ROOMS, &p, event("homeforge-rooms", t)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "Living Room");

    let types = event("homeforge-device-types", t);
    let (status, body) = call(&homeforge::DEVICE_TYPES, &p, types).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");

    let (status, body) = call(&homeforge::DEVICES, &p, event("homeforge-devices", t)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["nodes"][0]["id"], "homeforge-gateway");
    assert_eq!(body["edges"], json!([]));
}

/// Records what the state handler hands to the device-sync hook.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(i64, serde_json::Map<String, Value>)>>);

#[async_trait::async_trait]
impl homeforge::sync::DeviceSync for Recorder {
    async fn desired_state(
        &self,
        device: &homeforge::devices::Device,
        changed: &serde_json::Map<String, Value>,
    ) -> civic_core::Result<()> {
        self.0.lock().unwrap().push((device.id, changed.clone()));
        Err(civic_core::Error::Unavailable("broker down".into()))
    }
}

async fn json_call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Body::from(body.to_string())).unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_device_sync_hook_gets_the_changed_keys_after_the_state_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let p = Platform::local(dir.path(), backend, Limits::default()).unwrap();
    let build = |f: &Function| f.build(&p).0;
    let (auth, types) = (build(&homeforge::AUTH), build(&homeforge::DEVICE_TYPES));
    let recorder = std::sync::Arc::new(Recorder::default());
    let state = homeforge::State {
        sync: recorder.clone(),
        ..homeforge::State::new(&p)
    };
    let (devices, _) =
        homeforge::router_with(state, homeforge::devices::routes()).split_for_parts();
    let devices = homeforge::APP.finish(devices, &p.limits);

    let owner = json!({"username": "olivia", "password": "Password123"});
    let (status, _) = json_call(&auth, "POST", "/api/register", None, owner.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, pair) = json_call(&auth, "POST", "/api/login", None, owner).await;
    let token = pair["access"].as_str().unwrap();
    let fan = std::fs::read_to_string(format!(
        "{}/../../events/homeforge-device-types.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let fan: Value = serde_json::from_str(&fan).unwrap();
    let fan: Value = serde_json::from_str(fan["body"].as_str().unwrap()).unwrap();
    let (_, t) = json_call(
        &types,
        "POST",
        "/api/device-types/propose",
        Some(token),
        fan,
    )
    .await;
    let approve = format!("/api/admin/device-types/{}/approve", t["id"]);
    let (status, _) = json_call(&types, "POST", &approve, Some(token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let device = json!({"name": "Fan", "ip_address": "10.0.0.2", "device_type": t["id"]});
    let (_, d) = json_call(&devices, "POST", "/api/devices", Some(token), device).await;
    let id = d["id"].as_i64().unwrap();

    let state = format!("/api/devices/{id}/state");
    let (status, body) = json_call(
        &devices,
        "PATCH",
        &state,
        Some(token),
        json!({"relay_1": true}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a failing hook does not fail the stored patch"
    );
    assert_eq!(body["current_state"], json!({"relay_1": true}));
    let (_, body) = json_call(&devices, "PATCH", &state, Some(token), json!({"pwm_1": 40})).await;
    assert_eq!(body["current_state"], json!({"relay_1": true, "pwm_1": 40}));
    // A refused patch reaches no device.
    let (status, _) = json_call(&devices, "PATCH", &state, Some(token), json!({"nope": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The IoT rule's output for `homeforge/devices/1/state`: reported state is stored and
    // sent back to no device.
    let iot = std::fs::read_to_string(format!(
        "{}/../../events/homeforge-iot.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(id, 1, "the sample names the first device");
    let report = (homeforge::STATE_IN.handler)(&p)(serde_json::from_str(&iot).unwrap())
        .await
        .unwrap();
    assert_eq!(
        report,
        json!({"device": 1, "status": "online", "current_state": {"relay_1": true, "pwm_1": 75}})
    );

    let calls = recorder.0.lock().unwrap().clone();
    let expected: Vec<(i64, serde_json::Map<String, Value>)> =
        [json!({"relay_1": true}), json!({"pwm_1": 40})]
            .into_iter()
            .map(|v| (id, v.as_object().unwrap().clone()))
            .collect();
    assert_eq!(calls, expected, "only the changed keys, in order");
}
