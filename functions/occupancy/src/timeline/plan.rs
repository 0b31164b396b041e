//! A plan: a chunk of a camera's ops applied in time order to a copy of its live state,
//! collecting the bucket counts, markers, alerts and log entries they imply. Moving through
//! time is in `advance`; turning the plan into a transaction in `write`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use civic_core::calendar;
use civic_core::item::to_item;
use civic_store::{Item, Key};
use serde_json::json;

use super::types::{
    BucketWrite, Crossing, Ctx, Live, Need, Op, Snapshot, Trigger, epoch, from_epoch,
};
use crate::buckets::{Bucket, GRANULARITIES, Granularity};
use crate::cameras::{Camera, Record};
use crate::keys::{
    CROSSED_TTL_SECS, attributes, calibration_key, camera_key, crossed_marker, seen_marker,
};

/// A chunk of ops turned into writes.
pub(super) struct Plan<'c, 'a> {
    pub(super) ctx: &'c Ctx<'a>,
    pub(super) pk: String,
    pub(super) camera: Camera,
    pub(super) live: Live,
    pub(super) buckets: BTreeMap<String, BucketWrite>,
    pub(super) markers: BTreeSet<(Key, i64)>,
    pub(super) baseline: BTreeMap<String, f64>,
    pub(super) logs: Vec<Item>,
    pub(super) triggers: BTreeMap<&'static str, Trigger>,
    pub(super) needs: BTreeSet<Need>,
    pub(super) entries: i64,
    pub(super) exits: i64,
    pub(super) accepted: usize,
    pub(super) changed: bool,
    pub(super) start_level: i64,
    /// The log bucket that was open before this plan: it has its id already.
    pub(super) known_log: Option<String>,
}

impl<'c, 'a> Plan<'c, 'a> {
    pub(super) fn new(ctx: &'c Ctx<'a>, rec: &Record) -> Self {
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

    pub(super) fn writes(&self) -> usize {
        2 + self.buckets.len()
            + self.markers.len()
            + usize::from(!self.baseline.is_empty())
            + self.logs.len()
            + self.triggers.len()
    }

    pub(super) fn bucket(&mut self, b: &Bucket) -> &mut BucketWrite {
        let w = self.buckets.entry(b.sk()).or_default();
        w.bucket.get_or_insert_with(|| b.clone());
        w
    }

    /// After a level change at the timeline's time: peaks and bucket snapshots.
    pub(super) fn record_level(&mut self) {
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

    pub(super) fn trigger(&mut self, kind: &'static str, message: String, at: DateTime<Utc>) {
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
            // Above 80%, in i128: both come from requests and may be near i64::MAX.
            } else if i128::from(level) * 5 > i128::from(max) * 4 {
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
            let marker = seen_marker(self.camera.id, &b.sk(), track);
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

    pub(super) fn apply(&mut self, op: &Op) {
        match op {
            Op::Cross {
                at,
                kind,
                track,
                line,
            } => self.cross(*at, *kind, track.as_deref(), *line),
            Op::Set {
                at,
                value,
                notes,
                log_id,
            } => self.calibrate(*at, *value, notes.as_deref(), *log_id),
            Op::Tick { at } => self.tick(*at),
        }
    }

    fn cross(&mut self, at: DateTime<Utc>, kind: Crossing, track: Option<&str>, line: i64) {
        if let Some(track) = track {
            let marker = crossed_marker(self.camera.id, line, at, kind, track);
            let expires = epoch(self.ctx.now.max(at)) + CROSSED_TTL_SECS;
            if self.ctx.seen.contains(&marker) || !self.markers.insert((marker, expires)) {
                return;
            }
        }
        self.advance(at);
        self.count(at, kind, track);
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
                    let msg =
                        format!("An exit at line {line} would take occupancy below 0; kept at 0");
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

    fn calibrate(&mut self, at: DateTime<Utc>, value: i64, notes: Option<&str>, log_id: i64) {
        self.advance(at);
        self.live.occupancy = value;
        let t = from_epoch(self.live.last_at.unwrap_or_default());
        let entry = json!({
            "id": log_id, "camera_id": self.camera.id, "entry_count": 0, "exit_count": 0,
            "net_occupancy": value, "timestamp": calendar::rfc3339(t), "tracked_persons": 0,
            "is_manual_calibration": true, "notes": notes,
        });
        if let Ok(item) = to_item(&entry, &attributes(calibration_key(self.camera.id, t))) {
            self.logs.push(item);
        }
        self.record_level();
    }

    fn tick(&mut self, at: DateTime<Utc>) {
        if self.live.last_at.is_some() {
            self.advance(at);
        }
        let since = self
            .live
            .last_seen
            .unwrap_or_else(|| created_epoch(&self.camera));
        let silent = epoch(at) - since;
        if self.camera.is_active && silent > self.ctx.silence_secs {
            let msg = format!(
                "No crossings from camera {} for {} minutes",
                self.camera.camera_id,
                silent / 60
            );
            self.trigger("equipment_failure", msg, at);
        }
    }
}

fn created_epoch(c: &Camera) -> i64 {
    DateTime::parse_from_rfc3339(&c.created_at)
        .map(|t| t.timestamp())
        .unwrap_or_default()
}
