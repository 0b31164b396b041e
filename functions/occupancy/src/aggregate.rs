//! The facility's crossing counters (occupancy, entries, exits, open alerts), counted off the
//! request path from the table's change feed: DynamoDB Streams on AWS (the
//! `occupancy-aggregator` function), the embedded store's feed in civic-local.
//!
//! Why: every camera's batch used to `ADD` to the one `FACILITY` item in its own transaction,
//! so at fleet scale that item took the whole fleet's batch rate (DynamoDB allows about 1,000
//! writes/s per partition) and concurrent batches cancelled each other on it. Now a batch only
//! says what it changed: its transaction already writes the camera item, which carries the
//! delta ([`FacilityDelta`], tagged with the camera version it was written at). The aggregator
//! folds a feed batch into one `ADD` on the facility, so the item is written at the feed's
//! batch rate, whatever the number of cameras. It lags the cameras by the feed's delay (about
//! a second locally, the event source mapping's batching window on AWS). A camera's own
//! counters stay in its transaction: one camera writes them, and they never lag.
//!
//! Exactly once: [`civic_core::feed::count`] writes the sums with the feed shard's checkpoint
//! in one transaction, and skips what the checkpoint covers when a batch comes again.
//! Configuration counters (cameras, capacity) and resolving an alert are admin-rate writes and
//! stay in their own transactions.

use civic_core::Result;
use civic_store::stream::{Change, ChangeKind};
use civic_store::{SK, Update, VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::State;
use crate::keys::{checkpoint_key, facility_key};

/// Where the facility's crossing counters are counted: [`civic_core::feed::Mode`].
pub use civic_core::feed::Mode;

/// What one write of a camera changed in the facility's counters, stored in the camera's live
/// state (`live.facility`) by that write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacilityDelta {
    /// The camera version the delta was written at: any later write of the camera (a config
    /// update, a resolved alert) carries the same stale delta at another version, and counts
    /// nothing.
    pub version: i64,
    pub occupancy: i64,
    pub entries: i64,
    pub exits: i64,
    /// Alerts the write opened.
    pub alerts: i64,
    /// When it was written (RFC 3339, wall clock): the facility's `last_updated`.
    pub at: String,
}

/// Applies a batch of the feed, each shard's records in order, exactly once
/// ([`civic_core::feed::count`]), then stamps the facility's `last_updated`.
pub async fn apply(s: &State, changes: Vec<Change>) -> Result<()> {
    let last = changes.iter().filter_map(delta).map(|d| d.at).max();
    civic_core::feed::count(s.table.as_ref(), changes, checkpoint_key, increments).await?;
    if let Some(at) = last {
        // A time, not a count: a batch applied again sets it again, to a time just as recent.
        // One write per feed batch, as the counts are; it also counts the live change, so the
        // item it returns is what the page gets, in order.
        let stamp = Update::new(facility_key())
            .set("last_updated", at)
            .add(crate::live::SEQ, 1);
        let facility = s.table.update(stamp).await?;
        crate::live::facility(&s.platform, facility).await;
    }
    Ok(())
}

/// The delta a record's camera write made, if it made one (an insert or a modify of a camera
/// item whose delta is tagged with the version written).
fn delta(record: &Change) -> Option<FacilityDelta> {
    if record.kind == ChangeKind::Remove {
        return None;
    }
    let image = record.new_image.as_ref()?;
    if image.get(SK).and_then(Value::as_str) != Some("CAMERA") {
        return None;
    }
    let raw = image.get("live")?.get("facility")?;
    let delta = match serde_json::from_value::<FacilityDelta>(raw.clone()) {
        Ok(d) => d,
        Err(_) => {
            // A stored delta that does not read as one is a bug, not a reason to stop the shard.
            tracing::error!(seq = %record.seq, "a camera's facility delta does not decode");
            return None;
        }
    };
    let version = image.get(VERSION).and_then(Value::as_i64);
    (version == Some(delta.version)).then_some(delta)
}

/// The facility's `ADD`s for one record: none unless it wrote a delta.
fn increments(record: &Change) -> Vec<Update> {
    let Some(d) = delta(record) else {
        return Vec::new();
    };
    vec![
        Update::new(facility_key())
            .add("occupancy", d.occupancy)
            .add("entries", d.entries)
            .add("exits", d.exits)
            .add("active_alerts", d.alerts),
    ]
}
