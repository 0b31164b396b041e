//! Ozone on the embedded store: sustained device-event ingest (events/s and tail latency; an
//! ack means the event is committed with fsync) against a no-op axum handler that reads the
//! same body, in the same run; then the store round trips of stats queries at 1k events and at
//! many more, which must not grow. Everything listens on 127.0.0.1 and every loop is bounded.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use axum::Router;
use axum::routing::post;
use civic_local::bench::soak::{ok, ok_text};
use civic_local::bench::{self, Stats};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Events in the measured sustained-ingest run.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Events stored before the second stats measurement (the first is at 1,000).
    #[arg(long, default_value_t = 100_000)]
    many: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Devices the events are spread over.
    #[arg(long, default_value_t = 8)]
    devices: usize,
    #[arg(long, default_value = "template.yaml")]
    template: std::path::PathBuf,
    /// The embedded store's page cache (MiB), as `serve --store-cache-mb`.
    #[arg(long, default_value_t = civic_store::DEFAULT_CACHE_MB)]
    store_cache_mb: u32,
}

/// Event `n` of the run: its device and body.
fn event(n: usize, devices: usize) -> (usize, Value) {
    let d = n % devices;
    (d, bench::ozone_event(&format!("bench-{d}"), n))
}

/// Posts events `range` with `concurrency` workers; each must be acknowledged.
async fn ingest(
    http: &reqwest::Client,
    url: &str,
    tokens: &Arc<Vec<String>>,
    range: Range<usize>,
    concurrency: usize,
) -> Result<Stats> {
    let (http, url, tokens) = (http.clone(), url.to_owned(), tokens.clone());
    bench::load(range, concurrency, move |n| {
        let (d, body) = event(n, tokens.len());
        let req = http.post(&url).bearer_auth(&tokens[d]).json(&body);
        async move {
            let ack = ok(req).await?;
            ensure!(ack["ack"] == true, "no ack: {ack}");
            Ok(())
        }
    })
    .await
}

/// The no-op baseline: the same request, body read and parsed, nothing stored.
async fn baseline(
    http: &reqwest::Client,
    url: &str,
    requests: usize,
    concurrency: usize,
) -> Result<Stats> {
    let (http, url) = (http.clone(), url.to_owned());
    bench::load(0..requests, concurrency, move |_| {
        let req = http.post(&url).bearer_auth("x").json(&event(0, 1).1);
        async move { ok_text(req).await.map(|_| ()) }
    })
    .await
}

/// A stats query's cost: the query, its store round trips, the total it reported, its latency.
type Cost = (String, u64, i64, Duration);

/// Round trips and latency of each stats query.
async fn stats_costs(http: &reqwest::Client, base: &str, cookie: &str) -> Result<Vec<Cost>> {
    let queries = [
        "granularity=day&days=30",
        "granularity=day&days=30&compare=true&ma=7&cumulative=true",
        "granularity=hour&days=2",
        "granularity=minute&days=1",
        "granularity=month&days=365",
        "granularity=day&days=30&device_id=bench-0",
    ];
    let mut out = Vec::new();
    for q in queries {
        let t = Instant::now();
        let res = http
            .get(format!("{base}/ozone/api/test/stats/?{q}"))
            .header("cookie", cookie)
            .send()
            .await?;
        ensure!(res.status().is_success(), "{q}: {}", res.status());
        let trips = res.headers()["x-store-round-trips"].to_str()?.parse()?;
        let body: Value = res.json().await?;
        out.push((
            q.to_owned(),
            trips,
            body["totals"]["total"].as_i64().unwrap_or(0),
            t.elapsed(),
        ));
    }
    Ok(out)
}

/// Seeds through the API: a staff user and the devices, each with its token. Returns the
/// staff session's cookie and the tokens, by device.
async fn seed(http: &reqwest::Client, api: &str, devices: usize) -> Result<(String, Vec<String>)> {
    let cookie = civic_local::bench::ozone_staff(http, api).await?;
    let mut tokens = Vec::new();
    for d in 0..devices {
        let mac = format!("02:00:00:00:00:{d:02X}");
        http.post(format!("{api}/handshake/"))
            .json(&json!({"mac": mac}))
            .send()
            .await?
            .error_for_status()?;
        http.post(format!("{api}/devices/assign/"))
            .header("cookie", &cookie)
            .json(&json!({"mac": mac, "device_id": format!("bench-{d}")}))
            .send()
            .await?
            .error_for_status()?;
        let hs: Value = http
            .post(format!("{api}/handshake/"))
            .json(&json!({"mac": mac}))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(hs["token"].as_str().context("no token")?.to_owned());
    }
    Ok((cookie, tokens))
}

fn print_ingest(args: &Args, base: &Stats, run: &Stats) {
    println!(
        "Ozone ingest: {} events, {} connections, {} devices, 127.0.0.1, embedded store (ack after its group's fsync)",
        args.events, args.concurrency, args.devices
    );
    println!("{}", Stats::HEADER);
    println!("{}", base.row("no-op axum handler (baseline)", base.rps));
    println!(
        "{}",
        run.row("POST /api/device/events (acked = durable)", base.rps)
    );
}

/// Prints each stats query's cost at 1,000 and at `many` events; `true` when the round trips
/// grew with the number of events.
fn print_stats_costs(many: usize, at_1k: &[Cost], at_many: &[Cost]) -> bool {
    println!("Stats query cost (x-store-round-trips) at 1,000 vs {many} events");
    println!(
        "{:<58} {:>8} {:>8} {:>10} {:>10} {:>9} {:>9}",
        "query", "trips 1k", "trips N", "total 1k", "total N", "ms 1k", "ms N"
    );
    let mut grew = false;
    for ((q, t1, n1, d1), (_, tn, nn, dn)) in at_1k.iter().zip(at_many) {
        grew |= tn > t1;
        println!(
            "{:<58} {:>8} {:>8} {:>10} {:>10} {:>9.2} {:>9.2}",
            q,
            t1,
            tn,
            n1,
            nn,
            d1.as_secs_f64() * 1e3,
            dn.as_secs_f64() * 1e3
        );
    }
    println!(
        "round trips {}",
        if grew {
            "GREW with the number of events"
        } else {
            "did not grow with the number of events"
        }
    );
    grew
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.many >= 1_000 + args.events,
        "--many must be at least 1000 + --events"
    );
    let (civic, dir) = bench::platform(&args.template, args.store_cache_mb).await?;
    let noop = bench::serve(Router::new().route(
        "/noop",
        post(|axum::Json(_): axum::Json<Value>| async { axum::Json(json!({"ack": true})) }),
    ))
    .await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let api = format!("{civic}/ozone/api");

    let (cookie, tokens) = seed(&http, &api, args.devices).await?;
    let tokens = Arc::new(tokens);
    let url = format!("{api}/device/events/");

    ingest(&http, &url, &tokens, 0..1_000, args.concurrency).await?;
    let at_1k = stats_costs(&http, &civic, &cookie).await?;

    baseline(
        &http,
        &format!("{noop}/noop"),
        args.concurrency * 10,
        args.concurrency,
    )
    .await?;
    let base = baseline(
        &http,
        &format!("{noop}/noop"),
        args.events,
        args.concurrency,
    )
    .await?;
    let measured = 1_000..1_000 + args.events;
    let (run, run_groups) =
        bench::with_commits(ingest(&http, &url, &tokens, measured, args.concurrency)).await;
    let run = run?;
    let fill = 1_000 + args.events..args.many;
    let (filled, fill_groups) =
        bench::with_commits(ingest(&http, &url, &tokens, fill, args.concurrency)).await;
    filled?;
    let at_many = stats_costs(&http, &civic, &cookie).await?;
    // The same measured run again with `many` events stored: a cache too small for the
    // indexes' working set shows here, not in the first run on an almost empty store.
    let late = args.many..args.many + args.events;
    let late = ingest(&http, &url, &tokens, late, args.concurrency).await?;

    print_ingest(&args, &base, &run);
    println!(
        "{}",
        late.row(
            &format!("the same, with {} events stored", args.many),
            base.rps
        )
    );
    println!("store during the measured ingest: {run_groups}");
    println!(
        "store while filling up to {} events: {fill_groups}",
        args.many
    );
    println!();
    let grew = print_stats_costs(args.many, &at_1k, &at_many);
    println!(
        "store cache {} MiB: resident memory {:.0} MiB after {} events (bench and platform in one process)",
        args.store_cache_mb,
        bench::rss_mb(),
        args.many
    );
    let _ = std::fs::remove_dir_all(&dir);
    ensure!(!grew, "stats round trips grew with the number of events");
    Ok(())
}
