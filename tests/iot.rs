//! Devices over MQTT, end to end: a real MQTT client publishes to civic-local's broker, the
//! template's topic rules route each stream into its app's ingest handler, and the HTTP API
//! shows the effect; commands from the API arrive at a subscribed client.

use std::time::Duration;

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use civic_testkit::http::{Resp, send};
use civic_testkit::local::LocalServer;
use civic_testkit::mosquitto::Mosquitto;
use reqwest::Method;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

struct Platform {
    server: LocalServer,
    http: reqwest::Client,
}

impl Platform {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    async fn start_with(args: &[&str]) -> Self {
        Self {
            server: LocalServer::start(BIN, args).await,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, self.server.url(path));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }

    async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, bearer, Some(body)).await
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> Resp {
        self.call(Method::GET, path, bearer, None).await
    }

    /// The broker's address and the rule counters.
    async fn iot(&self) -> Value {
        self.get("/_local/iot", None).await.ok().clone()
    }

    async fn device(&self, id: &str) -> Device {
        let url = self.iot().await["broker"].as_str().unwrap().to_owned();
        Device::connect(&url, id).await
    }

    /// Streetlight's admin token, with light `SL001` in Delhi.
    async fn streetlight(&self) -> String {
        let admin = json!({"name": "admin", "email": "admin@example.com", "password": "password123", "city": "Delhi"});
        let admin = self
            .post("/streetlight/api/auth/register", None, admin)
            .await;
        let admin = admin.ok()["data"]["token"].as_str().unwrap().to_owned();
        let light = json!({"lightId": "SL001", "name": "Main", "city": "Delhi", "latitude": 28.6, "longitude": 77.2});
        self.post("/streetlight/api/lights/create", Some(&admin), light)
            .await
            .ok();
        admin
    }

    /// SL001's detail once the light reports `status`.
    async fn light_reports(&self, admin: &str, status: &str) -> Value {
        eventually(&format!("the report {status:?}"), || async {
            let d = self
                .get("/streetlight/api/lights/detail?lightId=SL001", Some(admin))
                .await;
            (d.ok()["data"]["light"]["status"] == status).then(|| d.body.clone())
        })
        .await
    }

    /// `/lights/control` on SL001 publishes the command to the light's topic, where `lamp`
    /// (subscribed) receives it.
    async fn command_reaches(&self, admin: &str, lamp: &mut Device, action: &str) {
        let control = json!({"lightId": "SL001", "action": action});
        self.post("/streetlight/api/lights/control", Some(admin), control)
            .await
            .ok();
        let command = (
            "streetlight/lights/SL001/command".to_owned(),
            json!({"action": action}),
        );
        assert_eq!(lamp.receive().await, command);
    }

    /// HomeForge's owner token and a device of the seed's fan type (`relay_1`, `pwm_1`).
    async fn homeforge(&self) -> (String, i64) {
        let user = json!({"username": "olivia", "email": "o@example.com", "password": "Attic-Lamp42", "first_name": "O", "last_name": "L"});
        self.post("/homeforge/api/register/", None, user).await.ok();
        let login = json!({"username": "olivia", "password": "Attic-Lamp42"});
        let login = self.post("/homeforge/api/login/", None, login).await;
        let owner = login.ok()["access"].as_str().unwrap().to_owned();
        let fan = json!({
            "name": "Smart Fan",
            "definition": {"name": "Fan v1", "structure": [
                {"id": "relay_1", "type": "relay", "label": "Power", "position": {"x": 150, "y": 50}},
                {"id": "pwm_1", "type": "pwm", "label": "Speed", "position": {"x": 150, "y": 150}}]},
            "card_template": {"layout_config": {"w": 2, "h": 2}, "controls": [
                {"widget_type": "TOGGLE", "label": "Power", "variable_mapping": "relay_1"}]}
        });
        let kind = self
            .post("/homeforge/api/device-types/propose/", Some(&owner), fan)
            .await;
        let kind = kind.ok()["id"].as_i64().unwrap();
        let approve = format!("/homeforge/api/admin/device-types/{kind}/approve/");
        self.post(&approve, Some(&owner), json!({})).await.ok();
        let device = json!({"name": "Fan", "ip_address": "192.168.1.50", "device_type": kind});
        let id = self
            .post("/homeforge/api/devices/", Some(&owner), device)
            .await;
        (owner, id.ok()["id"].as_i64().unwrap())
    }

    /// Occupancy camera `GATE_A` (bidirectional) with one line: their integer ids.
    async fn occupancy(&self) -> (i64, i64) {
        let camera = json!({"camera_id": "GATE_A", "camera_name": "Gate A", "location": "Main Gate", "camera_type": "bidirectional", "max_occupancy": 100, "resolution_width": 1920, "resolution_height": 1080});
        let cam = self
            .post("/occupancy/api/occupancy/cameras", None, camera)
            .await;
        let cam = cam.ok()["id"].as_i64().unwrap();
        let line = json!({"camera_id": cam, "line_name": "Door", "x1": 0, "y1": 300, "x2": 1920, "y2": 300});
        let line = self
            .post("/occupancy/api/occupancy/lines", None, line)
            .await;
        (cam, line.ok()["id"].as_i64().unwrap())
    }

    /// Ozone's staff session cookie, with MAC `EC:E3:34:46:2B:C0` assigned as `dev-a`.
    async fn ozone(&self) -> String {
        let user =
            json!({"username": "admin", "password": "password123", "email": "a@example.com"});
        self.post("/ozone/api/auth/register/", None, user)
            .await
            .ok();
        let cookie = self.ozone_session().await;
        let mac = json!({"mac": "EC:E3:34:46:2B:C0", "firmware": "1.0.0"});
        self.post("/ozone/api/handshake/", None, mac).await.ok();
        let assign = json!({"mac": "EC:E3:34:46:2B:C0", "device_id": "dev-a"});
        self.staff(
            &cookie,
            self.http
                .post(self.server.url("/ozone/api/devices/assign/"))
                .json(&assign),
        )
        .await
        .ok();
        cookie
    }

    /// A new session of the staff user `ozone()` registered.
    async fn ozone_session(&self) -> String {
        let user = json!({"username": "admin", "password": "password123"});
        let login = self.post("/ozone/api/auth/login/", None, user).await;
        let cookie = login.headers["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn staff(&self, cookie: &str, req: reqwest::RequestBuilder) -> Resp {
        send(req.header("cookie", cookie)).await
    }

    async fn ozone_events(&self, cookie: &str, device: &str) -> Vec<Value> {
        let url = self
            .server
            .url(&format!("/ozone/api/events/?device_id={device}&limit=1000"));
        let events = self.staff(cookie, self.http.get(url)).await;
        events.ok().as_array().unwrap().clone()
    }

    /// A counter of one rule, e.g. `("StreetlightStatusRule", "rejected")`.
    async fn count(&self, rule: &str, what: &str) -> u64 {
        self.iot().await["stats"]["rules"][rule][what]
            .as_u64()
            .unwrap()
    }
}

/// A device: an MQTT client whose received messages queue up in `inbox`.
struct Device {
    client: AsyncClient,
    inbox: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    subacks: mpsc::UnboundedReceiver<()>,
}

impl Device {
    async fn connect(url: &str, id: &str) -> Self {
        let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
        let opts = MqttOptions::new(id, host, port.parse::<u16>().unwrap());
        let (client, mut events) = AsyncClient::new(opts, 64);
        let (tx, inbox) = mpsc::unbounded_channel();
        let (sub_tx, subacks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self {
            client,
            inbox,
            subacks,
        }
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    async fn send(&self, topic: &str, payload: Value) {
        self.publish(topic, payload.to_string()).await;
    }

    async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.subacks.recv())
            .await
            .expect("SUBACK");
    }

    async fn receive(&mut self) -> (String, Value) {
        let (topic, bytes) = tokio::time::timeout(Duration::from_secs(10), self.inbox.recv())
            .await
            .expect("a command within 10 s")
            .unwrap();
        (topic, serde_json::from_slice(&bytes).unwrap())
    }
}

/// Polls `probe` until it returns `Some`, for up to 10 seconds.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not seen within 10 s");
}

#[tokio::test]
async fn streetlight_status_in_and_commands_out() {
    let api = Platform::start().await;
    let admin = api.streetlight().await;

    let mut lamp = api.device("lamp-SL001").await;
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
    lamp.send("streetlight/lights/NOPE/status", json!({"status": "on"}))
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
    let cookie = api.ozone().await;

    let device = api.device("dev-a").await;
    // The topic names the device; a device_id in the payload is not trusted.
    let event = json!({"device_id": "dev-b", "event_id": "e-1", "event": "treatment", "treatment": "PREMIUM", "counter": 7});
    for _ in 0..3 {
        device
            .send("ozone/devices/dev-a/events", event.clone())
            .await;
    }
    device
        .send("ozone/devices/dev-x/events", event.clone())
        .await;
    device
        .send(
            "ozone/devices/dev-a/events",
            json!({"event_id": "e-2", "treatment": "GOLD"}),
        )
        .await;
    eventually("all five messages", || async {
        (api.count("OzoneEventsRule", "matched").await == 5).then_some(())
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
    // The unknown device and the bad treatment are rejected, the repeats acknowledged.
    assert_eq!(api.count("OzoneEventsRule", "rejected").await, 2);
    assert_eq!(api.count("OzoneEventsRule", "stored").await, 3);
}

#[tokio::test]
async fn occupancy_crossings_move_live_occupancy() {
    let api = Platform::start().await;
    let (cam, line) = api.occupancy().await;

    let gate = api.device("GATE_A").await;
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
    gate.send(
        "occupancy/cameras/abc/crossings",
        json!({"events": [crossing("entry", 3)]}),
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
    let (owner, id) = api.homeforge().await;

    let mut fan = api.device("fan").await;
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

#[tokio::test]
async fn the_simulator_drives_all_four_streams_and_answers_commands() {
    let api = Platform::start().await;
    let admin = api.streetlight().await;
    let cookie = api.ozone().await;
    let (cam, line) = api.occupancy().await;
    let (owner, fan) = api.homeforge().await;
    let opts = civic_local::sim::SimOpts {
        mqtt_url: api.iot().await["broker"].as_str().unwrap().to_owned(),
        lights: vec!["SL001".into()],
        ozone_devices: vec!["dev-a".into()],
        cameras: vec![format!("{cam}:{line}")],
        homeforge_devices: vec![fan.to_string()],
        homeforge_key: "relay_1".into(),
        count: 3,
        interval_ms: 50,
        linger_ms: 3000,
        run_id: "test".into(),
    };
    let sim = tokio::spawn(async move { civic_local::sim::run(&opts).await.unwrap() });
    eventually("the simulated streams", || async {
        let stored = |rule| api.count(rule, "stored");
        let counts = [
            stored("StreetlightStatusRule").await,
            stored("OzoneEventsRule").await,
            stored("OccupancyCrossingsRule").await,
            stored("HomeforgeStateRule").await,
        ];
        (counts == [3, 3, 3, 3]).then_some(())
    })
    .await;

    // Commands while the devices linger: each answers by reporting the new state.
    let control = json!({"lightId": "SL001", "action": "off"});
    api.post("/streetlight/api/lights/control", Some(&admin), control)
        .await
        .ok();
    let patch = Some(json!({"pwm_1": 55}));
    let state = format!("/homeforge/api/devices/{fan}/state/");
    api.call(Method::PATCH, &state, Some(&owner), patch)
        .await
        .ok();
    let report = sim.await.unwrap();
    assert_eq!(report.sent, 3 * 4 + 2, "{report:?}");
    let mut commands = report.commands.clone();
    commands.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        commands,
        [
            (format!("homeforge/devices/{fan}/set"), json!({"pwm_1": 55})),
            (
                "streetlight/lights/SL001/command".to_owned(),
                json!({"action": "off"})
            ),
        ]
    );
    let logs = api
        .get("/streetlight/api/lights/logs?lightId=SL001", Some(&admin))
        .await;
    let logs = logs.ok()["data"].as_array().unwrap().clone();
    assert_eq!(
        logs[0]["control_type"], "automatic",
        "the light's answer came last"
    );
    assert_eq!(logs[0]["new_status"], "off");
    assert_eq!(
        logs.len(),
        3 + 2,
        "three reports, the control and the answer"
    );
    assert_eq!(api.ozone_events(&cookie, "dev-a").await.len(), 3);
    let live = api
        .get(
            &format!("/occupancy/api/occupancy/cameras/{cam}/live"),
            None,
        )
        .await;
    assert_eq!(live.ok()["total_entries"], 2);
    let device = api
        .get(&format!("/homeforge/api/devices/{fan}/"), Some(&owner))
        .await;
    assert_eq!(device.ok()["current_state"]["pwm_1"], 55);
}

/// An Ozone event for `dev-a` with a unique id.
fn ozone_event(n: usize) -> Value {
    json!({"event_id": format!("crash-{n:05}"), "event": "treatment", "treatment": "BASIC", "counter": n})
}

fn event_ids(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Acknowledged means stored: the moment a device holds its PUBACK, the event is readable, and
/// a crash (SIGKILL) of civic-local right after loses none of the acknowledged events.
#[tokio::test]
async fn acknowledged_messages_are_stored_and_survive_a_crash() {
    let api = Platform::start().await;
    let cookie = api.ozone().await;
    let url = api.iot().await["broker"].as_str().unwrap().to_owned();
    let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let mut opts = MqttOptions::new("dev-a", host, port.parse::<u16>().unwrap());
    opts.set_inflight(100);
    let (client, mut events) = AsyncClient::new(opts, 1000);
    // rumqttc sends in publish order; the n-th outgoing packet id is the n-th event.
    let (tx, mut acks) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut sent, mut pending) = (0usize, HashMap::new());
        while let Ok(ev) = events.poll().await {
            match ev {
                Event::Outgoing(Outgoing::Publish(pkid)) => {
                    pending.insert(pkid, sent);
                    sent += 1;
                }
                Event::Incoming(Packet::PubAck(ack)) => {
                    let n = pending
                        .remove(&ack.pkid)
                        .expect("a PUBACK for a sent packet");
                    let _ = tx.send(n);
                }
                _ => {}
            }
        }
    });
    let topic = "ozone/devices/dev-a/events";

    // One at a time: each PUBACK means the event is already in the API, with no waiting.
    for n in 0..5 {
        client
            .publish(topic, QoS::AtLeastOnce, false, ozone_event(n).to_string())
            .await
            .unwrap();
        let acked = tokio::time::timeout(Duration::from_secs(10), acks.recv())
            .await
            .expect("a PUBACK within 10 s")
            .unwrap();
        assert_eq!(acked, n);
        let stored = event_ids(&api.ozone_events(&cookie, "dev-a").await);
        assert!(
            stored.contains(&format!("crash-{n:05}")),
            "acked but not stored: {n}"
        );
        assert_eq!(stored.len(), n + 1);
    }

    // A burst, with up to 100 messages in flight, and a crash in the middle of it.
    const BURST: usize = 1_000;
    for n in 5..BURST {
        client
            .publish(topic, QoS::AtLeastOnce, false, ozone_event(n).to_string())
            .await
            .unwrap();
    }
    let mut acked: BTreeSet<String> = (0..5).map(|n| format!("crash-{n:05}")).collect();
    while acked.len() < 200 {
        let n = tokio::time::timeout(Duration::from_secs(30), acks.recv())
            .await
            .expect("PUBACKs keep coming")
            .unwrap();
        acked.insert(format!("crash-{n:05}"));
    }
    let Platform { server, http } = api;
    let dir = server.crash().await.expect("the data dir");
    // What else was acknowledged before the process died.
    while let Ok(n) = acks.try_recv() {
        acked.insert(format!("crash-{n:05}"));
    }
    let api = Platform {
        server: LocalServer::start_in(BIN, dir.path(), &[], &[]).await,
        http,
    };
    let cookie = api.ozone_session().await;
    let stored = event_ids(&api.ozone_events(&cookie, "dev-a").await);
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost: {lost:?}",
        lost.len()
    );
    assert!(
        stored.len() < BURST,
        "the crash came mid-burst ({} stored)",
        stored.len()
    );
}

/// What a rule's consumer cannot store is kept at the rule's error action (as IoT Core's error
/// action would write it) before the device gets its PUBACK.
#[tokio::test]
async fn unstored_messages_are_kept_at_the_error_action() {
    let api = Platform::start().await;
    api.ozone().await;
    let device = api.device("dev-a").await;
    device
        .publish("ozone/devices/dev-a/events", "not json")
        .await;
    device
        .send("ozone/devices/dev-x/events", ozone_event(1))
        .await;
    device
        .send("ozone/devices/dev-a/events", ozone_event(2))
        .await;
    eventually("three messages handled", || async {
        let iot = api.iot().await;
        (iot["stats"]["malformed"] == 1 && api.count("OzoneEventsRule", "stored").await == 1)
            .then_some(())
    })
    .await;
    assert_eq!(api.count("OzoneEventsRule", "rejected").await, 1);
    assert_eq!(api.count("OzoneEventsRule", "kept").await, 2);

    let dir = api.server.data_dir.join("blobs/objects/iot-errors/ozone");
    let mut records: Vec<Value> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            // The first line is the content type.
            let (kind, body) = text.split_once('\n').unwrap();
            assert_eq!(kind, "application/json");
            serde_json::from_str(body).unwrap()
        })
        .collect();
    records.sort_by_key(|r| r["topic"].as_str().unwrap().to_owned());
    assert_eq!(records.len(), 2, "{records:?}");
    let payload = |r: &Value| {
        let b64 = r["base64OriginalPayload"].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    let (garbled, unknown) = (&records[0], &records[1]);
    assert_eq!(garbled["ruleName"], "OzoneEventsRule");
    assert_eq!(garbled["topic"], "ozone/devices/dev-a/events");
    assert_eq!(
        garbled["clientId"], "dev-a",
        "the device port knows who published"
    );
    assert_eq!(payload(garbled), "not json");
    let failure = &garbled["failures"][0];
    assert_eq!(failure["failedResource"], "ozone-iot");
    assert_eq!(failure["errorMessage"], "the payload is not JSON");
    assert_eq!(unknown["topic"], "ozone/devices/dev-x/events");
    assert_eq!(
        serde_json::from_str::<Value>(&payload(unknown)).unwrap(),
        ozone_event(1)
    );
    let why = unknown["failures"][0]["errorMessage"].as_str().unwrap();
    assert!(why.starts_with("rejected: "), "{why}");
}

/// With an external broker (Debian's mosquitto, `--mqtt-url`) the rule engine subscribes to it:
/// telemetry in, commands out, and what is not stored kept, as with the embedded broker.
#[tokio::test]
async fn an_external_mosquitto_broker_works_the_same() {
    let broker = Mosquitto::start().await;
    let api = Platform::start_with(&["--mqtt-url", &broker.url]).await;
    assert_eq!(api.iot().await["broker"], broker.url.as_str());
    let admin = api.streetlight().await;

    let mut lamp = api.device("lamp-SL001").await;
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
    let admin = api.streetlight().await;
    let url = api.iot().await["broker"].as_str().unwrap().to_owned();
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
    let lamp = api.device("lamp-SL001").await;
    lamp.send("streetlight/lights/SL001/status", json!({"status": "on"}))
        .await;
    api.light_reports(&admin, "on").await;
}
