//! The soak bench (issue 21): its mixed load ([`load`]), and what each answer leaves behind:
//! a sample per request, from which the per-minute and per-kind figures are drawn.

pub mod load;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::Value;

use super::percentiles;

/// Longer than any healthy answer: a stuck request counts as an error instead of a stall.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The kinds of load, by the index the samples carry.
pub const KINDS: [&str; 4] = ["ozone http", "ozone mqtt", "crossings", "reads"];

/// One answered request: when it started (s into the soak), its kind, latency (µs), success.
pub struct Sample(pub f32, pub u8, pub u32, pub bool);

/// What the workers report, read by the sampler and at the end.
#[derive(Default)]
pub struct Log {
    pub samples: Mutex<Vec<Sample>>,
    pub errors: AtomicUsize,
    /// Numbers the next Ozone event.
    pub events: AtomicUsize,
    /// Ozone events acknowledged, so stored.
    pub stored: AtomicUsize,
    pub crossings: AtomicUsize,
}

impl Log {
    pub fn record(&self, start: Instant, kind: usize, t: Instant, outcome: &Result<()>) {
        let at = t.duration_since(start).as_secs_f32();
        let us = t.elapsed().as_micros() as u32;
        self.samples
            .lock()
            .unwrap()
            .push(Sample(at, kind as u8, us, outcome.is_ok()));
        if let Err(e) = outcome {
            // The first errors say what went wrong; a flood of them would bury the samples.
            if self.errors.fetch_add(1, Ordering::Relaxed) < 20 {
                eprintln!("error ({}, {at:.0} s): {e:#}", KINDS[kind]);
            }
        }
    }
}

/// The requests' success criterion: a 2xx, its body read to the end; the body as JSON
/// (`null` if it is not).
pub async fn ok(req: reqwest::RequestBuilder) -> Result<Value> {
    let body = ok_text(req).await?;
    Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// [`ok`] without parsing the body: for a bench whose client shares the machine with the
/// server and need not look at what it reads.
pub async fn ok_text(req: reqwest::RequestBuilder) -> Result<String> {
    let res = req.send().await?;
    let (status, body) = (res.status(), res.text().await?);
    ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

/// A minute's requests: count, errors, p50 and p99 of all, p99 per kind (ms).
pub struct MinuteRow(pub usize, pub usize, pub f64, pub f64, pub [f64; 4]);

impl MinuteRow {
    pub const HEADER: &str = "minute  requests  errors  p50 ms  p99 ms | p99 ms: ozone http  ozone mqtt  crossings  reads";

    pub fn of(samples: &[Sample], minute: usize) -> Self {
        let within = |s: &&Sample| (s.0 / 60.0) as usize == minute;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p = |kind: Option<u8>| {
            let all: Vec<Duration> = samples
                .iter()
                .filter(within)
                .filter(|s| kind.is_none_or(|k| s.1 == k))
                .map(|s| Duration::from_micros(s.2.into()))
                .collect();
            if all.is_empty() {
                [0.0; 2]
            } else {
                percentiles(all, [0.5, 0.99]).map(ms)
            }
        };
        let [p50, p99] = p(None);
        let count = samples.iter().filter(within).count();
        let errors = samples.iter().filter(within).filter(|s| !s.3).count();
        Self(count, errors, p50, p99, [0, 1, 2, 3].map(|k| p(Some(k))[1]))
    }

    pub fn line(&self, minute: usize) -> String {
        let k = self.4;
        format!(
            "{:>6} {:>9} {:>7} {:>7.1} {:>7.1} | {:>18.1} {:>11.1} {:>10.1} {:>6.1}",
            minute + 1,
            self.0,
            self.1,
            self.2,
            self.3,
            k[0],
            k[1],
            k[2],
            k[3]
        )
    }
}

/// The whole run per kind of load: requests, rate, p50, p99, max, errors.
pub fn by_kind(samples: &[Sample], log: &Log) {
    let seconds = samples.iter().map(|s| s.0).fold(0.0, f32::max).max(1.0) as f64;
    println!(
        "\n{:<11} {:>9} {:>7} {:>7} {:>7} {:>8} {:>6}",
        "kind", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    for (k, name) in KINDS.iter().enumerate() {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.1 as usize == k).collect();
        if of.is_empty() {
            continue;
        }
        let times = of
            .iter()
            .map(|s| Duration::from_micros(s.2.into()))
            .collect();
        let [p50, p99, max] = percentiles(times, [0.5, 0.99, 1.0]).map(|d| d.as_secs_f64() * 1e3);
        let errors = of.iter().filter(|s| !s.3).count();
        let rate = of.len() as f64 / seconds;
        println!(
            "{name:<11} {:>9} {rate:>7.0} {p50:>7.1} {p99:>7.1} {max:>8.1} {errors:>6}",
            of.len()
        );
    }
    let crossings = log.crossings.load(Ordering::Relaxed);
    println!(
        "Ozone events stored {} (preload included), crossings sent {crossings}",
        log.stored.load(Ordering::Relaxed)
    );
}
