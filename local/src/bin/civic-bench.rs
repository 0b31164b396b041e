//! Throughput and tail latency of the list endpoints of all five apps on the embedded store,
//! each listing 100 things seeded through the apps' own APIs, against a no-op axum handler
//! served the same way in the same run, so the ratio says what Civic's own work costs.
//! Everything listens on 127.0.0.1 and every loop is bounded.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use axum::Router;
use axum::routing::get;
use civic_local::bench::seed::{self, Caller, ITEMS, SEED_CONCURRENCY, Target};
use civic_local::bench::soak::{ok, ok_text};
use civic_local::bench::{self, Stats};
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// Requests per endpoint.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value = "template.yaml")]
    template: std::path::PathBuf,
}

/// GETs the target's URL as its caller, `requests` times.
async fn get_load(
    http: &reqwest::Client,
    target: &Target,
    requests: usize,
    concurrency: usize,
) -> Result<Stats> {
    let (http, url, caller) = (http.clone(), target.url.clone(), target.caller.clone());
    bench::load(0..requests, concurrency, move |_| {
        let req = caller.apply(http.get(&url));
        async move { ok_text(req).await.map(|_| ()) }
    })
    .await
}

/// The row measures what its name says: a list endpoint answers with exactly [`ITEMS`] items.
async fn check(http: &reqwest::Client, target: &Target) -> Result<()> {
    let Some(pointer) = target.items else {
        return Ok(());
    };
    let req = target.caller.apply(http.get(&target.url));
    let body = ok(req).await.with_context(|| target.url.clone())?;
    let n = body
        .pointer(pointer)
        .and_then(Value::as_array)
        .with_context(|| format!("{}: no list at '{pointer}'", target.url))?
        .len();
    ensure!(n == ITEMS, "{} lists {n} items, not {ITEMS}", target.url);
    Ok(())
}

/// Warms up (so connection set-up is not measured), then measures.
async fn measure(http: &reqwest::Client, target: &Target, args: &Args) -> Result<Stats> {
    check(http, target).await?;
    let c = args.concurrency;
    get_load(http, target, c * 10, c).await?;
    get_load(http, target, args.requests, c).await
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (civic, dir) = bench::platform(&args.template, civic_store::DEFAULT_CACHE_MB).await?;
    let noop = bench::serve(Router::new().route("/noop", get(|| async { "ok" }))).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    let began = Instant::now();
    let (seeded, groups) = bench::with_commits(seed::all(&http, &civic)).await;
    let ((targets, writes), seeded) = (seeded?, began.elapsed());

    let baseline = Target {
        name: "no-op axum handler (baseline)".to_owned(),
        url: format!("{noop}/noop"),
        caller: Caller::Anonymous,
        items: None,
    };
    let base = measure(&http, &baseline, &args).await?;
    let mut results = Vec::new();
    for target in &targets {
        results.push((&target.name, measure(&http, target, &args).await?));
    }
    println!(
        "seeding through the APIs: {writes} POSTs in {:.1} s ({:.0}/s), {SEED_CONCURRENCY} in flight; {groups}",
        seeded.as_secs_f64(),
        writes as f64 / seeded.as_secs_f64()
    );
    println!(
        "{} requests per endpoint, {} connections, 127.0.0.1, embedded store",
        args.requests, args.concurrency
    );
    println!("{}", Stats::HEADER);
    println!("{}", base.row(&baseline.name, base.rps));
    for (name, s) in &results {
        println!("{}", s.row(name, base.rps));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
