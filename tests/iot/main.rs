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

    async fn broker(&self) -> String {
        self.iot().await["broker"].as_str().unwrap().to_owned()
    }

    /// A device connected to the device port with its login.
    async fn device(&self, login: &Login) -> Device {
        Device::connect(&self.broker().await, login).await
    }

    /// Streetlight's admin token, with light `SL001` in Delhi and its MQTT login.
    async fn streetlight(&self) -> (String, Login) {
        let admin = json!({"name": "admin", "email": "admin@example.com", "password": "password123", "city": "Delhi"});
        let admin = self
            .post("/streetlight/api/auth/register", None, admin)
            .await;
        let admin = admin.ok()["data"]["token"].as_str().unwrap().to_owned();
        let login = self.light(&admin, "SL001").await;
        (admin, login)
    }

    /// Creates light `id` in Delhi: its MQTT login, shown once.
    async fn light(&self, admin: &str, id: &str) -> Login {
        let light = json!({"lightId": id, "name": "Main", "city": "Delhi", "latitude": 28.6, "longitude": 77.2});
        let created = self
            .post("/streetlight/api/lights/create", Some(admin), light)
            .await;
        Login::of(&created.ok()["data"]["mqtt"])
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

    /// HomeForge's owner token and a device of the seed's fan type (`relay_1`, `pwm_1`), with
    /// its MQTT login.
    async fn homeforge(&self) -> (String, i64, Login) {
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
        let created = self
            .post("/homeforge/api/devices/", Some(&owner), device)
            .await;
        let login = Login::of(&created.ok()["mqtt"]);
        (owner, created.ok()["id"].as_i64().unwrap(), login)
    }

    /// Occupancy camera `GATE_A` (bidirectional) with one line: their integer ids, and the
    /// camera's MQTT login.
    async fn occupancy(&self) -> (i64, i64, Login) {
        let camera = json!({"camera_id": "GATE_A", "camera_name": "Gate A", "location": "Main Gate", "camera_type": "bidirectional", "max_occupancy": 100, "resolution_width": 1920, "resolution_height": 1080});
        let created = self
            .post("/occupancy/api/occupancy/cameras", None, camera)
            .await;
        let login = Login::of(&created.ok()["mqtt"]);
        let cam = created.ok()["id"].as_i64().unwrap();
        let line = json!({"camera_id": cam, "line_name": "Door", "x1": 0, "y1": 300, "x2": 1920, "y2": 300});
        let line = self
            .post("/occupancy/api/occupancy/lines", None, line)
            .await;
        (cam, line.ok()["id"].as_i64().unwrap(), login)
    }

    /// Ozone's staff session cookie, with MAC `EC:E3:34:46:2B:C0` assigned as `dev-a`, and
    /// `dev-a`'s MQTT login: its bearer token, from the handshake after the assignment.
    async fn ozone(&self) -> (String, Login) {
        let user =
            json!({"username": "admin", "password": "password123", "email": "a@example.com"});
        self.post("/ozone/api/auth/register/", None, user)
            .await
            .ok();
        let cookie = self.ozone_session().await;
        let mac = json!({"mac": "EC:E3:34:46:2B:C0", "firmware": "1.0.0"});
        self.post("/ozone/api/handshake/", None, mac.clone())
            .await
            .ok();
        let assign = json!({"mac": "EC:E3:34:46:2B:C0", "device_id": "dev-a"});
        self.staff(
            &cookie,
            self.http
                .post(self.server.url("/ozone/api/devices/assign/"))
                .json(&assign),
        )
        .await
        .ok();
        let token = self.post("/ozone/api/handshake/", None, mac).await;
        let token = token.ok()["token"].as_str().expect("a token").to_owned();
        (cookie, Login::new("ozone-dev-a", &token))
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

/// A device's MQTT login on the device port: its thing name and the password its app issued.
#[derive(Clone, Debug)]
struct Login {
    user: String,
    password: String,
}

impl Login {
    fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// From an API reply's `mqtt` object.
    fn of(mqtt: &Value) -> Self {
        Self::new(
            mqtt["username"].as_str().expect("an MQTT user name"),
            mqtt["password"].as_str().expect("an MQTT password"),
        )
    }
}

/// MQTT options for `url` as `login` (client id = user name).
fn mqtt_options(url: &str, login: &Login) -> MqttOptions {
    let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let mut opts = MqttOptions::new(&login.user, host, port.parse::<u16>().unwrap());
    opts.set_credentials(&login.user, &login.password);
    opts
}

/// A device: an MQTT client whose received messages queue up in `inbox`.
struct Device {
    client: AsyncClient,
    inbox: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    subacks: mpsc::UnboundedReceiver<()>,
}

impl Device {
    async fn connect(url: &str, login: &Login) -> Self {
        let (client, mut events) = AsyncClient::new(mqtt_options(url, login), 64);
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

#[tokio::test]
async fn the_simulator_drives_all_four_streams_and_answers_commands() {
    let api = Platform::start().await;
    let (admin, sl001) = api.streetlight().await;
    let (cookie, dev_a) = api.ozone().await;
    let (cam, line, gate) = api.occupancy().await;
    let (owner, fan, fan_login) = api.homeforge().await;
    // Each simulated device logs in with the password its app issued.
    let opts = civic_local::sim::SimOpts {
        mqtt_url: api.broker().await,
        lights: vec![format!("SL001={}", sl001.password)],
        ozone_devices: vec![format!("dev-a={}", dev_a.password)],
        cameras: vec![format!("{cam}:{line}={}", gate.password)],
        homeforge_devices: vec![format!("{fan}={}", fan_login.password)],
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
    let (cookie, dev_a) = api.ozone().await;
    let mut opts = mqtt_options(&api.broker().await, &dev_a);
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
    let (_, dev_a) = api.ozone().await;
    let device = api.device(&dev_a).await;
    device
        .publish("ozone/devices/dev-a/events", "not json")
        .await;
    let mut gold = ozone_event(1);
    gold["treatment"] = json!("GOLD");
    device
        .send("ozone/devices/dev-a/events", gold.clone())
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
    records.sort_by_key(|r| payload(r) != "not json");
    let (garbled, unknown) = (&records[0], &records[1]);
    assert_eq!(garbled["ruleName"], "OzoneEventsRule");
    assert_eq!(garbled["topic"], "ozone/devices/dev-a/events");
    assert_eq!(
        garbled["clientId"], "ozone-dev-a",
        "the device port knows who published"
    );
    assert_eq!(payload(garbled), "not json");
    let failure = &garbled["failures"][0];
    assert_eq!(failure["failedResource"], "ozone-iot");
    assert_eq!(failure["errorMessage"], "the payload is not JSON");
    assert_eq!(unknown["topic"], "ozone/devices/dev-a/events");
    assert_eq!(
        serde_json::from_str::<Value>(&payload(unknown)).unwrap(),
        gold
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

/// Issue 15, item 2: the device port's logins and topic ACL. Each boundary is attacked with a
/// real MQTT client and seen refused; the platform's own paths keep working.
mod device_port_auth {
    use rumqttc::{
        ConnectReturnCode, ConnectionError, EventLoop, LastWill, SubscribeFilter,
        SubscribeReasonCode,
    };

    use super::*;

    /// A connection the test drives itself, to see each answer and the close.
    struct Raw {
        client: AsyncClient,
        events: EventLoop,
    }

    impl Raw {
        /// Connects with `opts`: the CONNACK's code when the broker refuses.
        async fn connect(opts: MqttOptions) -> Result<Self, ConnectReturnCode> {
            let (client, mut events) = AsyncClient::new(opts, 16);
            loop {
                let polled = tokio::time::timeout(Duration::from_secs(10), events.poll()).await;
                match polled.expect("a CONNACK within 10 s") {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(Self { client, events }),
                    Ok(_) => {}
                    Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
                    Err(e) => panic!("connecting: {e}"),
                }
            }
        }

        async fn as_device(url: &str, login: &Login) -> Self {
            let connected = Self::connect(mqtt_options(url, login)).await;
            connected.unwrap_or_else(|code| panic!("{} refused: {code:?}", login.user))
        }

        /// Publishes at QoS 1: `true` once acknowledged, `false` if the port closed the
        /// connection instead.
        async fn publish(&mut self, topic: &str, payload: &Value) -> bool {
            let body = payload.to_string();
            let client = &self.client;
            client
                .publish(topic, QoS::AtLeastOnce, false, body)
                .await
                .unwrap();
            loop {
                let polled = tokio::time::timeout(Duration::from_secs(10), self.events.poll());
                match polled.await.expect("a PUBACK or a close within 10 s") {
                    Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        }

        /// Subscribes to `filters` in one SUBSCRIBE: the SUBACK's codes.
        async fn subscribe(&mut self, filters: &[&str]) -> Vec<SubscribeReasonCode> {
            let filters =
                (filters.iter()).map(|f| SubscribeFilter::new(f.to_string(), QoS::AtLeastOnce));
            self.client.subscribe_many(filters).await.unwrap();
            loop {
                let polled = tokio::time::timeout(Duration::from_secs(10), self.events.poll());
                match polled.await.expect("a SUBACK within 10 s") {
                    Ok(Event::Incoming(Packet::SubAck(ack))) => return ack.return_codes,
                    Ok(_) => {}
                    Err(e) => panic!("subscribing: {e}"),
                }
            }
        }

        /// The next message within `wait`, if one comes.
        async fn receive(&mut self, wait: Duration) -> Option<(String, Value)> {
            let next = async {
                loop {
                    match self.events.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            return (p.topic.clone(), serde_json::from_slice(&p.payload).unwrap());
                        }
                        Ok(_) => {}
                        Err(e) => panic!("receiving: {e}"),
                    }
                }
            };
            tokio::time::timeout(wait, next).await.ok()
        }
    }

    /// Options for `client_id`, with `login` as (user name, password) if given.
    fn options(url: &str, client_id: &str, login: Option<(&str, &str)>) -> MqttOptions {
        let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
        let mut opts = MqttOptions::new(client_id, host, port.parse::<u16>().unwrap());
        if let Some((user, password)) = login {
            opts.set_credentials(user, password);
        }
        opts
    }

    #[tokio::test]
    async fn logins_without_the_devices_own_credential_are_refused() {
        use ConnectReturnCode::*;
        let api = Platform::start().await;
        let (admin, sl001) = api.streetlight().await;
        let sl002 = api.light(&admin, "SL002").await;
        let (_, _, fan) = api.homeforge().await;
        let (_, dev_a) = api.ozone().await;
        let url = api.broker().await;
        let (light, wrong) = (sl001.user.as_str(), "not-the-password");
        let cases = [
            ("no login", options(&url, light, None), BadUserNamePassword),
            (
                "an empty password",
                options(&url, light, Some((light, ""))),
                BadUserNamePassword,
            ),
            (
                "a wrong password",
                options(&url, light, Some((light, wrong))),
                NotAuthorized,
            ),
            (
                "another light's password",
                options(&url, light, Some((light, &sl002.password))),
                NotAuthorized,
            ),
            (
                "HomeForge's credential on a light",
                options(&url, light, Some((light, &fan.password))),
                NotAuthorized,
            ),
            (
                "a light's credential on HomeForge",
                options(&url, &fan.user, Some((&fan.user, &sl001.password))),
                NotAuthorized,
            ),
            (
                "a light's credential on Ozone",
                options(&url, "ozone-dev-a", Some(("ozone-dev-a", &sl001.password))),
                NotAuthorized,
            ),
            (
                "an unknown light",
                options(
                    &url,
                    "streetlight-NOPE",
                    Some(("streetlight-NOPE", &sl001.password)),
                ),
                NotAuthorized,
            ),
            (
                "an unknown app",
                options(&url, "ecoflow-1", Some(("ecoflow-1", &sl001.password))),
                NotAuthorized,
            ),
            (
                "not a thing name",
                options(&url, "admin", Some(("admin", &sl001.password))),
                BadUserNamePassword,
            ),
            // Another device's client id would take over its session and its commands.
            (
                "another device's client id",
                options(&url, &sl002.user, Some((light, &sl001.password))),
                BadClientId,
            ),
        ];
        for (what, opts, code) in cases {
            assert_eq!(Raw::connect(opts).await.err(), Some(code), "{what}");
        }
        // A will is a publish the broker makes in the device's name later: the same rules.
        let mut opts = mqtt_options(&url, &sl001);
        opts.set_last_will(LastWill::new(
            "streetlight/lights/SL002/status",
            "{}",
            QoS::AtLeastOnce,
            false,
        ));
        assert_eq!(
            Raw::connect(opts).await.err(),
            Some(NotAuthorized),
            "a will on SL002"
        );
        // The devices' own credentials, Ozone's device token among them, are admitted.
        for login in [&sl001, &sl002, &fan, &dev_a] {
            Raw::as_device(&url, login).await;
        }
    }

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

    #[tokio::test]
    async fn rotating_a_credential_retires_the_old_one() {
        let api = Platform::start().await;
        let (admin, light) = api.streetlight().await;
        let (owner, fan_id, fan) = api.homeforge().await;
        let (cam, _, camera) = api.occupancy().await;
        let url = api.broker().await;
        let rotate = [
            (
                "/streetlight/api/lights/credential?lightId=SL001".to_owned(),
                Some(admin.as_str()),
                light,
            ),
            (
                format!("/homeforge/api/devices/{fan_id}/credential/"),
                Some(owner.as_str()),
                fan,
            ),
            (
                format!("/occupancy/api/occupancy/cameras/{cam}/credential"),
                None,
                camera,
            ),
        ];
        for (path, staff, old) in rotate {
            if staff.is_some() {
                let anonymous = api.post(&path, None, json!({})).await;
                assert_eq!(anonymous.status, 401, "{path}: {}", anonymous.text);
            }
            let reply = api.post(&path, staff, json!({})).await;
            let body = reply.ok();
            let new = Login::of(body.get("data").unwrap_or(body));
            assert_eq!(new.user, old.user);
            assert_ne!(new.password, old.password);
            let refused = Raw::connect(mqtt_options(&url, &old)).await.err();
            assert_eq!(
                refused,
                Some(ConnectReturnCode::NotAuthorized),
                "{}'s old password",
                old.user
            );
            Raw::as_device(&url, &new).await;
        }
    }

    #[tokio::test]
    async fn a_public_device_port_without_logins_is_refused_at_start() {
        let dir = std::env::temp_dir().join(format!("civic-iot-open-{}", std::process::id()));
        let out = tokio::process::Command::new(BIN)
            .args([
                "serve",
                "--port",
                "0",
                "--mqtt-port",
                "0",
                "--mqtt-host",
                "0.0.0.0",
            ])
            .args(["--mqtt-auth", "off", "--data-dir"])
            .arg(&dir)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), out)
            .await
            .unwrap()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "it started: {stderr}");
        assert!(stderr.contains("--mqtt-auth off"), "{stderr}");
    }

    /// `--mqtt-auth off` (the seeds' open demo, loopback only): anyone connects and publishes
    /// telemetry, but command topics stay the platform's.
    #[tokio::test]
    async fn without_logins_command_topics_are_still_the_platforms() {
        let api = Platform::start_with(&["--mqtt-port", "0", "--mqtt-auth", "off"]).await;
        let (admin, _) = api.streetlight().await;
        let url = api.broker().await;
        let mut anyone = Raw::connect(options(&url, "anyone", None)).await.unwrap();
        assert!(
            anyone
                .publish("streetlight/lights/SL001/status", &json!({"status": "on"}))
                .await
        );
        api.light_reports(&admin, "on").await;
        let mut anyone = Raw::connect(options(&url, "anyone", None)).await.unwrap();
        assert!(
            !anyone
                .publish(
                    "streetlight/lights/SL001/command",
                    &json!({"action": "off"})
                )
                .await
        );
        let mut opts = options(&url, "anyone", None);
        opts.set_last_will(LastWill::new(
            "streetlight/lights/SL001/command",
            "{}",
            QoS::AtLeastOnce,
            false,
        ));
        assert_eq!(
            Raw::connect(opts).await.err(),
            Some(ConnectReturnCode::NotAuthorized)
        );
    }
}
