//! Live updates: a signed-in browser subscribed over `/mqtt` sees each light's status change
//! and its city's summary, pushed; the gate refuses what it may not do.

use std::time::Duration;

use civic_local::bench::live::{Connected, LiveClient};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::ConnectReturnCode;
use rumqttc::mqttbytes::v4::SubscribeReasonCode;
use serde_json::{Value, json};

use crate::Api;

const SOON: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_light_change_reaches_a_subscribed_browser() {
    let api = Api::start().await;
    let (admin, op, viewer) = api.users().await;
    api.create(&admin, "SL001", "Delhi").await;
    let base = api.server.base.clone();
    let (mut browser, connected) = LiveClient::connect(&base, "streetlight", &viewer).await;
    assert_eq!(connected, Connected::Accepted);
    let granted = browser
        .subscribe(&["streetlight/live/cities/delhi/#"])
        .await;
    assert_eq!(granted, [SubscribeReasonCode::Success(QoS::AtMostOnce)]);

    let body = json!({"lightId": "SL001", "status": "error", "errorDetails": "Bulb failed"});
    let r = api.post("/lights/update-status", op.as_str(), body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let msg = browser.message(SOON).await.expect("pushed within 2 s");
        seen.push(msg);
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let (topic, light) = &seen[0];
    assert_eq!(topic, "streetlight/live/cities/delhi/lights/SL001");
    assert_eq!(light["kind"], "light");
    assert_eq!(light["app"], "streetlight");
    assert_eq!(light["data"]["status"], "error");
    assert_eq!(light["data"]["error_details"], "Bulb failed");
    let first_seq = light["seq"].as_i64().expect("a seq");
    let (topic, summary) = &seen[1];
    assert_eq!(topic, "streetlight/live/cities/delhi/summary");
    assert_eq!(summary["data"]["lights_in_error"], 1);
    assert_eq!(summary["data"]["total_lights"], 1);

    // An operator's control moves it again: each change's seq is above the last.
    let body = json!({"lightId": "SL001", "action": "on"});
    let r = api.post("/lights/control", op.as_str(), body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let next = next_light(&mut browser).await;
    assert_eq!(next["data"]["status"], "on");
    assert!(next["seq"].as_i64().unwrap() > first_seq, "{next}");
}

async fn next_light(browser: &mut LiveClient) -> Value {
    loop {
        let (topic, msg) = browser.message(SOON).await.expect("pushed within 2 s");
        if topic.contains("/lights/") {
            return msg;
        }
    }
}

/// A wrong or foreign credential gets no connection; a subscription beyond the app's live
/// topics is refused; a subscriber that publishes is disconnected.
#[tokio::test]
async fn the_live_gate_refuses_what_a_browser_may_not_do() {
    let api = Api::start().await;
    let (_admin, _op, viewer) = api.users().await;
    let base = api.server.base.clone();
    let refused = Connected::Refused(ConnectReturnCode::NotAuthorized);
    let (_, c) = LiveClient::connect(&base, "streetlight", "not-a-token").await;
    assert_eq!(c, refused);
    // A Streetlight token is no Ozone credential, and unknown apps are no user name.
    let (_, c) = LiveClient::connect(&base, "ozone", &viewer).await;
    assert_eq!(c, refused);
    let (_, c) = LiveClient::connect(&base, "nobody", &viewer).await;
    assert_eq!(
        c,
        Connected::Refused(ConnectReturnCode::BadUserNamePassword)
    );
    // A refresh token is not an access token.
    let login = json!({"email": "viewer@example.com", "password": "password123"});
    let r = api.post("/auth/login", None, login).await;
    let refresh = r.body["data"]["refreshToken"]
        .as_str()
        .unwrap_or("missing")
        .to_owned();
    let (_, c) = LiveClient::connect(&base, "streetlight", &refresh).await;
    assert_eq!(c, refused, "a refresh token");

    let (mut browser, c) = LiveClient::connect(&base, "streetlight", &viewer).await;
    assert_eq!(c, Connected::Accepted);
    for filter in [
        "#",
        "ozone/live/#",
        "streetlight/lights/+/command",
        "+/live/#",
    ] {
        let codes = browser.subscribe(&[filter, "streetlight/live/#"]).await;
        assert_eq!(codes, [SubscribeReasonCode::Failure; 2], "{filter}");
    }
    browser
        .publish("streetlight/live/cities/delhi/summary", "{}")
        .await;
    assert!(
        browser.closed(SOON).await,
        "a publishing subscriber is dropped"
    );
}
