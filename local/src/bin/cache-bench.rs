//! The store cache's size against throughput and memory (issue 21): one store, filled once by
//! a `civic-local serve` child, then measured by a child restarted at each `--store-cache-mb`
//! in turn, in rounds that visit the sizes in alternating order, so that a noisy machine's
//! drift falls on every size alike. Each measurement is Ozone events over HTTP and the soak's
//! hot reads for `--seconds`, as ratios against a no-op handler measured just before it, and
//! the child's resident memory (`VmRSS`, and its peak `VmHWM`). Needs `ORT_DYLIB_PATH`, as
//! `civic-local serve` does.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use axum::Router;
use axum::routing::post;
use civic_local::bench::child::Server;
use civic_local::bench::seed::Target;
use civic_local::bench::soak::load::{self, Fixture, Run};
use civic_local::bench::soak::{Log, TIMEOUT, ok};
use civic_local::bench::{self, Stats};
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// Cache sizes (MiB) to compare.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 32, 64, 128, 256])]
    sizes: Vec<u32>,
    /// Ozone events stored before each set of measurements, in increasing order.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000, 1_000_000])]
    stored: Vec<usize>,
    /// Measurements of each size at each level.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Length of one measurement.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Closed-loop workers for events, and as many for reads.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The civic-local binary; by default the one next to this bench.
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// One measurement: events/s and reads/s as ratios to the baseline, p99 of the events (ms),
/// the child's RSS and peak RSS (MiB).
#[derive(Clone, Copy)]
struct Point {
    events: f64,
    reads: f64,
    p99: f64,
    rss: f64,
    hwm: f64,
}

struct Bench {
    args: Args,
    bin: PathBuf,
    dir: PathBuf,
    http: reqwest::Client,
    noop: String,
    /// The next Ozone event's number: each is stored once, whatever the measurement.
    next: usize,
    /// The base URL the fixture's reads were made for; each restart listens on another port.
    seeded_at: String,
}

impl Bench {
    async fn start(&self, cache_mb: u32) -> Result<Server> {
        let flags = ["--store-cache-mb".to_owned(), cache_mb.to_string()];
        Server::start_in(&self.bin, &self.dir, &flags).await
    }

    /// The no-op handler's rate for the same request, just before a measurement.
    async fn baseline(&self) -> Result<Stats> {
        let (http, url) = (self.http.clone(), self.noop.clone());
        bench::load(0..5_000, self.args.concurrency, move |n| {
            let req = http.post(&url).json(&bench::ozone_event("noop", n));
            async move { ok(req).await.map(|_| ()) }
        })
        .await
    }

    async fn measure(&mut self, cache_mb: u32, fx: &Fixture) -> Result<Point> {
        let server = self.start(cache_mb).await?;
        let base = self.baseline().await?.rps;
        let log = Arc::new(Log::default());
        log.events.store(self.next, Ordering::Relaxed);
        let start = Instant::now();
        let run = Run {
            http: self.http.clone(),
            base: server.base.clone(),
            log: log.clone(),
            start,
            end: start + Duration::from_secs(self.args.seconds),
        };
        let workers = self.args.concurrency;
        let mut running = load::http_events(&run, &fx.devices[..workers]);
        let reads: Vec<Target> = (fx.reads.iter())
            .map(|t| Target {
                url: t.url.replacen(&self.seeded_at, &server.base, 1),
                ..t.clone()
            })
            .collect();
        running.extend(load::reads(&run, &reads, workers));
        for w in running {
            w.await?;
        }
        let secs = start.elapsed().as_secs_f64();
        self.next = log.events.load(Ordering::Relaxed);
        ensure!(
            log.errors.load(Ordering::Relaxed) == 0,
            "errors at {cache_mb} MiB"
        );
        let (events, reads) = {
            let samples = log.samples.lock().unwrap();
            let of = |kind: u8| -> Vec<Duration> {
                let kind = samples.iter().filter(|s| s.1 == kind);
                kind.map(|s| Duration::from_micros(s.2.into())).collect()
            };
            (of(0), of(3))
        };
        ensure!(!events.is_empty() && !reads.is_empty(), "nothing answered");
        let point = Point {
            events: events.len() as f64 / secs / base,
            reads: reads.len() as f64 / secs / base,
            p99: bench::percentiles(events, [0.99])[0].as_secs_f64() * 1e3,
            rss: server.memory_mb("VmRSS"),
            hwm: server.memory_mb("VmHWM"),
        };
        server.stop().await?;
        Ok(point)
    }
}

/// The median of each figure over the rounds (the lower middle of an even count).
fn median(points: &[Point]) -> Point {
    let mid = |f: fn(&Point) -> f64| {
        let mut v: Vec<f64> = points.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[(v.len() - 1) / 2]
    };
    Point {
        events: mid(|p| p.events),
        reads: mid(|p| p.reads),
        p99: mid(|p| p.p99),
        rss: mid(|p| p.rss),
        hwm: mid(|p| p.hwm),
    }
}

fn print_level(stored: usize, sizes: &[u32], points: &[Vec<Point>]) {
    let medians: Vec<Point> = points.iter().map(|p| median(p)).collect();
    let best = medians.iter().map(|p| p.events).fold(0.0, f64::max);
    println!(
        "\nwith {stored} events stored (medians of {} rounds):",
        points[0].len()
    );
    println!(
        "cache MiB  events vs baseline  of best  reads vs baseline  events p99 ms  RSS MiB  peak MiB"
    );
    for (size, p) in sizes.iter().zip(&medians) {
        println!(
            "{size:>9} {:>18.3}x {:>7.0}% {:>17.3}x {:>14.1} {:>8.0} {:>9.0}",
            p.events,
            p.events / best * 100.0,
            p.reads,
            p.p99,
            p.rss,
            p.hwm
        );
    }
}

async fn run(args: Args) -> Result<()> {
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("civic-local"),
    };
    let dir = std::env::temp_dir().join(format!("civic-cache-bench-{}", std::process::id()));
    let noop = Router::new().route("/noop", post(|_: axum::Json<Value>| async { "{}" }));
    let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;
    let (noop, next) = (format!("{}/noop", bench::serve(noop).await?), 0);
    let seeded_at = String::new();
    let mut b = Bench {
        args,
        bin,
        dir,
        http,
        noop,
        next,
        seeded_at,
    };
    let server = b.start(civic_store::DEFAULT_CACHE_MB).await?;
    let fx = load::fixture(&b.http, &server.base, b.args.concurrency).await?;
    b.seeded_at = server.base.clone();
    server.stop().await?;
    for level in b.args.stored.clone() {
        let server = b.start(civic_store::DEFAULT_CACHE_MB).await?;
        let (http, devices) = (&b.http, &fx.devices[..b.args.concurrency]);
        let fill = b.next..level.max(b.next);
        if !fill.is_empty() {
            load::preload(http, &server.base, devices, fill.clone(), 32).await?;
        }
        b.next = fill.end;
        server.stop().await?;
        let sizes = b.args.sizes.clone();
        let mut points = vec![Vec::new(); sizes.len()];
        for round in 0..b.args.rounds {
            // Alternate the order, so that no size always follows another.
            let order: Vec<usize> = match round % 2 {
                0 => (0..sizes.len()).collect(),
                _ => (0..sizes.len()).rev().collect(),
            };
            for i in order {
                let p = b.measure(sizes[i], &fx).await?;
                println!(
                    "{level} stored, round {round}, {} MiB: events {:.3}x, reads {:.3}x, RSS {:.0} MiB (peak {:.0})",
                    sizes[i], p.events, p.reads, p.rss, p.hwm
                );
                points[i].push(p);
            }
        }
        print_level(level, &sizes, &points);
    }
    let _ = std::fs::remove_dir_all(&b.dir);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        !args.sizes.is_empty() && args.rounds > 0,
        "nothing to measure"
    );
    run(args).await
}
