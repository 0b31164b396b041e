//! Each app's stream, end to end: telemetry in through its topic rule, commands out to the
//! subscribed device, malformed and rejected messages counted.

use reqwest::Method;
use serde_json::json;

use crate::{Platform, eventually};

#[tokio::test]
async fn streetlight_status_in_and_commands_out() {
    let api = Platform::start().await;
    let (admin, sl001) = api.streetlight().await;

    let mut lamp = api.device(&sl001).await;
    lamp.send(
        "streetlight/lights/SL001/status",
        json!({"status": "error", "errorDetails": "lamp failure", "lightId": "SL999"}),
    )
    .await;
    let detail = api.light_reports(&admin, "error").await;
    assert_eq!(detail["data"]["light"]["error_details"], "lamp failure");
    let log = &detail["data"]["recentLogs"][0];
    assert_eq!(
        (log["control_type"].clone(), log["performed_by"].clone()),
        (json!("automatic"), json!("device"))
    );
    // The city's summary follows from the change feed: wait until it has applied the report.
    api.server.settled().await;
    let summary = api
        .get("/streetlight/api/lights/summary?city=Delhi", Some(&admin))
        .await;
    assert_eq!(summary.ok()["data"]["lights_in_error"], 1);

    // Control publishes the command to the light's topic.
    lamp.subscribe("streetlight/lights/SL001/command").await;
    api.command_reaches(&admin, &mut lamp, "on").await;

    // Malformed messages are counted and the broker and the program carry on.
    lamp.publish("streetlight/lights/SL001/status", "not json")
        .await;
    lamp.send("streetlight/lights/SL001/status", json!({"status": 5}))
        .await;
    lamp.send("streetlight/lights/SL001/status", json!({"lightId": 7}))
        .await;
    lamp.send("streetlight/lights/SL001/status", json!({"status": "off"}))
        .await;
    api.light_reports(&admin, "off").await;
    let iot = api.iot().await;
    assert_eq!(iot["stats"]["malformed"], 1, "{iot}");
    assert_eq!(
        api.count("StreetlightStatusRule", "rejected").await,
        2,
        "{iot}"
    );
    assert_eq!(
        api.count("StreetlightStatusRule", "stored").await,
        2,
        "{iot}"
    );
}

#[tokio::test]
async fn ozone_events_are_ingested_once_for_the_topics_device() {
    let api = Platform::start().await;
    let (cookie, dev_a) = api.ozone().await;

    let device = api.device(&dev_a).await;
    // The topic names the device; a device_id in the payload is not trusted.
    let event = json!({"device_id": "dev-b", "event_id": "e-1", "event": "treatment", "treatment": "PREMIUM", "counter": 7});
    for _ in 0..3 {
        device
            .send("ozone/devices/dev-a/events", event.clone())
            .await;
    }
    device
        .send(
            "ozone/devices/dev-a/events",
            json!({"event_id": "e-2", "treatment": "GOLD"}),
        )
        .await;
    eventually("all four messages", || async {
        (api.count("OzoneEventsRule", "matched").await == 4).then_some(())
    })
    .await;
    let events = api.ozone_events(&cookie, "dev-a").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (
            events[0]["event_id"].clone(),
            events[0]["treatment"].clone()
        ),
        (json!("e-1"), json!("PREMIUM"))
    );
    let url = api
        .server
        .url("/ozone/api/telemetry/summary/?device_id=dev-a");
    let summary = api.staff(&cookie, api.http.get(url)).await;
    assert_eq!(summary.ok()["current_count_premium"], 7, "{}", summary.body);
    // The bad treatment is rejected, the repeats acknowledged.
    assert_eq!(api.count("OzoneEventsRule", "rejected").await, 1);
    assert_eq!(api.count("OzoneEventsRule", "stored").await, 3);
}

#[tokio::test]
async fn occupancy_crossings_move_live_occupancy() {
    let api = Platform::start().await;
    let (cam, line, login) = api.occupancy().await;

    let gate = api.device(&login).await;
    let ts = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let crossing = |dir: &str, track: i64| json!({"line_id": line, "direction": dir, "timestamp": ts, "confidence": 0.9, "track_id": track});
    let message =
        json!({"events": [crossing("entry", 1), crossing("entry", 2), crossing("exit", 1)]});
    // Sent twice, as a device does when it never saw the PUBACK: the crossings count once.
    for _ in 0..2 {
        gate.send(
            &format!("occupancy/cameras/{cam}/crossings"),
            message.clone(),
        )
        .await;
    }
    let mut sideways = crossing("entry", 3);
    sideways["direction"] = json!("sideways");
    gate.send(
        &format!("occupancy/cameras/{cam}/crossings"),
        json!({"events": [sideways]}),
    )
    .await;
    let live = eventually("the crossings", || async {
        let live = api
            .get(
                &format!("/occupancy/api/occupancy/cameras/{cam}/live"),
                None,
            )
            .await;
        (live.ok()["total_entries"] == 2).then(|| live.body.clone())
    })
    .await;
    assert_eq!(
        (
            live["current_occupancy"].clone(),
            live["total_exits"].clone()
        ),
        (json!(1), json!(1))
    );
    eventually("the rejection", || async {
        (api.count("OccupancyCrossingsRule", "rejected").await == 1).then_some(())
    })
    .await;
    assert_eq!(api.count("OccupancyCrossingsRule", "stored").await, 2);
    let live = api
        .get(
            &format!("/occupancy/api/occupancy/cameras/{cam}/live"),
            None,
        )
        .await;
    assert_eq!(live.ok()["total_entries"], 2, "{}", live.body);
}

#[tokio::test]
async fn homeforge_reported_state_in_and_desired_state_out() {
    let api = Platform::start().await;
    let (owner, id, login) = api.homeforge().await;

    let mut fan = api.device(&login).await;
    // Keys the type does not declare merge as in a PATCH; a declared key's nested value does not.
    fan.send(
        &format!("homeforge/devices/{id}/state"),
        json!({"relay_1": true, "pwm_1": 40, "rssi": -61}),
    )
    .await;
    fan.send(
        &format!("homeforge/devices/{id}/state"),
        json!({"relay_1": {"on": false}}),
    )
    .await;
    let shown = eventually("the reported state", || async {
        let d = api
            .get(&format!("/homeforge/api/devices/{id}/"), Some(&owner))
            .await;
        (d.ok()["current_state"]["pwm_1"] == 40).then(|| d.body.clone())
    })
    .await;
    assert_eq!(
        shown["current_state"],
        json!({"relay_1": true, "pwm_1": 40, "rssi": -61})
    );
    assert_eq!(shown["status"], "online");

    fan.subscribe(&format!("homeforge/devices/{id}/set")).await;
    let patch = api
        .call(
            Method::PATCH,
            &format!("/homeforge/api/devices/{id}/state/"),
            Some(&owner),
            Some(json!({"pwm_1": 80})),
        )
        .await;
    assert_eq!(patch.ok()["current_state"]["pwm_1"], 80);
    assert_eq!(
        fan.receive().await,
        (format!("homeforge/devices/{id}/set"), json!({"pwm_1": 80}))
    );
    eventually("the rejection", || async {
        (api.count("HomeforgeStateRule", "rejected").await == 1).then_some(())
    })
    .await;
}

/// A camera's MQTT batch reaches a page subscribed to Occupancy's live topics: the same ingest
/// as REST, so the same push.
#[tokio::test]
async fn an_occupancy_mqtt_batch_is_pushed_live() {
    use civic_local::bench::live::{Connected, LiveClient};

    let api = Platform::start().await;
    let (cam, line, login) = api.occupancy().await;
    let base = api.server.base.clone();
    let (mut page, c) = LiveClient::connect(&base, "occupancy", "open").await;
    assert_eq!(c, Connected::Accepted);
    page.subscribe(&[&format!("occupancy/live/cameras/{cam}")])
        .await;
    let gate = api.device(&login).await;
    let ts = chrono::Utc::now().to_rfc3339();
    let entry = json!({"line_id": line, "direction": "entry", "timestamp": ts, "confidence": 0.9});
    gate.send(
        &format!("occupancy/cameras/{cam}/crossings"),
        json!({"events": [entry]}),
    )
    .await;
    let (_, msg) = page
        .message(std::time::Duration::from_secs(5))
        .await
        .expect("the camera's state, pushed");
    assert_eq!(msg["kind"], "camera");
    assert_eq!(msg["data"]["total_entries"], 1);
}
