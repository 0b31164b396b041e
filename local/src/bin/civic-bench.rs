//! Throughput and tail latency of Streetlight reads on the embedded store, against a no-op axum
//! handler served the same way in the same run, so the ratio says what Civic's own work costs.
//! Everything listens on 127.0.0.1 and every loop is bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;
use civic_core::{Limits, Platform};
use civic_store::Backend;
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Requests per endpoint.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Lights in the benchmarked city (all returned by list).
    #[arg(long, default_value_t = 100)]
    lights: usize,
    #[arg(long, default_value = "template.yaml")]
    template: std::path::PathBuf,
}

async fn serve(router: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, make).await });
    Ok(format!("http://{addr}"))
}

struct Stats {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    requests: usize,
    concurrency: usize,
) -> Result<Stats> {
    let per_worker = requests / concurrency;
    let start = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (http, url, token) = (http.clone(), url.to_owned(), token.to_owned());
        tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                let res = http.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(res.status().is_success(), "{url}: {}", res.status());
                res.bytes().await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        })
    });
    let mut all = Vec::new();
    for w in workers.collect::<Vec<_>>() {
        all.extend(w.await??);
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Ok(Stats {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("civic-bench-{}", std::process::id()));
    let platform = Platform::local(
        &dir,
        Backend::embedded(&dir)?,
        Limits::default().unlimited_rate(),
    )
    .map_err(anyhow::Error::msg)?;
    let defs = civic_local::template::parse(
        &std::fs::read_to_string(&args.template).context("run from the repository root")?,
    )?;
    let civic = serve(civic_local::router(&defs, &platform)?).await?;
    let noop = serve(Router::new().route("/noop", get(|| async { "ok" }))).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    // Seed: an admin and a city of lights, through the API itself.
    let reg: Value = http
        .post(format!("{civic}/streetlight/api/auth/register"))
        .json(&json!({"name": "Bench", "email": "bench@example.com", "password": "password123", "city": "Delhi"}))
        .send().await?.json().await?;
    let token = reg["data"]["token"]
        .as_str()
        .context("register failed")?
        .to_owned();
    for i in 0..args.lights {
        let res = http
            .post(format!("{civic}/streetlight/api/lights/create"))
            .bearer_auth(&token)
            .json(&json!({"lightId": format!("SL{i:04}"), "name": format!("Light {i}"), "city": "Delhi", "latitude": 28.6, "longitude": 77.2}))
            .send().await?;
        anyhow::ensure!(res.status() == 201, "seeding failed: {}", res.status());
    }

    let targets = [
        ("no-op axum handler (baseline)", format!("{noop}/noop")),
        (
            "GET /lights/summary",
            format!("{civic}/streetlight/api/lights/summary"),
        ),
        (
            &*format!("GET /lights/list ({} lights)", args.lights),
            format!("{civic}/streetlight/api/lights/list"),
        ),
    ]
    .map(|(n, u)| (n.to_owned(), u));
    let mut results = Vec::new();
    for (name, url) in &targets {
        // Warm up first so connection set-up is not measured.
        load(&http, url, &token, args.concurrency * 10, args.concurrency).await?;
        results.push((
            name.clone(),
            load(&http, url, &token, args.requests, args.concurrency).await?,
        ));
    }
    let base = results[0].1.rps;
    println!(
        "{} requests per endpoint, {} connections, 127.0.0.1, embedded store",
        args.requests, args.concurrency
    );
    println!(
        "{:<36} {:>10} {:>10} {:>10} {:>12}",
        "endpoint", "req/s", "p50 ms", "p99 ms", "vs baseline"
    );
    for (name, s) in &results {
        println!(
            "{:<36} {:>10.0} {:>10.2} {:>10.2} {:>11.2}x",
            name,
            s.rps,
            s.p50.as_secs_f64() * 1e3,
            s.p99.as_secs_f64() * 1e3,
            s.rps / base
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
