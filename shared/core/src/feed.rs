//! Counters kept from a table's change feed, exactly once: what an app's stream function
//! (e.g. Ozone's rollup aggregator) does with a batch.
//!
//! The function says which `ADD`s each record makes; this folds a batch into one `ADD` per item
//! and writes them, at most [`MAX_ITEMS`] per transaction, each transaction together with the
//! feed shard's checkpoint (the last record it covers), on the condition that the checkpoint is
//! still the one read before. Records at or below the checkpoint are skipped, so a batch
//! delivered again (a retry, a bisected batch, a restart) adds nothing twice, and a failure
//! before the commit leaves both the counts and the checkpoint as they were.
//!
//! One shard's records must come in order (Lambda: `ParallelizationFactor: 1`); different
//! shards have their own checkpoints.

use std::collections::BTreeMap;

use civic_store::stream::Change;
use civic_store::{
    Cond, EXPIRES_AT, Item, Key, PK, SK, StoreError, Table, Update, VERSION, Write, now_epoch,
};
use serde_json::Value;

use crate::{Error, Result};

/// Where an app keeps counters that many writers share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// By the app's stream function, from the change feed ([`count`]).
    Stream,
    /// In each request's own transaction: no lag and no stream function, but a hot key at
    /// fleet scale. The design before issue 18, kept for the scale model's comparison.
    Inline,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "stream" => Ok(Self::Stream),
            "inline" => Ok(Self::Inline),
            _ => Err("stream or inline".into()),
        }
    }
}

/// The most items one transaction writes besides its checkpoint (DynamoDB takes 100).
pub const MAX_ITEMS: usize = 99;

/// Seconds a checkpoint outlives its last move: twice DynamoDB Streams' 24-hour retention, so
/// nothing it covers can come again by then, while the shards of a busy table, which come and
/// go every few hours, leave no items behind.
const CHECKPOINT_TTL: i64 = 2 * 86_400;

/// Applies `changes`, each shard's records in order, exactly once: `adds` gives the `ADD`s of
/// one record (none for records that count nothing), `checkpoint` the key of a shard's
/// checkpoint.
pub async fn count(
    table: &dyn Table,
    changes: Vec<Change>,
    checkpoint: impl Fn(&str) -> Key,
    adds: impl Fn(&Change) -> Vec<Update>,
) -> Result<()> {
    let mut shards: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for c in changes {
        shards.entry(c.shard.clone()).or_default().push(c);
    }
    for (shard, records) in shards {
        count_shard(table, &checkpoint(&shard), &records, &adds).await?;
    }
    Ok(())
}

/// The last record applied from a shard, and the version its next move is conditioned on.
struct Checkpoint {
    key: Key,
    seq: Option<String>,
    version: Option<i64>,
}

impl Checkpoint {
    async fn load(table: &dyn Table, key: &Key) -> Result<Self> {
        let item = table.get(key).await?;
        let field = |name| item.as_ref().and_then(|i| i.get(name)).cloned();
        Ok(Self {
            key: key.clone(),
            seq: field("seq").and_then(|v| v.as_str().map(str::to_owned)),
            version: field(VERSION).and_then(|v| v.as_i64()),
        })
    }

    /// The write that moves it to `seq`, only if nobody moved it since it was read.
    fn advance(&self, seq: &str) -> Write {
        let item = Item::from_iter([
            (PK.to_owned(), Value::from(self.key.pk.clone())),
            (SK.to_owned(), self.key.sk.clone().into()),
            ("seq".to_owned(), seq.into()),
            (EXPIRES_AT.to_owned(), (now_epoch() + CHECKPOINT_TTL).into()),
            (VERSION.to_owned(), (self.version.unwrap_or(0) + 1).into()),
        ]);
        let cond = self.version.map_or(Cond::NotExists, Cond::Version);
        Write::Put { item, cond }
    }

    /// The checkpoint once [`Self::advance`] to `seq` has committed, without reading it again.
    fn advanced(self, seq: &str) -> Self {
        let version = Some(self.version.unwrap_or(0) + 1);
        let seq = Some(seq.to_owned());
        Self {
            seq,
            version,
            ..self
        }
    }
}

async fn count_shard(
    table: &dyn Table,
    checkpoint: &Key,
    records: &[Change],
    adds: &impl Fn(&Change) -> Vec<Update>,
) -> Result<()> {
    let mut rest = records;
    // Each turn commits one chunk, or finds the checkpoint moved and reads it again.
    let mut cp = Checkpoint::load(table, checkpoint).await?;
    for _ in 0..records.len() * 2 + 10 {
        let done = cp.seq.as_deref();
        rest = &rest[rest
            .iter()
            .take_while(|c| Some(c.seq.as_str()) <= done)
            .count()..];
        if rest.is_empty() {
            return Ok(());
        }
        let (len, sums) = fold(rest, adds);
        let Some(last) = len.checked_sub(1).map(|l| &rest[l].seq) else {
            return Err(Error::Internal(format!(
                "a feed record adds to more than {MAX_ITEMS} items"
            )));
        };
        if sums.is_empty() {
            // Nothing to count: moving the checkpoint would only cost a write.
            rest = &rest[len..];
            continue;
        }
        let mut writes = vec![cp.advance(last)];
        writes.extend(sums.into_iter().map(|(key, sum)| {
            let update = sum
                .into_iter()
                .fold(Update::new(key), |u, (name, n)| u.add(&name, n));
            Write::Update(update)
        }));
        match table.transact(writes).await {
            Ok(()) => {
                rest = &rest[len..];
                cp = cp.advanced(last);
            }
            // Moved by another delivery of this shard, or two transactions met: read again.
            Err(StoreError::TransactionCanceled(_) | StoreError::Conflict) => {
                cp = Checkpoint::load(table, checkpoint).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Internal(format!(
        "no progress counting the feed at {}",
        checkpoint.pk
    )))
}

/// The sums of the longest prefix of `records` whose `ADD`s fit one transaction: its length
/// and the amount per item and attribute.
type Sums = BTreeMap<Key, BTreeMap<String, i64>>;

fn fold(records: &[Change], adds: &impl Fn(&Change) -> Vec<Update>) -> (usize, Sums) {
    let mut sums = Sums::new();
    for (i, record) in records.iter().enumerate() {
        let updates = adds(record);
        let new = updates
            .iter()
            .filter(|u| !sums.contains_key(&u.key))
            .count();
        if sums.len() + new > MAX_ITEMS {
            return (i, sums);
        }
        for u in updates {
            let item = sums.entry(u.key).or_default();
            for (name, n) in u.add {
                *item.entry(name).or_default() += n.as_i64().unwrap_or(0);
            }
        }
    }
    (records.len(), sums)
}
