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
