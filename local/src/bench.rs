//! What the benchmarks share: the platform and baselines served on 127.0.0.1, a bounded
//! closed-loop load that reports throughput and latency percentiles, the embedded store's
//! write groups over a phase, ([`seed`]) the read benchmark's data, and ([`live`]) a browser's
//! live subscription.

pub mod child;
pub mod init;
pub mod live;
pub mod seed;
pub mod soak;

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use civic_core::{Limits, Platform};
use civic_store::Backend;

/// A live ticket (`POST /api/auth/live/`) for the session `cookie` at `api`.
pub async fn ozone_ticket(http: &reqwest::Client, api: &str, cookie: &str) -> Result<String> {
    let reply: serde_json::Value = http
        .post(format!("{api}/auth/live/"))
        .header("cookie", cookie)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(reply["ticket"].as_str().context("a ticket")?.to_owned())
}

/// Registers the first (staff) Ozone user at `api` (`…/ozone/api`) and logs in: the session
/// cookie that assigns devices.
pub async fn ozone_staff(http: &reqwest::Client, api: &str) -> Result<String> {
    let creds = serde_json::json!({"username": "bench", "password": "password123"});
    http.post(format!("{api}/auth/register/"))
        .json(&creds)
        .send()
        .await?
        .error_for_status()?;
    let login = http
        .post(format!("{api}/auth/login/"))
        .json(&creds)
        .send()
        .await?
        .error_for_status()?;
    let cookie = login.headers()[reqwest::header::SET_COOKIE].to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

/// Serves `router` on a free 127.0.0.1 port in the background; returns its base URL.
pub async fn serve(router: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, make).await });
    Ok(format!("http://{addr}"))
}

/// The whole platform of `template` on a fresh embedded store (with a page cache of
/// `cache_mb` MiB), without rate limits. Returns its base URL and the data dir (the caller
/// removes it).
pub async fn platform(template: &Path, cache_mb: u32) -> Result<(String, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("civic-bench-{}", std::process::id()));
    let platform = Platform::local(
        &dir,
        Backend::embedded_with_cache(&dir, (cache_mb as usize) << 20)?,
        Limits::default().unlimited_rate(),
    )
    .map_err(anyhow::Error::msg)?;
    let yaml = std::fs::read_to_string(template)
        .context("reading the template: run from the repository root")?;
    let url = serve(crate::router(&crate::template::parse(&yaml)?, &platform)?).await?;
    Ok((url, dir))
}

/// This process's resident memory in MiB (Linux `/proc/self/status`), 0 where unknown.
pub fn rss_mb() -> f64 {
    status_mb("self", "VmRSS")
}

/// A `kB` field (`VmRSS`, `VmHWM`) of `/proc/{pid}/status` in MiB, 0 where unknown: the soak
/// bench measures the server it started, not itself.
pub fn status_mb(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Ozone event `n` of `device` as the device sends it (over HTTP, or as an MQTT payload, where
/// the topic's device id wins). Timestamps spread over the last 30 days, so the rollups hold
/// many minute, hour and day buckets.
pub fn ozone_event(device: &str, n: usize) -> serde_json::Value {
    let ts = chrono::Utc::now() - chrono::Duration::minutes((n % (30 * 24 * 60)) as i64);
    let treatment = ["BASIC", "STANDARD", "PREMIUM"][n % 3];
    serde_json::json!({
        "device_id": device, "firmware": "1.0.0", "event_id": format!("{device}-{n:010}"),
        "event": "treatment", "treatment": treatment, "counter": n,
        "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// The embedded store's write groups since `before`, over a phase that took `elapsed`:
/// `groups: mean X.X calls, max N; fsyncs/s F`. Each group is one fsync; `max` is the largest
/// group since the process started (the store keeps no per-phase maximum).
pub fn commit_line(before: &civic_store::CommitStats, elapsed: Duration) -> String {
    let now = civic_store::CommitStats::now();
    format!(
        "groups: mean {:.1} calls, max {}; fsyncs/s {:.0}",
        now.mean_since(before),
        now.max,
        now.groups_since(before) as f64 / elapsed.as_secs_f64().max(1e-9)
    )
}

/// Runs the write phase `phase` and returns its output with [`commit_line`] over it.
pub async fn with_commits<T>(phase: impl Future<Output = T>) -> (T, String) {
    let (before, began) = (civic_store::CommitStats::now(), Instant::now());
    let out = phase.await;
    (out, commit_line(&before, began.elapsed()))
}

pub struct Stats {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Stats {
    pub const HEADER: &str = "endpoint                                                        req/s    p50 ms    p99 ms    max ms  vs baseline";

    /// One table row, with throughput relative to `baseline_rps`.
    pub fn row(&self, name: &str, baseline_rps: f64) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "{name:<58} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>11.3}x",
            self.rps,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.rps / baseline_rps
        )
    }
}

/// Calls `call(n)` once for every `n` in `range`, from `concurrency` workers that each wait for
/// their previous call; every call must succeed.
pub async fn load<F, Fut>(range: Range<usize>, concurrency: usize, call: F) -> Result<Stats>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(range.start));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (call, next, end) = (call.clone(), next.clone(), range.end);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= end {
                        return anyhow::Ok(latencies);
                    }
                    let t = Instant::now();
                    call(n).await?;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await??);
    }
    anyhow::ensure!(!all.is_empty(), "no requests were made");
    let elapsed = start.elapsed();
    let rps = all.len() as f64 / elapsed.as_secs_f64();
    let [p50, p99, max] = percentiles(all, [0.50, 0.99, 1.0]);
    Ok(Stats { rps, p50, p99, max })
}

/// The `ps` percentiles (0 to 1) of a non-empty sample.
pub fn percentiles<const N: usize>(mut all: Vec<Duration>, ps: [f64; N]) -> [Duration; N] {
    all.sort();
    ps.map(|p| all[((all.len() as f64 * p) as usize).min(all.len() - 1)])
}
