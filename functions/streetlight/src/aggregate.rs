//! The cities' summary counters (lights on, off, in error), counted off the request path from
//! the table's change feed: DynamoDB Streams on AWS (the `streetlight-aggregator` function),
//! the embedded store's feed in civic-local.
//!
//! Why: every status change used to `ADD` to its city's `SUMMARY` item in its own transaction,
//! so at fleet scale that item took a whole city's change rate (at dusk, every light of the
//! city switches within minutes) and concurrent changes cancelled each other on it. Now a
//! change only says what it changed: its transaction already writes the light item, which
//! carries the transition ([`SummaryDelta`], tagged with the light version it was written at).
//! The aggregator folds a feed batch into one `ADD` per city, so a summary is written at the
//! feed's batch rate, whatever the number of lights. It lags the lights by the feed's delay
//! (at most about a second locally, the event source mapping's 1 s batching window on AWS);
//! reading it is still one `GetItem`.
//!
//! Exactly once: [`civic_core::feed::count`] writes the sums with the feed shard's checkpoint
//! in one transaction, and skips what the checkpoint covers when a batch comes again.
//! Creating and deleting a light are admin-rate writes and still count it (`total_lights`
//! and its status) in their own transactions; additions commute, so a delete that overtakes
//! the aggregator still leaves exact counts once the feed is applied.

use std::collections::BTreeMap;

use civic_core::Result;
use civic_store::stream::{Change, ChangeKind};
use civic_store::{Item, SK, Table, Update, VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keys::{LIGHT_SK, checkpoint_key, summary_key};
use crate::lights::Status;

/// Where the cities' summary counters are counted: [`civic_core::feed::Mode`].
pub use civic_core::feed::Mode;

/// The light item's attribute holding its last status change's [`SummaryDelta`].
pub const DELTA: &str = "summary_delta";

/// What one write of a light changed in its city's summary, stored on the light item by
/// that write (and only by a write that changed its status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryDelta {
    /// The light version the delta was written at: a later write of the light that kept the
    /// attribute would carry it at another version, and count nothing.
    pub version: i64,
    pub from: Status,
    pub to: Status,
    /// When it was written (RFC 3339, wall clock): the summary's `last_updated`.
    pub at: String,
}

/// Applies a batch of the feed, each shard's records in order, exactly once
/// ([`civic_core::feed::count`]), then stamps each changed city's `last_updated`. Returns the
/// summaries it stamped, as that write left them (keyed by city as the summary is), which are
/// then published live without reading them again.
pub async fn apply(table: &dyn Table, changes: Vec<Change>) -> Result<Vec<(String, Item)>> {
    // Keyed as the summary is, so lights that spell their city differently stamp it once.
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for (city, d) in changes.iter().filter_map(delta) {
        let at = last.entry(city.trim().to_lowercase()).or_default();
        if d.at > *at {
            *at = d.at;
        }
    }
    civic_core::feed::count(table, changes, checkpoint_key, increments).await?;
    let mut stamped = Vec::with_capacity(last.len());
    for (city, at) in last {
        // A time, not a count: a batch applied again sets it again, to a time just as recent.
        // One write per city per feed batch, as the counts are.
        let summary = table
            .update(Update::new(summary_key(&city)).set("last_updated", at))
            .await?;
        stamped.push((city, summary));
    }
    Ok(stamped)
}

/// The city and delta a record's light write made, if it made one (an insert or a modify of
/// a light item whose delta is tagged with the version written).
fn delta(record: &Change) -> Option<(String, SummaryDelta)> {
    if record.kind == ChangeKind::Remove {
        return None;
    }
    let image = record.new_image.as_ref()?;
    if image.get(SK).and_then(Value::as_str) != Some(LIGHT_SK) {
        return None;
    }
    let raw = image.get(DELTA)?;
    let Ok(delta) = serde_json::from_value::<SummaryDelta>(raw.clone()) else {
        // A stored delta that does not read as one is a bug, not a reason to stop the shard.
        tracing::error!(seq = %record.seq, "a light's summary delta does not decode");
        return None;
    };
    let city = image.get("city").and_then(Value::as_str)?.to_owned();
    let version = image.get(VERSION).and_then(Value::as_i64);
    (version == Some(delta.version) && delta.from != delta.to).then_some((city, delta))
}

/// The city summary's `ADD`s for one record: none unless it wrote a delta.
fn increments(record: &Change) -> Vec<Update> {
    let Some((city, d)) = delta(record) else {
        return Vec::new();
    };
    vec![
        Update::new(summary_key(&city))
            .add(d.from.counter(), -1)
            .add(d.to.counter(), 1)
            .add(crate::live::SEQ, 1),
    ]
}
