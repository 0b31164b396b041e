//! A model of DynamoDB's limits, as a [`Table`] wrapper usable with either backend.
//!
//! [`Metered`] passes every call to the table it wraps unchanged and records what DynamoDB
//! on-demand would charge for it and where: write and read units per request kind (see
//! [`Metered::scoped`]), writes per partition key per second of simulated time (see
//! [`Metered::set_now`]), and transactions that overlap on an item, which real DynamoDB cancels
//! with `TransactionConflict`. A load generator drives it with simulated time, so a fleet of
//! 100,000 devices can be modelled on one machine in seconds; [`Metered::report`] sums it up.
//!
//! To know the size of the item a write replaces, the model reads it from the wrapped table
//! first (and, for a transaction, reads every item again after it commits). Those reads are not
//! charged, but they are round trips of the wrapped table and show in [`crate::round_trips`].

mod report;
mod size;
mod state;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::Value;
use state::{Load, State};

pub use report::{HotKey, KindStats, MONTH_SECONDS, Report, monthly_cost};
pub use size::{
    EVENTUAL_READ_FACTOR, READ_UNIT_BYTES, TRANSACT_FACTOR, WRITE_UNIT_BYTES, item_size,
    read_units, value_size, write_units,
};

use crate::{
    Cond, GSI1PK, GSI1SK, Item, Key, Page, Query, Result, Row, StoreError, Table, Update, Write,
};

tokio::task_local! {
    static KIND: &'static str;
    /// Simulated seconds the current request has spent in transactions so far: its calls
    /// happen one after the other, so its second transaction starts after its first ended.
    static ELAPSED: std::cell::Cell<f64>;
}

/// The kind of calls made outside any [`Metered::scoped`]; each such call is one request.
pub const OTHER: &str = "other";
/// Prefix of the hot-key name of a GSI partition: `GSI1#<GSI1PK>`.
pub const GSI_KEY_PREFIX: &str = "GSI1#";

/// Tunables of the model.
#[derive(Clone, Debug)]
pub struct Params {
    /// Simulated seconds a `transact` call is in flight; another transaction on one of its
    /// items meanwhile is a conflict. DynamoDB transactions take tens of milliseconds.
    pub txn_latency: f64,
    /// How many hot keys [`Report::hot`] lists.
    pub top: usize,
    /// How many keys' peaks are kept between prunes (at most twice this many are held), so
    /// memory stays bounded however many devices there are. The top keys are exact as long as
    /// `top <= tracked_keys`.
    pub tracked_keys: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            txn_latency: 0.02,
            top: 10,
            tracked_keys: 4096,
        }
    }
}

/// A [`Table`] that records what DynamoDB would charge for each call (see the module docs).
pub struct Metered {
    inner: Arc<dyn Table>,
    /// Simulated time in seconds, as `f64` bits, so reading it takes no lock.
    now: AtomicU64,
    state: Mutex<State>,
    params: Params,
}

impl Metered {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        Self::with_params(inner, Params::default())
    }

    pub fn with_params(inner: Arc<dyn Table>, params: Params) -> Self {
        Self {
            inner,
            now: AtomicU64::new(0f64.to_bits()),
            state: Mutex::default(),
            params,
        }
    }

    /// The wrapped table (calls on it are not recorded).
    pub fn inner(&self) -> &Arc<dyn Table> {
        &self.inner
    }

    /// Moves simulated time to `secs`; every later call happens at that time.
    pub fn set_now(&self, secs: f64) {
        self.now.store(secs.to_bits(), Ordering::Relaxed);
    }

    /// The current simulated time in seconds.
    pub fn now(&self) -> f64 {
        f64::from_bits(self.now.load(Ordering::Relaxed))
    }

    /// Runs `f` as one request of `kind`: everything `f` does on this table (in this task;
    /// spawned tasks are not followed) is charged to `kind`.
    pub async fn scoped<F: Future>(&self, kind: &'static str, f: F) -> F::Output {
        self.lock().kinds.entry(kind).or_default().requests += 1;
        KIND.scope(kind, ELAPSED.scope(std::cell::Cell::new(0.0), f))
            .await
    }

    /// When a call made now happens: the simulated time, plus what the current request spent
    /// in its earlier transactions.
    fn at(&self) -> f64 {
        self.now() + ELAPSED.try_with(std::cell::Cell::get).unwrap_or(0.0)
    }

    /// The figures so far, including the current simulated second.
    pub fn report(&self) -> Report {
        let state = self.lock();
        Report {
            kinds: state.kinds.clone(),
            total_wcu: state.kinds.values().map(|k| k.wcu).sum(),
            total_rcu: state.kinds.values().map(|k| k.rcu).sum(),
            seconds: state.span.map_or(0.0, |(a, b)| (b - a + 1) as f64),
            hot: state.hot(self.params.top),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `charge`, made at simulated time `at`, to the current kind; `txn` lists the items
    /// of a `transact` call.
    fn record(&self, at: f64, charge: Charge, txn: Option<&[Key]>) {
        let scoped = KIND.try_with(|k| *k).ok();
        let mut state = self.lock();
        state.advance(at, self.params.tracked_keys);
        for (key, load) in charge.loads {
            state.this_second.entry(key).or_default().add(load);
        }
        let conflict = txn.is_some_and(|keys| state.overlaps(keys, at, self.params.txn_latency));
        let stats = state.kinds.entry(scoped.unwrap_or(OTHER)).or_default();
        stats.requests += u64::from(scoped.is_none());
        stats.wcu += charge.wcu;
        stats.gsi_wcu += charge.gsi_wcu;
        stats.rcu += charge.rcu;
        stats.transactions += u64::from(txn.is_some());
        stats.conflicts += u64::from(conflict);
    }

    /// The item at `key` as it is now, for sizing; not charged. Errors read as "missing": the
    /// model must never change what the call itself returns.
    async fn peek(&self, key: Option<&Key>) -> Option<Image> {
        let row = self.inner.get_row(key?).await.ok()??;
        Some(Image::of(&row.decode::<Item>().ok()?))
    }

    async fn peek_all(&self, plan: &[Planned]) -> Vec<Option<Image>> {
        let mut images = Vec::with_capacity(plan.len());
        for p in plan {
            images.push(self.peek(p.key.as_ref()).await);
        }
        images
    }

    /// Records a single-item write of `pk` that replaced `old` by `new`.
    fn record_write<T>(
        &self,
        at: f64,
        pk: Option<&str>,
        old: Option<Image>,
        new: Option<Image>,
        r: &Result<T>,
    ) {
        let mut charge = Charge::default();
        if let (Some(pk), Some(applied)) = (pk, outcome(r)) {
            charge.write(pk, old.as_ref(), new.as_ref(), 1, applied);
        }
        self.record(at, charge, None);
    }
}

/// Whether a call wrote (`Some(true)`), was charged without writing because a condition failed
/// (`Some(false)`, as DynamoDB charges failed conditional writes), or never ran (`None`).
fn outcome<T>(result: &Result<T>) -> Option<bool> {
    match result {
        Ok(_) => Some(true),
        Err(StoreError::ConditionFailed | StoreError::TransactionCanceled(_)) => Some(false),
        Err(_) => None,
    }
}

/// What the model needs of an item: its size and its GSI keys.
#[derive(Clone, Debug)]
struct Image {
    size: usize,
    /// `(GSI1PK, GSI1SK)` when the item is in the (sparse) index.
    gsi: Option<(String, String)>,
}

impl Image {
    fn of(item: &Item) -> Self {
        let field = |name| item.get(name).and_then(Value::as_str).map(str::to_owned);
        Self {
            size: item_size(item),
            gsi: field(GSI1PK).zip(field(GSI1SK)),
        }
    }
}

fn row_size(row: &Row) -> usize {
    row.decode::<Item>().map_or(0, |item| item_size(&item))
}

/// One write of a transaction, as planned before it runs.
struct Planned {
    key: Option<Key>,
    /// The item a `Put` proposes (sizes a canceled put).
    put: Option<Image>,
    check: bool,
}

impl Planned {
    fn of(write: &Write) -> Self {
        let (key, put, check) = match write {
            Write::Put { item, .. } => (Key::of(item).ok(), Some(Image::of(item)), false),
            Write::Update(u) => (Some(u.key.clone()), None, false),
            Write::Delete { key, .. } => (Some(key.clone()), None, false),
            Write::Check { key, .. } => (Some(key.clone()), None, true),
        };
        Self { key, put, check }
    }
}

/// What one call costs.
#[derive(Default)]
struct Charge {
    wcu: u64,
    gsi_wcu: u64,
    rcu: f64,
    /// Per partition key touched (repeats add up).
    loads: Vec<(String, Load)>,
}

impl Charge {
    fn read(rcu: f64) -> Self {
        Self {
            rcu,
            ..Self::default()
        }
    }

    fn load(&mut self, key: String, writes: u64, wcu: u64) {
        self.loads.push((key, Load { writes, wcu }));
    }

    /// A write of `pk` from `old` to `new`, billed on the larger of the two, times `factor`;
    /// when `applied`, plus the GSI writes it causes.
    fn write(
        &mut self,
        pk: &str,
        old: Option<&Image>,
        new: Option<&Image>,
        factor: u64,
        applied: bool,
    ) {
        let size = old.map_or(0, |i| i.size).max(new.map_or(0, |i| i.size));
        let units = write_units(size) * factor;
        self.wcu += units;
        self.load(pk.to_owned(), 1, units);
        if applied {
            self.index(old, new);
        }
    }

    /// A `ConditionCheck`: billed like a transactional write of the item; it writes nothing,
    /// so it adds write units but no write to its partition.
    fn check(&mut self, pk: &str, old: Option<&Image>) {
        let units = write_units(old.map_or(0, |i| i.size)) * TRANSACT_FACTOR;
        self.wcu += units;
        self.load(pk.to_owned(), 0, units);
    }

    /// GSI writes (projection ALL, never transactional): none when the item is in the index
    /// neither before nor after; one put, delete or in-place update when it enters, leaves or
    /// keeps its index keys; a delete and a put when its index keys change.
    fn index(&mut self, old: Option<&Image>, new: Option<&Image>) {
        let entry = |i: Option<&Image>| i.and_then(|i| Some((i.gsi.clone()?, i.size)));
        match (entry(old), entry(new)) {
            (None, None) => {}
            (Some((keys, size)), None) | (None, Some((keys, size))) => {
                self.gsi_write(&keys.0, size)
            }
            (Some((was, _)), Some((keys, size))) if was == keys => self.gsi_write(&keys.0, size),
            (Some((was, old_size)), Some((keys, size))) => {
                self.gsi_write(&was.0, old_size);
                self.gsi_write(&keys.0, size);
            }
        }
    }

    fn gsi_write(&mut self, gsi_pk: &str, size: usize) {
        let units = write_units(size);
        self.wcu += units;
        self.gsi_wcu += units;
        self.load(format!("{GSI_KEY_PREFIX}{gsi_pk}"), 1, units);
    }
}

#[async_trait]
impl Table for Metered {
    async fn get_row(&self, key: &Key) -> Result<Option<Row>> {
        let at = self.at();
        let row = self.inner.get_row(key).await?;
        let size = row.as_ref().map_or(0, row_size);
        self.record(at, Charge::read(read_units(size) as f64), None);
        Ok(row)
    }

    async fn query_rows(&self, query: Query) -> Result<Page<Row>> {
        let at = self.at();
        let factor = if query.index.is_some() {
            EVENTUAL_READ_FACTOR
        } else {
            1.0
        };
        let page = self.inner.query_rows(query).await?;
        let size = page.items.iter().map(row_size).sum();
        self.record(at, Charge::read(read_units(size) as f64 * factor), None);
        Ok(page)
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<()> {
        let at = self.at();
        let (key, new) = (Key::of(&item).ok(), Image::of(&item));
        let old = self.peek(key.as_ref()).await;
        let result = self.inner.put(item, cond).await;
        let pk = key.as_ref().map(|k| k.pk.as_str());
        self.record_write(at, pk, old, Some(new), &result);
        result
    }

    async fn update(&self, update: Update) -> Result<Item> {
        let at = self.at();
        let key = update.key.clone();
        let old = self.peek(Some(&key)).await;
        let result = self.inner.update(update).await;
        let new = result.as_ref().ok().map(Image::of);
        self.record_write(at, Some(&key.pk), old, new, &result);
        result
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>> {
        let at = self.at();
        let result = self.inner.delete(key, cond).await;
        let old = match &result {
            Ok(old) => old.as_ref().map(Image::of),
            Err(StoreError::ConditionFailed) => self.peek(Some(key)).await,
            Err(_) => None,
        };
        self.record_write(at, Some(&key.pk), old, None, &result);
        result
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<()> {
        let at = self.at();
        let plan: Vec<Planned> = writes.iter().map(Planned::of).collect();
        let olds = self.peek_all(&plan).await;
        let result = self.inner.transact(writes).await;
        let _ = ELAPSED.try_with(|e| e.set(e.get() + self.params.txn_latency));
        let applied = outcome(&result);
        let news = match applied {
            Some(true) => self.peek_all(&plan).await,
            _ => vec![None; plan.len()],
        };
        let mut charge = Charge::default();
        for ((p, old), new) in plan.iter().zip(&olds).zip(&news) {
            let (Some(key), Some(applied)) = (&p.key, applied) else {
                continue;
            };
            let new = if applied {
                new.as_ref()
            } else {
                p.put.as_ref()
            };
            if p.check {
                charge.check(&key.pk, old.as_ref());
            } else {
                charge.write(&key.pk, old.as_ref(), new, TRANSACT_FACTOR, applied);
            }
        }
        let keys: Vec<Key> = plan.into_iter().filter_map(|p| p.key).collect();
        self.record(at, charge, Some(&keys));
        result
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}
