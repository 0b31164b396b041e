//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda.

use civic_testkit::lambda::{bearer, call, event, json_request, parse, platform, respond, text};
use http::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn sample_events_reach_their_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());

    // The first registration makes the owner, whatever role it asked for.
    let (status, body) = call(&homeforge::AUTH, &p, event("homeforge-auth")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], "johndoe");
    assert_eq!(body["profile"]["role"], "owner");

    // The events carry a placeholder token: refused in DRF's shape...
    let (status, body) = call(&homeforge::USERS, &p, event("homeforge-users")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"detail": "Given token not valid for any token type"})
    );

    // ...and with a real one each reaches its handler.
    let login = parse(&text("homeforge-auth").replace("/api/register/", "/api/login/"));
    let (status, body) = call(&homeforge::AUTH, &p, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access"].as_str().unwrap().to_owned();

    let users = bearer(event("homeforge-users"), &token);
    let (status, body) = call(&homeforge::USERS, &p, users).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email"], "john@example.com");

    let rooms = bearer(event("homeforge-rooms"), &token);
    let (status, body) = call(&homeforge::ROOMS, &p, rooms).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "Living Room");

    let types = bearer(event("homeforge-device-types"), &token);
    let (status, body) = call(&homeforge::DEVICE_TYPES, &p, types).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");

    let devices = bearer(event("homeforge-devices"), &token);
    let (status, body) = call(&homeforge::DEVICES, &p, devices).await;
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

#[tokio::test]
async fn the_device_sync_hook_gets_the_changed_keys_after_the_state_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let recorder = std::sync::Arc::new(Recorder::default());
    let state = homeforge::State {
        sync: Some(recorder.clone()),
        ..homeforge::State::new(&p)
    };
    let (devices, _) =
        homeforge::router_with(state, homeforge::devices::routes()).split_for_parts();
    let devices = homeforge::APP.finish(devices, &p.limits, p.in_flight());

    let owner = json!({"username": "olivia", "password": "Attic-Lamp42"});
    let register = json_request(Method::POST, "/api/register", owner.clone());
    let (status, _) = call(&homeforge::AUTH, &p, register).await;
    assert_eq!(status, StatusCode::CREATED);
    let login = json_request(Method::POST, "/api/login", owner);
    let (_, pair) = call(&homeforge::AUTH, &p, login).await;
    let token = pair["access"].as_str().unwrap();
    let fan: Value = serde_json::from_str(&text("homeforge-device-types")).unwrap();
    let fan: Value = serde_json::from_str(fan["body"].as_str().unwrap()).unwrap();
    let propose = json_request(Method::POST, "/api/device-types/propose", fan);
    let (_, t) = call(&homeforge::DEVICE_TYPES, &p, bearer(propose, token)).await;
    let approve = format!("/api/admin/device-types/{}/approve", t["id"]);
    let approve = json_request(Method::POST, &approve, json!({}));
    let (status, _) = call(&homeforge::DEVICE_TYPES, &p, bearer(approve, token)).await;
    assert_eq!(status, StatusCode::OK);
    // The devices router holds the recorder, so requests go to it as built.
    let send = |method, path: &str, body| {
        respond(
            devices.clone(),
            bearer(json_request(method, path, body), token),
        )
    };
    let device = json!({"name": "Fan", "ip_address": "10.0.0.2", "device_type": t["id"]});
    let d = send(Method::POST, "/api/devices", device).await;
    let id = d.body()["id"].as_i64().unwrap();

    let state = format!("/api/devices/{id}/state");
    let res = send(Method::PATCH, &state, json!({"relay_1": true})).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a failing hook does not fail the stored patch"
    );
    assert_eq!(res.body()["current_state"], json!({"relay_1": true}));
    let res = send(Method::PATCH, &state, json!({"pwm_1": 40})).await;
    assert_eq!(
        res.body()["current_state"],
        json!({"relay_1": true, "pwm_1": 40})
    );
    // A refused patch reaches no device.
    let res = send(Method::PATCH, &state, json!({"relay_1": {"on": true}})).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The IoT rule's output for `homeforge/devices/1/state`: reported state is stored and
    // sent back to no device.
    let iot = text("homeforge-iot");
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

/// IoT Core's request for a browser's CONNECT (`homeforge-live-auth`): refused with the
/// sample's placeholder password; with a real access token, the owner (staff) is granted
/// every device's topics, a plain user only their own (`homeforge/live/owners/{id}/*`).
#[tokio::test]
async fn the_sample_authorizer_event_grants_what_the_role_may_read() {
    use base64::Engine;
    use civic_runtime::live::{Account, decide};

    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let mut tokens = Vec::new();
    for name in ["olivia", "ursula"] {
        let user = json!({"username": name, "password": "Attic-Lamp42"});
        let register = json_request(Method::POST, "/api/register", user.clone());
        let (status, body) = call(&homeforge::AUTH, &p, register).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let login = json_request(Method::POST, "/api/login", user);
        let (_, pair) = call(&homeforge::AUTH, &p, login).await;
        tokens.push((
            body["id"].as_i64().unwrap(),
            pair["access"].as_str().unwrap().to_owned(),
        ));
    }
    let authorizer = (homeforge::live::LIVE.authorizer)(&p);
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:homeforge-live-auth";
    let account = Account::of_function(arn, None).unwrap();
    let now = civic_core::time::now().unix_timestamp();
    let sample: Value = serde_json::from_str(&text("homeforge-live-auth")).unwrap();
    let res = decide("homeforge", &authorizer, sample.clone(), now, &account);
    assert!(!res.await.unwrap().is_authenticated, "the placeholder");

    let iot = "arn:aws:iot:eu-west-1:123456789012";
    let (owner, user) = (&tokens[0], &tokens[1]);
    for ((id, token), scope) in [
        (owner, "homeforge/live/*".to_owned()),
        (user, format!("homeforge/live/owners/{}/*", user.0)),
    ] {
        let mut connect = sample.clone();
        connect["protocolData"]["mqtt"]["password"] = base64::engine::general_purpose::STANDARD
            .encode(token)
            .into();
        let res = decide("homeforge", &authorizer, connect, now, &account)
            .await
            .unwrap();
        assert!(res.is_authenticated, "user {id}");
        assert_eq!(res.principal_id, Some(format!("homeforge{id}")));
        let policy = serde_json::to_value(&res.policy_documents).unwrap();
        let statements = &policy[0]["Statement"];
        assert_eq!(
            statements[0]["Resource"],
            json!([format!("{iot}:client/web-homeforge-*")])
        );
        assert_eq!(
            statements[1]["Resource"],
            json!([format!("{iot}:topicfilter/{scope}")])
        );
        assert_eq!(
            statements[2]["Resource"],
            json!([format!("{iot}:topic/{scope}")])
        );
    }
}
