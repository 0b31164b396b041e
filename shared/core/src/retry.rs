//! Optimistic concurrency: read, compute, write conditionally on the version read; when another
//! writer got there first, read again.

use std::time::Duration;

use rand::Rng;

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
