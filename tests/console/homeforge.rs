//! HomeForge's page: sign in through the form (a bearer token), see the topology drawn with
//! React Flow (only the user's own devices), then a state patch through REST and a device's
//! MQTT report reach the device's node live, and the card's controls change the state.

use std::time::{Duration, Instant};

use civic_testkit::api::Auth;
use civic_testkit::local::LocalServer;
use civic_testkit::signin::call;
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{
    browser, chromedriver, click, console_dist, device_publish, finish, sign_in, text, wait_for,
    wait_text,
};
use crate::{BIN, LIVE_WITHIN};

const PASSWORD: &str = "Console-Pass-8812";

/// civic-local serving the console; HomeForge's owner `olivia` (staff) and user `ursula`, an
/// approved fan type (toggle `relay_1`, slider `pwm_1`), ursula's Fan and olivia's Hall fan.
struct Fixture {
    server: LocalServer,
    http: reqwest::Client,
    owner: String,
    /// Ursula's fan: its id and MQTT login `(user, password)`.
    fan: i64,
    fan_login: (String, String),
    hall: i64,
}

impl Fixture {
    async fn start() -> Self {
        let dist = console_dist();
        let server = LocalServer::start(BIN, &["--console-dir", dist.to_str().unwrap()]).await;
        let http = reqwest::Client::new();
        let mut f = Self {
            server,
            http,
            owner: String::new(),
            fan: 0,
            fan_login: Default::default(),
            hall: 0,
        };
        f.owner = f.user("olivia").await;
        let user = f.user("ursula").await;
        let kind = f.post("/device-types/propose/", &user, fan_type()).await["id"].clone();
        let approve = format!("/admin/device-types/{kind}/approve/");
        f.post(&approve, &f.owner.clone(), json!({})).await;
        let fan = f.device(&user, &kind, "Fan").await;
        f.fan = fan["id"].as_i64().expect("an id");
        let login = |k: &str| fan["mqtt"][k].as_str().expect("MQTT login").to_owned();
        f.fan_login = (login("username"), login("password"));
        let owner = f.owner.clone();
        f.hall = f.device(&owner, &kind, "Hall fan").await["id"]
            .as_i64()
            .unwrap();
        f
    }

    async fn send(&self, method: Method, path: &str, token: &str, body: Value) -> Value {
        let path = format!("/homeforge/api{path}");
        let auth = Auth::Bearer(token);
        call(&self.http, &self.server, method, &path, auth, body).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        self.send(Method::POST, path, token, body).await
    }

    /// Registers `name` (the first is the owner) and signs in: the access token.
    async fn user(&self, name: &str) -> String {
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
        let auth = Auth::None;
        let (http, server) = (&self.http, &self.server);
        call(
            http,
            server,
            Method::POST,
            "/homeforge/api/register/",
            auth,
            body,
        )
        .await;
        let login = json!({"username": name, "password": PASSWORD});
        let pair = call(
            http,
            server,
            Method::POST,
            "/homeforge/api/login/",
            Auth::None,
            login,
        )
        .await;
        pair["access"].as_str().expect("an access token").to_owned()
    }

    async fn device(&self, token: &str, kind: &Value, name: &str) -> Value {
        let body = json!({"name": name, "ip_address": "192.168.1.50", "device_type": kind});
        self.post("/devices/", token, body).await
    }

    /// Device `id` as REST has it, read by the owner (staff).
    async fn stored(&self, id: i64) -> Value {
        let path = format!("/devices/{id}/");
        self.send(Method::GET, &path, &self.owner, Value::Null)
            .await
    }

    async fn sign_in(&self, b: &Client, username: &str, password: &str) {
        let url = self.server.url("/console/#/homeforge");
        sign_in(b, &url, &[("#username", username), ("#password", password)]).await;
    }

    /// The fan reports `state` over MQTT on the device port, as its firmware would; returns
    /// once the broker acknowledged it (the report is then stored).
    async fn report(&self, state: Value) {
        let (user, password) = &self.fan_login;
        let topic = format!("homeforge/devices/{}/state", self.fan);
        device_publish(&self.server, (user, password), &topic, state.to_string()).await;
    }
}

/// The seed's Smart Fan: a toggle for `relay_1`, a slider (0–100, step 10) for `pwm_1`.
fn fan_type() -> Value {
    json!({
        "name": "Smart Fan",
        "definition": {"name": "Fan v1", "structure": [
            {"id": "relay_1", "type": "relay", "label": "Power", "position": {"x": 150, "y": 50}},
            {"id": "pwm_1", "type": "pwm", "label": "Speed", "position": {"x": 150, "y": 150}}]},
        "card_template": {"layout_config": {"w": 2, "h": 2}, "controls": [
            {"widget_type": "TOGGLE", "label": "Master Power", "variable_mapping": "relay_1"},
            {"widget_type": "SLIDER", "label": "Fan Speed", "variable_mapping": "pwm_1",
             "min_value": 0, "max_value": 100, "step": 10}]}
    })
}

/// The value device `id`'s node shows for state key `key`.
fn node_state(id: i64, key: &str) -> String {
    format!("[data-node=\"{id}\"] [data-state=\"{key}\"]")
}

/// A user signs in and sees the gateway and their own device (not the owner's) in React
/// Flow; a staff member's REST patch and the fan's MQTT report reach the node within 2 s
/// without a reload; the card's toggle and slider change the stored state.
#[tokio::test(flavor = "multi_thread")]
async fn the_homeforge_page_draws_the_topology_and_follows_state_live() {
    let f = Fixture::start().await;
    let driver = chromedriver().await;
    let b = browser(&driver).await;
    f.sign_in(&b, "ursula", "not-the-password").await;
    wait_for(
        &b,
        "#signin-error",
        Duration::from_secs(5),
        "the login error",
    )
    .await;
    assert_eq!(
        text(&b, "#signin-error").await,
        "401: No active account found with the given credentials"
    );
    b.refresh().await.unwrap();
    f.sign_in(&b, "ursula", PASSWORD).await;
    let within = Duration::from_secs(10);
    let fan = f.fan;
    let node =
        |status: &str| format!(".react-flow__node [data-node=\"{fan}\"][data-status=\"{status}\"]");
    wait_for(&b, &node("offline"), within, "the fan's node, offline").await;
    wait_for(
        &b,
        ".react-flow__node[data-id=\"homeforge-gateway\"]",
        within,
        "the gateway",
    )
    .await;
    // React Flow draws edges once it has measured their nodes.
    wait_for(&b, ".react-flow__edge", within, "the gateway's edge").await;
    assert_eq!(
        b.find_all(Locator::Css(".react-flow__edge"))
            .await
            .unwrap()
            .len(),
        1
    );
    let hall = format!("[data-node=\"{}\"]", f.hall);
    assert!(
        b.find_all(Locator::Css(&hall)).await.unwrap().is_empty(),
        "the owner's device"
    );
    assert_eq!(text(&b, "#who").await, "ursula (user)");
    wait_for(&b, "[data-live=\"on\"]", within, "the live feed connected").await;
    // A reload would lose this marker; the page must change in place.
    b.execute("window.__civicLoad = 'first'; return null;", vec![])
        .await
        .unwrap();

    let started = Instant::now();
    let patch = json!({"relay_1": true, "pwm_1": 70});
    let path = format!("/devices/{fan}/state/");
    f.send(Method::PATCH, &path, &f.owner, patch).await;
    wait_for(&b, &node("online"), LIVE_WITHIN, "the fan online, live").await;
    wait_text(&b, &node_state(fan, "pwm_1"), "70", LIVE_WITHIN).await;
    println!("REST state patch → node updated in {:?}", started.elapsed());

    let started = Instant::now();
    f.report(json!({"pwm_1": 40})).await;
    wait_text(&b, &node_state(fan, "pwm_1"), "40", LIVE_WITHIN).await;
    println!(
        "device MQTT report → node updated in {:?}",
        started.elapsed()
    );

    // The card's toggle (on now) switches the fan off through PATCH /devices/{id}/state/.
    let started = Instant::now();
    click(
        &b,
        &format!("input[data-control=\"relay_1\"][data-for=\"{fan}\"]"),
    )
    .await;
    wait_text(&b, &node_state(fan, "relay_1"), "false", LIVE_WITHIN).await;
    println!("toggle → node updated in {:?}", started.elapsed());
    assert_eq!(f.stored(fan).await["current_state"]["relay_1"], false);
    // Its slider: a click in the middle of 0–100 is 50.
    click(
        &b,
        &format!("input[data-control=\"pwm_1\"][data-for=\"{fan}\"]"),
    )
    .await;
    wait_text(&b, &node_state(fan, "pwm_1"), "50", within).await;
    let stored = f.stored(fan).await;
    assert_eq!(
        stored["current_state"],
        json!({"relay_1": false, "pwm_1": 50})
    );
    let checked = b
        .find(Locator::Css(&format!(
            "input[data-control=\"relay_1\"][data-for=\"{fan}\"]"
        )))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(checked.as_deref(), Some("false"));
    finish(b, "homeforge").await;
}
