//! What a timeline is made of: the camera's live state (stored in its item), the ops that move
//! it, and the pieces a plan collects before it becomes writes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use civic_store::{Item, Key};
use serde::{Deserialize, Serialize};

use crate::aggregate::{FacilityDelta, Mode};
use crate::buckets::Bucket;

/// A camera's live state, stored in its item and written only through [`apply`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Live {
    pub occupancy: i64,
    pub total_entries: i64,
    pub total_exits: i64,
    /// Unique tracked persons in the current local day.
    pub unique_today: i64,
    pub last_updated: Option<String>,
    /// The timeline's time (epoch seconds); `None` before the first crossing.
    pub last_at: Option<i64>,
    /// When crossings last arrived (wall clock): equipment-failure detection.
    pub last_seen: Option<i64>,
    /// The open bucket of each granularity, by name.
    pub current: BTreeMap<String, Current>,
    /// Entries + exits in the timeline's current hour.
    pub hour_flow: i64,
    /// Anomaly limits of the current hour (none until the baseline has enough weeks).
    pub limits: Option<Limits>,
    /// Open alert id per alert type: one open alert per camera and type.
    pub alerts: BTreeMap<String, i64>,
    /// What the write that stored this state changed in the facility's counters, for the
    /// aggregator (stream mode only; see [`crate::aggregate`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facility: Option<FacilityDelta>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Current {
    pub sk: String,
    pub start: i64,
    pub end: i64,
    pub area: f64,
    pub peak: i64,
    pub peak_at: i64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    pub flow: f64,
    pub peak: f64,
    pub flow_mean: f64,
    pub peak_mean: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Crossing {
    Entry,
    Exit,
}

/// What moves a timeline.
#[derive(Clone, Debug)]
pub enum Op {
    Cross {
        at: DateTime<Utc>,
        kind: Crossing,
        track: Option<String>,
        line: i64,
    },
    /// Calibration to a head count; `log_id` is the calibration log entry's id.
    Set {
        at: DateTime<Utc>,
        value: i64,
        notes: Option<String>,
        log_id: i64,
    },
    /// The scheduler: close buckets that ended, check for silence.
    Tick { at: DateTime<Utc> },
}

impl Op {
    pub(super) fn at(&self) -> DateTime<Utc> {
        match self {
            Op::Cross { at, .. } | Op::Set { at, .. } | Op::Tick { at } => *at,
        }
    }
}

/// Settings and facts a plan is computed from.
pub struct Ctx<'a> {
    pub tz: Tz,
    pub now: DateTime<Utc>,
    pub silence_secs: i64,
    /// Where the facility's crossing counters are counted.
    pub facility: Mode,
    /// The camera's hour-of-week baseline, when it was needed and read.
    pub baseline: Option<&'a Item>,
    /// Markers known to exist already (duplicates of an earlier attempt).
    pub seen: &'a BTreeSet<Key>,
    /// Ids allocated for new log buckets (by sort key) and new alerts (by type).
    pub ids: &'a BTreeMap<String, i64>,
}

/// Something a plan needs before it can be written.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Need {
    Baseline,
    Id(String),
}

#[derive(Default)]
pub(super) struct BucketWrite {
    pub(super) bucket: Option<Bucket>,
    pub(super) entries: i64,
    pub(super) exits: i64,
    pub(super) unique: i64,
    pub(super) snapshot: Option<Snapshot>,
}

#[derive(Clone)]
pub(super) struct Snapshot {
    pub(super) area: f64,
    pub(super) peak: i64,
    pub(super) peak_hour: u32,
    pub(super) last_level: i64,
    pub(super) last_at: i64,
    pub(super) avg: Option<f64>,
}

pub(super) struct Trigger {
    pub(super) occupancy: i64,
    pub(super) message: String,
    pub(super) at: DateTime<Utc>,
}

pub(super) fn epoch(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(super) fn from_epoch(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}
