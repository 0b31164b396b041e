//! Calendar-correct buckets in the configured time zone: 5-minute log periods, hours, local
//! days (23 or 25 hours across DST) and calendar months. Log and hour buckets are keyed by
//! their start instant in UTC, so the local hour repeated at a DST fall-back stays two buckets.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

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

    /// The bucket holding `t`.
    pub fn bucket(self, tz: Tz, t: DateTime<Utc>) -> Bucket {
        let start = self.floor(tz, t);
        Bucket {
            g: self,
            start: start.to_utc(),
            end: self.next(tz, start).to_utc(),
            key: self.key(&start),
            label: self.label(&start),
            local_hour: start.hour(),
        }
    }

    fn floor(self, tz: Tz, t: DateTime<Utc>) -> DateTime<Tz> {
        let local = t.with_timezone(&tz);
        match self {
            Self::Log => {
                let s = t.timestamp();
                Utc.timestamp_opt(s - s.rem_euclid(LOG_SECS), 0)
                    .single()
                    .unwrap_or(t)
                    .with_timezone(&tz)
            }
            Self::Hour => {
                let into = i64::from(local.minute() * 60 + local.second());
                local - Duration::seconds(into) - Duration::nanoseconds(local.nanosecond().into())
            }
            Self::Day => start_of_day(tz, local.date_naive()),
            Self::Month => start_of_day(tz, first_of_month(local.year(), local.month())),
        }
    }

    fn next(self, tz: Tz, start: DateTime<Tz>) -> DateTime<Tz> {
        match self {
            Self::Log => start + Duration::seconds(LOG_SECS),
            Self::Hour => self.floor(tz, (start + Duration::minutes(60)).to_utc()),
            Self::Day => start_of_day(tz, start.date_naive() + Duration::days(1)),
            Self::Month => {
                let (y, m) = (start.year(), start.month());
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                start_of_day(tz, first_of_month(y, m))
            }
        }
    }

    /// Sort key: UTC start for logs and hours, local date or month otherwise.
    pub fn key(self, start: &DateTime<Tz>) -> String {
        match self {
            Self::Log => start.to_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Self::Hour => start.to_utc().format("%Y-%m-%dT%H:%MZ").to_string(),
            Self::Day => start.format("%Y-%m-%d").to_string(),
            Self::Month => start.format("%Y-%m").to_string(),
        }
    }

    /// What the seed prints: `2025-01-15T10:05:00Z`, `2025-01-15 10:00` (local), `2025-01-15`,
    /// `2025-01`.
    fn label(self, start: &DateTime<Tz>) -> String {
        match self {
            Self::Log => rfc3339(start.to_utc()),
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

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default()
}

/// Local midnight, or the first instant of the day when a DST jump skips midnight.
fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Tz> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    (0..=3)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .unwrap_or_else(|| tz.from_utc_datetime(&midnight))
}

/// RFC 3339 in UTC with a `Z`, second precision, as the seed prints timestamps.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Hour of week in the local calendar, 0 (Monday 00h) to 167: the anomaly baseline's slot.
pub fn hour_of_week(tz: Tz, t: DateTime<Utc>) -> u32 {
    let local = t.with_timezone(&tz);
    local.weekday().num_days_from_monday() * 24 + local.hour()
}

/// Local hour of `t` (0–23).
pub fn local_hour(tz: Tz, t: DateTime<Utc>) -> u32 {
    t.with_timezone(&tz).hour()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

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
        assert_eq!(hour_of_week(chrono_tz::UTC, utc("2026-11-23T05:00:00Z")), 5); // a Monday
    }
}
