//! A device simulator for the four MQTT streams: street lights that report their status and
//! obey commands, Ozone machines that press treatments, cameras that count crossings, and
//! HomeForge devices that apply desired state and report it back. Every loop is bounded.

use std::time::Duration;

use anyhow::{Result, ensure};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::{Value, json};

#[derive(Clone, Debug, Default, clap::Args)]
pub struct SimOpts {
    /// The broker civic-local serves (see `/_local/iot`).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    /// Street lights (`lightId`s): each reports its status and obeys `command`s.
    #[arg(long = "light")]
    pub lights: Vec<String>,
    /// Ozone device ids (assigned by staff): each presses treatments.
    #[arg(long = "ozone-device")]
    pub ozone_devices: Vec<String>,
    /// Occupancy cameras as `CAMERA_ID:LINE_ID` (integer ids): each counts crossings.
    #[arg(long = "camera")]
    pub cameras: Vec<String>,
    /// HomeForge device ids: each applies desired state from `set` and reports it back.
    #[arg(long = "homeforge-device")]
    pub homeforge_devices: Vec<String>,
    /// The boolean component a HomeForge device toggles in its reports (the seed's Smart Fan
    /// has `relay_1`).
    #[arg(long, default_value = "relay_1")]
    pub homeforge_key: String,
    /// Messages each device sends on its stream.
    #[arg(long, default_value_t = 10)]
    pub count: u32,
    /// Pause between a device's messages.
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,
    /// How long to keep answering commands after the last message.
    #[arg(long, default_value_t = 2000)]
    pub linger_ms: u64,
    /// A prefix for Ozone event ids, so repeated runs store new events.
    #[arg(long, default_value = "sim")]
    pub run_id: String,
}

/// What the simulated devices sent and received.
#[derive(Debug, Default)]
pub struct Report {
    pub sent: u64,
    /// Commands received, as `(topic, payload)`.
    pub commands: Vec<(String, Value)>,
}

/// The message device `n` sends at step `i` of its stream.
fn message(opts: &SimOpts, stream: &Stream, i: u32) -> (String, Value) {
    match stream {
        Stream::Light(id) => {
            let status = match i % 5 {
                4 => json!({"status": "error", "errorDetails": "lamp flicker"}),
                k => json!({"status": if k % 2 == 0 { "on" } else { "off" }}),
            };
            (format!("streetlight/lights/{id}/status"), status)
        }
        Stream::Ozone(id) => (format!("ozone/devices/{id}/events"), {
            let treatment = ["BASIC", "STANDARD", "PREMIUM"][i as usize % 3];
            json!({"event_id": format!("{}-{id}-{i}", opts.run_id), "event": "treatment",
                       "treatment": treatment, "counter": i, "firmware": "sim-1.0"})
        }),
        Stream::Camera(cam, line) => {
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let dir = if i % 3 == 2 { "exit" } else { "entry" };
            (
                format!("occupancy/cameras/{cam}/crossings"),
                json!({"events": [{"line_id": line, "direction": dir, "timestamp": ts, "confidence": 0.9, "track_id": i}]}),
            )
        }
        Stream::Home(id) => {
            let mut state = serde_json::Map::new();
            state.insert(opts.homeforge_key.clone(), json!(i.is_multiple_of(2)));
            (
                format!("homeforge/devices/{id}/state"),
                Value::Object(state),
            )
        }
    }
}

enum Stream {
    Light(String),
    Ozone(String),
    Camera(i64, i64),
    Home(String),
}

fn streams(opts: &SimOpts) -> Result<Vec<Stream>> {
    let mut out: Vec<Stream> = opts.lights.iter().cloned().map(Stream::Light).collect();
    out.extend(opts.ozone_devices.iter().cloned().map(Stream::Ozone));
    for c in &opts.cameras {
        let parsed = c
            .split_once(':')
            .and_then(|(cam, line)| Some((cam.parse().ok()?, line.parse().ok()?)));
        let Some((cam, line)) = parsed else {
            anyhow::bail!("--camera takes CAMERA_ID:LINE_ID (integers), not {c:?}");
        };
        out.push(Stream::Camera(cam, line));
    }
    out.extend(opts.homeforge_devices.iter().cloned().map(Stream::Home));
    ensure!(!out.is_empty(), "name at least one device to simulate");
    Ok(out)
}

/// A device's answer to a command: a light reports the status it was told to take; a HomeForge
/// device reports the desired state as applied.
fn answer(topic: &str, payload: &Value) -> Option<(String, Value)> {
    let levels: Vec<&str> = topic.split('/').collect();
    match levels.as_slice() {
        ["streetlight", "lights", id, "command"] => Some((
            format!("streetlight/lights/{id}/status"),
            json!({"status": payload.get("action")?}),
        )),
        ["homeforge", "devices", id, "set"] => {
            Some((format!("homeforge/devices/{id}/state"), payload.clone()))
        }
        _ => None,
    }
}

/// Runs the simulation: subscribes to the command topics, sends `count` messages per device,
/// answers commands until `linger_ms` after the last one.
pub async fn run(opts: &SimOpts) -> Result<Report> {
    let streams = streams(opts)?;
    let mqtt =
        civic_iot::mqtt::options(&opts.mqtt_url, &format!("civic-sim-{}", std::process::id()))
            .map_err(anyhow::Error::msg)?;
    let (client, mut events) = AsyncClient::new(mqtt, 256);
    for s in &streams {
        match s {
            Stream::Light(id) => {
                let topic = format!("streetlight/lights/{id}/command");
                client.subscribe(topic, QoS::AtLeastOnce).await?;
            }
            Stream::Home(id) => {
                let topic = format!("homeforge/devices/{id}/set");
                client.subscribe(topic, QoS::AtLeastOnce).await?;
            }
            _ => {}
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(p);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "simulator lost the broker; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    let mut report = Report::default();
    let mut tick = tokio::time::interval(Duration::from_millis(opts.interval_ms.max(1)));
    let mut step = 0;
    let linger = tokio::time::sleep(Duration::MAX);
    tokio::pin!(linger);
    loop {
        tokio::select! {
            _ = tick.tick(), if step < opts.count => {
                for s in &streams {
                    let (topic, payload) = message(opts, s, step);
                    client.publish(topic, QoS::AtLeastOnce, false, payload.to_string()).await?;
                    report.sent += 1;
                }
                step += 1;
                if step == opts.count {
                    linger.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(opts.linger_ms));
                }
            }
            Some(p) = rx.recv() => {
                let payload: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                println!("command {} {payload}", p.topic);
                if let Some((topic, reply)) = answer(&p.topic, &payload) {
                    client.publish(topic, QoS::AtLeastOnce, false, reply.to_string()).await?;
                    report.sent += 1;
                }
                report.commands.push((p.topic.clone(), payload));
            }
            _ = &mut linger => break,
        }
    }
    driver.abort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_answer_their_commands() {
        assert_eq!(
            answer("streetlight/lights/SL1/command", &json!({"action": "on"})),
            Some((
                "streetlight/lights/SL1/status".into(),
                json!({"status": "on"})
            ))
        );
        assert_eq!(
            answer("homeforge/devices/3/set", &json!({"pwm_1": 20})),
            Some(("homeforge/devices/3/state".into(), json!({"pwm_1": 20})))
        );
        assert_eq!(answer("streetlight/lights/SL1/command", &json!({})), None);
        assert_eq!(answer("other/topic", &json!({})), None);
    }

    #[test]
    fn cameras_need_integer_ids() {
        let opts = SimOpts {
            cameras: vec!["GATE_A".into()],
            ..SimOpts::default()
        };
        assert!(streams(&opts).is_err());
        assert!(streams(&SimOpts::default()).is_err());
    }
}
