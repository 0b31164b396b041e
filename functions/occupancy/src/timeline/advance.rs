//! Moving a plan's timeline through time: area accrues at the current level, buckets the
//! timeline leaves are closed (an hour feeds the hour-of-week baseline), the ones it enters are
//! opened (an hour with its anomaly limits).

use chrono::{DateTime, Utc};
use civic_core::calendar;
use serde_json::Value;

use super::plan::Plan;
use super::types::{Current, Limits, Need, Snapshot, epoch, from_epoch};
use crate::buckets::{Bucket, GRANULARITIES, Granularity};

/// Earlier weeks of an hour-of-week slot the anomaly rule needs.
const MIN_WEEKS: f64 = 3.0;

impl Plan<'_, '_> {
    /// Moves the timeline to `t` at the current level: area accrues, buckets left are closed.
    pub(super) fn advance(&mut self, t: DateTime<Utc>) {
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
}
