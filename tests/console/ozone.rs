//! Ozone's page: sign in through the form (a session cookie), see the devices as the REST
//! listing has them and the usage chart, then a device's event reaches the page live.

use std::path::Path;
use std::time::{Duration, Instant};

use civic_testkit::api::Auth;
use civic_testkit::local::LocalServer;
use civic_testkit::signin::{call, ozone_device, ozone_user};
use fantoccini::Client;
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{
    browser, chromedriver, click, console_dist, finish, free_port, sign_in, text, wait_for,
    wait_text,
};
use crate::{BIN, LIVE_WITHIN};

/// `ozone_user`'s password.
const PASSWORD: &str = "matrix-pass-8812";
const DEVICE: &str = "esp32-001";

/// civic-local serving the console, Ozone's staff user `staff` and one assigned device.
struct Fixture {
    server: LocalServer,
    http: reqwest::Client,
    staff: String,
    device_token: String,
}

impl Fixture {
    async fn start() -> Self {
        let dist = console_dist();
        let server = LocalServer::start(BIN, &["--console-dir", dist.to_str().unwrap()]).await;
        Self::on(server).await
    }

    async fn on(server: LocalServer) -> Self {
        let http = reqwest::Client::new();
        let staff = ozone_user(&http, &server, "staff").await;
        let device_token = ozone_device(&http, &server, &staff, "AA:BB:CC:00:00:01", DEVICE).await;
        Self {
            server,
            http,
            staff,
            device_token,
        }
    }

    /// `DEVICE` reports a BASIC treatment, as its firmware would.
    async fn event(&self, event_id: &str) {
        let body = json!({"device_id": DEVICE, "event_id": event_id, "event": "treatment",
            "treatment": "BASIC", "counter": 1});
        let auth = Auth::Bearer(&self.device_token);
        let path = "/ozone/api/device/events/";
        let res = call(&self.http, &self.server, Method::POST, path, auth, body).await;
        assert_eq!(res["ack"], true, "{res}");
    }

    /// The REST devices listing, as the staff user reads it.
    async fn devices(&self) -> Vec<Value> {
        let auth = Auth::Cookie(&self.staff);
        let path = "/ozone/api/devices/all/";
        let res = call(
            &self.http,
            &self.server,
            Method::GET,
            path,
            auth,
            Value::Null,
        )
        .await;
        res.as_array().expect("a list of devices").clone()
    }

    async fn sign_in(&self, b: &Client, password: &str) {
        let url = self.server.url("/console/#/ozone");
        sign_in(b, &url, &[("#username", "staff"), ("#password", password)]).await;
    }
}

fn row(device: &str) -> String {
    format!("tr[data-device=\"{device}\"]")
}

/// Signing in shows the devices as REST lists them (online, events) and the usage chart,
/// whose granularity and compare switch; an event posted by the device then shows on the
/// page within 2 s, without a reload.
#[tokio::test(flavor = "multi_thread")]
async fn the_ozone_page_shows_devices_and_usage_and_follows_events_live() {
    let f = Fixture::start().await;
    f.event("e-1").await;
    let listed = f.devices().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let online = listed[0]["online"].as_bool().expect("online");
    let driver = chromedriver().await;
    let b = browser(&driver).await;

    f.sign_in(&b, "not-the-password").await;
    wait_for(
        &b,
        "#signin-error",
        Duration::from_secs(5),
        "the login error",
    )
    .await;
    let said = text(&b, "#signin-error").await;
    assert!(said.starts_with("401: "), "{said}");
    b.refresh().await.unwrap();
    f.sign_in(&b, PASSWORD).await;
    let within = Duration::from_secs(10);
    let shown = format!("{}[data-online=\"{online}\"]", row(DEVICE));
    wait_for(&b, &shown, within, "the device, online as REST says").await;
    let events = format!("{} [data-events]", row(DEVICE));
    assert_eq!(text(&b, &events).await, "1");
    assert_eq!(text(&b, "#who").await, "staff (staff)");
    wait_for(&b, "[data-chart] canvas", within, "the usage chart").await;
    wait_for(&b, "[data-live=\"on\"]", within, "the live feed connected").await;
    // A reload would lose this marker; the page must change in place.
    b.execute("window.__civicLoad = 'first'; return null;", vec![])
        .await
        .unwrap();

    let started = Instant::now();
    f.event("e-2").await;
    wait_text(&b, &events, "2", LIVE_WITHIN).await;
    println!("device event → page updated in {:?}", started.elapsed());
    let online_now = format!("{}[data-online=\"true\"]", row(DEVICE));
    wait_for(
        &b,
        &online_now,
        LIVE_WITHIN,
        "the device online after its event",
    )
    .await;
    let seen = text(&b, &format!("{} [data-last-seen]", row(DEVICE))).await;
    let stored = f.devices().await;
    // The page shows whole seconds; the listing has milliseconds.
    let stored = stored[0]["last_seen"].as_str().expect("last_seen");
    let (whole, _ms) = stored.split_once('.').expect("milliseconds");
    assert_eq!(seen, format!("{whole}Z"), "last seen");

    // The chart follows the events (rollups settle in the background) and its controls.
    wait_text(&b, "[data-usage=\"total\"]", "2", within).await;
    println!("device event → chart redrawn in {:?}", started.elapsed());
    click(&b, "#granularity option[value=\"day\"]").await;
    wait_for(
        &b,
        "[data-chart][data-granularity=\"day\"]",
        within,
        "daily buckets",
    )
    .await;
    assert_eq!(text(&b, "[data-usage=\"BASIC\"]").await, "2");
    click(&b, "#compare").await;
    wait_for(
        &b,
        "[data-chart][data-compare=\"true\"]",
        within,
        "the comparison",
    )
    .await;
    wait_for(
        &b,
        "[data-change=\"total\"]",
        within,
        "the change against last period",
    )
    .await;

    finish(b, "ozone").await;
}

/// civic-local on `port` and `data_dir` (both kept across a restart), serving the console.
async fn serve_at(port: u16, data_dir: &Path) -> LocalServer {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--mqtt-port", "0", "--port", &port.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--console-dir")
        .arg(console_dist());
    LocalServer::spawn(cmd, data_dir, Duration::from_secs(60)).await
}

/// How many live tickets the page asked for (its fetches, from the browser's own record).
async fn tickets_taken(b: &Client) -> u64 {
    let js = "return performance.getEntriesByType('resource')\
        .filter((e) => e.name.endsWith('/ozone/api/auth/live/')).length;";
    let n = b.execute(js, vec![]).await.unwrap();
    n.as_u64().expect("a count")
}

/// When the live connection drops (here: the server is killed and started again on the same
/// port and data), the page reconnects by itself with a new ticket, re-reads, and follows
/// events again, all without a reload.
#[tokio::test(flavor = "multi_thread")]
async fn the_ozone_page_reconnects_with_a_new_ticket() {
    let dir = tempfile::tempdir().expect("a data dir");
    let port = free_port();
    let f = Fixture::on(serve_at(port, dir.path()).await).await;
    let driver = chromedriver().await;
    let b = browser(&driver).await;
    f.sign_in(&b, PASSWORD).await;
    let within = Duration::from_secs(10);
    wait_for(&b, &row(DEVICE), within, "the device").await;
    wait_for(&b, "[data-live=\"on\"]", within, "the live feed connected").await;
    assert_eq!(tickets_taken(&b).await, 1);
    b.execute("window.__civicLoad = 'first'; return null;", vec![])
        .await
        .unwrap();

    let Fixture {
        server,
        http,
        staff,
        device_token,
    } = f;
    server.crash().await;
    wait_for(&b, "[data-live=\"off\"]", within, "the live feed lost").await;
    let server = serve_at(port, dir.path()).await;
    let f = Fixture {
        server,
        http,
        staff,
        device_token,
    };
    let back = Duration::from_secs(15);
    wait_for(&b, "[data-live=\"on\"]", back, "the live feed back").await;
    assert!(
        tickets_taken(&b).await >= 2,
        "no new ticket for the new connection"
    );

    let events = format!("{} [data-events]", row(DEVICE));
    let before: u64 = text(&b, &events).await.parse().expect("a count");
    f.event("after-restart").await;
    wait_text(&b, &events, &(before + 1).to_string(), LIVE_WITHIN).await;
    let marker = b
        .execute("return window.__civicLoad ?? null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, "first", "the page reloaded");
    b.close().await.unwrap();
}
