//! Devices over MQTT, end to end: a real MQTT client publishes to civic-local's broker, the
//! template's topic rules route each stream into its app's ingest handler, and the HTTP API
//! shows the effect; commands from the API arrive at a subscribed client.

use std::time::Duration;

use civic_testkit::http::{Resp, send};
use civic_testkit::local::LocalServer;
use reqwest::Method;
use serde_json::{Value, json};

use device::{Device, Login};

mod bounds;
mod delivery;
mod device;
mod device_port_auth;
mod external;
mod http_crash;
mod simulator;
mod streams;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// civic-local and an HTTP client for its apps, with each app's fixtures: its first users and
/// the devices whose MQTT logins the tests connect with.
pub(crate) struct Platform {
    pub(crate) server: LocalServer,
    pub(crate) http: reqwest::Client,
}

impl Platform {
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub(crate) async fn start_with(args: &[&str]) -> Self {
        Self {
            server: LocalServer::start(BIN, args).await,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn call(
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

    pub(crate) async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, bearer, Some(body)).await
    }

    pub(crate) async fn get(&self, path: &str, bearer: Option<&str>) -> Resp {
        self.call(Method::GET, path, bearer, None).await
    }

    /// The broker's address and the rule counters.
    pub(crate) async fn iot(&self) -> Value {
        self.get("/_local/iot", None).await.ok().clone()
    }

    pub(crate) async fn broker(&self) -> String {
        self.iot().await["broker"].as_str().unwrap().to_owned()
    }

    /// A device connected to the device port with its login.
    pub(crate) async fn device(&self, login: &Login) -> Device {
        Device::connect(&self.broker().await, login).await
    }

    /// Streetlight's admin token, with light `SL001` in Delhi and its MQTT login.
    pub(crate) async fn streetlight(&self) -> (String, Login) {
        let admin = json!({"name": "admin", "email": "admin@example.com", "password": "password123", "city": "Delhi"});
        let admin = self
            .post("/streetlight/api/auth/register", None, admin)
            .await;
        let admin = admin.ok()["data"]["token"].as_str().unwrap().to_owned();
        let login = self.light(&admin, "SL001").await;
        (admin, login)
    }

    /// Creates light `id` in Delhi: its MQTT login, shown once.
    pub(crate) async fn light(&self, admin: &str, id: &str) -> Login {
        let light = json!({"lightId": id, "name": "Main", "city": "Delhi", "latitude": 28.6, "longitude": 77.2});
        let created = self
            .post("/streetlight/api/lights/create", Some(admin), light)
            .await;
        Login::of(&created.ok()["data"]["mqtt"])
    }

    /// SL001's detail once the light reports `status`.
    pub(crate) async fn light_reports(&self, admin: &str, status: &str) -> Value {
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
    pub(crate) async fn command_reaches(&self, admin: &str, lamp: &mut Device, action: &str) {
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
    pub(crate) async fn homeforge(&self) -> (String, i64, Login) {
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
    pub(crate) async fn occupancy(&self) -> (i64, i64, Login) {
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
    pub(crate) async fn ozone(&self) -> (String, Login) {
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
    pub(crate) async fn ozone_session(&self) -> String {
        let user = json!({"username": "admin", "password": "password123"});
        let login = self.post("/ozone/api/auth/login/", None, user).await;
        let cookie = login.headers["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    pub(crate) async fn staff(&self, cookie: &str, req: reqwest::RequestBuilder) -> Resp {
        send(req.header("cookie", cookie)).await
    }

    pub(crate) async fn ozone_events(&self, cookie: &str, device: &str) -> Vec<Value> {
        let url = self
            .server
            .url(&format!("/ozone/api/events/?device_id={device}&limit=1000"));
        let events = self.staff(cookie, self.http.get(url)).await;
        events.ok().as_array().unwrap().clone()
    }

    /// A counter of one rule, e.g. `("StreetlightStatusRule", "rejected")`.
    pub(crate) async fn count(&self, rule: &str, what: &str) -> u64 {
        self.iot().await["stats"]["rules"][rule][what]
            .as_u64()
            .unwrap()
    }
}

/// Polls `probe` until it returns `Some`, for up to 10 seconds.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
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

/// An Ozone event for `dev-a` with a unique id.
pub(crate) fn ozone_event(n: usize) -> Value {
    json!({"event_id": format!("crash-{n:05}"), "event": "treatment", "treatment": "BASIC", "counter": n})
}
