//! What a device may publish and subscribe to: its own inbound topics and its own commands.

use std::time::Duration;

use rumqttc::SubscribeReasonCode;
use serde_json::json;

use super::Raw;
use crate::{Platform, ozone_event};

#[tokio::test]
async fn publishing_outside_its_own_inbound_topics_disconnects_and_stores_nothing() {
    let api = Platform::start().await;
    let (admin, sl001) = api.streetlight().await;
    let sl002 = api.light(&admin, "SL002").await;
    let (_, fan_id, fan) = api.homeforge().await;
    let (cookie, dev_a) = api.ozone().await;
    let url = api.broker().await;
    let mut light2 = Raw::as_device(&url, &sl002).await;
    let granted = light2
        .subscribe(&["streetlight/lights/SL002/command"])
        .await;
    assert!(
        matches!(granted[..], [SubscribeReasonCode::Success(_)]),
        "{granted:?}"
    );
    let attacks = [
        (
            &sl001,
            "streetlight/lights/SL002/status".to_owned(),
            json!({"status": "error"}),
        ),
        (
            &sl001,
            "streetlight/lights/SL001/command".into(),
            json!({"action": "on"}),
        ),
        (
            &sl001,
            "streetlight/lights/SL002/command".into(),
            json!({"action": "on"}),
        ),
        (
            &fan,
            format!("homeforge/devices/{fan_id}/set"),
            json!({"relay_1": true}),
        ),
        (&dev_a, "ozone/devices/dev-b/events".into(), ozone_event(1)),
        (&sl001, "ozone/devices/dev-a/events".into(), ozone_event(2)),
    ];
    for (login, topic, payload) in &attacks {
        let mut device = Raw::as_device(&url, login).await;
        assert!(
            !device.publish(topic, payload).await,
            "{} published on {topic}",
            login.user
        );
    }
    // Acknowledged means stored: once its own report is acknowledged, it is the only one.
    let mut light1 = Raw::as_device(&url, &sl001).await;
    assert!(
        light1
            .publish("streetlight/lights/SL001/status", &json!({"status": "on"}))
            .await
    );
    assert_eq!(api.count("StreetlightStatusRule", "matched").await, 1);
    assert_eq!(api.count("OzoneEventsRule", "matched").await, 0);
    let detail = api
        .get("/streetlight/api/lights/detail?lightId=SL002", Some(&admin))
        .await;
    assert_eq!(detail.ok()["data"]["light"]["status"], "off");
    assert!(api.ozone_events(&cookie, "dev-a").await.is_empty());
    assert_eq!(
        light2.receive(Duration::from_millis(500)).await,
        None,
        "no forged command"
    );
}

#[tokio::test]
async fn subscribing_beyond_its_own_commands_is_refused() {
    let api = Platform::start().await;
    let (admin, sl001) = api.streetlight().await;
    api.light(&admin, "SL002").await;
    let url = api.broker().await;
    let mut lamp = Raw::as_device(&url, &sl001).await;
    let refused: [&[&str]; 6] = [
        &["#"],
        &["streetlight/lights/+/command"],
        &["streetlight/lights/SL002/command"],
        &["streetlight/lights/SL001/status"],
        &["$SYS/#"],
        // One refused filter refuses the whole SUBSCRIBE: nothing of it is subscribed.
        &["streetlight/lights/SL001/command", "#"],
    ];
    for filters in refused {
        let codes = lamp.subscribe(filters).await;
        assert_eq!(
            codes,
            vec![SubscribeReasonCode::Failure; filters.len()],
            "{filters:?}"
        );
    }
    let granted = lamp.subscribe(&["streetlight/lights/SL001/command"]).await;
    assert!(
        matches!(granted[..], [SubscribeReasonCode::Success(_)]),
        "{granted:?}"
    );
    // The platform's commands reach the right device, and only it.
    for (light, action) in [("SL002", "on"), ("SL001", "off")] {
        let control = json!({"lightId": light, "action": action});
        api.post("/streetlight/api/lights/control", Some(&admin), control)
            .await
            .ok();
    }
    let command = (
        "streetlight/lights/SL001/command".to_owned(),
        json!({"action": "off"}),
    );
    assert_eq!(lamp.receive(Duration::from_secs(10)).await, Some(command));
    assert_eq!(lamp.receive(Duration::from_millis(500)).await, None);
}
