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
//! Exactly once: every transaction of the aggregator also moves the feed shard's checkpoint
//! (the sequence number of the last record it applied), on the condition that the checkpoint
//! is still the one read before. A record at or below the checkpoint is skipped, so a batch
//! delivered again (a retry, a bisected batch, a restart) adds nothing twice, and a crash
//! before the commit leaves both the counts and the checkpoint as they were.

use std::collections::BTreeMap;

use chrono::DateTime;
use civic_core::{Error, Result};
use civic_store::stream::{Change, ChangeKind};
use civic_store::{Cond, EXPIRES_AT, Item, PK, SK, StoreError, Table, Update, Write, now_epoch};
use serde::Deserialize;
use serde_json::Value;

use crate::gateway::Device;
use crate::keys::{checkpoint_key, event_receipt, flushed_key};
use crate::rollup::{self, Scope};
use crate::{State, Treatment};

/// Where the shared rollups are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// By the aggregator, from the change feed.
    Stream,
    /// In each event's transaction: no lag and no aggregator, but a hot partition at fleet
    /// scale. The design before issue 18, kept for the scale model's comparison.
    Inline,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stream" => Ok(Self::Stream),
            "inline" => Ok(Self::Inline),
            _ => Err("stream or inline".into()),
        }
    }
}

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

/// Seconds a checkpoint outlives its last move: twice the stream's retention.
const CHECKPOINT_TTL: i64 = 2 * 86_400;

/// The most items one transaction of the aggregator writes besides its checkpoint
/// (DynamoDB's limit is 100 per transaction).
const MAX_ITEMS: usize = 99;

/// Applies a batch of the feed, each shard's records in order, exactly once.
pub async fn apply(s: &State, changes: Vec<Change>) -> Result<()> {
    let mut shards: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for c in changes {
        shards.entry(c.shard.clone()).or_default().push(c);
    }
    let flushed = s.table.get(&flushed_key()).await?;
    let flushed = flushed
        .and_then(|f| f.get("receipt")?.as_i64())
        .unwrap_or(0);
    for (shard, records) in shards {
        apply_shard(s, &shard, &records, flushed).await?;
    }
    Ok(())
}

/// The last record applied from a shard, and the version its next move is conditioned on.
struct Checkpoint {
    seq: Option<String>,
    version: Option<i64>,
}

impl Checkpoint {
    async fn load(table: &dyn Table, shard: &str) -> Result<Self> {
        let item = table.get(&checkpoint_key(shard)).await?;
        let field = |name| item.as_ref().and_then(|i| i.get(name)).cloned();
        Ok(Self {
            seq: field("seq").and_then(|v| v.as_str().map(str::to_owned)),
            version: field(civic_store::VERSION).and_then(|v| v.as_i64()),
        })
    }

    /// The write that moves it to `seq`, only if nobody moved it since it was read. It expires
    /// after [`CHECKPOINT_TTL`]: DynamoDB Streams keeps records 24 hours, so nothing it covers
    /// can come again by then, and the shards of a busy table come and go every few hours.
    fn advance(&self, shard: &str, seq: &str) -> Write {
        let key = checkpoint_key(shard);
        let item = Item::from_iter([
            (PK.to_owned(), Value::from(key.pk)),
            (SK.to_owned(), key.sk.into()),
            ("seq".to_owned(), seq.into()),
            (EXPIRES_AT.to_owned(), (now_epoch() + CHECKPOINT_TTL).into()),
            (
                civic_store::VERSION.to_owned(),
                (self.version.unwrap_or(0) + 1).into(),
            ),
        ]);
        let cond = self.version.map_or(Cond::NotExists, Cond::Version);
        Write::Put { item, cond }
    }
}

async fn apply_shard(s: &State, shard: &str, records: &[Change], flushed: i64) -> Result<()> {
    let table = s.table.as_ref();
    let mut rest = records;
    // Each turn commits one chunk, or finds the checkpoint moved and reads it again.
    for _ in 0..records.len() * 2 + 10 {
        let cp = Checkpoint::load(table, shard).await?;
        let done = cp.seq.as_deref();
        rest = &rest[rest
            .iter()
            .take_while(|c| Some(c.seq.as_str()) <= done)
            .count()..];
        let Some(first) = rest.first() else {
            return Ok(());
        };
        let (len, adds) = fold(s, rest, flushed);
        let last = &rest[len - 1].seq;
        if adds.is_empty() {
            // Nothing to count: moving the checkpoint would only cost a write.
            rest = &rest[len..];
            continue;
        }
        let mut writes = vec![cp.advance(shard, last)];
        writes.extend(
            adds.into_iter()
                .map(|(key, add)| {
                    add.into_iter()
                        .fold(Update::new(key), |u, (name, n)| u.add(&name, n))
                })
                .map(Write::Update),
        );
        match table.transact(writes).await {
            Ok(()) => rest = &rest[len..],
            // Moved by another delivery of this shard, or two transactions met: read again.
            Err(StoreError::TransactionCanceled(_) | StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::debug!(shard, from = %first.seq, to = %last, "rollups aggregated");
    }
    Err(Error::Internal(format!(
        "aggregator made no progress on shard {shard}"
    )))
}

/// The `ADD`s of the longest prefix of `records` that fits one transaction: its length and
/// the amounts per item and attribute. Events received before the last flush (`flushed`, µs)
/// were flushed with the rest.
fn fold(
    s: &State,
    records: &[Change],
    flushed: i64,
) -> (usize, BTreeMap<civic_store::Key, BTreeMap<String, i64>>) {
    let mut adds: BTreeMap<civic_store::Key, BTreeMap<String, i64>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let writes = increments(s, record, flushed);
        let new = writes.iter().filter(|u| !adds.contains_key(&u.key)).count();
        if adds.len() + new > MAX_ITEMS {
            return (i, adds);
        }
        for u in writes {
            let item = adds.entry(u.key).or_default();
            for (name, n) in u.add {
                *item.entry(name).or_default() += n.as_i64().unwrap_or(0);
            }
        }
    }
    (records.len(), adds)
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
    let counted = serde_json::from_value::<Counted>(Value::Object(image.clone()));
    let (t, at) = match counted {
        Ok(Counted {
            treatment: Some(t),
            occurred_at,
            outlet_id,
        }) => match DateTime::parse_from_rfc3339(&occurred_at) {
            Ok(at) => ((t, outlet_id), at.to_utc()),
            Err(_) => return skip(record),
        },
        Ok(_) => return Vec::new(),
        Err(_) => return skip(record),
    };
    rollup::increments(s.config.tz, at, &shared_scopes(t.1), t.0)
}

/// A stored event that does not read as one is a bug, not a reason to stop the shard.
fn skip(record: &Change) -> Vec<Update> {
    tracing::error!(seq = %record.seq, "an event record does not decode; not counted");
    Vec::new()
}
