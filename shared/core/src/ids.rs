//! Integer ids, as the seeds use them: one atomic counter item per entity kind, so allocation
//! is one `ADD` round trip and never collides across Lambda instances.

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
