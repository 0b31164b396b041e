//! Throughput and tail latency of Streetlight reads on the embedded store, against a no-op axum
//! handler served the same way in the same run, so the ratio says what Civic's own work costs.
//! Everything listens on 127.0.0.1 and every loop is bounded.

use anyhow::{Context, Result, ensure};
use axum::Router;
use axum::routing::get;
use civic_local::bench::{self, Stats};
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

/// GETs `url` with the token, `requests` times.
async fn get_load(
    http: &reqwest::Client,
    url: String,
    token: &str,
    requests: usize,
    concurrency: usize,
) -> Result<Stats> {
    let (http, token) = (http.clone(), token.to_owned());
    bench::load(0..requests, concurrency, move |_| {
        let req = http.get(&url).bearer_auth(&token);
        async move {
            let res = req.send().await?;
            ensure!(res.status().is_success(), "{}", res.status());
            res.bytes().await?;
            Ok(())
        }
    })
    .await
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (civic, dir) = bench::platform(&args.template).await?;
    let noop = bench::serve(Router::new().route("/noop", get(|| async { "ok" }))).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    // Seed: an admin and a city of lights, through the API itself.
    let api = format!("{civic}/streetlight/api");
    let reg: Value = http
        .post(format!("{api}/auth/register"))
        .json(&json!({"name": "Bench", "email": "bench@example.com", "password": "password123", "city": "Delhi"}))
        .send()
        .await?
        .json()
        .await?;
    let token = reg["data"]["token"]
        .as_str()
        .context("register failed")?
        .to_owned();
    for i in 0..args.lights {
        let light = json!({"lightId": format!("SL{i:04}"), "name": format!("Light {i}"), "city": "Delhi", "latitude": 28.6, "longitude": 77.2});
        let res = http
            .post(format!("{api}/lights/create"))
            .bearer_auth(&token)
            .json(&light)
            .send()
            .await?;
        ensure!(res.status() == 201, "seeding failed: {}", res.status());
    }

    let targets = [
        (
            "no-op axum handler (baseline)".to_owned(),
            format!("{noop}/noop"),
        ),
        (
            "GET /lights/summary".to_owned(),
            format!("{api}/lights/summary"),
        ),
        (
            format!("GET /lights/list ({} lights)", args.lights),
            format!("{api}/lights/list"),
        ),
    ];
    let mut results = Vec::new();
    for (name, url) in targets {
        // Warm up first so connection set-up is not measured.
        get_load(
            &http,
            url.clone(),
            &token,
            args.concurrency * 10,
            args.concurrency,
        )
        .await?;
        results.push((
            name,
            get_load(&http, url, &token, args.requests, args.concurrency).await?,
        ));
    }
    println!(
        "{} requests per endpoint, {} connections, 127.0.0.1, embedded store",
        args.requests, args.concurrency
    );
    println!("{}", Stats::HEADER);
    for (name, s) in &results {
        println!("{}", s.row(name, results[0].1.rps));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
