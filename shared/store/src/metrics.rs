//! Round-trip counting: a global total, plus a per-request count when the caller runs inside
//! [`counting`] (the HTTP layer does, and reports it in a response header).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static TOTAL: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    static SCOPE: Arc<AtomicU64>;
}

/// Total round trips made by this process so far.
pub fn round_trips() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Runs `fut` and returns its output with the number of round trips it made.
pub async fn counting<F: Future>(fut: F) -> (F::Output, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let out = SCOPE.scope(counter.clone(), fut).await;
    (out, counter.load(Ordering::Relaxed))
}

/// Called by every backend once per call it makes to its engine or service.
pub(crate) fn hit() {
    TOTAL.fetch_add(1, Ordering::Relaxed);
    let _ = SCOPE.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
}

/// Write groups committed by the embedded store since the process started: one fsync each.
static GROUPS: AtomicU64 = AtomicU64::new(0);
/// Calls (`put`, `update`, `delete`, `transact`) those groups carried.
static GROUPED: AtomicU64 = AtomicU64::new(0);
/// The largest group so far.
static LARGEST: AtomicU64 = AtomicU64::new(0);

/// Cumulative group-commit figures of the embedded store; benches print the difference
/// between two snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Committed groups, i.e. fsyncs.
    pub groups: u64,
    /// Write calls carried by those groups.
    pub calls: u64,
    /// The largest group seen since the process started.
    pub max: u64,
}

impl CommitStats {
    /// The figures now.
    pub fn now() -> Self {
        Self {
            groups: GROUPS.load(Ordering::Relaxed),
            calls: GROUPED.load(Ordering::Relaxed),
            max: LARGEST.load(Ordering::Relaxed),
        }
    }

    /// Calls per group on average since `earlier`.
    pub fn mean_since(&self, earlier: &Self) -> f64 {
        let groups = self.groups.saturating_sub(earlier.groups).max(1);
        self.calls.saturating_sub(earlier.calls) as f64 / groups as f64
    }

    /// Groups (fsyncs) committed since `earlier`.
    pub fn groups_since(&self, earlier: &Self) -> u64 {
        self.groups.saturating_sub(earlier.groups)
    }
}

/// Called by the embedded store once per committed group of `calls` write calls.
pub(crate) fn group_committed(calls: u64) {
    GROUPS.fetch_add(1, Ordering::Relaxed);
    GROUPED.fetch_add(calls, Ordering::Relaxed);
    LARGEST.fetch_max(calls, Ordering::Relaxed);
}
