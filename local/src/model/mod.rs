//! The scale model (issue 18): an app's real write path on an in-memory store wrapped in
//! [`Metered`], DynamoDB's limits, driven by a fleet in simulated time. Each device (or camera,
//! or light) reports at its rate from its own phase; requests of the same few milliseconds run
//! concurrently, and time advances without waiting, so 100,000 devices take seconds.
//!
//! Every scenario runs twice in one process: on the design before issue 18 and on the one
//! after, so the report compares like with like.

pub mod occupancy;
pub mod ozone;
pub mod streetlight;

use std::future::Future;
use std::sync::{Arc, Mutex};

use civic_store::model::{Metered, Report, monthly_cost};
use civic_store::stream::{Change, Feed};
use civic_store::{Embedded, EmbeddedTable};

/// A run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Simulated seconds of steady traffic.
    pub seconds: f64,
    /// Requests that start within this many simulated seconds run concurrently.
    pub step: f64,
    /// US dollars per million write request units (on-demand).
    pub price: f64,
}

/// One row of the report: a design at a fleet size.
pub struct Row {
    pub scenario: String,
    pub design: &'static str,
    /// Requests the fleet sent (events, batches, status reports).
    pub requests: u64,
    /// Every write unit, the aggregator's included, per request.
    pub wcu_per_request: f64,
    pub hottest: String,
    pub hottest_writes: u64,
    /// Share of requests whose transaction met another in flight on an item.
    pub conflict_rate: f64,
    /// At the fleet's steady rate.
    pub monthly_usd: f64,
}

impl Row {
    pub fn new(
        scenario: String,
        design: &'static str,
        kind: &str,
        report: &Report,
        run: Run,
    ) -> Self {
        let requests = report.kind(kind).requests;
        let hot = report.hottest();
        Self {
            scenario,
            design,
            requests,
            wcu_per_request: report.total_wcu as f64 / requests.max(1) as f64,
            hottest: hot.map(|h| h.key.clone()).unwrap_or_default(),
            hottest_writes: hot.map_or(0, |h| h.peak_writes),
            conflict_rate: report.conflict_rate(kind),
            monthly_usd: monthly_cost(report.total_wcu as f64 / run.seconds, run.price),
        }
    }
}

/// The report's table header.
pub const HEADER: &str = "| scenario | design | requests | WCU/request | hottest key | its peak writes/s | conflicts | $/month (writes) |\n|---|---|---:|---:|---|---:|---:|---:|";

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {:.2} | `{}` | {} | {:.3}% | {:.0} |",
            self.scenario,
            self.design,
            self.requests,
            self.wcu_per_request,
            self.hottest,
            self.hottest_writes,
            100.0 * self.conflict_rate,
            self.monthly_usd
        )
    }
}

/// A fresh in-memory store and the meter over one of its tables (streamed when `stream`).
pub fn metered(table: &str, stream: bool) -> anyhow::Result<(Embedded, Arc<Metered>)> {
    let store = Embedded::in_memory()?;
    let inner = if stream {
        store.enable_stream(table)?
    } else {
        store.table(table)
    };
    Ok((store, Arc::new(Metered::new(Arc::new(inner)))))
}

/// The aggregator as the event source mapping runs it, once per simulated second (its batching
/// window): the feed's new records in one batch, metered as the aggregator's, then trimmed.
pub struct Follower {
    feed: EmbeddedTable,
    meter: Arc<Metered>,
    position: Mutex<Option<String>>,
}

impl Follower {
    pub fn new(store: &Embedded, table: &str, meter: Arc<Metered>) -> Arc<Self> {
        let position = Mutex::new(None);
        let feed = store.table(table);
        Arc::new(Self {
            feed,
            meter,
            position,
        })
    }

    /// Applies the records since the last tick with `apply`.
    pub async fn tick<F>(&self, apply: impl FnOnce(Vec<Change>) -> F) -> anyhow::Result<()>
    where
        F: Future<Output = civic_core::Result<()>>,
    {
        let from = self.position.lock().unwrap().clone();
        let batch = self.feed.changes(from.as_deref(), usize::MAX).await?;
        let Some(last) = batch.last().map(|c| c.seq.clone()) else {
            return Ok(());
        };
        self.meter.scoped("aggregator", apply(batch)).await?;
        self.feed.trim(&last).await?;
        *self.position.lock().unwrap() = Some(last);
        Ok(())
    }
}

/// A platform on `store`, as the apps' `State::new` wants one. The model stores no blobs; the
/// platform wants a blob directory all the same.
pub fn platform(store: Embedded) -> anyhow::Result<civic_core::Platform> {
    let blobs = std::env::temp_dir().join(format!("civic-model-{}", std::process::id()));
    let backend = civic_store::Backend::Embedded {
        store,
        blobs: Arc::new(civic_store::FsBlob::open(&blobs)?),
    };
    let limits = civic_core::layers::Limits::default();
    civic_core::Platform::new(backend, vec![7; 32], limits).map_err(anyhow::Error::msg)
}

/// Arrival times: `count` senders, each every `period` seconds from its own phase, over
/// `run.seconds`; sorted, as (time, sender, n-th report of that sender).
pub fn arrivals(count: usize, period: f64, run: Run) -> Vec<(f64, usize, u64)> {
    let mut out = Vec::new();
    for i in 0..count {
        // Phases spread evenly, so the fleet's rate is steady (the worst second is no fluke).
        let phase = period * (i as f64 + 0.5) / count as f64;
        let mut k = 0;
        while phase + k as f64 * period < run.seconds {
            out.push((phase + k as f64 * period, i, k));
            k += 1;
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Drives `request` over `arrivals` in simulated time: the requests of each `run.step` run
/// concurrently at that step's time, and `tick` runs at every whole simulated second (the
/// aggregator's batching window).
pub async fn drive<R, RF, T, TF>(
    meter: &Metered,
    arrivals: &[(f64, usize, u64)],
    run: Run,
    request: R,
    mut tick: T,
) -> anyhow::Result<()>
where
    R: Fn(usize, u64, f64) -> RF,
    RF: Future<Output = anyhow::Result<()>>,
    T: FnMut() -> TF,
    TF: Future<Output = anyhow::Result<()>>,
{
    let mut next_second = 1.0;
    for batch in arrivals.chunk_by(|a, b| (a.0 / run.step).floor() == (b.0 / run.step).floor()) {
        let at = batch[0].0;
        while at >= next_second {
            meter.set_now(next_second);
            tick().await?;
            next_second += 1.0;
        }
        meter.set_now(at);
        let calls = batch.iter().map(|&(t, i, k)| request(i, k, t));
        for r in futures::future::join_all(calls).await {
            r?;
        }
    }
    meter.set_now(next_second);
    tick().await
}
