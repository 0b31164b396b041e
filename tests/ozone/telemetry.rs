//! What users read: events, devices and their telemetry (summary and the latest event).

use civic_testkit::api::Auth;
use serde_json::{Value, json};

use crate::{Api, MAC, OzoneResp, Session};

/// Devices dev-a and dev-b, just hand-shaken, and three events of dev-a (BASIC, then two
/// STANDARD); the staff and the user session.
async fn two_devices_three_events(api: &Api) -> (Session, Session) {
    let (admin, viewer) = api.users().await;
    let a = api.device(&admin, MAC, "dev-a").await;
    api.device(&admin, "AA:BB:CC:DD:EE:01", "dev-b").await;
    for (i, t) in ["BASIC", "STANDARD", "STANDARD"].iter().enumerate() {
        api.event(&a, "dev-a", &format!("a-{i}"), t, None)
            .await
            .ok();
    }
    (admin, viewer)
}

#[tokio::test]
async fn every_read_needs_a_session() {
    let api = Api::start().await;
    two_devices_three_events(&api).await;
    for path in [
        "/events/",
        "/devices/online/",
        "/devices/all/",
        "/devices-data/",
        "/telemetry/summary/?device_id=dev-a",
        "/telemetry/latest/",
    ] {
        api.get(path, Auth::None).await.assert_error(401);
    }
}

#[tokio::test]
async fn events_are_listed_newest_first_page_by_page() {
    let api = Api::start().await;
    let (_, viewer) = two_devices_three_events(&api).await;
    let events = api.get("/events/", &viewer).await;
    let list = events.ok().as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["event_id"], "a-2", "newest first");
    assert_eq!(list[0]["device_id"], "dev-a");
    let page = api.get("/events/?limit=2", &viewer).await;
    assert_eq!(page.body.as_array().unwrap().len(), 2);
    let cursor = page.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = api
        .get(&format!("/events/?limit=2&cursor={cursor}"), &viewer)
        .await;
    assert_eq!(rest.body.as_array().unwrap().len(), 1);
    api.get("/events/?days=abc", &viewer)
        .await
        .assert_error(400);
    api.get("/events/?exclude_status=maybe", &viewer)
        .await
        .assert_error(400);
    api.get("/events/?device_id=bad%20id", &viewer)
        .await
        .assert_error(400);
}

#[tokio::test]
async fn devices_and_their_telemetry_are_summarised_for_users() {
    let api = Api::start().await;
    let (_, viewer) = two_devices_three_events(&api).await;

    // Both devices hand-shook just now: both online.
    let online = api.get("/devices/online/", &viewer).await;
    assert_eq!(online.body.as_array().unwrap().len(), 2);
    assert!(
        online
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["online"] == true)
    );
    let all = api.get("/devices/all/", &viewer).await;
    assert_eq!(
        all.body[0]["device_id"], "dev-a",
        "most recent contact first"
    );
    assert_eq!(all.body[0]["event_count"], 3);
    let data = api.get("/devices-data/", &viewer).await;
    assert_eq!(
        data.body["counts"],
        json!({"total": 2, "online": 2, "offline": 0})
    );
    assert_eq!(
        data.body["usage_today"],
        json!({"total": 3, "BASIC": 1, "STANDARD": 2, "PREMIUM": 0})
    );
    assert_eq!(data.body["devices"].as_array().unwrap().len(), 2);

    let summary = api
        .get("/telemetry/summary/?device_id=dev-a", &viewer)
        .await;
    assert_eq!(
        (&summary.body["mode"], &summary.body["online"]),
        (&json!("STANDARD"), &json!(true))
    );
    assert_eq!(
        summary.body["counts"],
        json!({"basic": 124, "standard": 124, "premium": null})
    );
    api.get("/telemetry/summary/", &viewer)
        .await
        .assert_error(400);
    api.get("/telemetry/summary/?device_id=ghost", &viewer)
        .await
        .assert_error(404);
    let latest = api.get("/telemetry/latest/?device_id=dev-a", &viewer).await;
    assert_eq!(latest.body["event_id"], "a-2");
    assert_eq!(
        api.get("/telemetry/latest/", &viewer).await.body["event_id"],
        "a-2"
    );
    api.get("/telemetry/latest/?device_id=dev-b", &viewer)
        .await
        .assert_error(404);
}

#[tokio::test]
async fn latest_is_the_event_received_last_in_the_same_second() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    latest_is_the_event_received_last(&api, &admin, &viewer).await;
}

/// Two events in the same second whose event ids sort opposite to their receipt order: the
/// one received last is the latest (of its device and of all), and heads the event list.
pub(crate) async fn latest_is_the_event_received_last(
    api: &Api,
    admin: &Session,
    viewer: &Session,
) {
    let a = api.device(admin, "AA:BB:CC:00:00:01", "tie-a").await;
    let b = api.device(admin, "AA:BB:CC:00:00:02", "tie-b").await;
    api.get("/telemetry/latest/?device_id=tie-a", viewer)
        .await
        .assert_error(404);
    // The device's own time: both in one second (the latest second of all events here).
    let ts = Some("2099-01-01T00:00:00Z");
    for (id, t) in [("zz-first", "BASIC"), ("aa-second", "PREMIUM")] {
        api.event(&a, "tie-a", id, t, ts).await.ok();
    }
    let latest = api.get("/telemetry/latest/?device_id=tie-a", viewer).await;
    assert_eq!(latest.ok()["event_id"], "aa-second", "{}", latest.text);
    let fleet = api.get("/telemetry/latest/", viewer).await;
    assert_eq!(fleet.ok()["event_id"], "aa-second", "{}", fleet.text);
    let listed = api.get("/events/?device_id=tie-a&days=1", viewer).await;
    let ids: Vec<&Value> = listed
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event_id"])
        .collect();
    assert_eq!(ids, ["aa-second", "zz-first"], "newest first");
    // A repeat of the first is acknowledged, stores nothing and does not become the latest.
    api.event(&a, "tie-a", "zz-first", "BASIC", ts).await.ok();
    assert_eq!(
        api.get("/telemetry/latest/?device_id=tie-a", viewer)
            .await
            .ok()["event_id"],
        "aa-second"
    );
    // Without `ts` (stamped at receipt): back to back, most likely in one second.
    for id in ["zz-now", "mm-now", "aa-now"] {
        api.event(&b, "tie-b", id, "STANDARD", None).await.ok();
    }
    let latest = api.get("/telemetry/latest/?device_id=tie-b", viewer).await;
    assert_eq!(latest.ok()["event_id"], "aa-now", "{}", latest.text);
    // Bad input is a 4xx in Ozone's format.
    api.get("/telemetry/latest/?device_id=bad%20id", viewer)
        .await
        .assert_error(400);
    api.get("/telemetry/latest/?device_id=tie-c", viewer)
        .await
        .assert_error(404);
    api.get("/telemetry/latest/?device_id=tie-a", Auth::None)
        .await
        .assert_error(401);
}
