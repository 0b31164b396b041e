//! Calendar-correct time buckets in an IANA time zone, for the apps' rollups: fixed periods,
//! local minutes and hours, local days (23 or 25 hours across DST) and calendar months.
//! Sub-day buckets are keyed by their start instant in UTC, so the local hour repeated at a DST
//! fall-back stays two buckets; days and months by their local date.
//!
//! Each app names its own granularities (and prints its own labels); this is the arithmetic
//! they share.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A unit of the calendar that buckets are cut in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// Periods of this many seconds aligned on the Unix epoch: the same instants in every zone.
    Every(i64),
    Minute,
    Hour,
    Day,
    Month,
}

impl Unit {
    /// The start of the bucket that holds `t`.
    pub fn floor(self, tz: Tz, t: DateTime<Utc>) -> DateTime<Tz> {
        let local = t.with_timezone(&tz);
        let sub_second = Duration::nanoseconds(i64::from(local.nanosecond()));
        match self {
            Self::Every(secs) => {
                let s = t.timestamp();
                Utc.timestamp_opt(s - s.rem_euclid(secs), 0)
                    .single()
                    .unwrap_or(t)
                    .with_timezone(&tz)
            }
            Self::Minute => local - Duration::seconds(i64::from(local.second())) - sub_second,
            Self::Hour => {
                local
                    - Duration::seconds(i64::from(local.minute() * 60 + local.second()))
                    - sub_second
            }
            Self::Day => start_of_day(tz, local.date_naive()),
            Self::Month => start_of_day(tz, first_of_month(local.year(), local.month())),
        }
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(self, tz: Tz, start: DateTime<Tz>) -> DateTime<Tz> {
        match self {
            Self::Every(secs) => start + Duration::seconds(secs),
            Self::Minute => start + Duration::minutes(1),
            Self::Hour => self.floor(tz, (start + Duration::minutes(60)).to_utc()),
            Self::Day => start_of_day(tz, start.date_naive() + Duration::days(1)),
            Self::Month => {
                let (y, m) = (start.year(), start.month());
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                start_of_day(tz, first_of_month(y, m))
            }
        }
    }

    /// The sort key of the bucket starting at `start`: its UTC start for sub-day units (to the
    /// second for fixed periods, to the minute otherwise), its local date or month otherwise.
    pub fn key(self, start: &DateTime<Tz>) -> String {
        match self {
            Self::Every(_) => start.to_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Self::Minute | Self::Hour => start.to_utc().format("%Y-%m-%dT%H:%MZ").to_string(),
            Self::Day => start.format("%Y-%m-%d").to_string(),
            Self::Month => start.format("%Y-%m").to_string(),
        }
    }
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default()
}

/// Local midnight, or the first instant of the day when a DST jump skips midnight.
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Tz> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    (0..=3)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .unwrap_or_else(|| tz.from_utc_datetime(&midnight))
}

/// RFC 3339 in UTC with a `Z`, second precision, as the seeds print timestamps.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Hour of week in the local calendar, 0 (Monday 00h) to 167.
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

    fn key(u: Unit, tz: Tz, t: DateTime<Utc>) -> String {
        u.key(&u.floor(tz, t))
    }

    fn span(u: Unit, tz: Tz, t: DateTime<Utc>) -> Duration {
        let start = u.floor(tz, t);
        u.next(tz, start) - start
    }

    #[test]
    fn days_and_months_follow_the_local_calendar() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        // 20:00Z on the 30th is already 1 October in India.
        let t = utc("2025-09-30T20:00:00Z");
        assert_eq!(key(Unit::Day, tz, t), "2025-10-01");
        assert_eq!(key(Unit::Month, tz, t), "2025-10");
        // Hours are local hours (India is UTC+05:30), keyed by their UTC start.
        assert_eq!(key(Unit::Hour, tz, t), "2025-09-30T19:30Z");
        // 23:30Z on 31 October is already 1 November in Berlin (UTC+1).
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let t = utc("2026-10-31T23:30:00Z");
        assert_eq!(key(Unit::Day, berlin, t), "2026-11-01");
        assert_eq!(key(Unit::Month, berlin, t), "2026-11");
        assert_eq!(key(Unit::Month, Tz::UTC, t), "2026-10");
        // February has 28 days; the month after December is January.
        let feb = Unit::Month.floor(Tz::UTC, utc("2026-02-14T00:00:00Z"));
        let mar = Unit::Month.next(Tz::UTC, feb);
        assert_eq!((mar - feb).num_days(), 28);
        let dec = Unit::Month.floor(Tz::UTC, utc("2025-12-31T23:59:59Z"));
        assert_eq!(Unit::Month.key(&Unit::Month.next(Tz::UTC, dec)), "2026-01");
    }

    #[test]
    fn dst_days_are_23_and_25_hours_and_the_repeated_hour_is_two_buckets() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            span(Unit::Day, tz, utc("2025-03-30T12:00:00Z")).num_hours(),
            23
        );
        assert_eq!(
            span(Unit::Day, tz, utc("2025-10-26T12:00:00Z")).num_hours(),
            25
        );
        // 25 October 2026: clocks go back, the day has 25 hours; 29 March: 23.
        assert_eq!(
            span(Unit::Day, tz, utc("2026-10-25T12:00:00Z")).num_hours(),
            25
        );
        assert_eq!(
            span(Unit::Day, tz, utc("2026-03-29T12:00:00Z")).num_hours(),
            23
        );
        // The repeated 02:00 local hour is two buckets, an hour each.
        let a = Unit::Hour.floor(tz, utc("2026-10-25T00:30:00Z"));
        let b = Unit::Hour.floor(tz, utc("2026-10-25T01:30:00Z"));
        assert_eq!((a.hour(), b.hour()), (2, 2));
        assert_ne!(Unit::Hour.key(&a), Unit::Hour.key(&b));
        assert_eq!(Unit::Hour.next(tz, a), b);
        // A skipped midnight (Santiago, 2025-09-07) starts the day at 01:00.
        let cl: Tz = "America/Santiago".parse().unwrap();
        let d = start_of_day(cl, NaiveDate::from_ymd_opt(2025, 9, 7).unwrap());
        assert_eq!(d.hour(), 1);
    }

    #[test]
    fn fixed_periods_and_minutes() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let t = utc("2026-10-25T01:33:10Z");
        assert_eq!(key(Unit::Every(300), berlin, t), "2026-10-25T01:30:00Z");
        assert_eq!(span(Unit::Every(300), berlin, t).num_seconds(), 300);
        assert_eq!(key(Unit::Minute, berlin, t), "2026-10-25T01:33Z");
        assert_eq!(span(Unit::Minute, berlin, t).num_seconds(), 60);
    }

    #[test]
    fn local_hours_and_hours_of_week() {
        assert_eq!(hour_of_week(Tz::UTC, utc("2026-11-23T05:00:00Z")), 5); // a Monday
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(local_hour(berlin, utc("2026-11-23T05:00:00Z")), 6);
        assert_eq!(
            rfc3339(utc("2026-11-23T05:00:00.750Z")),
            "2026-11-23T05:00:00Z"
        );
    }
}
