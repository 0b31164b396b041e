//! Optimistic concurrency: read, compute, write conditionally on the version read; when another
//! writer got there first, read again.

use std::time::Duration;

use rand::Rng;

use civic_store::StoreError;

use crate::{Error, Result};

const ATTEMPTS: u32 = 50;

/// Runs `attempt` until it returns `Some`. `None` means it lost a race (its conditional write
/// failed); it is retried after a short jittered pause so that contenders spread out.
/// (A plain `FnMut` returning a future, not an async closure, so handlers stay `Send`.)
pub async fn optimistic<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    for n in 0..ATTEMPTS {
        if let Some(v) = attempt().await? {
            return Ok(v);
        }
        let cap = 2u64.pow(n.min(6)); // up to 64 ms
        let pause = Duration::from_millis(rand::rng().random_range(0..=cap)); // ThreadRng is !Send: not across .await
        tokio::time::sleep(pause).await;
    }
    Err(Error::Conflict(
        "The resource is being changed concurrently; retry".into(),
    ))
}

/// Whether a conditional write won: `Ok(false)` when another writer got there first (its
/// condition failed, or its transaction was cancelled or conflicted), so [`optimistic`] reads
/// again; any other store error is an error.
pub fn won(res: std::result::Result<(), StoreError>) -> Result<bool> {
    match res {
        Ok(()) => Ok(true),
        Err(
            StoreError::ConditionFailed | StoreError::TransactionCanceled(_) | StoreError::Conflict,
        ) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
