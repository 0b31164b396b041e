//! EcoFlow's page: sign in through the form, see the sites tree and the carbon summary, count
//! a real photo uploaded through the page's file input, then an alert and a broadcast made
//! through REST reach the page live.

use std::time::{Duration, Instant};

use civic_testkit::api::Auth;
use civic_testkit::local::LocalServer;
use civic_testkit::signin::call;
use fantoccini::{Client, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{
    browser, chromedriver, click, console_dist, finish, sign_in, text, wait_for, wait_text,
};
use crate::{BIN, LIVE_WITHIN};

const PASSWORD: &str = "console-pass-8812";
const EMAIL: &str = "ada@example.com";

/// civic-local serving the console, EcoFlow's first user (an admin) and one site:
/// organisation → zone (capacity 500) → camera.
struct Fixture {
    server: LocalServer,
    http: reqwest::Client,
    admin: String,
    zone: i64,
    camera: i64,
}

impl Fixture {
    async fn start() -> Self {
        let dist = console_dist();
        let server = LocalServer::start(BIN, &["--console-dir", dist.to_str().unwrap()]).await;
        let http = reqwest::Client::new();
        let user = json!({"email": EMAIL, "password": PASSWORD, "first_name": "Ada"});
        let path = "/ecoflow/api/auth/register/";
        call(&http, &server, Method::POST, path, Auth::None, user).await;
        let login = json!({"email": EMAIL, "password": PASSWORD});
        let path = "/ecoflow/api/auth/login/";
        let admin = call(&http, &server, Method::POST, path, Auth::None, login).await;
        let admin = admin["access"].as_str().expect("a token").to_owned();
        let mut f = Self {
            server,
            http,
            admin,
            zone: 0,
            camera: 0,
        };
        let org = json!({"name": "Tech Corp HQ", "org_type": "Corporate", "total_capacity": 900});
        let org = f.post("/organizations/", org).await["id"].clone();
        let zone = json!({"name": "Lobby", "zone_type": "Entrance", "capacity": 500, "organization_id": org});
        f.zone = id(&f.post("/zones/", zone).await);
        let camera = json!({"name": "Front Desk Cam", "is_active": true, "zone_id": f.zone});
        f.camera = id(&f.post("/cameras/", camera).await);
        f
    }

    async fn request(&self, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/ecoflow/api{path}");
        let auth = Auth::Bearer(&self.admin);
        call(&self.http, &self.server, method, &path, auth, body).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.request(Method::POST, path, body).await
    }

    async fn sign_in(&self, b: &Client, password: &str) {
        let url = self.server.url("/console/#/ecoflow");
        sign_in(b, &url, &[("#email", EMAIL), ("#password", password)]).await;
    }
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// The detector tests' hand-counted crowd photo, as chromedriver wants a file: canonical.
fn photo() -> std::path::PathBuf {
    let (path, _) = civic_vision::fixtures::labelled()
        .into_iter()
        .find(|(p, _)| p.ends_with("vtest-0140.jpg"))
        .expect("vtest-0140.jpg is in the labelled set (./scripts/fixtures)");
    path.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Signing in shows the app's error for a wrong password, then the tree and the carbon
/// summary; a photo uploaded through the page is counted as REST records it and moves the
/// summary; an alert and a broadcast posted through REST show within 2 s, without a reload.
#[tokio::test(flavor = "multi_thread")]
async fn the_ecoflow_page_counts_a_frame_and_follows_alerts_live() {
    let f = Fixture::start().await;
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
    assert!(text(&b, "#signin-error").await.starts_with("401: "));
    b.refresh().await.unwrap();
    f.sign_in(&b, PASSWORD).await;

    let within = Duration::from_secs(10);
    let camera = format!(
        "#tree li[data-zone=\"{}\"] li[data-camera=\"{}\"]",
        f.zone, f.camera
    );
    wait_for(&b, &camera, within, "the camera in its zone").await;
    assert_eq!(text(&b, &camera).await, "Front Desk Cam");
    assert_eq!(text(&b, "#who").await, "Ada (ADMIN)");
    let total = "[data-carbon=\"total_saved_all_time\"]";
    assert_eq!(text(&b, total).await, "0");
    wait_for(&b, "[data-live=\"on\"]", within, "the live feed connected").await;
    // A reload would lose this marker; the page must change in place.
    b.execute("window.__civicLoad = 'first'; return null;", vec![])
        .await
        .unwrap();

    // The frame goes through the page's own file input.
    let file = b.find(Locator::Css("#detect-file")).await.unwrap();
    file.send_keys(photo().to_str().unwrap()).await.unwrap();
    click(&b, "#detect-submit").await;
    let counting = Duration::from_secs(60);
    wait_for(&b, "#detect-count", counting, "the count").await;
    let path = format!("/sensor/detections/?zone_id={}", f.zone);
    let stored = f.request(Method::GET, &path, Value::Null).await;
    let stored = &stored.as_array().expect("detections")[0];
    let people = stored["detected_people"].as_i64().expect("a count");
    assert!(people > 0, "{stored}");
    assert_eq!(text(&b, "#detect-count").await, people.to_string());
    let stats = f.request(Method::GET, "/carbon/stats/", Value::Null).await;
    let saved = stats["summary"]["total_saved_all_time"]
        .as_f64()
        .expect("a total");
    assert!(saved > 0.0, "{stats}");
    wait_text(&b, total, &saved.to_string(), within).await;

    let started = Instant::now();
    let alert = json!({"heading": "Fire drill", "sub_heading": "Lobby, 3 pm", "zone_id": f.zone});
    let alert = id(&f.post("/alerts/", alert).await);
    let row = format!("#feed li[data-alert=\"{alert}\"][data-status=\"OPEN\"]");
    wait_for(&b, &row, LIVE_WITHIN, "the new alert, live").await;
    println!("REST alert → page updated in {:?}", started.elapsed());

    let started = Instant::now();
    f.post(&format!("/alerts/{alert}/acknowledge/"), json!({}))
        .await;
    let acked = format!("#feed li[data-alert=\"{alert}\"][data-status=\"ACKNOWLEDGED\"]");
    wait_for(&b, &acked, LIVE_WITHIN, "the alert acknowledged, live").await;
    println!("REST acknowledge → page updated in {:?}", started.elapsed());

    let started = Instant::now();
    let body = json!({"title": "Maintenance", "message": "Servers restart at 6."});
    let n = id(&f.post("/notifications/", body).await);
    let row = format!("#feed li[data-notification=\"{n}\"]");
    wait_for(&b, &row, LIVE_WITHIN, "the broadcast, live").await;
    println!("REST broadcast → page updated in {:?}", started.elapsed());
    assert!(text(&b, &row).await.contains("Servers restart at 6."));
    finish(b, "ecoflow").await;
}
