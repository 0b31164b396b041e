//! Storage behind two small traits.
//!
//! [`Table`] has DynamoDB's semantics (single-table design: string `PK`/`SK`, one GSI on
//! `GSI1PK`/`GSI1SK`, TTL on `expires_at`), so app code written against it runs unchanged on
//! DynamoDB in AWS and on the embedded redb engine locally. [`Blob`] is S3-shaped.
//!
//! Semantics every backend guarantees (checked by `tests/conformance/`):
//! - items are JSON objects; `PK` and `SK` are always present and are strings;
//! - an item whose `expires_at` (epoch seconds) is in the past is absent: reads skip it and
//!   conditions treat it as missing, whether or not the backend has physically deleted it yet;
//! - `Cond::Version(n)` holds when the stored item exists and its `version` equals `n`;
//! - `update` returns the whole item after the update (`ALL_NEW`); `ADD` on a missing
//!   attribute starts from 0, and on a missing item creates it (unless a condition forbids);
//! - `transact` applies all writes or none; when conditions fail it returns
//!   [`StoreError::TransactionCanceled`] naming the failed positions;
//! - queries return items in sort-key byte order (reversed when `forward` is false) and an
//!   opaque cursor; a `None` cursor means there is nothing more. A page may be shorter than
//!   `limit` (even empty) while a cursor is still returned;
//! - every call is one round trip, counted by [`round_trips`].

mod blob;
mod common;
mod dynamo;
#[cfg(feature = "embedded")]
mod embedded;
mod factory;
mod fsblob;
mod metrics;
pub mod model;
mod row;
mod s3;
pub mod stream;

pub use blob::{Blob, Capped, Object};
pub use dynamo::DynamoTable;
#[cfg(feature = "embedded")]
pub use embedded::{DEFAULT_CACHE_BYTES, DEFAULT_CACHE_MB, Embedded, EmbeddedTable};
pub use factory::{Backend, LazyS3};
pub use fsblob::FsBlob;
mod merge;
pub use merge::query_merged_as;
pub use metrics::{CommitStats, counting, round_trips};
pub use row::{Row, Typed};
pub use s3::S3Blob;
mod shards;
pub use shards::Shards;

use async_trait::async_trait;
use serde_json::{Number, Value};

/// A stored item: a JSON object holding at least `PK` and `SK`.
pub type Item = serde_json::Map<String, Value>;
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const EXPIRES_AT: &str = "expires_at";
pub const VERSION: &str = "version";
/// Name of the one global secondary index (keys `GSI1PK`/`GSI1SK`, projection ALL).
pub const GSI1: &str = "GSI1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("condition failed")]
    ConditionFailed,
    /// Positions (0-based) of the writes whose condition failed.
    #[error("transaction canceled: conditions failed at {0:?}")]
    TransactionCanceled(Vec<usize>),
    /// Another transaction touched the same items concurrently; safe to retry.
    #[error("transaction conflict")]
    Conflict,
    #[error("invalid pagination cursor")]
    BadCursor,
    #[error("invalid item: {0}")]
    Invalid(String),
    /// A stored item is not what the reader expects (a bug or a bad migration, not the
    /// caller's fault).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("store backend error: {0}")]
    Backend(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of a stored item.
    pub fn of(item: &Item) -> Result<Self> {
        let field = |name| {
            item.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| StoreError::Invalid(format!("item has no string {name}")))
        };
        Ok(Self {
            pk: field(PK)?,
            sk: field(SK)?,
        })
    }
}

/// A write's precondition on the item it targets.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Cond {
    #[default]
    Always,
    NotExists,
    Exists,
    /// Exists with `version == n` (optimistic concurrency).
    Version(i64),
}

/// An `UpdateItem`: `SET`, `SET if_not_exists`, `ADD` and `REMOVE` on top-level attributes.
#[derive(Clone, Debug)]
pub struct Update {
    pub key: Key,
    pub set: Item,
    pub set_if_absent: Item,
    pub add: Vec<(String, Number)>,
    pub remove: Vec<String>,
    pub cond: Cond,
}

impl Update {
    pub fn new(key: Key) -> Self {
        Self {
            key,
            set: Item::new(),
            set_if_absent: Item::new(),
            add: Vec::new(),
            remove: Vec::new(),
            cond: Cond::Always,
        }
    }
    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.set.insert(name.to_owned(), value.into());
        self
    }
    pub fn set_if_absent(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.set_if_absent.insert(name.to_owned(), value.into());
        self
    }
    pub fn add(mut self, name: &str, delta: impl Into<Number>) -> Self {
        self.add.push((name.to_owned(), delta.into()));
        self
    }
    pub fn remove(mut self, name: &str) -> Self {
        self.remove.push(name.to_owned());
        self
    }
    pub fn cond(mut self, cond: Cond) -> Self {
        self.cond = cond;
        self
    }
}

/// One write of a transaction.
#[derive(Clone, Debug)]
pub enum Write {
    Put {
        item: Item,
        cond: Cond,
    },
    Update(Update),
    Delete {
        key: Key,
        cond: Cond,
    },
    /// Only checks a condition (`ConditionCheck`).
    Check {
        key: Key,
        cond: Cond,
    },
}

/// Sort-key condition of a query.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SkRange {
    #[default]
    All,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
    Gte(String),
    Lte(String),
}

#[derive(Clone, Debug)]
pub struct Query {
    /// `None` for the table itself, `Some(GSI1)` for the index.
    pub index: Option<&'static str>,
    pub pk: String,
    pub sk: SkRange,
    pub forward: bool,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            index: None,
            pk: pk.into(),
            sk: SkRange::All,
            forward: true,
            limit: None,
            cursor: None,
        }
    }
    pub fn index(pk: impl Into<String>) -> Self {
        Self {
            index: Some(GSI1),
            ..Self::partition(pk)
        }
    }
    pub fn sk(mut self, sk: SkRange) -> Self {
        self.sk = sk;
        self
    }
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        self.sk(SkRange::Prefix(prefix.into()))
    }
    pub fn reverse(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

#[derive(Clone, Debug)]
pub struct Page<T = Item> {
    pub items: Vec<T>,
    /// Opaque; pass back in [`Query::cursor`] for the next page. `None` when done.
    pub cursor: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            cursor: None,
        }
    }
}

#[async_trait]
pub trait Table: Send + Sync {
    /// The live item at `key`, undecoded (see [`Typed`] for reads into a struct).
    async fn get_row(&self, key: &Key) -> Result<Option<Row>>;
    /// One page of live items, undecoded.
    async fn query_rows(&self, query: Query) -> Result<Page<Row>>;
    async fn put(&self, item: Item, cond: Cond) -> Result<()>;
    /// Applies the update and returns the item as it is afterwards.
    async fn update(&self, update: Update) -> Result<Item>;
    /// Deletes and returns the item that was there, if any.
    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>>;
    /// All or nothing; at most 100 writes, each on a distinct item.
    async fn transact(&self, writes: Vec<Write>) -> Result<()>;
    /// A cheap call that proves the backend answers (health checks).
    async fn ping(&self) -> Result<()>;

    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        self.get_row(key).await?.map(Row::into_item).transpose()
    }

    async fn query(&self, query: Query) -> Result<Page> {
        self.query_rows(query).await?.try_map(Row::into_item)
    }

    /// Every page of `query`, in order (see [`Typed::query_all_as`]).
    async fn query_all(&self, query: Query) -> Result<Vec<Item>> {
        self.query_all_as::<Item>(query).await
    }

    /// Put only when no live item has this key; `ConditionFailed` otherwise.
    async fn put_if_absent(&self, item: Item) -> Result<()> {
        self.put(item, Cond::NotExists).await
    }

    /// Optimistic concurrency: writes `item` with `version = expected + 1` when the stored
    /// version is `expected` (or, for `None`, when nothing is stored yet).
    async fn put_versioned(&self, mut item: Item, expected: Option<i64>) -> Result<i64> {
        let next = expected.unwrap_or(0) + 1;
        item.insert(VERSION.into(), next.into());
        let cond = expected.map_or(Cond::NotExists, Cond::Version);
        self.put(item, cond).await?;
        Ok(next)
    }
}

/// Current time in epoch seconds, the unit of `expires_at`.
pub fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Whether an item's TTL has passed at `now`.
pub fn is_expired(item: &Item, now: i64) -> bool {
    item.get(EXPIRES_AT)
        .and_then(Value::as_i64)
        .is_some_and(|at| at <= now)
}
