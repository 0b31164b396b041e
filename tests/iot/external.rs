//! An external broker under `--mqtt-url`, and what the device port does with garbage.

use std::time::Duration;

use civic_testkit::mosquitto::Mosquitto;
use serde_json::json;

use crate::{Platform, eventually};

/// With an external broker (Debian's mosquitto, `--mqtt-url`) the rule engine subscribes to it:
/// telemetry in, commands out, and what is not stored kept, as with the embedded broker.
#[tokio::test]
async fn an_external_mosquitto_broker_works_the_same() {
    let broker = Mosquitto::start().await;
    let api = Platform::start_with(&["--mqtt-url", &broker.url]).await;
    assert_eq!(api.iot().await["broker"], broker.url.as_str());
    let (admin, sl001) = api.streetlight().await;

    let mut lamp = api.device(&sl001).await;
    lamp.subscribe("streetlight/lights/SL001/command").await;
    lamp.send(
        "streetlight/lights/SL001/status",
        json!({"status": "error", "errorDetails": "lamp failure"}),
    )
    .await;
    lamp.publish("streetlight/lights/SL001/status", "not json")
        .await;
    api.light_reports(&admin, "error").await;
    eventually("the malformed message kept", || async {
        (api.count("StreetlightStatusRule", "kept").await == 1).then_some(())
    })
    .await;
    api.command_reaches(&admin, &mut lamp, "off").await;
}

/// The device port closes a connection that sends what is not MQTT (a reserved packet type),
/// announces a packet over the limit or publishes before it connects, and the broker and other
/// devices carry on.
#[tokio::test]
async fn the_device_port_closes_connections_that_send_garbage() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let api = Platform::start().await;
    let (admin, sl001) = api.streetlight().await;
    let url = api.broker().await;
    let addr = url.trim_start_matches("mqtt://").to_owned();
    let reserved_type = vec![0x00, 0x00];
    // A PUBLISH whose remaining length says 256 MiB.
    let oversize = vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F];
    // A well-formed PUBLISH (QoS 0, topic `a`) before any CONNECT.
    let unconnected = vec![0x30, 0x03, 0x00, 0x01, b'a'];
    for garbage in [reserved_type, oversize, unconnected] {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(&garbage).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("the connection is closed within 10 s");
        assert!(matches!(read, Ok(0) | Err(_)), "{garbage:?}: {read:?}");
    }
    let lamp = api.device(&sl001).await;
    lamp.send("streetlight/lights/SL001/status", json!({"status": "on"}))
        .await;
    api.light_reports(&admin, "on").await;
}
