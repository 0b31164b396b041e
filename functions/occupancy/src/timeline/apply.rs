//! Applying ops to a camera: in chunks of one transaction each, every chunk planned on a fresh
//! read of the camera and retried ([`civic_core::retry`]) when another writer moved it first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::Utc;
use civic_core::retry::{self, won};
use civic_core::{Error, Result};
use civic_store::{Item, Key, StoreError, Table};

use super::plan::Plan;
use super::types::{Ctx, Need, Op};
use super::write::Built;
use crate::buckets::Granularity;
use crate::cameras::Record;
use crate::keys::baseline_key;

/// Writes one op may add to a plan at most (4 own buckets, 4 timeline buckets, 5 markers, a
/// baseline, a calibration entry, alerts); a plan stops taking ops before 100.
const MAX_WRITES_PER_OP: usize = 20;
const MAX_WRITES: usize = 100;

/// The outcome of [`apply`].
pub struct Applied {
    pub record: Record,
    pub accepted: usize,
    /// Whether any transaction was written (a tick that changes nothing writes none).
    pub written: bool,
    /// The alerts the writes opened, for the live feed ([`crate::live`]).
    pub raised: Vec<i64>,
}

/// One transaction's outcome: how many ops it took, and what [`Applied`] sums.
struct Step {
    taken: usize,
    record: Record,
    accepted: usize,
    written: bool,
    raised: Vec<i64>,
}

/// What a request learns across its chunks and attempts, so that each is read or made once.
#[derive(Default)]
struct Scratch {
    /// Read at most once per request: the baseline only grows by closed hours, which this
    /// request's own transactions add.
    baseline: Option<Item>,
    /// Markers known to exist already (duplicates of an earlier attempt).
    seen: BTreeSet<Key>,
    /// Ids allocated for new log buckets (by sort key) and new alerts (by type).
    ids: BTreeMap<String, i64>,
}

/// A `Mutex`, not a `RefCell`, because the handlers' futures must be `Send`; it is only ever
/// held between awaits, so it is never contended.
fn lock(scratch: &Mutex<Scratch>) -> MutexGuard<'_, Scratch> {
    scratch.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Applies `ops` (sorted here by time) to a camera's timeline, in as few transactions as fit.
/// Each costs one read of the camera item and one transaction, plus the baseline when an hour
/// begins and an id when a log bucket or an alert is new.
pub async fn apply(
    table: &dyn Table,
    config: &crate::Config,
    camera: i64,
    mut ops: Vec<Op>,
) -> Result<Applied> {
    ops.sort_by_key(Op::at);
    let (mut accepted, mut written, mut raised) = (0, false, Vec::new());
    let mut rest = &ops[..];
    let scratch = Mutex::new(Scratch::default());
    loop {
        let step = chunk(table, config, camera, rest, &scratch).await?;
        accepted += step.accepted;
        written |= step.written;
        raised.extend(step.raised);
        rest = &rest[step.taken..];
        if rest.is_empty() {
            let record = step.record;
            return Ok(Applied {
                record,
                accepted,
                written,
                raised,
            });
        }
    }
}

/// One transaction's worth of ops.
async fn chunk(
    table: &dyn Table,
    config: &crate::Config,
    camera: i64,
    ops: &[Op],
    scratch: &Mutex<Scratch>,
) -> Result<Step> {
    retry::optimistic(|| attempt(table, config, camera, ops, scratch))
        .await
        .map_err(|e| match e {
            // Nothing in an attempt is an `Error::Conflict` but every attempt losing its race;
            // clients have always been told it is the camera.
            Error::Conflict(_) => {
                Error::Conflict("The camera is being updated concurrently; retry".into())
            }
            e => e,
        })
}

/// One read of the camera and the plans built on it until one is written (`Some`), or until
/// another writer moved the camera first (`None`: read it again).
async fn attempt(
    table: &dyn Table,
    config: &crate::Config,
    camera: i64,
    ops: &[Op],
    scratch: &Mutex<Scratch>,
) -> Result<Option<Step>> {
    let rec = Record::load(table, camera).await?;
    loop {
        let (taken, built) = plan(config, &rec, ops, &lock(scratch))?;
        let (writes, first_marker, markers, record, accepted) = match built {
            Built::Needs(needs) => {
                provide(table, camera, needs, scratch).await?;
                continue;
            }
            Built::Writes {
                changed: false,
                record,
                accepted,
                ..
            } => return Ok(Some(Step::unwritten(taken, *record, accepted))),
            Built::Writes {
                writes,
                first_marker,
                markers,
                record,
                accepted,
                ..
            } => (writes, first_marker, markers, record, accepted),
        };
        match table.transact(writes).await {
            Err(StoreError::TransactionCanceled(failed))
                if !failed.is_empty() && failed.iter().all(|&p| p >= first_marker) =>
            {
                // Only markers failed: those persons were already counted there.
                let known = failed
                    .iter()
                    .filter_map(|&p| markers.get(p - first_marker).cloned());
                lock(scratch).seen.extend(known);
            }
            res => {
                if !won(res)? {
                    return Ok(None);
                }
                // An alert id is used once; a later chunk may need a fresh one.
                lock(scratch)
                    .ids
                    .retain(|k, _| k.starts_with(Granularity::Log.prefix()));
                let raised = opened(&rec, &record);
                return Ok(Some(Step {
                    taken,
                    record: *record,
                    accepted,
                    written: true,
                    raised,
                }));
            }
        }
    }
}

impl Step {
    fn unwritten(taken: usize, record: Record, accepted: usize) -> Self {
        let (written, raised) = (false, Vec::new());
        Self {
            taken,
            record,
            accepted,
            written,
            raised,
        }
    }
}

/// The alerts `after` holds open that `before` did not: those its transaction opened.
fn opened(before: &Record, after: &Record) -> Vec<i64> {
    let known: BTreeSet<i64> = before.live.alerts.values().copied().collect();
    let ids = after.live.alerts.values().copied();
    ids.filter(|id| !known.contains(id)).collect()
}

/// As many of `ops` as fit one transaction, planned on `rec`: how many were taken, and the
/// transaction or what it still needs.
fn plan(
    config: &crate::Config,
    rec: &Record,
    ops: &[Op],
    scratch: &Scratch,
) -> Result<(usize, Built)> {
    let ctx = Ctx {
        tz: config.tz,
        now: Utc::now(),
        silence_secs: config.silence_secs,
        facility: config.facility_counters,
        baseline: scratch.baseline.as_ref(),
        seen: &scratch.seen,
        ids: &scratch.ids,
    };
    let mut plan = Plan::new(&ctx, rec);
    let mut taken = 0;
    for op in ops {
        if taken > 0 && plan.writes() + MAX_WRITES_PER_OP > MAX_WRITES {
            break;
        }
        plan.apply(op);
        taken += 1;
    }
    Ok((taken, plan.finish(rec.version)?))
}

/// Reads or reserves what a plan needs: the camera's baseline, ids (one `ADD` per kind).
async fn provide(
    table: &dyn Table,
    camera: i64,
    needs: BTreeSet<Need>,
    scratch: &Mutex<Scratch>,
) -> Result<()> {
    let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for need in needs {
        match need {
            Need::Baseline => {
                let baseline = table.get(&baseline_key(camera)).await?.unwrap_or_default();
                lock(scratch).baseline = Some(baseline);
            }
            Need::Id(k) => {
                let kind = if k.starts_with(Granularity::Log.prefix()) {
                    "log"
                } else {
                    "alert"
                };
                wanted.entry(kind).or_default().push(k);
            }
        }
    }
    for (kind, keys) in wanted {
        let first = civic_core::ids::reserve(table, kind, keys.len()).await?;
        lock(scratch).ids.extend(keys.into_iter().zip(first..));
    }
    Ok(())
}
