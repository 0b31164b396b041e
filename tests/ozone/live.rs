//! Live updates: a signed-in page takes a live ticket and sees each stored event and its
//! device's contact pushed over `/mqtt`; duplicates push nothing; tickets are refused once
//! the account's password changed, and are no use without a session.

use std::time::Duration;

use civic_local::bench::live::{Connected, LiveClient};
use civic_testkit::api::Auth;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, SubscribeReasonCode};
use serde_json::json;

use crate::{Api, OzoneResp};

const SOON: Duration = Duration::from_secs(2);

#[tokio::test]
async fn stored_events_reach_a_ticketed_subscriber_once() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, "AA:BB:CC:00:00:01", "esp32-001").await;
    api.post("/auth/live/", None, json!({}))
        .await
        .assert_error(401);
    let r = api.post("/auth/live/", &viewer, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ticket = r.body["ticket"].as_str().unwrap().to_owned();
    let base = api.server.base.clone();
    let (mut page, c) = LiveClient::connect(&base, "ozone", &ticket).await;
    assert_eq!(c, Connected::Accepted);
    let ok = [SubscribeReasonCode::Success(QoS::AtMostOnce)];
    assert_eq!(page.subscribe(&["ozone/live/devices/+/events"]).await, ok);
    assert_eq!(
        page.subscribe(&["ozone/live/devices/esp32-001/status"])
            .await,
        ok
    );

    let event =
        json!({"device_id": "esp32-001", "event_id": "e-1", "treatment": "BASIC", "counter": 1});
    for _ in 0..2 {
        let r = api
            .post("/device/events/", Auth::Bearer(&token), event.clone())
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let mut got = Vec::new();
    while let Some(msg) = page.message(SOON).await {
        got.push(msg);
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "ozone/live/devices/esp32-001/events",
            "ozone/live/devices/esp32-001/status"
        ],
        "one event, pushed once although sent twice"
    );
    assert_eq!(got[0].1["data"]["event_id"], "e-1");
    assert_eq!(got[0].1["data"]["treatment"], "BASIC");
    assert_eq!(got[1].1["data"]["online"], true);
    assert_eq!(got[0].1["seq"], got[1].1["seq"]);
}

#[tokio::test]
async fn tickets_are_refused_when_forged_or_outdated() {
    let api = Api::start().await;
    let (_admin, viewer) = api.users().await;
    let base = api.server.base.clone();
    let refused = Connected::Refused(ConnectReturnCode::NotAuthorized);
    // The session cookie itself is not a ticket.
    let cookie = viewer.0.split_once('=').unwrap().1.to_owned();
    assert_eq!(
        LiveClient::connect(&base, "ozone", &cookie).await.1,
        refused
    );
    let r = api.post("/auth/live/", &viewer, json!({})).await;
    let ticket = r.body["ticket"].as_str().unwrap().to_owned();
    // A ticket is Ozone's: no other app takes it.
    let (_, c) = LiveClient::connect(&base, "streetlight", &ticket).await;
    assert_eq!(c, refused);
    // A password change ends the tickets issued before it.
    let body = json!({"current_password": "password123", "new_password": "another-pass-4471"});
    let r = api.post("/auth/password/", &viewer, body).await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(
        LiveClient::connect(&base, "ozone", &ticket).await.1,
        refused
    );
}
