//! The write builder: a finished plan becomes one transaction, the camera item first
//! (conditional on the version read), then bucket counters, the baseline, calibration log
//! entries, the facility's counters (inline mode; in stream mode they ride on the camera item
//! for the aggregator), alerts and, last, the markers (so that a cancellation on markers only
//! is recognisable by position).

use std::collections::BTreeSet;

use civic_core::item::to_item;
use civic_core::{Result, calendar};
use civic_store::{Cond, EXPIRES_AT, Item, Key, Update, VERSION, Write};
use serde_json::json;

use super::plan::Plan;
use super::types::{Need, epoch};
use crate::aggregate::{FacilityDelta, Mode};
use crate::buckets::Granularity;
use crate::cameras::Record;
use crate::keys::{
    OPEN_ALERTS, alert_key, attributes, baseline_key, facility_key, indexed, open_alert_sk,
};

/// A finished plan: what it still needs, or its transaction.
pub(super) enum Built {
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

impl Plan<'_, '_> {
    /// The transaction: the camera item first (position 0), then everything else.
    pub(super) fn finish(mut self, version: i64) -> Result<Built> {
        let changed = self.changed || !self.triggers.is_empty();
        let (alert_writes, new_alerts) = self.alert_writes();
        let mut writes = self.bucket_writes();
        if !self.needs.is_empty() {
            return Ok(Built::Needs(std::mem::take(&mut self.needs)));
        }
        writes.extend(self.baseline_write());
        for item in self.logs.drain(..) {
            writes.push(Write::Put {
                item,
                cond: Cond::Always,
            });
        }
        let delta = self.facility_delta(new_alerts, version + 1);
        self.live.facility = None;
        match (self.ctx.facility, delta) {
            (_, None) => {}
            (Mode::Stream, delta) => self.live.facility = delta,
            (Mode::Inline, Some(d)) => writes.push(facility_write(d)),
        }
        writes.extend(alert_writes);
        let first_marker = writes.len() + 1;
        let markers = self.marker_writes(&mut writes);
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

    /// An open alert of a type is updated; a new one needs an id first. Returns the writes and
    /// how many alerts open.
    fn alert_writes(&mut self) -> (Vec<Write>, i64) {
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
                    let alert = json!({
                        "id": id, "camera_id": self.camera.id, "alert_type": kind,
                        "current_occupancy": t.occupancy, "message": t.message, "is_resolved": false,
                        "timestamp": at, "occurrences": 1, VERSION: 1,
                    });
                    let index_sk = open_alert_sk(self.camera.id, id);
                    let keys = indexed(alert_key(id), OPEN_ALERTS, index_sk);
                    let Ok(item) = to_item(&alert, &keys) else {
                        continue;
                    };
                    Write::Put {
                        item,
                        cond: Cond::NotExists,
                    }
                }
            };
            alert_writes.push(w);
        }
        (alert_writes, new_alerts)
    }

    /// Counters are ADDed (late crossings count in their own buckets); the open buckets'
    /// snapshots are SET. A new log bucket needs an id first.
    fn bucket_writes(&mut self) -> Vec<Write> {
        let mut writes = Vec::new();
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
        writes
    }

    /// The closed hours' sums, ADDed to their hour-of-week slots.
    fn baseline_write(&self) -> Option<Write> {
        if self.baseline.is_empty() {
            return None;
        }
        let u =
            self.baseline
                .iter()
                .fold(Update::new(baseline_key(self.camera.id)), |u, (k, v)| {
                    u.add(
                        k,
                        serde_json::Number::from_f64(*v).unwrap_or_else(|| 0.into()),
                    )
                });
        Some(Write::Update(u))
    }

    /// What this write changes in the facility's counters, if anything, at camera `version`.
    fn facility_delta(&self, new_alerts: i64, version: i64) -> Option<FacilityDelta> {
        let occupancy = self.live.occupancy - self.start_level;
        if self.entries + self.exits == 0 && new_alerts == 0 && occupancy == 0 {
            return None;
        }
        Some(FacilityDelta {
            version,
            occupancy,
            entries: self.entries,
            exits: self.exits,
            alerts: new_alerts,
            // Wall clock: the cameras' timelines may be at different (even past) times.
            at: calendar::rfc3339(self.ctx.now),
        })
    }

    /// Appends the markers, each written only if new; returns their keys in write order.
    fn marker_writes(&mut self, writes: &mut Vec<Write>) -> Vec<Key> {
        let mut markers = Vec::new();
        for (key, expires) in std::mem::take(&mut self.markers) {
            let mut item: Item = attributes(key.clone())
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.into()))
                .collect();
            item.insert(EXPIRES_AT.into(), expires.into());
            writes.push(Write::Put {
                item,
                cond: Cond::NotExists,
            });
            markers.push(key);
        }
        markers
    }
}

/// The facility's counters `ADD`ed in the camera's own transaction ([`Mode::Inline`]).
fn facility_write(d: FacilityDelta) -> Write {
    Write::Update(
        Update::new(facility_key())
            .add("occupancy", d.occupancy)
            .add("entries", d.entries)
            .add("exits", d.exits)
            .add("active_alerts", d.alerts)
            .add(crate::live::SEQ, 1)
            .set("last_updated", d.at),
    )
}
