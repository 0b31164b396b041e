//! The embedded change feed, DynamoDB Streams' `NEW_IMAGE` on one machine: each write to a
//! streamed table appends a record to `<table>#STREAM` in the same redb transaction, so a
//! change is in the feed exactly when it is committed, and a crash loses neither or both.
//!
//! A table is streamed once [`super::Embedded::enable_stream`] created that redb table (like
//! DynamoDB's `StreamSpecification`, a property of the table that survives restarts). Records
//! stay until the consumer trims them; there is one shard, `local`.

use redb::{ReadableTable, TableDefinition, TableError, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{EmbeddedTable, run};
use crate::common::backend;
use crate::stream::{Change, ChangeKind, Feed, seq};
use crate::{Item, Result, StoreError};

/// The one shard of an embedded feed.
pub const SHARD: &str = "local";

pub(super) fn stream_def(name: &str) -> TableDefinition<'_, u64, &'static [u8]> {
    TableDefinition::new(name)
}

pub(super) fn stream_name(table: &str) -> String {
    format!("{table}#STREAM")
}

/// The key of the feed's one non-record entry: the next sequence number, kept apart so that
/// numbering goes on after every record has been trimmed (a consumer's position and
/// checkpoint must never see a number twice). Records are numbered from 1.
const NEXT: u64 = 0;

/// A record as stored: what happened and the item afterwards.
#[derive(Serialize, Deserialize)]
struct Record {
    kind: u8,
    new: Option<Item>,
}

const INSERT: u8 = b'I';
const MODIFY: u8 = b'M';
const REMOVE: u8 = b'R';

/// The feed's table in a group's write transaction, and the next sequence number.
pub(super) struct FeedWriter<'t> {
    table: redb::Table<'t, u64, &'static [u8]>,
    next: u64,
}

impl<'t> FeedWriter<'t> {
    pub(super) fn open(txn: &'t WriteTransaction, name: &str) -> Result<Self> {
        let table = txn.open_table(stream_def(name)).map_err(backend)?;
        let next = table.get(NEXT).map_err(backend)?.map_or(Ok(1), |v| {
            let bytes = v
                .value()
                .try_into()
                .map_err(|_| backend("bad feed counter"))?;
            Ok(u64::from_le_bytes(bytes))
        })?;
        Ok(Self { table, next })
    }

    /// Appends the change of one item: `new` is the item after it (`None`: removed), and
    /// `existed` whether there was one before.
    pub(super) fn record(&mut self, existed: bool, new: Option<&Item>) -> Result<()> {
        let kind = match (existed, new) {
            (_, None) => REMOVE,
            (false, Some(_)) => INSERT,
            (true, Some(_)) => MODIFY,
        };
        let bytes = serde_json::to_vec(&Record {
            kind,
            new: new.cloned(),
        })
        .map_err(backend)?;
        self.table
            .insert(self.next, bytes.as_slice())
            .map_err(backend)?;
        self.next += 1;
        self.table
            .insert(NEXT, self.next.to_le_bytes().as_slice())
            .map_err(backend)?;
        Ok(())
    }

    /// Drops the records up to `upto`; whether it dropped any.
    pub(super) fn trim(&mut self, upto: u64) -> Result<bool> {
        let mut any = false;
        loop {
            let first = self.table.range(NEXT + 1..).map_err(backend)?.next();
            let first = first.transpose().map_err(backend)?.map(|(k, _)| k.value());
            match first {
                Some(k) if k <= upto => drop(self.table.remove(k).map_err(backend)?),
                _ => return Ok(any),
            }
            any = true;
        }
    }
}

fn position(after: Option<&str>) -> Result<u64> {
    after.map_or(Ok(0), |s| {
        s.parse()
            .map_err(|_| StoreError::Invalid(format!("bad feed position {s}")))
    })
}

impl EmbeddedTable {
    fn stream(&self) -> Result<std::sync::Arc<str>> {
        self.names
            .stream
            .clone()
            .ok_or_else(|| StoreError::Invalid(format!("{} has no stream", self.names.items)))
    }
}

#[async_trait::async_trait]
impl Feed for EmbeddedTable {
    async fn changes(&self, after: Option<&str>, limit: usize) -> Result<Vec<Change>> {
        let (db, name, from) = (self.db.clone(), self.stream()?, position(after)?);
        run(move || {
            let txn = db.begin_read().map_err(backend)?;
            let table = match txn.open_table(stream_def(&name)) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(backend(e)),
            };
            let mut out = Vec::new();
            for entry in table.range(from + 1..).map_err(backend)?.take(limit) {
                let (k, v) = entry.map_err(backend)?;
                let r: Record = serde_json::from_slice(v.value()).map_err(backend)?;
                out.push(Change {
                    shard: SHARD.into(),
                    seq: seq(k.value()),
                    kind: match r.kind {
                        INSERT => ChangeKind::Insert,
                        MODIFY => ChangeKind::Modify,
                        _ => ChangeKind::Remove,
                    },
                    new_image: r.new,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn trim(&self, upto: &str) -> Result<()> {
        let upto = position(Some(upto))?;
        self.stream()?;
        self.write(move |w| w.trim_feed(upto)).await
    }
}
