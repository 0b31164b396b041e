//! Occupancy's page: open (civic-local's default, as the REST API) or behind the token form
//! (`OCCUPANCY_REQUIRE_AUTH=true`); the cameras' live counts, the facility's, today's hourly
//! chart and the open alerts, then a crossing batch posted elsewhere reaches the page live,
//! and an alert is resolved from it.

use std::time::{Duration, Instant};

use civic_testkit::api::Auth;
use civic_testkit::local::LocalServer;
use civic_testkit::signin::call;
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{
    browser, chromedriver, click, console_dist, finish, text, wait_for, wait_text,
};
use crate::{BIN, LIVE_WITHIN};

const API: &str = "/occupancy/api/occupancy";

/// civic-local serving the console, with camera GATE_A (room for 3) and an entry line.
struct Fixture {
    server: LocalServer,
    http: reqwest::Client,
    token: Option<String>,
    cam: i64,
    line: i64,
}

impl Fixture {
    async fn start(env: &[(&str, &str)]) -> Self {
        let dist = console_dist();
        let args = ["--console-dir", dist.to_str().unwrap()];
        let server = LocalServer::start_env(BIN, &args, env).await;
        let token = (!env.is_empty()).then(|| token(&server));
        let mut f = Self {
            server,
            http: reqwest::Client::new(),
            token,
            cam: 0,
            line: 0,
        };
        let body = json!({"camera_id": "GATE_A", "camera_name": "Main gate", "location": "North", "max_occupancy": 3});
        f.cam = f.call(Method::POST, "/cameras", body).await["id"]
            .as_i64()
            .unwrap();
        let body = json!({"camera_id": f.cam, "line_name": "door", "x1": 0, "y1": 300, "x2": 1920, "y2": 300, "direction": "entry"});
        f.line = f.call(Method::POST, "/lines", body).await["id"]
            .as_i64()
            .unwrap();
        f
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let auth = self.token.as_deref().map_or(Auth::None, Auth::Bearer);
        let path = format!("{API}{path}");
        call(&self.http, &self.server, method, &path, auth, body).await
    }

    /// `n` people walk in through the door now (tracks `first..`).
    async fn entries(&self, first: i64, n: i64) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let events: Vec<Value> = (first..first + n)
            .map(|t| json!({"line_id": self.line, "direction": "entry", "timestamp": now, "confidence": 0.9, "track_id": t}))
            .collect();
        let path = format!("/cameras/{}/events", self.cam);
        let res = self
            .call(Method::POST, &path, json!({"events": events}))
            .await;
        assert_eq!(res["accepted"], n);
    }

    async fn open(&self, b: &Client) {
        b.goto(&self.server.url("/console/#/occupancy"))
            .await
            .expect("open the console");
    }
}

/// An occupancy access token signed with the platform's key (an operator mints them).
fn token(server: &LocalServer) -> String {
    let mut key = std::fs::read(server.data_dir.join("jwt-secret")).unwrap();
    key.extend_from_slice(b":civic:occupancy");
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": "ops", "role": "viewer", "typ": "access", "aud": "occupancy",
        "iss": "civic", "iat": now, "exp": now + 3600, "jti": "console"});
    let key = jsonwebtoken::EncodingKey::from_secret(&key);
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

fn cell(cam: i64, what: &str) -> String {
    format!("tr[data-camera=\"{cam}\"] [data-{what}]")
}

/// Waits up to `within` for nothing to match `css`.
async fn wait_gone(b: &Client, css: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while b.find(Locator::Css(css)).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "`{css}` still there after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Open, the page shows the camera's count, the facility's and the hourly chart; a batch
/// posted through REST moves the camera's count, the facility's and opens an alert on the
/// page within 2 s, without a reload; resolving the alert on the page closes it.
#[tokio::test(flavor = "multi_thread")]
async fn the_occupancy_page_follows_crossings_and_resolves_alerts() {
    let f = Fixture::start(&[]).await;
    f.entries(1, 1).await;
    f.server.settled().await; // the facility's counters come from the change feed
    let driver = chromedriver().await;
    let b = browser(&driver).await;
    f.open(&b).await;
    let within = Duration::from_secs(10);
    wait_for(&b, &cell(f.cam, "occupancy"), within, "the camera's row").await;
    wait_text(&b, &cell(f.cam, "occupancy"), "1", within).await;
    assert_eq!(text(&b, "[data-counter=\"facility_occupancy\"]").await, "1");
    assert_eq!(text(&b, "#who").await, "open (no sign-in required)");
    wait_for(
        &b,
        "[data-chart=\"hourly\"] canvas",
        within,
        "the hourly chart",
    )
    .await;
    wait_for(&b, "[data-hourly-entries]", within, "today's entries").await;
    wait_text(&b, "[data-hourly-entries]", "1", within).await;
    wait_for(&b, "[data-live=\"on\"]", within, "the live feed connected").await;
    // A reload would lose this marker; the page must change in place.
    b.execute("window.__civicLoad = 'first'; return null;", vec![])
        .await
        .unwrap();

    let started = Instant::now();
    f.entries(2, 3).await;
    wait_text(&b, &cell(f.cam, "occupancy"), "4", LIVE_WITHIN).await;
    println!(
        "REST batch → camera count on the page in {:?}",
        started.elapsed()
    );
    wait_for(&b, "tr[data-alert]", LIVE_WITHIN, "the capacity alert").await;
    println!("REST batch → alert on the page in {:?}", started.elapsed());
    wait_text(
        &b,
        "[data-counter=\"facility_occupancy\"]",
        "4",
        LIVE_WITHIN,
    )
    .await;
    println!(
        "REST batch → facility count on the page in {:?}",
        started.elapsed()
    );
    wait_text(&b, "[data-hourly-entries]", "4", LIVE_WITHIN).await;
    println!(
        "REST batch → hourly chart re-read in {:?}",
        started.elapsed()
    );

    let open = f.call(Method::GET, "/alerts", Value::Null).await;
    let exceeded = open
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alert_type"] == "capacity_exceeded")
        .expect("capacity_exceeded is open")["id"]
        .as_i64()
        .unwrap();
    click(&b, &format!("button[data-resolve=\"{exceeded}\"]")).await;
    wait_gone(&b, &format!("tr[data-alert=\"{exceeded}\"]"), LIVE_WITHIN).await;
    let open = f.call(Method::GET, "/alerts", Value::Null).await;
    assert!(
        open.as_array().unwrap().iter().all(|a| a["id"] != exceeded),
        "{open}"
    );
    finish(b, "occupancy").await;
}

/// Closed, the page asks for a token: a wrong one gets the app's own 401, a good one the page,
/// whose live feed takes the same token.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_occupancy_page_signs_in_with_a_token() {
    let f = Fixture::start(&[("OCCUPANCY_REQUIRE_AUTH", "true")]).await;
    let driver = chromedriver().await;
    let b = browser(&driver).await;
    f.open(&b).await;
    let within = Duration::from_secs(10);
    for token in ["not-a-token", f.token.as_deref().unwrap()] {
        wait_for(&b, "#signin", within, "the token form").await;
        let field = b.find(Locator::Css("#token")).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(token).await.unwrap();
        click(&b, "#signin-submit").await;
        if token == "not-a-token" {
            wait_for(&b, "#signin-error", within, "the token's refusal").await;
            assert_eq!(
                text(&b, "#signin-error").await,
                "401: Invalid or expired token"
            );
        }
    }
    wait_for(&b, &cell(f.cam, "occupancy"), within, "the camera's row").await;
    wait_text(&b, &cell(f.cam, "occupancy"), "0", within).await;
    wait_for(
        &b,
        "[data-live=\"on\"]",
        within,
        "the live feed, with the token",
    )
    .await;
    let started = Instant::now();
    f.entries(1, 2).await;
    wait_text(&b, &cell(f.cam, "occupancy"), "2", LIVE_WITHIN).await;
    println!(
        "REST batch → camera count (token) in {:?}",
        started.elapsed()
    );
    b.close().await.unwrap();
}
