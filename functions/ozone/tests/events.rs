//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda.

use civic_core::Platform;
use civic_store::{Key, Query};
use civic_testkit::lambda::{bearer, call, event, json_request, platform, respond, text, with};
use http::{Method, StatusCode, header};
use serde_json::{Value, json};

/// Registers the sample admin (the auth event), logs in and returns the session cookie.
async fn admin_session(p: &Platform) -> String {
    let (status, body) = call(&ozone::AUTH, p, event("ozone-auth")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["is_superuser"], true);
    let login = json!({"username": "admin", "password": "password123"});
    let login = json_request(Method::POST, "/api/auth/login/", login);
    let res = respond(ozone::AUTH.build(p).0, login).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.body());
    let set = res.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// Hand-shakes, assigns and hand-shakes again: the sample device's token.
async fn device_token(p: &Platform, cookie: &str) -> String {
    let hs = || {
        let mac = json!({"mac": "EC:E3:34:46:2B:C0"});
        json_request(Method::POST, "/api/handshake/", mac)
    };
    assert_eq!(call(&ozone::GATEWAY, p, hs()).await.1["assigned"], false);
    let assign = json!({"mac": "EC:E3:34:46:2B:C0", "device_id": "esp32-001"});
    let assign = json_request(Method::POST, "/api/devices/assign/", assign);
    let assign = with(assign, header::COOKIE, cookie);
    assert_eq!(call(&ozone::GATEWAY, p, assign).await.0, StatusCode::OK);
    call(&ozone::GATEWAY, p, hs()).await.1["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sample_events_reach_their_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let cookie = admin_session(&p).await;

    // With the placeholders, every sample is refused in Ozone's error format...
    for (f, name) in [
        (&ozone::GATEWAY, "ozone-gateway"),
        (&ozone::DATA, "ozone-data"),
        (&ozone::CATALOG, "ozone-catalog"),
        (&ozone::ANALYTICS, "ozone-analytics"),
    ] {
        let (status, body) = call(f, &p, event(name)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(body["success"], false, "{name}");
    }

    // ...and with real credentials each reaches its handler.
    let token = device_token(&p, &cookie).await;
    let gateway = bearer(event("ozone-gateway"), &token);
    let (_, ack) = call(&ozone::GATEWAY, &p, gateway).await;
    assert_eq!(
        ack,
        json!({"ack": true, "event_id": "esp32-001-0000000123"})
    );
    let data = with(event("ozone-data"), header::COOKIE, &cookie);
    let (_, online) = call(&ozone::DATA, &p, data).await;
    assert_eq!(online[0]["device_id"], "esp32-001");
    let catalog = with(event("ozone-catalog"), header::COOKIE, &cookie);
    let (status, outlet) = call(&ozone::CATALOG, &p, catalog).await;
    assert_eq!(
        (status, &outlet["name"]),
        (StatusCode::CREATED, &json!("Outlet Name"))
    );
    let analytics = with(event("ozone-analytics"), header::COOKIE, &cookie);
    let (status, stats) = call(&ozone::ANALYTICS, &p, analytics).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["labels"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn raw_events_expire_and_rollups_stay() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let cookie = admin_session(&p).await;
    let token = device_token(&p, &cookie).await;
    let gateway = bearer(event("ozone-gateway"), &token);
    assert_eq!(call(&ozone::GATEWAY, &p, gateway).await.0, StatusCode::OK);

    let table = p.table("ozone");
    let now = civic_store::now_epoch();
    let retention = 90 * 86400;
    let events = table
        .query(Query::partition("EVENTS#esp32-001"))
        .await
        .unwrap()
        .items;
    assert_eq!(events.len(), 1);
    let expires = events[0]["expires_at"].as_i64().unwrap();
    assert!(
        (now + retention - 5..=now + retention + 5).contains(&expires),
        "{expires}"
    );
    let marker = table
        .get(&Key::new(
            "EVENTID#esp32-001#esp32-001-0000000123",
            "EVENTID",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(marker["expires_at"], events[0]["expires_at"]);
    // The month item holds the month's totals and the day's count.
    let rollup = table
        .get(&Key::new("ROLLUP#device#esp32-001#month", "2025-09"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            rollup["total"].as_i64(),
            rollup["BASIC"].as_i64(),
            rollup["d16B"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert!(rollup.get("expires_at").is_none());
    // Stored digests only: the token appears nowhere in the device record.
    let device = table
        .get(&Key::new("DEVICE#esp32-001", "DEVICE"))
        .await
        .unwrap()
        .unwrap();
    assert!(!serde_json::to_string(&device).unwrap().contains(&token));
}

#[tokio::test]
async fn the_sample_iot_event_is_ingested_once_for_an_assigned_device() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let sample: Value = serde_json::from_str(&text("ozone-iot")).unwrap();
    let consume = (ozone::EVENTS_IN.handler)(&p);

    // Before staff assign the device, IoT Core may route it, but it is refused.
    let refused = consume(sample.clone()).await.unwrap_err();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let cookie = admin_session(&p).await;
    device_token(&p, &cookie).await;
    let ack = json!({"ack": true, "event_id": "esp32-001-0000000123"});
    assert_eq!(consume(sample.clone()).await.unwrap(), ack);
    assert_eq!(
        consume(sample).await.unwrap(),
        ack,
        "a repeat gets the same ack"
    );
    let events = ozone::State::new(&p)
        .table
        .query(Query::partition("EVENTS#esp32-001"))
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1, "and stores nothing");
}

/// On AWS (here moto's IoT control plane), an assigned device's handshake also provisions its
/// thing and certificate under the device policy; an unassigned one gets nothing.
#[tokio::test]
async fn handshakes_provision_the_device_on_aws() {
    let config = civic_testkit::moto::aws_config().await;
    let policy = civic_testkit::moto::unique("ozone-devices");
    aws_sdk_iot::Client::new(&config)
        .create_policy()
        .policy_name(&policy)
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let provisioner = civic_iot::aws::IotProvisioner::new(&config, &policy);
    let p = platform(dir.path()).with_provisioner(std::sync::Arc::new(provisioner));
    let cookie = admin_session(&p).await;
    let device_id = civic_testkit::moto::unique("esp32");
    let hs = || {
        let mac = json!({"mac": "EC:E3:34:46:2B:C1"});
        json_request(Method::POST, "/api/handshake/", mac)
    };
    let (_, pending) = call(&ozone::GATEWAY, &p, hs()).await;
    assert_eq!(
        pending,
        json!({"device_id": null, "token": null, "assigned": false})
    );
    let assign = json!({"mac": "EC:E3:34:46:2B:C1", "device_id": device_id});
    let assign = json_request(Method::POST, "/api/devices/assign/", assign);
    let assign = with(assign, header::COOKIE, &cookie);
    assert_eq!(call(&ozone::GATEWAY, &p, assign).await.0, StatusCode::OK);

    let (status, reply) = call(&ozone::GATEWAY, &p, hs()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let iot = &reply["iot"];
    assert_eq!(iot["thing_name"], format!("ozone-{device_id}"));
    assert!(
        iot["certificate_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(iot["private_key"].as_str().unwrap().contains("PRIVATE KEY"));
    assert!(reply["token"].is_string(), "the token still works too");
    let thing = aws_sdk_iot::Client::new(&config)
        .describe_thing()
        .thing_name(format!("ozone-{device_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(thing.attributes().unwrap()["device_id"], device_id);
}

/// The status (`ACTIVE`, `INACTIVE`) of certificate `arn` in (moto's) IoT.
async fn certificate_status(iot: &aws_sdk_iot::Client, arn: &str) -> String {
    let id = arn.rsplit('/').next().unwrap();
    let cert = iot
        .describe_certificate()
        .certificate_id(id)
        .send()
        .await
        .unwrap();
    let status = cert.certificate_description().unwrap().status().unwrap();
    status.as_str().to_owned()
}

/// Issue 15, item 1: on AWS a certificate comes with a device's first claim or from staff,
/// never from a repeat handshake, so knowing a MAC cannot deactivate the real device's.
#[tokio::test]
async fn a_repeat_handshake_never_replaces_the_devices_certificate() {
    let config = civic_testkit::moto::aws_config().await;
    let policy = civic_testkit::moto::unique("ozone-devices");
    aws_sdk_iot::Client::new(&config)
        .create_policy()
        .policy_name(&policy)
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let provisioner = civic_iot::aws::IotProvisioner::new(&config, &policy);
    let p = platform(dir.path()).with_provisioner(std::sync::Arc::new(provisioner));
    let iot = aws_sdk_iot::Client::new(&config);
    let cookie = admin_session(&p).await;
    let device_id = civic_testkit::moto::unique("esp32");
    let mac = "EC:E3:34:46:2B:C2";
    let hs = |token: Option<&str>| {
        let req = json_request(Method::POST, "/api/handshake/", json!({"mac": mac}));
        match token {
            Some(t) => bearer(req, t),
            None => req,
        }
    };
    call(&ozone::GATEWAY, &p, hs(None)).await;
    let assign = json!({"mac": mac, "device_id": device_id});
    let assign = json_request(Method::POST, "/api/devices/assign/", assign);
    let assign = with(assign, header::COOKIE, &cookie);
    assert_eq!(call(&ozone::GATEWAY, &p, assign).await.0, StatusCode::OK);
    let (_, first) = call(&ozone::GATEWAY, &p, hs(None)).await;
    let arn = first["iot"]["certificate_arn"].as_str().unwrap().to_owned();
    let token = first["token"].as_str().unwrap().to_owned();
    assert_eq!(certificate_status(&iot, &arn).await, "ACTIVE");

    // An unauthenticated repeat: refused, no certificate, the device's stays active.
    let (status, taken) = call(&ozone::GATEWAY, &p, hs(None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");
    assert!(taken.get("iot").is_none() && taken.get("token").is_none());
    assert_eq!(certificate_status(&iot, &arn).await, "ACTIVE");
    // The device renewing its own token gets no certificate either.
    let (status, renewed) = call(&ozone::GATEWAY, &p, hs(Some(&token))).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert!(renewed["token"].is_string() && renewed.get("iot").is_none());
    assert_eq!(certificate_status(&iot, &arn).await, "ACTIVE");

    // Staff rotation: a new certificate, the old one deactivated, recorded on the device.
    let path = format!("/api/devices/{device_id}/certificate/");
    let rotate = || json_request(Method::POST, &path, json!({}));
    assert_eq!(
        call(&ozone::GATEWAY, &p, rotate()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, rotated) =
        call(&ozone::GATEWAY, &p, with(rotate(), header::COOKIE, &cookie)).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_arn = rotated["iot"]["certificate_arn"].as_str().unwrap();
    assert_ne!(new_arn, arn);
    assert_eq!(certificate_status(&iot, new_arn).await, "ACTIVE");
    assert_eq!(certificate_status(&iot, &arn).await, "INACTIVE");
    let device = p
        .table("ozone")
        .get(&Key::new(format!("DEVICE#{device_id}"), "DEVICE"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device["iot_certificate"]["arn"], new_arn);
    assert_eq!(device["iot_certificate"]["issued_by"], "admin");
}

/// IoT Core's request for a browser's CONNECT (`ozone-live-auth`): a live ticket from a
/// signed-in session reads Ozone's live topics; the session cookie itself, or garbage, does not.
#[tokio::test]
async fn a_live_ticket_passes_the_iot_core_authorizer() {
    use base64::Engine;
    use civic_runtime::live::{Account, decide};

    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let cookie = admin_session(&p).await;
    let req = with(
        json_request(Method::POST, "/api/auth/live", json!({})),
        header::COOKIE,
        &cookie,
    );
    let (status, body) = call(&ozone::AUTH, &p, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ticket = body["ticket"].as_str().unwrap().to_owned();

    let authorizer = (ozone::live::LIVE.authorizer)(&p);
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:ozone-live-auth";
    let account = Account::of_function(arn, None).unwrap();
    let now = civic_core::time::now().unix_timestamp();
    let ask = |password: &str| {
        let password = base64::engine::general_purpose::STANDARD.encode(password);
        let connect = json!({"protocolData": {"mqtt": {"username": "ozone",
            "password": password, "clientId": "web-ozone-1"}}});
        decide("ozone", &authorizer, connect, now, &account)
    };
    let res = ask(&ticket).await.unwrap();
    assert!(res.is_authenticated, "{res:?}");
    assert!((3599..=3600).contains(&res.disconnect_after_in_seconds));
    let policy = serde_json::to_value(&res.policy_documents).unwrap();
    let iot = "arn:aws:iot:eu-west-1:123456789012";
    assert_eq!(
        policy[0]["Statement"][0]["Resource"],
        json!([format!("{iot}:client/web-ozone-*")])
    );
    assert_eq!(
        policy[0]["Statement"][2]["Resource"],
        json!([format!("{iot}:topic/ozone/live/*")])
    );
    let session = cookie.split_once('=').unwrap().1;
    for refused in [session, "garbage", ""] {
        assert!(!ask(refused).await.unwrap().is_authenticated, "{refused}");
    }
}

/// What the platform published: `(topic, payload)`.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(String, Value)>>);

#[async_trait::async_trait]
impl civic_iot::Publisher for Recorder {
    async fn publish(&self, topic: &str, payload: &Value) -> Result<(), civic_iot::PublishError> {
        let sent = (topic.to_owned(), payload.clone());
        self.0.lock().unwrap().push(sent);
        Ok(())
    }
}

impl Recorder {
    fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The scheduled sweep tells live pages, once its window passes, that a device went quiet:
/// after the event's `online: true` (a higher seq), not while it is still online, and not
/// again once its contact has left the sweep's look-back.
#[tokio::test]
async fn the_offline_sweep_publishes_devices_that_went_quiet() {
    let schedule: Value = serde_json::from_str(&text("ozone-live-sweep")).unwrap();
    assert_eq!(schedule["detail-type"], "Scheduled Event");
    let dir = tempfile::tempdir().unwrap();
    let recorder = std::sync::Arc::new(Recorder::default());
    let p = platform(dir.path()).with_publisher(recorder.clone());
    let cookie = admin_session(&p).await;
    let token = device_token(&p, &cookie).await;
    let gateway = bearer(event("ozone-gateway"), &token);
    assert_eq!(call(&ozone::GATEWAY, &p, gateway).await.0, StatusCode::OK);
    let sent = recorder.take();
    let online = sent
        .iter()
        .find(|(t, _)| t == "ozone/live/devices/esp32-001/status")
        .expect("the event's contact was published");
    assert_eq!(online.1["data"]["online"], true);

    let s = || ozone::State::new(&p);
    let window = chrono::Duration::seconds(s().config.online_secs);
    let heard = ozone::now();
    let report = ozone::live::sweep(s(), heard).await.unwrap();
    assert_eq!((report, recorder.take().len()), (json!({"offline": 0}), 0));

    let quiet = heard + window + chrono::Duration::seconds(30);
    let report = ozone::live::sweep(s(), quiet).await.unwrap();
    assert_eq!(report, json!({"offline": 1}));
    let sent = recorder.take();
    assert_eq!(sent.len(), 1);
    let (topic, msg) = &sent[0];
    assert_eq!(topic, "ozone/live/devices/esp32-001/status");
    assert_eq!(
        (
            &msg["kind"],
            &msg["data"]["online"],
            &msg["data"]["device_id"]
        ),
        (&json!("status"), &json!(false), &json!("esp32-001"))
    );
    // The device listing's last contact (milliseconds) in the second the event was heard.
    let second = online.1["data"]["last_seen"]
        .as_str()
        .unwrap()
        .trim_end_matches('Z');
    let last_seen = msg["data"]["last_seen"].as_str().unwrap();
    assert!(last_seen.starts_with(second), "{last_seen} vs {second}");
    let (before, after) = (online.1["seq"].as_i64(), msg["seq"].as_i64());
    assert_eq!(after, before.map(|s| s + 1), "offline follows online");

    let long_after = quiet + chrono::Duration::minutes(10);
    let report = ozone::live::sweep(s(), long_after).await.unwrap();
    assert_eq!(report, json!({"offline": 0}));
}
