//! A camera's occupancy timeline. Crossings, calibrations and the scheduler's ticks are applied
//! in time order to the camera's live state; the result is one transaction: the camera item
//! (conditional on the version read, which serialises a camera's writers), `ADD` counters on
//! its 5-minute/hour/day/month buckets and on the facility, alerts, and unique-person markers.
//!
//! - **Occupancy** = entries − exits since the last calibration, never below 0 (an exit at 0 is
//!   a `negative_count` alert instead).
//! - **Buckets** carry `entries`, `exits` and `unique_persons` (ADD), and the timeline's
//!   `area` (occupancy × seconds since the bucket's start), `peak`, `last_level`, `last_at`
//!   (SET from the serialised live state). A bucket's time-weighted average is
//!   `(area + last_level × (end − last_at)) / (end − start)` up to now; when the timeline leaves
//!   a bucket it is *closed*: its area is completed and `avg_occupancy` stored.
//! - **Late crossings** (older than the camera's timeline) still count in their own buckets'
//!   entries, exits and unique persons, but move the level at the timeline's time.
//! - **Unique persons** of a bucket: a `SEEN` marker per track id and bucket, written with
//!   `NotExists`; when the transaction is cancelled on markers only, they are known duplicates
//!   and the plan is rebuilt without them.
//! - **A tracked crossing counts once**: a `CROSSED` marker per camera, line, time, direction
//!   and track, written the same way, makes a repeated crossing (a redelivered message, a
//!   retried request) a no-op. Crossings without a track id have no identity and always count.
//! - **Anomaly rule** (`anomaly_detected`): per camera and local hour of week (168 slots), the
//!   baseline keeps n, Σx and Σx² of closed hours' flow (entries + exits) and peak occupancy.
//!   With n ≥ 3 earlier weeks, an hour whose flow so far, or whose occupancy, exceeds
//!   μ + 3·max(σ, 1, 0.1·μ) raises the alert.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use civic_core::{Error, Result};
use civic_store::{Cond, Item, Key, StoreError, Table, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::calendar::{self, Bucket, GRANULARITIES, Granularity};
use crate::cameras::{Camera, CameraType, Direction, Record, camera_key, facility_key};

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
    fn at(&self) -> DateTime<Utc> {
        match self {
            Op::Cross { at, .. } | Op::Set { at, .. } | Op::Tick { at } => *at,
        }
    }
}

/// Whether a line and a camera count a crossing of this kind.
pub fn counts(camera: CameraType, line: Direction, kind: Crossing) -> bool {
    let by_line = matches!(
        (line, kind),
        (Direction::Bidirectional, _)
            | (Direction::Entry, Crossing::Entry)
            | (Direction::Exit, Crossing::Exit)
    );
    let by_camera = matches!(
        (camera, kind),
        (CameraType::Bidirectional, _)
            | (CameraType::EntryOnly, Crossing::Entry)
            | (CameraType::ExitOnly, Crossing::Exit)
    );
    by_line && by_camera
}

pub const ALERT_TYPES: [&str; 5] = [
    "capacity_exceeded",
    "capacity_warning",
    "negative_count",
    "anomaly_detected",
    "equipment_failure",
];

const MIN_WEEKS: f64 = 3.0;
/// Writes one op may add to a plan at most (4 own buckets, 4 timeline buckets, 5 markers, a
/// baseline, a calibration entry, alerts); a plan stops taking ops before 100.
const MAX_WRITES_PER_OP: usize = 20;
const MAX_WRITES: usize = 100;

/// Settings and facts a plan is computed from.
pub struct Ctx<'a> {
    pub tz: Tz,
    pub now: DateTime<Utc>,
    pub silence_secs: i64,
    /// The camera's hour-of-week baseline, when it was needed and read.
    pub baseline: Option<&'a Item>,
    /// Markers known to exist already (duplicates of an earlier attempt).
    pub seen: &'a BTreeSet<Key>,
    /// Ids allocated for new log buckets (by sort key) and new alerts (by type).
    pub ids: &'a BTreeMap<String, i64>,
}

/// Something a plan needs before it can be written.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Baseline,
    Id(String),
}

#[derive(Default)]
struct BucketWrite {
    bucket: Option<Bucket>,
    entries: i64,
    exits: i64,
    unique: i64,
    snapshot: Option<Snapshot>,
}

#[derive(Clone)]
struct Snapshot {
    area: f64,
    peak: i64,
    peak_hour: u32,
    last_level: i64,
    last_at: i64,
    avg: Option<f64>,
}

struct Trigger {
    occupancy: i64,
    message: String,
    at: DateTime<Utc>,
}

/// A chunk of ops turned into writes.
struct Plan<'c, 'a> {
    ctx: &'c Ctx<'a>,
    pk: String,
    camera: Camera,
    live: Live,
    buckets: BTreeMap<String, BucketWrite>,
    markers: BTreeSet<(Key, i64)>,
    baseline: BTreeMap<String, f64>,
    logs: Vec<Item>,
    triggers: BTreeMap<&'static str, Trigger>,
    needs: BTreeSet<Need>,
    entries: i64,
    exits: i64,
    accepted: usize,
    changed: bool,
    start_level: i64,
    /// The log bucket that was open before this plan: it has its id already.
    known_log: Option<String>,
}

fn epoch(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_epoch(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

impl<'c, 'a> Plan<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, rec: &Record) -> Self {
        Self {
            ctx,
            pk: camera_key(rec.camera.id).pk,
            camera: rec.camera.clone(),
            live: rec.live.clone(),
            buckets: BTreeMap::new(),
            markers: BTreeSet::new(),
            baseline: BTreeMap::new(),
            logs: Vec::new(),
            triggers: BTreeMap::new(),
            needs: BTreeSet::new(),
            entries: 0,
            exits: 0,
            accepted: 0,
            changed: false,
            start_level: rec.live.occupancy,
            known_log: rec
                .live
                .current
                .get(Granularity::Log.name())
                .map(|c| c.sk.clone()),
        }
    }

    fn writes(&self) -> usize {
        2 + self.buckets.len()
            + self.markers.len()
            + usize::from(!self.baseline.is_empty())
            + self.logs.len()
            + self.triggers.len()
    }

    fn bucket(&mut self, b: &Bucket) -> &mut BucketWrite {
        let w = self.buckets.entry(b.sk()).or_default();
        w.bucket.get_or_insert_with(|| b.clone());
        w
    }

    /// Moves the timeline to `t` at the current level: area accrues, buckets left are closed.
    fn advance(&mut self, t: DateTime<Utc>) {
        let Some(last) = self.live.last_at else {
            for g in GRANULARITIES {
                self.open(g.bucket(self.ctx.tz, t), t);
            }
            self.live.last_at = Some(epoch(t));
            return;
        };
        let t = t.max(from_epoch(last));
        let level = self.live.occupancy as f64;
        for g in GRANULARITIES {
            let b = g.bucket(self.ctx.tz, t);
            let cur = self.live.current.get(g.name()).cloned();
            match cur {
                Some(mut c) if c.sk == b.sk() => {
                    c.area += level * (epoch(t) - last) as f64;
                    self.live.current.insert(g.name().into(), c);
                }
                Some(mut c) => {
                    c.area += level * (c.end - last) as f64;
                    self.close(g, &c);
                    self.open(b, t);
                }
                None => self.open(b, t),
            }
        }
        self.live.last_at = Some(epoch(t));
    }

    /// Stores a bucket the timeline leaves, complete; an hour also feeds the baseline.
    fn close(&mut self, g: Granularity, c: &Current) {
        let span = (c.end - c.start).max(1) as f64;
        let level = self.live.occupancy;
        let snap = Snapshot {
            area: c.area,
            peak: c.peak,
            peak_hour: calendar::local_hour(self.ctx.tz, from_epoch(c.peak_at)),
            last_level: level,
            last_at: c.end,
            avg: Some(c.area / span),
        };
        let b = g.bucket(self.ctx.tz, from_epoch(c.start));
        self.bucket(&b).snapshot = Some(snap);
        if g == Granularity::Hour {
            let slot = calendar::hour_of_week(self.ctx.tz, from_epoch(c.start));
            let (flow, peak) = (self.live.hour_flow as f64, c.peak as f64);
            for (name, v) in [
                ("n", 1.0),
                ("f", flow),
                ("ff", flow * flow),
                ("p", peak),
                ("pp", peak * peak),
            ] {
                *self.baseline.entry(format!("{name}_{slot}")).or_default() += v;
            }
            self.live.hour_flow = 0;
        }
        if g == Granularity::Day {
            self.live.unique_today = 0;
        }
        self.changed = true;
    }

    /// Starts the bucket holding `t`: the current level has held since its start.
    fn open(&mut self, b: Bucket, t: DateTime<Utc>) {
        let level = self.live.occupancy;
        if b.g == Granularity::Hour {
            self.live.limits = self.limits(&b);
        }
        let area = level as f64 * (epoch(t) - epoch(b.start)) as f64;
        self.live.current.insert(
            b.g.name().into(),
            Current {
                sk: b.sk(),
                start: epoch(b.start),
                end: epoch(b.end),
                area,
                peak: level,
                peak_at: epoch(t),
            },
        );
        let peak_hour = calendar::local_hour(self.ctx.tz, t);
        self.bucket(&b).snapshot = Some(Snapshot {
            area,
            peak: level,
            peak_hour,
            last_level: level,
            last_at: epoch(t),
            avg: None,
        });
        self.changed = true;
    }

    /// The anomaly limits of an hour from its hour-of-week baseline.
    fn limits(&mut self, hour: &Bucket) -> Option<Limits> {
        let Some(base) = self.ctx.baseline else {
            self.needs.insert(Need::Baseline);
            return None;
        };
        let slot = calendar::hour_of_week(self.ctx.tz, hour.start);
        let v = |name: &str| {
            base.get(&format!("{name}_{slot}"))
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
        };
        let n = v("n");
        if n < MIN_WEEKS {
            return None;
        }
        let limit = |sum: f64, sq: f64| {
            let mean = sum / n;
            let sd = (sq / n - mean * mean).max(0.0).sqrt();
            (mean, mean + 3.0 * sd.max(1.0).max(0.1 * mean))
        };
        let (flow_mean, flow) = limit(v("f"), v("ff"));
        let (peak_mean, peak) = limit(v("p"), v("pp"));
        Some(Limits {
            flow,
            peak,
            flow_mean,
            peak_mean,
        })
    }

    /// After a level change at the timeline's time: peaks and bucket snapshots.
    fn record_level(&mut self) {
        let level = self.live.occupancy;
        let at = self.live.last_at.unwrap_or_default();
        let tz = self.ctx.tz;
        for g in GRANULARITIES {
            let Some(mut c) = self.live.current.get(g.name()).cloned() else {
                continue;
            };
            if level > c.peak {
                c.peak = level;
                c.peak_at = at;
            }
            let b = g.bucket(tz, from_epoch(c.start));
            self.bucket(&b).snapshot = Some(Snapshot {
                area: c.area,
                peak: c.peak,
                peak_hour: calendar::local_hour(tz, from_epoch(c.peak_at)),
                last_level: level,
                last_at: at,
                avg: None,
            });
            self.live.current.insert(g.name().into(), c);
        }
        self.live.last_updated = Some(calendar::rfc3339(from_epoch(at)));
        self.check_levels(from_epoch(at));
        self.changed = true;
    }

    fn trigger(&mut self, kind: &'static str, message: String, at: DateTime<Utc>) {
        let occupancy = self.live.occupancy;
        self.triggers.insert(
            kind,
            Trigger {
                occupancy,
                message,
                at,
            },
        );
    }

    fn check_levels(&mut self, at: DateTime<Utc>) {
        let level = self.live.occupancy;
        if let Some(max) = self.camera.max_occupancy {
            if level > max {
                self.trigger(
                    "capacity_exceeded",
                    format!("Occupancy ({level}) exceeds capacity ({max})"),
                    at,
                );
            } else if level * 5 > max * 4 {
                self.trigger(
                    "capacity_warning",
                    format!("Occupancy ({level}) is above 80% of capacity ({max})"),
                    at,
                );
            }
        }
        if let Some(l) = self.live.limits {
            if self.live.hour_flow as f64 > l.flow {
                let msg = format!(
                    "Occupancy anomaly detected: {} crossings this hour, usually {:.1}",
                    self.live.hour_flow, l.flow_mean
                );
                self.trigger("anomaly_detected", msg, at);
            } else if level as f64 > l.peak {
                let msg = format!(
                    "Occupancy anomaly detected: {level} people, usually at most {:.1}",
                    l.peak_mean
                );
                self.trigger("anomaly_detected", msg, at);
            }
        }
    }

    /// A crossing's own buckets count it (and its person, once per bucket).
    fn count(&mut self, at: DateTime<Utc>, kind: Crossing, track: Option<&str>) {
        let tz = self.ctx.tz;
        for g in GRANULARITIES {
            let b = g.bucket(tz, at);
            let current = self
                .live
                .current
                .get(g.name())
                .is_some_and(|c| c.sk == b.sk());
            let w = self.bucket(&b);
            match kind {
                Crossing::Entry => w.entries += 1,
                Crossing::Exit => w.exits += 1,
            }
            if g == Granularity::Hour && current {
                self.live.hour_flow += 1;
            }
            let Some(track) = track else { continue };
            let marker = Key::new(format!("SEEN#{}#{}", self.camera.id, b.sk()), track);
            let expires = epoch(b.end) + 86_400;
            if self.ctx.seen.contains(&marker) || !self.markers.insert((marker, expires)) {
                continue;
            }
            self.bucket(&b).unique += 1;
            if g == Granularity::Day && current {
                self.live.unique_today += 1;
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        let at = op.at();
        match op {
            Op::Cross {
                kind, track, line, ..
            } => {
                if let Some(track) = track {
                    let marker = crossed_marker(self.camera.id, *line, at, *kind, track);
                    let expires = epoch(self.ctx.now.max(at)) + CROSSED_TTL_SECS;
                    if self.ctx.seen.contains(&marker) || !self.markers.insert((marker, expires)) {
                        return;
                    }
                }
                self.advance(at);
                self.count(at, *kind, track.as_deref());
                self.accepted += 1;
                match kind {
                    Crossing::Entry => {
                        self.entries += 1;
                        self.live.total_entries += 1;
                        self.live.occupancy += 1;
                    }
                    Crossing::Exit => {
                        self.exits += 1;
                        self.live.total_exits += 1;
                        if self.live.occupancy == 0 {
                            let msg = format!(
                                "An exit at line {line} would take occupancy below 0; kept at 0"
                            );
                            let t = from_epoch(self.live.last_at.unwrap_or_default());
                            self.trigger("negative_count", msg, t);
                        } else {
                            self.live.occupancy -= 1;
                        }
                    }
                }
                self.live.last_seen = Some(epoch(self.ctx.now));
                self.record_level();
            }
            Op::Set {
                value,
                notes,
                log_id,
                ..
            } => {
                self.advance(at);
                self.live.occupancy = *value;
                let t = from_epoch(self.live.last_at.unwrap_or_default());
                let entry = json!({
                    "PK": self.pk, "SK": format!("LOG#{}#CAL", t.format("%Y-%m-%dT%H:%M:%SZ")),
                    "id": log_id, "camera_id": self.camera.id, "entry_count": 0, "exit_count": 0,
                    "net_occupancy": value, "timestamp": calendar::rfc3339(t), "tracked_persons": 0,
                    "is_manual_calibration": true, "notes": notes,
                });
                if let Value::Object(item) = entry {
                    self.logs.push(item);
                }
                self.record_level();
            }
            Op::Tick { at } => {
                if self.live.last_at.is_some() {
                    self.advance(*at);
                }
                let since = self
                    .live
                    .last_seen
                    .unwrap_or_else(|| created_epoch(&self.camera));
                let silent = epoch(*at) - since;
                if self.camera.is_active && silent > self.ctx.silence_secs {
                    let msg = format!(
                        "No crossings from camera {} for {} minutes",
                        self.camera.camera_id,
                        silent / 60
                    );
                    self.trigger("equipment_failure", msg, *at);
                }
            }
        }
    }

    /// The transaction: the camera item first (position 0), then everything else.
    fn finish(mut self, version: i64) -> Result<Built> {
        let changed = self.changed || !self.triggers.is_empty();
        let mut writes = Vec::new();
        let mut new_alerts = 0i64;
        let mut alert_writes = Vec::new();
        for (kind, t) in std::mem::take(&mut self.triggers) {
            let at = calendar::rfc3339(t.at);
            let w = match self.live.alerts.get(kind) {
                Some(&id) => Write::Update(
                    Update::new(alert_key(id))
                        .set("current_occupancy", t.occupancy)
                        .set("message", t.message)
                        .set("timestamp", at)
                        .add("occurrences", 1),
                ),
                None => {
                    let Some(&id) = self.ctx.ids.get(kind) else {
                        self.needs.insert(Need::Id(kind.into()));
                        continue;
                    };
                    self.live.alerts.insert(kind.into(), id);
                    new_alerts += 1;
                    let key = alert_key(id);
                    let alert = json!({
                        "PK": key.pk, "SK": key.sk,
                        "GSI1PK": OPEN_ALERTS, "GSI1SK": format!("{:010}#{id:010}", self.camera.id),
                        "id": id, "camera_id": self.camera.id, "alert_type": kind,
                        "current_occupancy": t.occupancy, "message": t.message, "is_resolved": false,
                        "timestamp": at, "occurrences": 1, "version": 1,
                    });
                    let Value::Object(item) = alert else { continue };
                    Write::Put {
                        item,
                        cond: Cond::NotExists,
                    }
                }
            };
            alert_writes.push(w);
        }
        for (sk, w) in std::mem::take(&mut self.buckets) {
            let Some(b) = w.bucket else { continue };
            let mut u = Update::new(Key::new(self.pk.clone(), sk.clone()))
                .add("entries", w.entries)
                .add("exits", w.exits)
                .add("unique_persons", w.unique)
                .set_if_absent("camera_id", self.camera.id)
                .set_if_absent("label", b.label.clone())
                .set_if_absent("start", epoch(b.start))
                .set_if_absent("end", epoch(b.end));
            if b.g == Granularity::Log && self.known_log.as_ref() != Some(&sk) {
                let Some(&id) = self.ctx.ids.get(&sk) else {
                    self.needs.insert(Need::Id(sk));
                    continue;
                };
                u = u.set_if_absent("id", id);
            }
            if let Some(s) = w.snapshot {
                u = u
                    .set("area", s.area)
                    .set("peak", s.peak)
                    .set("peak_hour", s.peak_hour)
                    .set("last_level", s.last_level)
                    .set("last_at", s.last_at);
                if let Some(avg) = s.avg {
                    u = u.set("avg_occupancy", avg);
                }
            }
            writes.push(Write::Update(u));
        }
        if !self.needs.is_empty() {
            return Ok(Built::Needs(std::mem::take(&mut self.needs)));
        }
        if !self.baseline.is_empty() {
            let u = self.baseline.iter().fold(
                Update::new(baseline_key(self.camera.id)),
                |u, (k, v)| {
                    u.add(
                        k,
                        serde_json::Number::from_f64(*v).unwrap_or_else(|| 0.into()),
                    )
                },
            );
            writes.push(Write::Update(u));
        }
        for item in self.logs.drain(..) {
            writes.push(Write::Put {
                item,
                cond: Cond::Always,
            });
        }
        let delta = self.live.occupancy - self.start_level;
        if self.entries + self.exits != 0 || new_alerts != 0 || delta != 0 {
            // Wall clock: the cameras' timelines may be at different (even past) times.
            let at = calendar::rfc3339(self.ctx.now);
            writes.push(Write::Update(
                Update::new(facility_key())
                    .add("occupancy", delta)
                    .add("entries", self.entries)
                    .add("exits", self.exits)
                    .add("active_alerts", new_alerts)
                    .set("last_updated", at),
            ));
        }
        writes.extend(alert_writes);
        let first_marker = writes.len() + 1;
        let mut markers = Vec::new();
        for (key, expires) in std::mem::take(&mut self.markers) {
            let mut item = Item::new();
            item.insert("PK".into(), key.pk.clone().into());
            item.insert("SK".into(), key.sk.clone().into());
            item.insert("expires_at".into(), expires.into());
            writes.push(Write::Put {
                item,
                cond: Cond::NotExists,
            });
            markers.push(key);
        }
        let record = Record {
            camera: self.camera,
            live: self.live,
            version: version + 1,
        };
        writes.insert(
            0,
            Write::Put {
                item: record.to_item()?,
                cond: Cond::Version(version),
            },
        );
        Ok(Built::Writes {
            writes,
            first_marker,
            markers,
            changed,
            accepted: self.accepted,
            record: Box::new(record),
        })
    }
}

enum Built {
    Needs(BTreeSet<Need>),
    Writes {
        writes: Vec<Write>,
        first_marker: usize,
        markers: Vec<Key>,
        changed: bool,
        accepted: usize,
        record: Box<Record>,
    },
}

pub const OPEN_ALERTS: &str = "OPENALERTS";

/// How long a crossing is remembered: longer than IoT Core keeps a device's persistent session
/// (up to 7 days) and than any client's retries.
const CROSSED_TTL_SECS: i64 = 8 * 86_400;

/// A tracked crossing, once: a camera's line, time, direction and track. The same crossing
/// again (an MQTT redelivery of a message whose PUBACK was lost, an HTTP retry, a frame batch
/// counted again after a crash) finds its marker and counts nothing.
fn crossed_marker(camera: i64, line: i64, at: DateTime<Utc>, kind: Crossing, track: &str) -> Key {
    let dir = match kind {
        Crossing::Entry => "entry",
        Crossing::Exit => "exit",
    };
    Key::new(
        format!("CROSSED#{camera}"),
        format!("{}#{line}#{dir}#{track}", at.timestamp_millis()),
    )
}

pub fn alert_key(id: i64) -> Key {
    Key::new(format!("ALERT#{id}"), "ALERT")
}

fn baseline_key(camera: i64) -> Key {
    Key::new(format!("CAMERA#{camera}"), "BASELINE")
}

fn created_epoch(c: &Camera) -> i64 {
    DateTime::parse_from_rfc3339(&c.created_at)
        .map(|t| t.timestamp())
        .unwrap_or_default()
}

/// Reserves `n` consecutive ids of a kind in one `ADD` (the same counter as
/// [`civic_core::ids::next_id`]); returns the first.
async fn reserve_ids(table: &dyn Table, kind: &str, n: usize) -> Result<i64> {
    let n = n as i64;
    let item = table
        .update(Update::new(Key::new("COUNTER", kind)).add("value", n))
        .await?;
    let last = item
        .get("value")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::Internal(format!("counter {kind} is not an integer")))?;
    Ok(last - n + 1)
}

/// The outcome of [`apply`].
pub struct Applied {
    pub record: Record,
    pub accepted: usize,
}

const ATTEMPTS: u32 = 50;

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
    let mut accepted = 0;
    let mut rest = &ops[..];
    // Read at most once per request: the baseline only grows by closed hours, which this
    // request's own transactions add.
    let mut baseline = None;
    let mut seen = BTreeSet::new();
    let mut ids = BTreeMap::new();
    loop {
        let (taken, record, n) = chunk(
            table,
            config,
            camera,
            rest,
            &mut baseline,
            &mut seen,
            &mut ids,
        )
        .await?;
        accepted += n;
        rest = &rest[taken..];
        if rest.is_empty() {
            return Ok(Applied { record, accepted });
        }
    }
}

/// One transaction's worth of ops: how many were taken, the record after, the crossings counted.
async fn chunk(
    table: &dyn Table,
    config: &crate::Config,
    camera: i64,
    ops: &[Op],
    baseline: &mut Option<Item>,
    seen: &mut BTreeSet<Key>,
    ids: &mut BTreeMap<String, i64>,
) -> Result<(usize, Record, usize)> {
    for attempt in 0..ATTEMPTS {
        let rec = Record::load(table, camera).await?;
        loop {
            let ctx = Ctx {
                tz: config.tz,
                now: Utc::now(),
                silence_secs: config.silence_secs,
                baseline: baseline.as_ref(),
                seen,
                ids,
            };
            let mut plan = Plan::new(&ctx, &rec);
            let mut taken = 0;
            for op in ops {
                if taken > 0 && plan.writes() + MAX_WRITES_PER_OP > MAX_WRITES {
                    break;
                }
                plan.apply(op);
                taken += 1;
            }
            match plan.finish(rec.version)? {
                Built::Needs(needs) => {
                    let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                    for need in needs {
                        match need {
                            Need::Baseline => {
                                *baseline = Some(
                                    table.get(&baseline_key(camera)).await?.unwrap_or_default(),
                                );
                            }
                            Need::Id(k) => {
                                let kind = if k.starts_with("LOG#") {
                                    "log"
                                } else {
                                    "alert"
                                };
                                wanted.entry(kind).or_default().push(k);
                            }
                        }
                    }
                    for (kind, keys) in wanted {
                        let first = reserve_ids(table, kind, keys.len()).await?;
                        ids.extend(keys.into_iter().zip(first..));
                    }
                }
                Built::Writes {
                    changed: false,
                    record,
                    accepted,
                    ..
                } => return Ok((taken, *record, accepted)),
                Built::Writes {
                    writes,
                    first_marker,
                    markers,
                    record,
                    accepted,
                    ..
                } => {
                    match table.transact(writes).await {
                        Ok(()) => {
                            // An alert id is used once; a later chunk may need a fresh one.
                            ids.retain(|k, _| k.starts_with("LOG#"));
                            return Ok((taken, *record, accepted));
                        }
                        Err(StoreError::TransactionCanceled(failed))
                            if !failed.is_empty() && failed.iter().all(|&p| p >= first_marker) =>
                        {
                            // Only markers failed: those persons were already counted there.
                            seen.extend(
                                failed
                                    .iter()
                                    .filter_map(|&p| markers.get(p - first_marker).cloned()),
                            );
                        }
                        Err(
                            StoreError::ConditionFailed
                            | StoreError::TransactionCanceled(_)
                            | StoreError::Conflict,
                        ) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let pause = 1u64 << attempt.min(6);
        tokio::time::sleep(std::time::Duration::from_millis(
            pause / 2 + u64::from(attempt % 3),
        ))
        .await;
    }
    Err(Error::Conflict(
        "The camera is being updated concurrently; retry".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(max: Option<i64>) -> Record {
        let camera = Camera {
            id: 1,
            camera_id: "GATE_A".into(),
            camera_name: "Gate A".into(),
            location: None,
            camera_type: CameraType::Bidirectional,
            is_active: true,
            max_occupancy: max,
            resolution_width: 1920,
            resolution_height: 1080,
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        Record {
            camera,
            live: Live::default(),
            version: 1,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn cross(at: &str, kind: Crossing) -> Op {
        Op::Cross {
            at: utc(at),
            kind,
            track: None,
            line: 1,
        }
    }

    /// Applies ops to a fresh plan with an empty baseline.
    fn run(rec: &Record, baseline: &Item, ops: &[Op], check: impl FnOnce(&Plan)) {
        let (seen, ids) = (BTreeSet::new(), BTreeMap::new());
        let ctx = Ctx {
            tz: chrono_tz::UTC,
            now: Utc::now(),
            silence_secs: 900,
            baseline: Some(baseline),
            seen: &seen,
            ids: &ids,
        };
        let mut plan = Plan::new(&ctx, rec);
        ops.iter().for_each(|op| plan.apply(op));
        check(&plan);
    }

    #[test]
    fn a_tracked_crossing_counts_once_an_untracked_one_every_time() {
        let tracked = |track: &str| Op::Cross {
            at: utc("2026-11-02T10:00:00Z"),
            kind: Crossing::Entry,
            track: Some(track.into()),
            line: 1,
        };
        let untracked = cross("2026-11-02T10:00:00Z", Crossing::Entry);
        let ops = [
            tracked("7"),
            tracked("7"),
            tracked("8"),
            untracked.clone(),
            untracked,
        ];
        run(&record(None), &Item::new(), &ops, |p| {
            assert_eq!((p.accepted, p.live.occupancy), (4, 4));
        });
        // Stored by an earlier delivery: the transaction was cancelled on its marker.
        let seen = BTreeSet::from([crossed_marker(
            1,
            1,
            utc("2026-11-02T10:00:00Z"),
            Crossing::Entry,
            "7",
        )]);
        let ids = BTreeMap::new();
        let ctx = Ctx {
            tz: chrono_tz::UTC,
            now: Utc::now(),
            silence_secs: 900,
            baseline: None,
            seen: &seen,
            ids: &ids,
        };
        let mut plan = Plan::new(&ctx, &record(None));
        plan.apply(&tracked("7"));
        assert_eq!((plan.accepted, plan.live.occupancy), (0, 0));
        assert!(plan.markers.is_empty());
    }

    #[test]
    fn lines_and_cameras_decide_what_counts() {
        use {CameraType as C, Crossing as X, Direction as D};
        assert!(counts(C::Bidirectional, D::Bidirectional, X::Exit));
        assert!(counts(C::Bidirectional, D::Entry, X::Entry));
        assert!(!counts(C::Bidirectional, D::Entry, X::Exit));
        assert!(!counts(C::Bidirectional, D::Exit, X::Entry));
        assert!(!counts(C::EntryOnly, D::Bidirectional, X::Exit));
        assert!(counts(C::ExitOnly, D::Exit, X::Exit));
    }

    #[test]
    fn occupancy_never_goes_below_zero_and_capacity_is_watched() {
        let ops: Vec<Op> = std::iter::once(cross("2026-11-02T10:00:00Z", Crossing::Exit))
            .chain((0..5).map(|_| cross("2026-11-02T10:01:00Z", Crossing::Entry)))
            .collect();
        run(&record(Some(4)), &Item::new(), &ops, |p| {
            assert_eq!(p.live.occupancy, 5);
            assert_eq!((p.live.total_entries, p.live.total_exits), (5, 1));
            let kinds: Vec<&str> = p.triggers.keys().copied().collect();
            assert_eq!(
                kinds,
                ["capacity_exceeded", "capacity_warning", "negative_count"]
            );
            assert_eq!(
                p.triggers["capacity_exceeded"].message,
                "Occupancy (5) exceeds capacity (4)"
            );
        });
    }

    #[test]
    fn leaving_an_hour_closes_it_with_its_time_weighted_average() {
        let ops = [
            cross("2026-11-02T10:00:00Z", Crossing::Entry),
            cross("2026-11-02T10:45:00Z", Crossing::Entry),
            cross("2026-11-02T11:30:00Z", Crossing::Exit),
        ];
        run(&record(None), &Item::new(), &ops, |p| {
            // 1 for 45 min, 2 for 15 min: 1.25; the baseline learns the closed hour.
            let hour = &p.buckets["HOUR#2026-11-02T10:00Z"];
            let snap = hour.snapshot.as_ref().unwrap();
            assert_eq!((snap.avg, snap.peak), (Some(1.25), 2));
            assert_eq!(hour.entries, 2);
            assert_eq!(p.baseline["f_10"], 2.0); // Monday 10:00 is slot 10
            assert_eq!(p.live.hour_flow, 1);
            assert_eq!(p.live.occupancy, 1);
        });
    }

    #[test]
    fn anomalies_need_three_earlier_weeks_of_the_same_hour() {
        let mut base = Item::new();
        for (k, v) in [
            ("n_10", 3.0),
            ("f_10", 12.0),
            ("ff_10", 48.0),
            ("p_10", 6.0),
            ("pp_10", 12.0),
        ] {
            base.insert(k.into(), v.into());
        }
        // Usual flow 4 (σ 0, so the limit is 4 + 3·1 = 7): an eighth crossing is an anomaly.
        let ops: Vec<Op> = (0..8)
            .map(|i| {
                cross(
                    "2026-11-02T10:05:00Z",
                    if i % 2 == 0 {
                        Crossing::Entry
                    } else {
                        Crossing::Exit
                    },
                )
            })
            .collect();
        run(&record(None), &base, &ops[..7], |p| {
            assert!(p.triggers.is_empty())
        });
        run(&record(None), &base, &ops, |p| {
            assert!(p.triggers.contains_key("anomaly_detected"))
        });
        base.insert("n_10".into(), 2.0.into());
        run(&record(None), &base, &ops, |p| {
            assert!(p.triggers.is_empty())
        });
    }
}
