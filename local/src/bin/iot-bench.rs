//! Ozone device events over MQTT, end to end: QoS 1 publishes to civic-local's device port,
//! the template's topic rule, the same idempotent ingest as HTTP, each counted when the device
//! gets its PUBACK. The port passes a message on to the broker, and so to its PUBACK, only once
//! the event is committed with fsync: acknowledged means durable. Beside it, in the same run
//! and through the same port: the raw broker, QoS 1 publish → subscribe of the same payloads on
//! a topic no rule takes. Everything listens on 127.0.0.1 and every loop is bounded.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use civic_core::{Limits, Platform};
use civic_local::bench::live::{Connected, LiveClient};
use civic_local::mqtt::{Devices, MqttAuth, MqttOpts};
use civic_store::Backend;
use clap::Parser;
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
struct Args {
    /// Messages per measured run.
    #[arg(long, default_value_t = 5_000)]
    messages: usize,
    /// Devices the events are spread over (one topic each).
    #[arg(long, default_value_t = 8)]
    devices: usize,
    #[arg(long, default_value = "template.yaml")]
    template: std::path::PathBuf,
}

fn event(n: usize, devices: usize) -> (String, Value) {
    let d = n % devices;
    let treatment = ["BASIC", "STANDARD", "PREMIUM"][n % 3];
    let body = json!({"event_id": format!("mqtt-{d}-{n:010}"), "event": "treatment",
                      "treatment": treatment, "counter": n, "firmware": "1.0.0"});
    (format!("ozone/devices/bench-{d}/events"), body)
}

/// A connected client whose event loop runs in the background, counting what comes back:
/// messages (a subscriber) or PUBACKs (a publisher).
fn client(url: &str, id: &str) -> Result<(AsyncClient, tokio::sync::watch::Receiver<usize>)> {
    let mut opts = civic_iot::mqtt::options(url, id).map_err(anyhow::Error::msg)?;
    opts.set_inflight(256);
    let (client, mut events) = AsyncClient::new(opts, 1024);
    let (tx, rx) = tokio::sync::watch::channel(0);
    tokio::spawn(async move {
        while let Ok(ev) = events.poll().await {
            if let Event::Incoming(Packet::Publish(_) | Packet::PubAck(_)) = ev {
                tx.send_modify(|n| *n += 1);
            }
        }
    });
    Ok((client, rx))
}

/// When each event was acknowledged or seen, by its number.
type Times = Arc<Mutex<HashMap<usize, Instant>>>;

/// A publisher that records when each event's PUBACK arrived. rumqttc reports each outgoing
/// PUBLISH's packet id in the order the events were published from `first` on, and the
/// PUBACK names that id.
fn timed_client(url: &str, id: &str, first: usize) -> Result<(AsyncClient, Times)> {
    let mut opts = civic_iot::mqtt::options(url, id).map_err(anyhow::Error::msg)?;
    opts.set_inflight(256);
    let (client, mut events) = AsyncClient::new(opts, 1024);
    let acked = Times::default();
    let times = acked.clone();
    tokio::spawn(async move {
        let (mut next, mut by_pkid) = (first, HashMap::new());
        while let Ok(ev) = events.poll().await {
            match ev {
                Event::Outgoing(Outgoing::Publish(pkid)) => {
                    by_pkid.insert(pkid, next);
                    next += 1;
                }
                Event::Incoming(Packet::PubAck(ack)) => {
                    if let Some(n) = by_pkid.remove(&ack.pkid) {
                        times.lock().unwrap().insert(n, Instant::now());
                    }
                }
                _ => {}
            }
        }
    });
    Ok((client, acked))
}

/// A page subscribed to every device's live events over `/mqtt`, recording when each event
/// (by its number in its id) arrived.
async fn live_page(civic: &str, ticket: &str) -> Result<Times> {
    let (mut page, connected) = LiveClient::connect(civic, "ozone", ticket).await;
    ensure!(connected == Connected::Accepted, "live: {connected:?}");
    page.subscribe(&["ozone/live/devices/+/events"]).await;
    let seen = Times::default();
    let times = seen.clone();
    tokio::spawn(async move {
        while let Some((_, msg)) = page.message(Duration::from_secs(600)).await {
            let id = msg["data"]["event_id"].as_str().unwrap_or_default();
            if let Some(n) = id.rsplit('-').next().and_then(|n| n.parse().ok()) {
                times.lock().unwrap().insert(n, Instant::now());
            }
        }
    });
    Ok(seen)
}

/// Ingest under a live subscriber: the rate, and from each event's PUBACK to its live message
/// reaching the page, p50, p99 and max (0 when the message came first: it is published
/// after the commit, before the PUBACK is released).
async fn live_latency(
    args: &Args,
    civic: &str,
    url: &str,
    ticket: &str,
    range: std::ops::Range<usize>,
) -> Result<(f64, usize, [Duration; 3])> {
    let seen = live_page(civic, ticket).await?;
    let (publisher, acked) = timed_client(url, "bench-live-publisher", range.start)?;
    let acks = || acked.lock().unwrap().len();
    let rate = run(
        &publisher,
        |n| event(n, args.devices).0,
        range.clone(),
        args.devices,
        acks,
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < range.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (acked, seen) = (acked.lock().unwrap(), seen.lock().unwrap());
    ensure!(
        seen.len() == range.len(),
        "live: {} of {} events pushed",
        seen.len(),
        range.len()
    );
    let delays: Vec<Duration> = range
        .map(|n| seen[&n].saturating_duration_since(acked[&n]))
        .collect();
    let early = delays.iter().filter(|d| d.is_zero()).count();
    let pct = civic_local::bench::percentiles(delays, [0.50, 0.99, 1.0]);
    Ok((rate, early, pct))
}

/// Publishes `messages` events at QoS 1 and waits until `done()` reaches the count.
async fn run(
    publisher: &AsyncClient,
    topic: impl Fn(usize) -> String,
    range: std::ops::Range<usize>,
    devices: usize,
    done: impl Fn() -> usize,
) -> Result<f64> {
    let (start, target) = (Instant::now(), done() + range.len());
    let count = range.len();
    for n in range {
        let (_, body) = event(n, devices);
        publisher
            .publish(topic(n), QoS::AtLeastOnce, false, body.to_string())
            .await?;
    }
    let deadline = start + Duration::from_secs(600);
    while done() < target {
        ensure!(
            Instant::now() < deadline,
            "not all messages arrived in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// civic-local on an embedded store in `dir`: its device port (with the topic rules) and its
/// HTTP API. Returns the devices' side and the API's base URL.
async fn start(args: &Args, dir: &std::path::Path) -> Result<(Devices, String)> {
    let yaml = std::fs::read_to_string(&args.template)
        .context("reading the template: run from the repository root")?;
    let platform = Platform::local(
        dir,
        Backend::embedded(dir)?,
        Limits::default().unlimited_rate(),
    )
    .map_err(anyhow::Error::msg)?;
    // One client publishes for every device, so device logins are off (loopback only); the
    // login is checked once per connection, the topic rules per message either way.
    let opts = MqttOpts {
        mqtt_port: 0,
        mqtt_auth: MqttAuth::Off,
        ..MqttOpts::default()
    };
    let (platform, devices) = Devices::start(
        &opts,
        &yaml,
        platform,
        civic_local::registry::DEVICES,
        civic_local::registry::LIVE,
    )
    .await?;
    let defs = civic_local::template::parse(&yaml)?;
    // With `/mqtt`, so a live subscriber can watch the events as a browser would.
    let router = civic_local::router(&defs, &platform)?.merge(devices.router());
    let civic = civic_local::bench::serve(router).await?;
    Ok((devices, civic))
}

/// Staff assign the devices (their handshakes come first, as in the field). Returns the
/// staff session's cookie.
async fn assign_devices(http: &reqwest::Client, api: &str, devices: usize) -> Result<String> {
    let cookie = civic_local::bench::ozone_staff(http, api).await?;
    for d in 0..devices {
        let mac = format!("02:00:00:00:01:{d:02X}");
        http.post(format!("{api}/handshake/"))
            .json(&json!({"mac": mac}))
            .send()
            .await?
            .error_for_status()?;
        let assign = json!({"mac": mac, "device_id": format!("bench-{d}")});
        http.post(format!("{api}/devices/assign/"))
            .header("cookie", &cookie)
            .json(&assign)
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(cookie)
}

/// The events the devices count, through the HTTP API: every stored event must show there.
async fn events_counted(http: &reqwest::Client, api: &str, cookie: &str) -> Result<i64> {
    let events: Value = http
        .get(format!("{api}/devices/all/"))
        .header("cookie", cookie)
        .send()
        .await?
        .json()
        .await?;
    Ok(events
        .as_array()
        .context("devices")?
        .iter()
        .filter_map(|d| d["event_count"].as_i64())
        .sum())
}

fn report(n: usize, devices: usize, raw: f64, ingest: f64) {
    println!("{n} QoS 1 messages over {devices} topics, civic-local's device port on 127.0.0.1");
    println!("{:<52} {:>10}", "path", "msgs/s");
    println!(
        "{:<52} {raw:>10.0}",
        "baseline: broker publish -> subscribe (QoS 1)"
    );
    println!(
        "{:<52} {ingest:>10.0}  ({:.3}x)",
        "ozone events: publish -> rule -> stored -> PUBACK",
        ingest / raw
    );
}

/// The live phase: the ingest again, with a page subscribed over `/mqtt`; prints its rate
/// against the raw broker's and the latency from each event's PUBACK to the page.
async fn report_live(
    args: &Args,
    civic: &str,
    broker: &str,
    ticket: &str,
    raw: f64,
    warm: usize,
) -> Result<()> {
    let n = args.messages;
    let range = warm + n..warm + 2 * n;
    let (rate, early, [p50, p99, max]) = live_latency(args, civic, broker, ticket, range).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<52} {rate:>10.0}  ({:.3}x)",
        "the same, with a page subscribed live over /mqtt",
        rate / raw
    );
    println!(
        "live latency, PUBACK -> page: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({n} events; \
         {early} reached the page before their PUBACK, counted as 0)",
        ms(p50),
        ms(p99),
        ms(max)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("civic-iot-bench-{}", std::process::id()));
    let (devices, civic) = start(&args, &dir).await?;
    let http = reqwest::Client::new();
    let api = format!("{civic}/ozone/api");
    let cookie = assign_devices(&http, &api, args.devices).await?;

    let stats = devices.stats.clone();
    // A publisher per path, so that one path's PUBACKs never count for the other.
    let (publisher, pubacks) = client(&devices.url, "bench-publisher")?;
    let (raw_publisher, _) = client(&devices.url, "bench-raw-publisher")?;
    let acked = || *pubacks.borrow();
    let (subscriber, received) = client(&devices.url, "bench-subscriber")?;
    subscriber
        .subscribe("bench/raw/+", QoS::AtLeastOnce)
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let raw_topic = |n: usize| format!("bench/raw/{}", n % args.devices);
    let seen = || *received.borrow();
    let stored = || {
        stats.rules["OzoneEventsRule"]
            .stored
            .load(Ordering::Relaxed) as usize
    };

    // Warm-up of both paths, then the measured runs.
    let warm = 200.min(args.messages);
    run(&raw_publisher, raw_topic, 0..warm, args.devices, seen).await?;
    run(
        &publisher,
        |n| event(n, args.devices).0,
        0..warm,
        args.devices,
        acked,
    )
    .await?;
    let n = args.messages;
    let raw = run(
        &raw_publisher,
        raw_topic,
        warm..warm + n,
        args.devices,
        seen,
    )
    .await?;
    let (ingest, groups) = civic_local::bench::with_commits(run(
        &publisher,
        |n| event(n, args.devices).0,
        warm..warm + n,
        args.devices,
        acked,
    ))
    .await;
    let ingest = ingest?;
    // Read the moment the last PUBACK arrived: every acknowledged event is already stored.
    ensure!(
        stored() == warm + n,
        "every event should be stored: {}",
        serde_json::to_string(&*stats)?
    );
    let counted = events_counted(&http, &api, &cookie).await?;
    ensure!(
        counted as usize == warm + n,
        "devices count {counted} events"
    );

    report(n, args.devices, raw, ingest);
    println!("store during the measured MQTT ingest: {groups}");
    let ticket = civic_local::bench::ozone_ticket(&http, &api, &cookie).await?;
    report_live(&args, &civic, &devices.url, &ticket, raw, warm).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
