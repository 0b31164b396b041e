//! A real browser for the console tests: Debian's Chromium, headless, behind Debian's
//! chromedriver (a WebDriver server on a free loopback port), driven with fantoccini.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};

/// The checkout's root (this package is `local/`).
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("local/ sits in the checkout")
}

/// `console/dist`, rebuilt first if its sources changed (`scripts/console-build`, once per test
/// binary): the test must never pass or fail on a stale bundle.
pub(crate) fn console_dist() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = std::process::Command::new(root().join("scripts/console-build"))
                .output()
                .expect("run scripts/console-build");
            assert!(
                out.status.success(),
                "scripts/console-build failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            root().join("console/dist")
        })
        .clone()
}

/// chromedriver on 127.0.0.1:PORT; killed when dropped.
pub(crate) struct Driver {
    _child: Child,
    pub(crate) url: String,
}

/// Starts chromedriver; a missing one fails the test with the fix, never skips it.
pub(crate) async fn chromedriver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromedriver ({e}): the console test drives Chromium through \
                 Debian's chromium-driver; install it with `sudo apt-get install chromium \
                 chromium-driver` (./scripts/test does)"
            )
        });
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = reqwest::get(format!("{url}/status")).await;
        if let Ok(res) = status {
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            if body["value"]["ready"] == true {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer on {url} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { _child: child, url }
}

pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().unwrap().port()
}

/// A headless Chromium session with the front-door test's flags and a fixed window size, so
/// screenshots are comparable. chromedriver gives each session a fresh profile.
pub(crate) async fn browser(driver: &Driver) -> Client {
    let mut args = civic_testkit::chromium::HEADLESS.to_vec();
    args.push("--window-size=1100,900");
    let caps = json!({"goog:chromeOptions": {"args": args}});
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session from chromedriver")
}

/// Waits up to `within` for `css` to match; on timeout saves a screenshot next to the test's
/// and fails with the page's text, so a red run shows what the page showed.
/// civic-local's device broker `(host, port)`, as `/_local/iot` names it.
pub(crate) async fn broker(server: &civic_testkit::local::LocalServer) -> (String, u16) {
    let iot: serde_json::Value = reqwest::get(server.url("/_local/iot"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = iot["broker"].as_str().expect("the broker's URL");
    let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    (host.to_owned(), port.parse().unwrap())
}

/// A device publishes `body` on `topic` at QoS 1 over civic-local's device port, with its
/// MQTT login, as its firmware would; returns once the broker acknowledged it (the report is
/// then stored).
pub(crate) async fn device_publish(
    server: &civic_testkit::local::LocalServer,
    (user, password): (&str, &str),
    topic: &str,
    body: String,
) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let (host, port) = broker(server).await;
    let mut opts = MqttOptions::new(user, host, port);
    opts.set_credentials(user, password);
    let (client, mut events) = AsyncClient::new(opts, 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, body)
        .await
        .unwrap();
    let acked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("{user}'s MQTT connection: {e}"),
            }
        }
    });
    acked.await.expect("a PUBACK for the device's report");
    client.disconnect().await.ok();
}

/// Clicks the element `css` names.
pub(crate) async fn click(b: &Client, css: &str) {
    let el = b.find(Locator::Css(css)).await.expect(css);
    el.click().await.unwrap();
}

/// Opens an app's console page at `url` and signs in through its form, typing each
/// `(field css, value)` of `fields`.
pub(crate) async fn sign_in(b: &Client, url: &str, fields: &[(&str, &str)]) {
    b.goto(url).await.expect("open the console");
    wait_for(b, "#signin", Duration::from_secs(10), "the sign-in form").await;
    for (css, value) in fields {
        let field = b.find(Locator::Css(css)).await.expect(css);
        field.send_keys(value).await.unwrap();
    }
    click(b, "#signin-submit").await;
}

pub(crate) async fn wait_for(b: &Client, css: &str, within: Duration, what: &str) {
    let found = b
        .wait()
        .at_most(within)
        .every(Duration::from_millis(25))
        .for_element(Locator::Css(css))
        .await;
    if found.is_ok() {
        return;
    }
    let shot = failed_shot(b).await;
    let text = match b.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    panic!(
        "{what}: no `{css}` within {within:?}; screenshot {}; the page says:\n{text}",
        shot.display()
    );
}

/// Waits up to `within` for the element `css` to read `want`.
pub(crate) async fn wait_text(b: &Client, css: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = text(b, css).await;
        if now == want {
            return;
        }
        if Instant::now() >= deadline {
            let shot = failed_shot(b).await;
            panic!(
                "`{css}` reads {now:?}, not {want:?}, after {within:?}; screenshot {}",
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The text of the element `css` (which must be there).
pub(crate) async fn text(b: &Client, css: &str) -> String {
    let el = b.find(Locator::Css(css)).await.expect(css);
    el.text().await.expect("element text")
}

/// Ends a live test: the page was never reloaded (the marker set at its first load is still
/// there), and its screenshot is saved as `target/console/{name}.png`.
pub(crate) async fn finish(b: Client, name: &str) {
    let marker = b
        .execute("return window.__civicLoad ?? null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, "first", "the page reloaded");
    let shot = screenshot(&b, name).await;
    println!("screenshot: {}", shot.display());
    b.close().await.unwrap();
}

/// Saves a PNG of the window to `target/console/{name}.png` and returns its path.
pub(crate) async fn screenshot(b: &Client, name: &str) -> PathBuf {
    let dir = root().join("target/console");
    std::fs::create_dir_all(&dir).expect("target/console");
    let file = dir.join(format!("{name}.png"));
    let png = b.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "chromedriver sent no PNG");
    std::fs::write(&file, png).expect("write the screenshot");
    file
}

/// `{page}-failed`, the page being the console's route (`#/ozone` → `ozone`): what a failed
/// wait saves its screenshot as, so each page's tests keep their own.
async fn failed_shot(b: &Client) -> PathBuf {
    let url = b
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let page = url
        .split_once("#/")
        .map(|(_, r)| r.split('/').next().unwrap_or("").to_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "console".into());
    screenshot(b, &format!("{page}-failed")).await
}
