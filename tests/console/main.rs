//! The operator console in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver + fantoccini) against the real civic-local binary serving `console/dist`
//! (rebuilt first when stale). Streetlight: sign in through the form, see the city's lights
//! and counters, then changes made elsewhere (REST, a device over MQTT) appear without a reload.

use std::time::{Duration, Instant};

use civic_testkit::api::Auth;
use civic_testkit::local::LocalServer;
use civic_testkit::signin::call;
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{Value, json};

mod browser;
mod ecoflow;
mod edge;
mod homeforge;
mod occupancy;
mod ozone;

use browser::{
    browser, chromedriver, click, console_dist, device_publish, finish, sign_in, text, wait_for,
    wait_text,
};

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");
const PASSWORD: &str = "console-pass-8812";
/// The brief's bound for a change to reach the page.
const LIVE_WITHIN: Duration = Duration::from_secs(2);

/// civic-local serving the freshly built console, with Streetlight's admin, an operator
/// (`opal@example.com`) and two lights in Delhi: SL001 off, SL002 on.
struct Fixture {
    server: LocalServer,
    http: reqwest::Client,
    admin: String,
    operator: String,
    /// SL002's MQTT login `(user, password)`.
    sl002: (String, String),
}

impl Fixture {
    async fn start() -> Self {
        Self::start_env(&[]).await
    }

    async fn start_env(env: &[(&str, &str)]) -> Self {
        let dist = console_dist();
        let args = ["--console-dir", dist.to_str().unwrap()];
        let server = LocalServer::start_env(BIN, &args, env).await;
        let http = reqwest::Client::new();
        let admin = register(&http, &server, "admin", None, None).await;
        let operator = register(&http, &server, "opal", Some("operator"), Some(&admin)).await;
        let mut f = Self {
            server,
            http,
            admin,
            operator,
            sl002: Default::default(),
        };
        f.light("SL001", "off", 28.6139, 77.2090).await;
        let mqtt = f.light("SL002", "on", 28.6200, 77.2150).await;
        let login = |k: &str| mqtt[k].as_str().expect("MQTT login").to_owned();
        f.sl002 = (login("username"), login("password"));
        f
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        let path = format!("/streetlight/api{path}");
        call(
            &self.http,
            &self.server,
            Method::POST,
            &path,
            Auth::Bearer(token),
            body,
        )
        .await
    }

    /// Creates a light in Delhi; its MQTT login.
    async fn light(&self, id: &str, status: &str, lat: f64, lng: f64) -> Value {
        let body = json!({"lightId": id, "name": format!("{id} Main Road"), "city": "Delhi",
            "latitude": lat, "longitude": lng, "status": status});
        let admin = self.admin.clone();
        self.post("/lights/create", &admin, body).await["data"]["mqtt"].clone()
    }

    /// Reports SL001 in error through REST with `token`; waits for the page's dot to follow.
    async fn fail_sl001(&self, b: &Client, token: &str) {
        let report = json!({"lightId": "SL001", "status": "error", "errorDetails": "Bulb failed"});
        self.post("/lights/update-status", token, report).await;
        wait_for(
            b,
            &dot("SL001", "error"),
            LIVE_WITHIN,
            "SL001 in error, live",
        )
        .await;
    }

    /// Opens the Streetlight page and signs in through its form as `email`.
    async fn sign_in(&self, b: &Client, email: &str, password: &str) {
        let url = self.server.url("/console/#/streetlight");
        sign_in(b, &url, &[("#email", email), ("#password", password)]).await;
    }
}

/// Registers a Streetlight user in Delhi: its access token.
async fn register(
    http: &reqwest::Client,
    server: &LocalServer,
    name: &str,
    role: Option<&str>,
    admin: Option<&str>,
) -> String {
    let mut body = json!({"name": name, "email": format!("{name}@example.com"), "password": PASSWORD, "city": "Delhi"});
    if let Some(r) = role {
        body["role"] = r.into();
    }
    let auth = admin.map_or(Auth::None, Auth::Bearer);
    let path = "/streetlight/api/auth/register";
    let res = call(http, server, Method::POST, path, auth, body).await;
    res["data"]["token"].as_str().expect("a token").to_owned()
}

/// Clicks `light`'s `action` button on the page and waits for its dot to show it.
async fn control(b: &Client, light: &str, action: &str, within: Duration) {
    let button = format!("button[data-control=\"{action}\"][data-for=\"{light}\"]");
    click(b, &button).await;
    let what = format!("{light} switched {action} from the page");
    wait_for(b, &dot(light, action), within, &what).await;
}

/// What `data-status` the dot of `light` shows.
fn dot(light: &str, status: &str) -> String {
    format!("circle[data-light=\"{light}\"][data-status=\"{status}\"]")
}

/// Signing in through the form shows the app's own error for a wrong password, then the
/// city's lights as dots coloured by status, the summary's counters and, for an operator, the
/// on/off buttons, which work.
#[tokio::test(flavor = "multi_thread")]
async fn signing_in_shows_the_citys_lights_and_counters() {
    let f = Fixture::start().await;
    f.server.settled().await; // the summary counters come from the change feed
    let driver = chromedriver().await;
    let b = browser(&driver).await;
    f.sign_in(&b, "opal@example.com", "not-the-password").await;
    wait_for(
        &b,
        "#signin-error",
        Duration::from_secs(5),
        "the login error",
    )
    .await;
    assert_eq!(text(&b, "#signin-error").await, "401: Invalid credentials");

    b.refresh().await.unwrap();
    f.sign_in(&b, "opal@example.com", PASSWORD).await;
    let within = Duration::from_secs(10);
    wait_for(&b, &dot("SL001", "off"), within, "SL001's dot, off").await;
    wait_for(&b, &dot("SL002", "on"), within, "SL002's dot, on").await;
    assert_eq!(text(&b, "#who").await, "opal (operator)");
    for (counter, n) in [
        ("total_lights", "2"),
        ("lights_on", "1"),
        ("lights_off", "1"),
    ] {
        let css = format!("[data-counter=\"{counter}\"]");
        assert_eq!(text(&b, &css).await, n, "{counter}");
    }
    // An operator's "On" goes through /lights/control; the dot follows.
    control(&b, "SL001", "on", within).await;
    let detail = "/streetlight/api/lights/detail?lightId=SL001";
    let auth = Auth::Bearer(&f.admin);
    let stored = call(&f.http, &f.server, Method::GET, detail, auth, Value::Null).await;
    assert_eq!(stored["data"]["light"]["status"], "on");
    b.close().await.unwrap();
}

/// With the page open and live, a REST status report and a device's MQTT report each reach
/// the dots (and the counters) within 2 s, without reloading the page.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_follows_rest_and_device_changes_live() {
    let f = Fixture::start().await;
    let driver = chromedriver().await;
    let b = browser(&driver).await;
    f.sign_in(&b, "opal@example.com", PASSWORD).await;
    wait_for(
        &b,
        &dot("SL001", "off"),
        Duration::from_secs(10),
        "SL001's dot",
    )
    .await;
    let live = Duration::from_secs(5);
    wait_for(
        &b,
        "[data-live=\"on\"]",
        live,
        "the live feed (/mqtt) connected",
    )
    .await;
    // A reload would lose this marker; the page must change in place.
    b.execute("window.__civicLoad = 'first'; return null;", vec![])
        .await
        .unwrap();

    let started = Instant::now();
    f.fail_sl001(&b, &f.operator).await;
    println!(
        "REST update-status → dot changed in {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    device_report(&f, "off").await;
    wait_for(
        &b,
        &dot("SL002", "off"),
        LIVE_WITHIN,
        "SL002 off after its MQTT report",
    )
    .await;
    println!(
        "device MQTT report → dot changed in {:?}",
        started.elapsed()
    );

    // The summary follows on its own topic: SL001 in error, SL002 off.
    for (counter, n) in [
        ("lights_in_error", "1"),
        ("lights_off", "1"),
        ("lights_on", "0"),
    ] {
        let css = format!("[data-counter=\"{counter}\"]");
        wait_text(&b, &css, n, LIVE_WITHIN).await;
    }
    finish(b, "streetlight").await;
}

/// With access tokens of 6 s (an hour by default), the page renews its token through the
/// refresh token, before its REST calls and before each live connection (the feed ends a
/// connection when its token expires): long after the first token expired, the user is still
/// signed in, changes still arrive live, and the page's own control still works.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_renews_its_token_and_stays_live() {
    let f = Fixture::start_env(&[("ACCESS_TOKEN_TTL_SECS", "6")]).await;
    let driver = chromedriver().await;
    let b = browser(&driver).await;
    f.sign_in(&b, "opal@example.com", PASSWORD).await;
    let within = Duration::from_secs(10);
    wait_for(&b, &dot("SL001", "off"), within, "SL001's dot").await;
    b.execute("window.__civicLoad = 'first'; return null;", vec![])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await; // the first token is gone
    wait_for(&b, "[data-live=\"on\"]", within, "live again").await;

    let login = json!({"email": "opal@example.com", "password": PASSWORD});
    let res = call(
        &f.http,
        &f.server,
        Method::POST,
        "/streetlight/api/auth/login",
        Auth::None,
        login,
    )
    .await;
    let operator = res["data"]["token"].as_str().unwrap().to_owned();
    f.fail_sl001(&b, &operator).await;

    control(&b, "SL002", "off", LIVE_WITHIN).await;
    assert!(
        b.find(Locator::Css("#signin")).await.is_err(),
        "still signed in"
    );
    let state = b
        .execute(
            "return [window.__civicLoad, performance.getEntriesByType('resource')\
             .filter((e) => e.name.endsWith('/auth/refresh')).length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(state[0], "first", "no reload");
    assert!(state[1].as_i64().unwrap() >= 1, "renewed: {state}");
    b.close().await.unwrap();
}

/// SL002 reports `status` over MQTT on the device port, as its firmware would; returns once
/// the broker acknowledged it (the report is then stored).
async fn device_report(f: &Fixture, status: &str) {
    let (user, password) = &f.sl002;
    let body = json!({"status": status}).to_string();
    let topic = "streetlight/lights/SL002/status";
    device_publish(&f.server, (user, password), topic, body).await;
}

/// The landing page links the console; `/console/` serves the bundle; `config.json` names
/// each app's API and the live feed at this very address.
#[tokio::test]
async fn the_landing_links_the_console_and_its_config_names_the_live_feed() {
    let f = Fixture::start().await;
    let page = reqwest::get(f.server.url("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("href=\"/console/\""), "{page}");
    let index = reqwest::get(f.server.url("/console/")).await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("src=\"app.js\""));
    let cfg: Value = reqwest::get(f.server.url("/console/config.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let host = f.server.base.trim_start_matches("http://");
    assert_eq!(cfg["mqtt"], format!("ws://{host}/mqtt"));
    assert_eq!(
        cfg["apps"]["streetlight"]["api"],
        format!("http://{host}/streetlight/api")
    );
}
