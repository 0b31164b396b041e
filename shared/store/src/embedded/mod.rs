//! The embedded backend: one redb file, one redb table per app table plus one for its GSI1.
//!
//! redb has a single writer: every write call goes to the store's writer thread, which checks
//! and applies it inside the write transaction of a group of calls and commits the group with
//! `Durability::Immediate` (one fsync) before any call of it is acknowledged (see [`group`]).

mod feed;
mod group;
mod query;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition, TableError};
use serde_json::{Number, Value};

use crate::common::{
    add_numbers, backend, query_is_empty, validate_item, validate_key, validate_transact,
    validate_update,
};
use crate::{
    Cond, GSI1, GSI1PK, GSI1SK, Item, Key, PK, Page, Query, Result, Row, SK, StoreError, Table,
    Update, VERSION, Write, is_expired, metrics, now_epoch,
};

type ItemKey = (&'static str, &'static str);
/// An owned (PK, SK).
type OwnedKey = (String, String);
/// (GSI1PK, GSI1SK, PK, SK).
type IndexKey = (&'static str, &'static str, &'static str, &'static str);

fn items_def(name: &str) -> TableDefinition<'_, ItemKey, &'static [u8]> {
    TableDefinition::new(name)
}

fn index_def(name: &str) -> TableDefinition<'_, IndexKey, ()> {
    TableDefinition::new(name)
}

fn index_name(table: &str) -> String {
    format!("{table}#{GSI1}")
}

fn decode(bytes: &[u8]) -> Result<Item> {
    serde_json::from_slice(bytes).map_err(backend)
}

/// Items checked by the sweeper per read transaction, and deleted per write transaction.
const SWEEP_SCAN: usize = 4096;
const SWEEP_BATCH: usize = 256;

pub use group::Held;
use group::{Committer, Names};

/// The embedded store: a redb database at `<dir>/store.redb`.
#[derive(Clone)]
pub struct Embedded {
    db: Arc<Database>,
    committer: Arc<Committer>,
}

/// redb's page cache when nobody chose one. redb's own default is 1 GiB, which the process
/// would grow toward as the data grows: too much for the small boxes civic-local also runs on.
/// 32 MiB is the smallest size within 10% of the best throughput at 100k and at 1M stored
/// events (`cache-bench`; the README's "Memory" has the table).
pub const DEFAULT_CACHE_MB: u32 = 32;
pub const DEFAULT_CACHE_BYTES: usize = DEFAULT_CACHE_MB as usize * 1024 * 1024;

impl Embedded {
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`open`](Self::open) with a page cache of `cache_bytes`: the store's memory, beyond
    /// what is being read or written at the moment.
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(dir.join("store.redb"))
            .map_err(backend)?;
        let db = Arc::new(db);
        let committer = Arc::new(Committer::start(db.clone())?);
        Ok(Self { db, committer })
    }

    /// A store in memory, never written to disk: for models and benchmarks that measure
    /// something other than the disk.
    pub fn in_memory() -> Result<Self> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(backend)?;
        let db = Arc::new(db);
        let committer = Arc::new(Committer::start(db.clone())?);
        Ok(Self { db, committer })
    }

    pub fn table(&self, name: &str) -> EmbeddedTable {
        let stream = feed::stream_name(name);
        let streamed = self.db.begin_read().is_ok_and(|txn| {
            txn.list_tables()
                .is_ok_and(|mut t| t.any(|t| redb::TableHandle::name(&t) == stream))
        });
        EmbeddedTable {
            db: self.db.clone(),
            committer: self.committer.clone(),
            names: Names {
                items: name.into(),
                index: index_name(name).into(),
                stream: streamed.then(|| stream.into()),
            },
        }
    }

    /// Gives the table a change feed ([`crate::stream::Feed`]), as a DynamoDB table gets a
    /// stream: from now on every write to it is recorded. Handles opened before do not record,
    /// so call it at startup, before [`Self::table`].
    pub fn enable_stream(&self, name: &str) -> Result<EmbeddedTable> {
        let txn = self.db.begin_write().map_err(backend)?;
        txn.open_table(feed::stream_def(&feed::stream_name(name)))
            .map_err(backend)?;
        txn.commit().map_err(backend)?;
        Ok(self.table(name))
    }

    /// For tests of group commit: holds the writer thread (blocking until it is held) so the
    /// calls made meanwhile queue up and commit as one group once the guard is dropped.
    #[doc(hidden)]
    pub fn hold_writer(&self) -> Result<Held> {
        self.committer.hold()
    }

    /// For tests of group commit: write calls queued and not yet taken into a group.
    #[doc(hidden)]
    pub fn queued_writes(&self) -> usize {
        self.committer.waiting()
    }

    /// Physically deletes expired items of every table, in bounded batches so writers are
    /// never blocked for long. Returns how many items it deleted. Blocking.
    pub fn sweep_expired(&self) -> Result<usize> {
        metrics::hit();
        let names: Vec<String> = {
            let txn = self.db.begin_read().map_err(backend)?;
            let tables = txn.list_tables().map_err(backend)?;
            tables
                .map(|t| redb::TableHandle::name(&t).to_owned())
                .filter(|n| !n.ends_with(&format!("#{GSI1}")) && !n.ends_with("#STREAM"))
                .collect()
        };
        let mut deleted = 0;
        for name in names {
            let table = self.table(&name);
            let mut after = None;
            loop {
                let (expired, next) = table.scan_expired(after.take())?;
                if !expired.is_empty() {
                    metrics::hit();
                    deleted += table.write_blocking(move |w| {
                        let mut n = 0;
                        for key in &expired {
                            // Re-check: the item may have been rewritten since the scan.
                            if w.raw(key)?.is_some_and(|i| is_expired(&i, w.now)) {
                                w.erase(key)?;
                                n += 1;
                            }
                        }
                        Ok(n)
                    })?;
                }
                match next {
                    Some(k) => after = Some(k),
                    None => break,
                }
            }
        }
        Ok(deleted)
    }
}

/// One app table of an [`Embedded`] store.
#[derive(Clone)]
pub struct EmbeddedTable {
    db: Arc<Database>,
    committer: Arc<Committer>,
    names: Names,
}

/// An app table's open redb tables in a group's write transaction.
struct Writer<'t> {
    items: redb::Table<'t, ItemKey, &'static [u8]>,
    index: redb::Table<'t, IndexKey, ()>,
    /// The table's change feed, when it is streamed.
    feed: Option<feed::FeedWriter<'t>>,
    now: i64,
    /// This call has changed something (so a failure now would leave half a call).
    dirty: bool,
}

fn gsi_keys(item: &Item) -> Option<(&str, &str)> {
    match (item.get(GSI1PK), item.get(GSI1SK)) {
        (Some(Value::String(pk)), Some(Value::String(sk))) => Some((pk, sk)),
        _ => None,
    }
}

impl Writer<'_> {
    /// The stored item, expired or not.
    fn raw(&self, key: &Key) -> Result<Option<Item>> {
        let found = self
            .items
            .get((key.pk.as_str(), key.sk.as_str()))
            .map_err(backend)?;
        found.map(|v| decode(v.value())).transpose()
    }

    /// The stored item unless it has expired.
    fn live(&self, key: &Key) -> Result<Option<Item>> {
        Ok(self.raw(key)?.filter(|i| !is_expired(i, self.now)))
    }

    fn put(&mut self, key: &Key, item: &Item) -> Result<()> {
        self.dirty = true;
        let old = self.unlink(key)?;
        if let Some(feed) = &mut self.feed {
            feed.record(old.is_some(), Some(item))?;
        }
        if let Some((gpk, gsk)) = gsi_keys(item) {
            self.index
                .insert((gpk, gsk, key.pk.as_str(), key.sk.as_str()), ())
                .map_err(backend)?;
        }
        let bytes = serde_json::to_vec(item).map_err(backend)?;
        self.items
            .insert((key.pk.as_str(), key.sk.as_str()), bytes.as_slice())
            .map_err(backend)?;
        Ok(())
    }

    /// Removes the item and its index entry; returns what was stored, expired or not.
    fn erase(&mut self, key: &Key) -> Result<Option<Item>> {
        let old = self.unlink(key)?;
        if let (Some(feed), Some(_)) = (&mut self.feed, &old) {
            feed.record(true, None)?;
        }
        Ok(old)
    }

    /// [`Self::erase`] without a feed record: the first half of a put.
    fn unlink(&mut self, key: &Key) -> Result<Option<Item>> {
        let Some(old) = self.raw(key)? else {
            return Ok(None);
        };
        self.dirty = true;
        if let Some((gpk, gsk)) = gsi_keys(&old) {
            self.index
                .remove((gpk, gsk, key.pk.as_str(), key.sk.as_str()))
                .map_err(backend)?;
        }
        self.items
            .remove((key.pk.as_str(), key.sk.as_str()))
            .map_err(backend)?;
        Ok(Some(old))
    }

    /// Forgets the feed's records up to `upto`.
    fn trim_feed(&mut self, upto: u64) -> Result<()> {
        let Some(feed) = &mut self.feed else {
            return Ok(());
        };
        self.dirty |= feed.trim(upto)?;
        Ok(())
    }

    fn check(&self, key: &Key, cond: &Cond) -> Result<Option<Item>> {
        let live = self.live(key)?;
        if holds(cond, live.as_ref()) {
            Ok(live)
        } else {
            Err(StoreError::ConditionFailed)
        }
    }
}

fn holds(cond: &Cond, live: Option<&Item>) -> bool {
    match cond {
        Cond::Always => true,
        Cond::NotExists => live.is_none(),
        Cond::Exists => live.is_some(),
        Cond::Version(n) => live.and_then(|i| i.get(VERSION)).and_then(Value::as_i64) == Some(*n),
    }
}

fn cond_of(w: &Write) -> &Cond {
    match w {
        Write::Put { cond, .. } | Write::Delete { cond, .. } | Write::Check { cond, .. } => cond,
        Write::Update(u) => &u.cond,
    }
}

/// DynamoDB's `UpdateItem` on the live item (or a fresh one holding just the key).
fn apply_update(live: Option<Item>, u: &Update) -> Result<Item> {
    let mut item = live.unwrap_or_else(|| {
        Item::from_iter([
            (PK.into(), u.key.pk.clone().into()),
            (SK.into(), u.key.sk.clone().into()),
        ])
    });
    for (name, v) in &u.set {
        item.insert(name.clone(), v.clone());
    }
    for (name, v) in &u.set_if_absent {
        item.entry(name.clone()).or_insert_with(|| v.clone());
    }
    for (name, delta) in &u.add {
        let current = match item.get(name) {
            None => Number::from(0),
            Some(Value::Number(n)) => n.clone(),
            Some(_) => {
                return Err(StoreError::Invalid(format!(
                    "ADD on non-number attribute {name}"
                )));
            }
        };
        item.insert(name.clone(), Value::Number(add_numbers(&current, delta)?));
    }
    for name in &u.remove {
        item.remove(name);
    }
    Ok(item)
}

/// Runs blocking engine work off the async threads, counting one round trip.
async fn run<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    metrics::hit();
    tokio::task::spawn_blocking(f).await.map_err(backend)?
}

impl EmbeddedTable {
    /// Runs `f` in the next write group; returns once that group is durable.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        metrics::hit();
        self.committer.write(self.names.clone(), f).await
    }

    /// [`Self::write`] for blocking threads.
    fn write_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.committer.write_blocking(self.names.clone(), f)
    }

    /// Up to a batch of expired keys after `after`, and where to resume (`None`: done).
    fn scan_expired(&self, after: Option<OwnedKey>) -> Result<(Vec<Key>, Option<OwnedKey>)> {
        let txn = self.db.begin_read().map_err(backend)?;
        let items = match txn.open_table(items_def(&self.names.items)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok((Vec::new(), None)),
            Err(e) => return Err(backend(e)),
        };
        let lo = match &after {
            Some((pk, sk)) => Bound::Excluded((pk.as_str(), sk.as_str())),
            None => Bound::Unbounded,
        };
        let now = now_epoch();
        let mut expired = Vec::new();
        let range = items
            .range::<(&str, &str)>((lo, Bound::Unbounded))
            .map_err(backend)?;
        for (scanned, entry) in range.enumerate() {
            let (k, v) = entry.map_err(backend)?;
            let (pk, sk) = k.value();
            if is_expired(&decode(v.value())?, now) {
                expired.push(Key::new(pk, sk));
            }
            if scanned + 1 >= SWEEP_SCAN || expired.len() >= SWEEP_BATCH {
                return Ok((expired, Some((pk.to_owned(), sk.to_owned()))));
            }
        }
        Ok((expired, None))
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    async fn get_row(&self, key: &Key) -> Result<Option<Row>> {
        validate_key(key)?;
        let (db, name, key) = (self.db.clone(), self.names.items.clone(), key.clone());
        run(move || {
            let txn = db.begin_read().map_err(backend)?;
            let items = match txn.open_table(items_def(&name)) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(backend(e)),
            };
            let found = items
                .get((key.pk.as_str(), key.sk.as_str()))
                .map_err(backend)?;
            let Some(row) = found.map(|v| Row::json(v.value().to_vec())) else {
                return Ok(None);
            };
            Ok((!row.is_expired(now_epoch())?).then_some(row))
        })
        .await
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<()> {
        let key = validate_item(&item)?;
        self.write(move |w| {
            w.check(&key, &cond)?;
            w.put(&key, &item)
        })
        .await
    }

    async fn update(&self, update: Update) -> Result<Item> {
        validate_update(&update)?;
        self.write(move |w| {
            let live = w.check(&update.key, &update.cond)?;
            let item = apply_update(live, &update)?;
            w.put(&update.key, &item)?;
            Ok(item)
        })
        .await
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>> {
        validate_key(key)?;
        let key = key.clone();
        self.write(move |w| {
            w.check(&key, &cond)?;
            let now = w.now;
            Ok(w.erase(&key)?.filter(|i| !is_expired(i, now)))
        })
        .await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<()> {
        let keys = validate_transact(&writes)?;
        self.write(move |w| {
            // Check every condition and work out every item before changing anything, so a
            // failure leaves the group's transaction as it was (each write targets a distinct
            // item).
            let mut failed = Vec::new();
            let mut after = Vec::with_capacity(writes.len());
            for (i, (write, key)) in writes.iter().zip(&keys).enumerate() {
                let live = w.live(key)?;
                if !holds(cond_of(write), live.as_ref()) {
                    failed.push(i);
                    continue;
                }
                after.push(match write {
                    Write::Put { item, .. } => Some(Some(item.clone())),
                    Write::Update(u) => Some(Some(apply_update(live, u)?)),
                    Write::Delete { .. } => Some(None),
                    Write::Check { .. } => None,
                });
            }
            if !failed.is_empty() {
                return Err(StoreError::TransactionCanceled(failed));
            }
            for (key, item) in keys.iter().zip(after) {
                match item {
                    Some(Some(item)) => w.put(key, &item)?,
                    Some(None) => drop(w.erase(key)?),
                    None => {}
                }
            }
            Ok(())
        })
        .await
    }

    async fn query_rows(&self, query: Query) -> Result<Page<Row>> {
        if query_is_empty(&query)? {
            return Ok(Page::default());
        }
        let this = self.clone();
        run(move || this.query_sync(&query)).await
    }

    async fn ping(&self) -> Result<()> {
        let db = self.db.clone();
        run(move || db.begin_read().map(drop).map_err(backend)).await
    }
}
