//! The occupancy buckets, cut in the configured time zone's calendar ([`civic_core::calendar`]):
//! 5-minute log periods, hours, local days (23 or 25 hours across DST) and calendar months. Log
//! and hour buckets are keyed by their start instant in UTC, so the local hour repeated at a
//! DST fall-back stays two buckets.

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use civic_core::calendar::{self, Unit};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    /// The seed's raw logs: 5-minute periods.
    Log,
    Hour,
    Day,
    Month,
}

pub const GRANULARITIES: [Granularity; 4] = [
    Granularity::Log,
    Granularity::Hour,
    Granularity::Day,
    Granularity::Month,
];

const LOG_SECS: i64 = 300;

impl Granularity {
    /// Sort-key prefix of this granularity's bucket items.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Log => "LOG#",
            Self::Hour => "HOUR#",
            Self::Day => "DAY#",
            Self::Month => "MONTH#",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// The calendar unit this granularity's buckets are cut in.
    pub fn unit(self) -> Unit {
        match self {
            Self::Log => Unit::Every(LOG_SECS),
            Self::Hour => Unit::Hour,
            Self::Day => Unit::Day,
            Self::Month => Unit::Month,
        }
    }

    /// The bucket holding `t`.
    pub fn bucket(self, tz: Tz, t: DateTime<Utc>) -> Bucket {
        let unit = self.unit();
        let start = unit.floor(tz, t);
        Bucket {
            g: self,
            start: start.to_utc(),
            end: unit.next(tz, start).to_utc(),
            key: self.key(&start),
            label: self.label(&start),
            local_hour: start.hour(),
        }
    }

    /// Sort key: UTC start for logs and hours, local date or month otherwise.
    pub fn key(self, start: &DateTime<Tz>) -> String {
        self.unit().key(start)
    }

    /// What the seed prints: `2025-01-15T10:05:00Z`, `2025-01-15 10:00` (local), `2025-01-15`,
    /// `2025-01`.
    fn label(self, start: &DateTime<Tz>) -> String {
        match self {
            Self::Log => calendar::rfc3339(start.to_utc()),
            Self::Hour => start.format("%Y-%m-%d %H:%M").to_string(),
            Self::Day | Self::Month => self.key(start),
        }
    }
}

/// One bucket of one granularity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub g: Granularity,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub key: String,
    pub label: String,
    /// Local hour of the start (days: the peak hour is reported in local hours).
    pub local_hour: u32,
}

impl Bucket {
    pub fn sk(&self) -> String {
        format!("{}{}", self.g.prefix(), self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// The calendar itself is tested in `civic_core::calendar`; these are occupancy's buckets.
    #[test]
    fn local_days_months_and_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 23:30Z on 31 October is already 1 November in Berlin (UTC+1).
        let t = utc("2026-10-31T23:30:00Z");
        assert_eq!(Granularity::Day.bucket(berlin, t).key, "2026-11-01");
        assert_eq!(Granularity::Month.bucket(berlin, t).key, "2026-11");
        assert_eq!(Granularity::Month.bucket(chrono_tz::UTC, t).key, "2026-10");
        // 25 October 2026: clocks go back, the day has 25 hours.
        let d = Granularity::Day.bucket(berlin, utc("2026-10-25T12:00:00Z"));
        assert_eq!((d.end - d.start).num_hours(), 25);
        let d = Granularity::Day.bucket(berlin, utc("2026-03-29T12:00:00Z"));
        assert_eq!((d.end - d.start).num_hours(), 23);
        // The repeated 02:00 local hour is two buckets with the same label.
        let a = Granularity::Hour.bucket(berlin, utc("2026-10-25T00:30:00Z"));
        let b = Granularity::Hour.bucket(berlin, utc("2026-10-25T01:30:00Z"));
        assert_eq!(a.label, "2026-10-25 02:00");
        assert_eq!(b.label, "2026-10-25 02:00");
        assert_ne!(a.key, b.key);
        let log = Granularity::Log.bucket(berlin, utc("2026-10-25T01:33:10Z"));
        assert_eq!(log.label, "2026-10-25T01:30:00Z");
        assert_eq!(
            calendar::hour_of_week(chrono_tz::UTC, utc("2026-11-23T05:00:00Z")),
            5
        ); // a Monday
    }
}
