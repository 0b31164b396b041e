//! Group commit: one writer thread per database gathers the write calls waiting for it into one
//! redb write transaction and makes them durable with one fsync.
//!
//! Why: an fsync costs milliseconds, and with one per call the disk, not the CPU, set the
//! pace. While a group is being made durable the next calls queue up; the writer then takes
//! all of them (up to [`MAX_GROUP`]) as the next group. It never waits for company, so a lone
//! writer commits as soon as it asks, and under load groups grow by themselves.
//!
//! Each call keeps its own atomicity: it checks its conditions against the state left by the
//! calls before it in the group, and either applies all its writes or none (every call checks
//! before it mutates; a call that fails after mutating poisons the group, which then commits
//! nothing). A call is answered only after its group's commit returned.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use redb::{Database, Durability, WriteTransaction};

use super::feed::FeedWriter;
use super::{Writer, index_def, items_def};
use crate::common::backend;
use crate::{Result, StoreError, metrics, now_epoch};

/// The most calls in one group: bounds a group's transaction and the wait of its last caller.
pub(super) const MAX_GROUP: usize = 512;

/// The names of an app table's two redb tables: its items and its GSI1 index.
#[derive(Clone)]
pub(super) struct Names {
    pub items: Arc<str>,
    pub index: Arc<str>,
    /// Its change feed's redb table, when it is streamed.
    pub stream: Option<Arc<str>>,
}

/// A write call waiting for its group: runs inside the group's transaction, then hears how the
/// commit went.
trait Call: Send {
    fn apply(&mut self, group: &mut Group<'_>);
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

/// A call's work, its result once applied, and where that result goes.
struct Pending<T, F, R> {
    names: Names,
    work: Option<F>,
    out: Option<Result<T>>,
    reply: R,
}

impl<T, F, R> Call for Pending<T, F, R>
where
    T: Send,
    F: FnOnce(&mut Writer<'_>) -> Result<T> + Send,
    R: FnOnce(Result<T>) + Send,
{
    fn apply(&mut self, group: &mut Group<'_>) {
        if let Some(work) = self.work.take() {
            self.out = Some(group.run(&self.names, work));
        }
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let out = match (committed, self.out) {
            (Ok(()), Some(out)) => out,
            (Err(e), _) => Err(StoreError::Backend(format!("write not committed: {e}"))),
            (Ok(()), None) => Err(StoreError::Backend("write was not applied".into())),
        };
        (self.reply)(out);
    }
}

/// The open tables of one group's transaction.
struct Group<'t> {
    txn: &'t WriteTransaction,
    open: HashMap<Arc<str>, Writer<'t>>,
    now: i64,
    /// Set when a call failed after it had changed something: the group must not commit.
    poisoned: Option<StoreError>,
    /// Some call changed something: the group has something to commit.
    dirty: bool,
}

impl<'t> Group<'t> {
    fn run<T>(
        &mut self,
        names: &Names,
        work: impl FnOnce(&mut Writer<'_>) -> Result<T>,
    ) -> Result<T> {
        if let Some(e) = &self.poisoned {
            return Err(StoreError::Backend(format!("group failed: {e}")));
        }
        let w = match self.open.entry(names.items.clone()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(open_writer(self.txn, names, self.now)?)
            }
        };
        w.dirty = false;
        let out = catch_unwind(AssertUnwindSafe(|| work(w)))
            .unwrap_or_else(|_| Err(StoreError::Backend("a write call panicked".into())));
        self.dirty |= w.dirty;
        if let (Err(e), true) = (&out, w.dirty) {
            // It changed items before failing: the transaction holds half a call.
            self.poisoned = Some(StoreError::Backend(e.to_string()));
        }
        out
    }
}

fn open_writer<'t>(txn: &'t WriteTransaction, names: &Names, now: i64) -> Result<Writer<'t>> {
    Ok(Writer {
        items: txn.open_table(items_def(&names.items)).map_err(backend)?,
        index: txn.open_table(index_def(&names.index)).map_err(backend)?,
        feed: match &names.stream {
            Some(name) => Some(FeedWriter::open(txn, name)?),
            None => None,
        },
        now,
        dirty: false,
    })
}

/// Applies `calls` in order in one transaction and commits it with one fsync.
fn commit(db: &Database, calls: &mut [Box<dyn Call>]) -> Result<()> {
    let mut txn = db.begin_write().map_err(backend)?;
    txn.set_durability(Durability::Immediate);
    let (poisoned, dirty) = {
        let mut group = Group {
            txn: &txn,
            open: HashMap::new(),
            now: now_epoch(),
            poisoned: None,
            dirty: false,
        };
        for call in calls.iter_mut() {
            call.apply(&mut group);
        }
        (group.poisoned, group.dirty)
    };
    if let Some(e) = poisoned {
        txn.abort().map_err(backend)?;
        return Err(e);
    }
    if !dirty {
        // Only failed conditions: nothing to make durable, so no fsync.
        return txn.abort().map_err(backend);
    }
    txn.commit().map_err(backend)?;
    metrics::group_committed(calls.len() as u64);
    Ok(())
}

/// The writer thread of one database and the queue that feeds it.
pub(super) struct Committer {
    queue: Option<Sender<Box<dyn Call>>>,
    thread: Option<JoinHandle<()>>,
    /// Calls queued and not yet taken into a group.
    waiting: Arc<AtomicUsize>,
}

impl Committer {
    pub(super) fn start(db: Arc<Database>) -> Result<Self> {
        let (queue, calls) = channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let taken = waiting.clone();
        let thread = std::thread::Builder::new()
            .name("civic-store-writer".into())
            .spawn(move || write_groups(&db, &calls, &taken))
            .map_err(backend)?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            waiting,
        })
    }

    /// Queues `work` on the table `names`; `reply` gets its result after the group commits.
    fn submit<T, F, R>(&self, names: Names, work: F, reply: R) -> Result<()>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer<'_>) -> Result<T> + Send + 'static,
        R: FnOnce(Result<T>) + Send + 'static,
    {
        let call = Box::new(Pending {
            names,
            work: Some(work),
            out: None,
            reply,
        });
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        queue.send(call).map_err(|_| stopped())
    }

    /// Calls queued and not yet taken into a group.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `work` in the next group and returns its result once that group is durable.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        names: Names,
        work: impl FnOnce(&mut Writer<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(names, work, move |out| {
            let _ = tx.send(out);
        })?;
        rx.await.map_err(|_| stopped())?
    }

    /// [`Self::write`] for threads that may block (the sweeper).
    pub(super) fn write_blocking<T: Send + 'static>(
        &self,
        names: Names,
        work: impl FnOnce(&mut Writer<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(names, work, move |out| {
            let _ = tx.send(out);
        })?;
        rx.recv().map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Backend("the store's writer has stopped".into())
}

impl Drop for Committer {
    /// Closes the queue and waits for the writer to finish the calls already queued, so the
    /// database is closed when the store is dropped (and can be opened again at once).
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: one group per turn, of every call queued by then.
fn write_groups(db: &Database, queue: &Receiver<Box<dyn Call>>, waiting: &AtomicUsize) {
    while let Ok(first) = queue.recv() {
        let mut calls = vec![first];
        while calls.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(call) => calls.push(call),
                Err(_) => break,
            }
        }
        waiting.fetch_sub(calls.len(), Ordering::Relaxed);
        let committed = commit(db, &mut calls);
        for call in calls {
            call.finish(committed.as_ref().map(|_| ()));
        }
    }
}

/// Holds the writer thread between groups until released: lets tests queue calls and see them
/// committed as one group.
struct Pause {
    holding: std::sync::mpsc::SyncSender<()>,
    release: Receiver<()>,
}

impl Call for Pause {
    fn apply(&mut self, _: &mut Group<'_>) {
        let _ = self.holding.send(());
        let _ = self.release.recv();
    }
    fn finish(self: Box<Self>, _: Result<(), &StoreError>) {}
}

/// The writer held by [`Committer::hold`]; dropping it lets the writer go on.
pub struct Held {
    release: Sender<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.release.send(());
    }
}

impl Committer {
    /// Blocks until the writer thread is held in a group of its own.
    pub(super) fn hold(&self) -> Result<Held> {
        let (holding, held) = std::sync::mpsc::sync_channel(1);
        let (release, wait) = channel();
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        queue
            .send(Box::new(Pause {
                holding,
                release: wait,
            }))
            .map_err(|_| stopped())?;
        held.recv().map_err(|_| stopped())?;
        Ok(Held { release })
    }
}
