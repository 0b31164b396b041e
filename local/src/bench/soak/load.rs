//! The soak's mixed load: what it needs, made through the apps' APIs before the clock starts,
//! and its closed-loop workers: Ozone events over HTTP and over MQTT (each device with its own
//! login), Occupancy crossings, and hot reads of every app. Every answer is recorded.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::{Value, json};

use super::super::seed::{self, Caller, Target};
use super::{Log, TIMEOUT, ok};

/// Per app, the reads of [`seed::all`]'s rows that the soak repeats: (app, path).
const HOT: [(&str, &str); 7] = [
    ("Streetlight", "/lights/summary"),
    ("Streetlight", "/lights/list"),
    ("Ozone", "/devices/all/"),
    ("HomeForge", "/devices/"),
    ("HomeForge", "/rooms/"),
    ("EcoFlow", "/cameras/"),
    ("EcoFlow", "/alerts/"),
];

/// What the workers use, made through the apps' APIs before the clock starts.
pub struct Fixture {
    /// Ozone devices `(device id, token)`: the first `concurrency` post over HTTP, the rest
    /// publish over MQTT.
    pub devices: Vec<(String, String)>,
    /// Occupancy cameras, one per worker: `(camera, entry line, exit line)`.
    pub cameras: Vec<(i64, i64, i64)>,
    pub reads: Vec<Target>,
}

/// Seeds every app as `civic-bench` does ([`seed::all`]), claims the tokens of `2 * workers`
/// Ozone devices (half for HTTP, half for MQTT) and makes a camera with two lines per worker.
pub async fn fixture(http: &reqwest::Client, base: &str, workers: usize) -> Result<Fixture> {
    let (rows, _) = seed::all(http, base).await?;
    let ozone = rows
        .iter()
        .find(|t| t.name.starts_with("Ozone"))
        .context("no Ozone")?;
    let staff = ozone.caller.clone();
    let hot = |t: &Target| {
        let mut words = t.name.split_whitespace();
        let (app, path) = (words.next(), words.nth(1));
        HOT.iter().any(|h| (Some(h.0), Some(h.1)) == (app, path))
    };
    let mut reads: Vec<Target> = rows.into_iter().filter(hot).collect();
    let api = format!("{base}/ozone/api");
    let mut devices = Vec::new();
    // `seed::all` assigned bench-0..99; bench-0 already holds its token.
    for i in 1..=2 * workers {
        let hs = ok(http
            .post(format!("{api}/handshake/"))
            .json(&json!({"mac": seed::ozone_mac(i)})));
        let token = hs.await?["token"].as_str().context("no token")?.to_owned();
        devices.push((format!("bench-{i}"), token));
    }
    let occ = format!("{base}/occupancy/api/occupancy");
    let mut cameras = Vec::new();
    for w in 0..workers {
        let cam = json!({"camera_id": format!("SOAK_{w}"), "camera_name": format!("Soak {w}")});
        let cam = ok(http.post(format!("{occ}/cameras")).json(&cam)).await?["id"].as_i64();
        let cam = cam.context("no camera id")?;
        let line = async |dir: &str| -> Result<i64> {
            let body = json!({"camera_id": cam, "line_name": dir, "x1": 0, "y1": 300, "x2": 1920, "y2": 300, "direction": dir});
            ok(http.post(format!("{occ}/lines")).json(&body)).await?["id"]
                .as_i64()
                .context("no line id")
        };
        cameras.push((cam, line("entry").await?, line("exit").await?));
    }
    let read = |name: &str, url: String, caller: Caller| Target {
        name: name.into(),
        url,
        caller,
        items: None,
    };
    reads.push(read(
        "Ozone stats",
        format!("{api}/test/stats/?granularity=day&days=30"),
        staff,
    ));
    let live = format!("{occ}/cameras/{}/live", cameras[0].0);
    reads.push(read("Occupancy live", live, Caller::Anonymous));
    reads.push(read(
        "Occupancy facility",
        format!("{occ}/facility/live"),
        Caller::Anonymous,
    ));
    Ok(Fixture {
        devices,
        cameras,
        reads,
    })
}

/// An Ozone device on the device port, logged in as its thing name with its token; PUBACKs
/// (and connection errors) come out of the receiver, one per QoS 1 publish in flight.
fn mqtt_device(
    broker: &str,
    device: &str,
    token: &str,
) -> Result<(AsyncClient, tokio::sync::mpsc::Receiver<Result<(), String>>)> {
    let user = format!("ozone-{device}");
    let mut opts = civic_iot::mqtt::options(broker, &user).map_err(anyhow::Error::msg)?;
    opts.set_credentials(&user, token);
    let (client, mut events) = AsyncClient::new(opts, 16);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let sent = match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => tx.send(Ok(())).await,
                Ok(_) => Ok(()),
                // rumqttc reconnects on the next poll; not at once, so as not to spin.
                Err(e) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    tx.send(Err(e.to_string())).await
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    Ok((client, rx))
}

/// What every worker shares; each stops at `end`.
#[derive(Clone)]
pub struct Run {
    pub http: reqwest::Client,
    pub base: String,
    pub log: Arc<Log>,
    pub start: Instant,
    pub end: Instant,
}

pub type Workers = Vec<tokio::task::JoinHandle<()>>;

impl Run {
    /// A worker that calls `call(i)` for i = 0, 1, ... until `end`, each after the previous
    /// answer, recording each outcome as `kind`. The first call opens the worker's connection:
    /// it is recorded only if it fails.
    fn worker<F, Fut>(&self, kind: usize, call: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn(usize) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send,
    {
        let run = self.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < run.end {
                let t = Instant::now();
                let outcome = call(i).await;
                if i > 0 || outcome.is_err() {
                    run.log.record(run.start, kind, t, &outcome);
                }
                i += 1;
            }
        })
    }

    /// The next Ozone event of `device`, numbered across all devices and both transports.
    fn next_event(&self, device: &str) -> Value {
        super::super::ozone_event(device, self.log.events.fetch_add(1, Ordering::Relaxed))
    }

    fn stored(&self) {
        self.log.stored.fetch_add(1, Ordering::Relaxed);
    }
}

/// Each device posts its events over HTTP with its bearer token, as ozone-bench does.
pub fn http_events(run: &Run, devices: &[(String, String)]) -> Workers {
    let url = format!("{}/ozone/api/device/events/", run.base);
    let each = |(device, token): (String, String)| {
        let (run, url) = (run.clone(), url.clone());
        run.clone().worker(0, move |_| {
            let req = run
                .http
                .post(&url)
                .bearer_auth(&token)
                .json(&run.next_event(&device));
            let run = run.clone();
            async move {
                let ack = ok(req).await?;
                ensure!(ack["ack"] == true, "no ack: {ack}");
                run.stored();
                Ok(())
            }
        })
    };
    devices.iter().cloned().map(each).collect()
}

/// Each device publishes its events at QoS 1 on its own topic and waits for the PUBACK,
/// which the device port sends once the event is stored.
pub fn mqtt_events(run: &Run, broker: &str, devices: &[(String, String)]) -> Result<Workers> {
    let mut workers = Vec::new();
    for (device, token) in devices {
        let (client, acks) = mqtt_device(broker, device, token)?;
        let acks = Arc::new(tokio::sync::Mutex::new(acks));
        let (run, device) = (run.clone(), device.clone());
        let topic = format!("ozone/devices/{device}/events");
        workers.push(run.clone().worker(1, move |_| {
            let body = run.next_event(&device).to_string();
            let (run, client, acks, topic) =
                (run.clone(), client.clone(), acks.clone(), topic.clone());
            async move {
                client.publish(topic, QoS::AtLeastOnce, false, body).await?;
                match tokio::time::timeout(TIMEOUT, acks.lock().await.recv()).await {
                    Ok(Some(Ok(()))) => {
                        run.stored();
                        Ok(())
                    }
                    Ok(Some(Err(e))) => bail!("MQTT connection: {e}"),
                    Ok(None) => bail!("MQTT event loop ended"),
                    Err(_) => bail!("no PUBACK within {TIMEOUT:?}"),
                }
            }
        }));
    }
    Ok(workers)
}

/// Each camera posts batches of ten crossings, five in and five out (unique tracks, so no
/// crossing is a duplicate), as the camera's counter does.
pub fn crossings(run: &Run, cameras: &[(i64, i64, i64)]) -> Workers {
    let occ = format!("{}/occupancy/api/occupancy", run.base);
    let each = |&(cam, entry, exit): &(i64, i64, i64)| {
        let (run, url) = (run.clone(), format!("{occ}/cameras/{cam}/events"));
        run.clone().worker(2, move |_| {
            let track = run.log.crossings.fetch_add(10, Ordering::Relaxed);
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let events: Vec<Value> = (0..10)
                .map(|k| {
                    let (line, dir) = if k < 5 { (entry, "entry") } else { (exit, "exit") };
                    json!({"line_id": line, "direction": dir, "timestamp": now, "confidence": 0.9, "track_id": track + k})
                })
                .collect();
            let req = run.http.post(&url).json(&json!({"events": events}));
            async move {
                let reply = ok(req).await?;
                ensure!(reply["accepted"] == 10, "not all accepted: {reply}");
                Ok(())
            }
        })
    };
    cameras.iter().map(each).collect()
}

/// `n` readers, each going round the hot reads from its own starting point.
pub fn reads(run: &Run, targets: &[Target], n: usize) -> Workers {
    let targets: Arc<Vec<(String, Caller)>> = Arc::new(
        targets
            .iter()
            .map(|t| (t.url.clone(), t.caller.clone()))
            .collect(),
    );
    let each = |w: usize| {
        let (run, targets) = (run.clone(), targets.clone());
        run.clone().worker(3, move |i| {
            let (url, caller) = &targets[(w + i) % targets.len()];
            let (req, url) = (caller.apply(run.http.get(url)), url.clone());
            async move {
                ok(req)
                    .await
                    .map(|_| ())
                    .with_context(|| format!("GET {url}"))
            }
        })
    };
    (0..n).map(each).collect()
}

/// Stores Ozone events `range` (by number) over HTTP as fast as `concurrency` connections go
/// (ozone-bench's fill), so that a bench runs against a store of that size.
pub async fn preload(
    http: &reqwest::Client,
    base: &str,
    devices: &[(String, String)],
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> Result<()> {
    let n = range.len();
    let (http, url, devices) = (
        http.clone(),
        format!("{base}/ozone/api/device/events/"),
        Arc::new(devices.to_vec()),
    );
    let began = Instant::now();
    let stats = super::super::load(range, concurrency, move |i| {
        let (device, token) = &devices[i % devices.len()];
        let req = http
            .post(&url)
            .bearer_auth(token)
            .json(&super::super::ozone_event(device, i));
        async move { ok(req).await.map(|_| ()) }
    })
    .await?;
    println!(
        "preloaded {n} events in {:.0} s ({:.0}/s, p99 {:.1} ms)",
        began.elapsed().as_secs_f64(),
        stats.rps,
        stats.p99.as_secs_f64() * 1e3
    );
    Ok(())
}
