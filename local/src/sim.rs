//! A device simulator for the four MQTT streams: street lights that report their status and
//! obey commands, Ozone machines that press treatments, cameras that count crossings, and
//! HomeForge devices that apply desired state and report it back. Each device connects on its
//! own, as its thing name (`{app}-{id}`) with the password its app issued (`ID=PASSWORD`).
//! Every loop is bounded.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use civic_core::iot::DeviceClass;
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Clone, Debug, Default, clap::Args)]
pub struct SimOpts {
    /// The broker civic-local serves (see `/_local/iot`).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    /// Street lights as `LIGHT_ID=PASSWORD` (the `mqtt` login from creating the light): each
    /// reports its status and obeys `command`s. Without `=PASSWORD` only with `--mqtt-auth off`.
    #[arg(long = "light")]
    pub lights: Vec<String>,
    /// Ozone devices as `DEVICE_ID=TOKEN` (the device's bearer token): each presses treatments.
    #[arg(long = "ozone-device")]
    pub ozone_devices: Vec<String>,
    /// Occupancy cameras as `CAMERA_ID:LINE_ID=PASSWORD` (integer ids): each counts crossings.
    #[arg(long = "camera")]
    pub cameras: Vec<String>,
    /// HomeForge devices as `ID=PASSWORD`: each applies desired state from `set` and reports it.
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

/// The message a device sends at step `i` of its stream.
fn message(opts: &SimOpts, stream: &Kind, i: u32) -> (String, Value) {
    match stream {
        Kind::Light(id) => {
            let status = match i % 5 {
                4 => json!({"status": "error", "errorDetails": "lamp flicker"}),
                k => json!({"status": if k % 2 == 0 { "on" } else { "off" }}),
            };
            (format!("streetlight/lights/{id}/status"), status)
        }
        Kind::Ozone(id) => (format!("ozone/devices/{id}/events"), {
            let treatment = ["BASIC", "STANDARD", "PREMIUM"][i as usize % 3];
            json!({"event_id": format!("{}-{id}-{i}", opts.run_id), "event": "treatment",
                       "treatment": treatment, "counter": i, "firmware": "sim-1.0"})
        }),
        Kind::Camera(cam, line) => {
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let dir = if i % 3 == 2 { "exit" } else { "entry" };
            (
                format!("occupancy/cameras/{cam}/crossings"),
                json!({"events": [{"line_id": line, "direction": dir, "timestamp": ts, "confidence": 0.9, "track_id": i}]}),
            )
        }
        Kind::Home(id) => {
            let mut state = serde_json::Map::new();
            state.insert(opts.homeforge_key.clone(), json!(i.is_multiple_of(2)));
            (
                format!("homeforge/devices/{id}/state"),
                Value::Object(state),
            )
        }
    }
}

enum Kind {
    Light(String),
    Ozone(String),
    Camera(i64, i64),
    Home(String),
}

/// A simulated device: its stream and its password.
struct Stream {
    kind: Kind,
    password: Option<String>,
}

impl Stream {
    fn class_and_id(&self) -> (&'static DeviceClass, String) {
        match &self.kind {
            Kind::Light(id) => (&streetlight::lights::DEVICES, id.clone()),
            Kind::Ozone(id) => (&ozone::mqtt::DEVICES, id.clone()),
            Kind::Camera(cam, _) => (&occupancy::cameras::DEVICES, cam.to_string()),
            Kind::Home(id) => (&homeforge::devices::DEVICES, id.clone()),
        }
    }

    /// The client id and user name: the device's thing name.
    fn identity(&self) -> String {
        let (class, id) = self.class_and_id();
        class.topics.thing(&id)
    }

    fn command_topics(&self) -> Vec<String> {
        let (class, id) = self.class_and_id();
        (class.topics.commands.iter())
            .map(|leaf| format!("{}/{id}/{leaf}", class.topics.prefix))
            .collect()
    }
}

/// `ID=PASSWORD` → `(ID, Some(PASSWORD))`; ids hold no `=` (tokens are URL-safe base64).
fn login(arg: &str) -> (&str, Option<String>) {
    match arg.split_once('=') {
        Some((id, password)) => (id, Some(password.to_owned())),
        None => (arg, None),
    }
}

fn streams(opts: &SimOpts) -> Result<Vec<Stream>> {
    let plain = |args: &[String], kind: fn(String) -> Kind| -> Vec<Stream> {
        (args.iter())
            .map(|a| login(a))
            .map(|(id, password)| Stream {
                kind: kind(id.to_owned()),
                password,
            })
            .collect()
    };
    let mut out = plain(&opts.lights, Kind::Light);
    out.extend(plain(&opts.ozone_devices, Kind::Ozone));
    for c in &opts.cameras {
        let (ids, password) = login(c);
        let parsed = ids
            .split_once(':')
            .and_then(|(cam, line)| Some((cam.parse().ok()?, line.parse().ok()?)));
        let Some((cam, line)) = parsed else {
            anyhow::bail!("--camera takes CAMERA_ID:LINE_ID[=PASSWORD] (integer ids), not {c:?}");
        };
        let kind = Kind::Camera(cam, line);
        out.push(Stream { kind, password });
    }
    out.extend(plain(&opts.homeforge_devices, Kind::Home));
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

/// Connects device `n` as itself and subscribes to its commands, which arrive on `inbox`
/// tagged with `n`. A refused login ends the simulation with the broker's reason.
async fn connect(
    url: &str,
    n: usize,
    device: &Stream,
    inbox: mpsc::UnboundedSender<(usize, Publish)>,
) -> Result<(AsyncClient, tokio::task::JoinHandle<()>)> {
    let identity = device.identity();
    let mut mqtt = civic_iot::mqtt::options(url, &identity).map_err(anyhow::Error::msg)?;
    if let Some(password) = &device.password {
        mqtt.set_credentials(identity.clone(), password.clone());
    }
    let (client, mut events) = AsyncClient::new(mqtt, 256);
    let connack = async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), connack)
        .await
        .with_context(|| format!("device {identity}: no CONNACK within 10 s"))?
        .with_context(|| format!("device {identity}: connecting to {url}"))?;
    for topic in device.command_topics() {
        client.subscribe(topic, QoS::AtLeastOnce).await?;
    }
    let driver = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = inbox.send((n, p));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(device = identity, error = %e, "simulator lost the broker; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    Ok((client, driver))
}

/// Runs the simulation: connects each device and subscribes to its commands, sends `count`
/// messages per device, answers commands until `linger_ms` after the last one.
pub async fn run(opts: &SimOpts) -> Result<Report> {
    let streams = streams(opts)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut clients, mut drivers) = (Vec::new(), Vec::new());
    for (n, device) in streams.iter().enumerate() {
        let (client, driver) = connect(&opts.mqtt_url, n, device, tx.clone()).await?;
        clients.push(client);
        drivers.push(driver);
    }
    let mut report = Report::default();
    let mut tick = tokio::time::interval(Duration::from_millis(opts.interval_ms.max(1)));
    let mut step = 0;
    let linger = tokio::time::sleep(Duration::MAX);
    tokio::pin!(linger);
    loop {
        tokio::select! {
            _ = tick.tick(), if step < opts.count => {
                for (client, s) in clients.iter().zip(&streams) {
                    let (topic, payload) = message(opts, &s.kind, step);
                    client.publish(topic, QoS::AtLeastOnce, false, payload.to_string()).await?;
                    report.sent += 1;
                }
                step += 1;
                if step == opts.count {
                    linger.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(opts.linger_ms));
                }
            }
            Some((n, p)) = rx.recv() => {
                let payload: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                println!("command {} {payload}", p.topic);
                if let Some((topic, reply)) = answer(&p.topic, &payload) {
                    clients[n].publish(topic, QoS::AtLeastOnce, false, reply.to_string()).await?;
                    report.sent += 1;
                }
                report.commands.push((p.topic.clone(), payload));
            }
            _ = &mut linger => break,
        }
    }
    for d in drivers {
        d.abort();
    }
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
    fn devices_log_in_as_their_thing_names() {
        let opts = SimOpts {
            lights: vec!["SL1=pw".into()],
            cameras: vec!["7:2=secret".into()],
            ozone_devices: vec!["dev-a".into()],
            ..SimOpts::default()
        };
        let s = streams(&opts).unwrap();
        let logins: Vec<_> = s
            .iter()
            .map(|d| (d.identity(), d.password.clone()))
            .collect();
        assert_eq!(
            logins,
            [
                ("streetlight-SL1".to_owned(), Some("pw".to_owned())),
                ("ozone-dev-a".to_owned(), None),
                ("occupancy-7".to_owned(), Some("secret".to_owned())),
            ]
        );
        assert_eq!(s[0].command_topics(), ["streetlight/lights/SL1/command"]);
        assert!(s[2].command_topics().is_empty());
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
