//! Integer ids, as the seeds use them: one atomic counter item per entity kind, so allocation
//! is one `ADD` round trip and never collides across Lambda instances. For records written at
//! the fleet's rate, [`stamp`] instead: a counter item every request writes is a hot key.

use std::sync::atomic::{AtomicI64, Ordering};

use civic_store::{Key, Table, Update};

use crate::{Error, Result};

/// The counter item of an entity kind.
pub fn counter_key(kind: &str) -> Key {
    Key::new("COUNTER", kind)
}

pub async fn next_id(table: &dyn Table, kind: &str) -> Result<i64> {
    reserve(table, kind, 1).await
}

/// Reserves `n` consecutive ids of a kind in one `ADD` (a write that opens several records at
/// once pays one round trip, not `n`); returns the first.
pub async fn reserve(table: &dyn Table, kind: &str, n: usize) -> Result<i64> {
    let n = n as i64;
    let item = table
        .update(Update::new(counter_key(kind)).add("value", n))
        .await?;
    let last = item
        .get("value")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| Error::Internal(format!("counter {kind} is not an integer")))?;
    Ok(last - n + 1)
}

/// The last [`stamp`] this process handed out.
static LAST_STAMP: AtomicI64 = AtomicI64::new(0);

/// An increasing id without a shared counter: the time now in microseconds since the epoch,
/// made strictly greater than every stamp this process handed out before and than `floor`, the
/// newest one stored for the same owner (which another process may have written). So one
/// owner's stamps increase whatever the clocks of the processes that took them, when each is
/// written conditioned on the version that held `floor`; stamps of different owners follow the
/// clock and may collide. Integers below 2^53 until the year 2255: exact in JavaScript too.
pub fn stamp(floor: i64) -> i64 {
    let now = crate::time::now().unix_timestamp_nanos() / 1000;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let next = |last: i64| now.max(last + 1).max(floor + 1);
    let last = LAST_STAMP
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(next(last)))
        .unwrap_or_else(|last| last);
    next(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_clock_and_pass_the_floor() {
        let a = stamp(0);
        assert!(stamp(0) > a);
        // A floor ahead of this process's clock (another instance's): the stamp still passes it.
        let ahead = a + 60_000_000;
        assert_eq!(stamp(ahead), ahead + 1);
        assert!(
            stamp(0) > ahead + 1,
            "never below a stamp handed out before"
        );
        // Microseconds since the epoch: 16 digits this century.
        assert_eq!(a.to_string().len(), 16);
    }
}
