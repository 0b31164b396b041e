//! Integer ids, as the seeds use them: one atomic counter item per entity kind, so allocation
//! is one `ADD` round trip and never collides across Lambda instances.

use civic_store::{Key, Table, Update};

use crate::{Error, Result};

pub async fn next_id(table: &dyn Table, kind: &str) -> Result<i64> {
    let item = table
        .update(Update::new(Key::new("COUNTER", kind)).add("value", 1))
        .await?;
    item.get("value")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| Error::Internal(format!("counter {kind} is not an integer")))
}
