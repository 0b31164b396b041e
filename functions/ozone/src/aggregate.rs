//! Usage that many devices share, every device's (`Scope::All`) and each outlet's, counted
//! off the request path from the table's change feed: DynamoDB Streams on AWS (the
//! `ozone-aggregator` function), the embedded store's feed in civic-local.
//!
//! Why: those rollups used to be `ADD`s in every event's transaction, so at fleet scale every
//! event wrote the same few items. Their partition took the whole fleet's event rate (DynamoDB
//! allows about 1,000 writes/s per partition), and concurrent transactions on one item cancel
//! each other. The aggregator folds a batch of events into one `ADD` per bucket, so those items
//! are written at the batch rate, whatever the size of the fleet. They lag the events by the
//! feed's delay (about a second locally, the event source mapping's batching window on AWS).
//! Per-device and per-machine rollups stay in the event's own transaction: one device writes
//! them, so they are neither hot nor contended, and a device's own stats never lag.
//!
//! Exactly once: [`civic_core::feed::count`] writes the sums with the feed shard's checkpoint
//! in one transaction, and skips what the checkpoint covers when a batch comes again.

use chrono::DateTime;
use civic_core::Result;
use civic_store::stream::{Change, ChangeKind};
use civic_store::{PK, SK, Update};
use serde::Deserialize;
use serde_json::Value;

use crate::gateway::Device;
use crate::keys::{checkpoint_key, event_receipt, flushed_key};
use crate::rollup::{self, Scope};
use crate::{State, Treatment};

/// Where the shared rollups are counted: [`civic_core::feed::Mode`].
pub use civic_core::feed::Mode;

/// The scopes an event of `device` counts in that other devices share.
pub fn shared_scopes(outlet: Option<i64>) -> Vec<Scope> {
    let mut scopes = vec![Scope::All];
    scopes.extend(outlet.map(Scope::Outlet));
    scopes
}

/// The scopes an event counts in at ingest: the device's and its machine's, plus the shared
/// ones when they are counted inline.
pub fn ingest_scopes(s: &State, device_id: &str, device: &Device) -> Vec<Scope> {
    let mut scopes = vec![Scope::Device(device_id.to_owned())];
    scopes.extend(device.machine_id.map(Scope::Machine));
    if s.config.fleet_rollups == Mode::Inline {
        scopes.extend(shared_scopes(device.outlet_id));
    }
    scopes
}

/// The attribute of a stored event naming its device's outlet when it happened, which the
/// aggregator counts it in.
pub const OUTLET: &str = "outlet_id";

/// Applies a batch of the feed, each shard's records in order, exactly once
/// ([`civic_core::feed::count`]).
pub async fn apply(s: &State, changes: Vec<Change>) -> Result<()> {
    let flushed = s.table.get(&flushed_key()).await?;
    let flushed = flushed
        .and_then(|f| f.get("receipt")?.as_i64())
        .unwrap_or(0);
    let adds = |record: &Change| increments(s, record, flushed);
    civic_core::feed::count(s.table.as_ref(), changes, checkpoint_key, adds).await
}

/// What an inserted event item says about shared usage.
#[derive(Deserialize)]
struct Counted {
    treatment: Option<Treatment>,
    occurred_at: String,
    #[serde(default)]
    outlet_id: Option<i64>,
}

/// The shared rollups one record adds to: none unless it inserted a treatment event received
/// after the last flush.
fn increments(s: &State, record: &Change, flushed: i64) -> Vec<Update> {
    let Some(image) = record
        .new_image
        .as_ref()
        .filter(|_| record.kind == ChangeKind::Insert)
    else {
        return Vec::new();
    };
    let is_event = image
        .get(PK)
        .and_then(Value::as_str)
        .is_some_and(|pk| pk.starts_with(crate::keys::EVENTS_PREFIX));
    let receipt = image
        .get(SK)
        .and_then(Value::as_str)
        .and_then(event_receipt);
    if !is_event || receipt.is_some_and(|r| r < flushed) {
        return Vec::new();
    }
    let Ok(counted) = serde_json::from_value::<Counted>(Value::Object(image.clone())) else {
        return skip(record);
    };
    // Status reports and other events bill nothing.
    let Some(t) = counted.treatment else {
        return Vec::new();
    };
    let Ok(at) = DateTime::parse_from_rfc3339(&counted.occurred_at) else {
        return skip(record);
    };
    rollup::increments(
        s.config.tz,
        at.to_utc(),
        &shared_scopes(counted.outlet_id),
        t,
    )
}

/// A stored event that does not read as one is a bug, not a reason to stop the shard.
fn skip(record: &Change) -> Vec<Update> {
    tracing::error!(seq = %record.seq, "an event record does not decode; not counted");
    Vec::new()
}
