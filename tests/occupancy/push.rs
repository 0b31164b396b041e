//! Live updates: a page subscribed over `/mqtt` sees a camera's state after each batch and
//! calibration, the facility's totals, and alerts as they open and are resolved; the gate
//! admits anyone when the app runs open (as its REST API does) and only an occupancy access
//! token when it is closed, and refuses everything beyond reading `occupancy/live/#`.

use std::time::Duration;

use chrono::Utc;
use civic_local::bench::live::{Connected, LiveClient};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, SubscribeReasonCode};
use serde_json::{Value, json};

use crate::{Api, cross};

const SOON: Duration = Duration::from_secs(2);
const OK: [SubscribeReasonCode; 1] = [SubscribeReasonCode::Success(QoS::AtMostOnce)];

/// The next message on a topic starting with `prefix` (others are skipped).
async fn next(page: &mut LiveClient, prefix: &str) -> Value {
    loop {
        let (topic, msg) = page.message(SOON).await.expect("pushed within 2 s");
        if topic.starts_with(prefix) {
            assert_eq!(msg["app"], "occupancy");
            return msg;
        }
    }
}

#[tokio::test]
async fn batches_calibrations_and_alerts_reach_an_open_page() {
    let api = Api::start(&[]).await;
    let (cam, entry, _exit, _both) = api.camera("GATE_A", Some(2)).await;
    let base = api.server.base.clone();
    // Open mode: the REST API answers anyone, so any password reads the feed.
    let (mut page, c) = LiveClient::connect(&base, "occupancy", "open").await;
    assert_eq!(c, Connected::Accepted);
    assert_eq!(page.subscribe(&["occupancy/live/#"]).await, OK);

    let now = Utc::now();
    let batch = (1..=3)
        .map(|t| cross(entry, "entry", now, Some(t)))
        .collect();
    assert_eq!(api.events(cam, batch).await, 3);
    let camera = format!("occupancy/live/cameras/{cam}");
    let first = next(&mut page, &camera).await;
    assert_eq!(first["kind"], "camera");
    assert_eq!(first["data"]["camera_id"], cam);
    assert_eq!(first["data"]["current_occupancy"], 3);
    assert_eq!(first["data"]["total_entries"], 3);
    // Three people in a room for two: the alert opens, pushed as GET /alerts lists it.
    let alert = loop {
        // The warning (at 80 %) may open in the same batch.
        let alert = next(&mut page, "occupancy/live/alerts/").await;
        assert_eq!(alert["kind"], "alert");
        if alert["data"]["alert_type"] == "capacity_exceeded" {
            break alert;
        }
    };
    assert_eq!(alert["data"]["is_resolved"], false);
    let alert_id = alert["data"]["id"].as_i64().unwrap();
    // The facility follows from the change feed.
    let facility = next(&mut page, "occupancy/live/facility").await;
    assert_eq!(facility["kind"], "facility");
    assert_eq!(facility["data"]["facility_occupancy"], 3);
    assert_eq!(facility["data"]["total_entries_all_cameras"], 3);
    let rest = api.get("/facility/live", None).await;
    assert_eq!(rest.is(200)["facility_occupancy"], 3);

    let r = api
        .post(
            &format!("/cameras/{cam}/calibrate"),
            None,
            json!({"occupancy_value": 1}),
        )
        .await;
    r.is(200);
    let calibrated = next(&mut page, &camera).await;
    assert_eq!(calibrated["data"]["current_occupancy"], 1);
    assert!(
        calibrated["seq"].as_i64() > first["seq"].as_i64(),
        "{calibrated}"
    );
    let facility2 = next(&mut page, "occupancy/live/facility").await;
    assert_eq!(facility2["data"]["facility_occupancy"], 1);
    assert!(facility2["seq"].as_i64() > facility["seq"].as_i64());

    let r = api
        .put(&format!("/alerts/{alert_id}/resolve"), None, json!({}))
        .await;
    r.is(200);
    let resolved = next(&mut page, &format!("occupancy/live/alerts/{alert_id}")).await;
    assert_eq!(resolved["data"]["is_resolved"], true);
    assert!(resolved["data"]["resolved_at"].is_string());
    assert!(
        resolved["seq"].as_i64() > alert["seq"].as_i64(),
        "{resolved}"
    );
}

/// Even open, the feed is read-only and only Occupancy's.
#[tokio::test]
async fn an_open_feed_is_still_read_only() {
    let api = Api::start(&[]).await;
    let base = api.server.base.clone();
    let (mut page, c) = LiveClient::connect(&base, "occupancy", "anything").await;
    assert_eq!(c, Connected::Accepted);
    refuses_beyond_the_grant(&mut page).await;
}

async fn refuses_beyond_the_grant(page: &mut LiveClient) {
    for filter in [
        "#",
        "streetlight/live/#",
        "occupancy/cameras/+/crossings",
        "+/live/#",
    ] {
        let codes = page.subscribe(&[filter, "occupancy/live/#"]).await;
        assert_eq!(codes, [SubscribeReasonCode::Failure; 2], "{filter}");
    }
    page.publish("occupancy/live/facility", "{}").await;
    assert!(
        page.closed(SOON).await,
        "a publishing subscriber is dropped"
    );
}

/// An access token signed with the platform's key for `aud` (Occupancy has no users of its
/// own: an operator mints its tokens).
fn token(api: &Api, aud: &str, typ: &str) -> String {
    let mut key = std::fs::read(api.server.data_dir.join("jwt-secret")).unwrap();
    key.extend_from_slice(format!(":civic:{aud}").as_bytes());
    let now = Utc::now().timestamp();
    let claims = json!({"sub": "ops", "role": "viewer", "typ": typ, "aud": aud, "iss": "civic",
        "iat": now, "exp": now + 3600, "jti": "live"});
    let key = jsonwebtoken::EncodingKey::from_secret(&key);
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// Closed (`OCCUPANCY_REQUIRE_AUTH=true`, the deployed default): only an occupancy access
/// token connects, and it reads only Occupancy's live topics.
#[tokio::test]
async fn a_closed_feed_wants_an_occupancy_access_token() {
    let api = Api::start(&[("OCCUPANCY_REQUIRE_AUTH", "true")]).await;
    let base = api.server.base.clone();
    let refused = Connected::Refused(ConnectReturnCode::NotAuthorized);
    let good = token(&api, "occupancy", "access");
    for (what, password) in [
        ("garbage", "not-a-token".to_owned()),
        ("another app's token", token(&api, "streetlight", "access")),
        ("a refresh token", token(&api, "occupancy", "refresh")),
    ] {
        let (_, c) = LiveClient::connect(&base, "occupancy", &password).await;
        assert_eq!(c, refused, "{what}");
    }
    // An occupancy token is no other app's credential.
    let (_, c) = LiveClient::connect(&base, "streetlight", &good).await;
    assert_eq!(c, refused);

    let (mut page, c) = LiveClient::connect(&base, "occupancy", &good).await;
    assert_eq!(c, Connected::Accepted);
    assert_eq!(page.subscribe(&["occupancy/live/cameras/+"]).await, OK);
    let body = json!({"camera_id": "DOOR", "camera_name": "Door"});
    let cam = api.post("/cameras", good.as_str(), body).await.is(201)["id"]
        .as_i64()
        .unwrap();
    let r = api
        .post(
            &format!("/cameras/{cam}/calibrate"),
            good.as_str(),
            json!({"occupancy_value": 4}),
        )
        .await;
    r.is(200);
    let msg = next(&mut page, &format!("occupancy/live/cameras/{cam}")).await;
    assert_eq!(msg["data"]["current_occupancy"], 4);
    refuses_beyond_the_grant(&mut page).await;
}

/// With the facility's counters kept inline (`OCCUPANCY_FACILITY_COUNTERS=inline`), the batch's
/// own transaction moves them, and the facility is pushed right after the camera.
#[tokio::test]
async fn inline_facility_counters_are_pushed_with_the_batch() {
    let api = Api::start(&[("OCCUPANCY_FACILITY_COUNTERS", "inline")]).await;
    let (cam, entry, _exit, _both) = api.camera("GATE_B", None).await;
    let base = api.server.base.clone();
    let (mut page, _) = LiveClient::connect(&base, "occupancy", "open").await;
    assert_eq!(page.subscribe(&["occupancy/live/facility"]).await, OK);
    let batch = (1..=2)
        .map(|t| cross(entry, "entry", Utc::now(), Some(t)))
        .collect();
    assert_eq!(api.events(cam, batch).await, 2);
    let facility = next(&mut page, "occupancy/live/facility").await;
    assert_eq!(facility["data"]["facility_occupancy"], 2);
    assert_eq!(
        facility["seq"], 1,
        "the first change of the facility's counters"
    );
}
