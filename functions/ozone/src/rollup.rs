//! Usage rollups: for each scope (everything, a device, a machine, an outlet) and granularity,
//! one counter item per time bucket, bumped with `ADD` in the ingest transaction. Stats read
//! O(buckets) of these and never the raw events.
//!
//! Buckets follow the configured time zone's calendar ([`civic_core::calendar`]): a day is a
//! local calendar day (23 or 25 hours across DST) and a month a calendar month. Minute and hour
//! buckets are keyed by their start instant in UTC, so the local hour repeated at a DST
//! fall-back stays two buckets.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use civic_core::calendar::Unit;
pub use civic_core::calendar::start_of_day;
use civic_core::{Error, Result};
use civic_store::{Key, SkRange, Table, Update};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::Treatment;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Minute,
    Hour,
    #[default]
    Day,
    Month,
}

pub const GRANULARITIES: [Granularity; 4] = [
    Granularity::Minute,
    Granularity::Hour,
    Granularity::Day,
    Granularity::Month,
];

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// The calendar unit this granularity's buckets are cut in.
    pub fn unit(self) -> Unit {
        match self {
            Self::Minute => Unit::Minute,
            Self::Hour => Unit::Hour,
            Self::Day => Unit::Day,
            Self::Month => Unit::Month,
        }
    }

    /// The start of the bucket that holds `t`.
    pub fn floor(self, tz: Tz, t: DateTime<Utc>) -> DateTime<Tz> {
        self.unit().floor(tz, t)
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(self, tz: Tz, start: DateTime<Tz>) -> DateTime<Tz> {
        self.unit().next(tz, start)
    }

    /// The sort key of the bucket starting at `start`.
    pub fn key(self, start: &DateTime<Tz>) -> String {
        self.unit().key(start)
    }

    /// The bucket's label for people: local time with its offset, or the local date/month.
    pub fn label(self, start: &DateTime<Tz>) -> String {
        match self {
            Self::Minute | Self::Hour => start.to_rfc3339_opts(SecondsFormat::Secs, true),
            Self::Day | Self::Month => self.key(start),
        }
    }
}

/// Whose usage a rollup counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Device(String),
    Machine(i64),
    Outlet(i64),
}

impl Scope {
    pub fn pk(&self, g: Granularity) -> String {
        let g = g.as_str();
        match self {
            Self::All => format!("ROLLUP#all#{g}"),
            Self::Device(id) => format!("ROLLUP#device#{id}#{g}"),
            Self::Machine(id) => format!("ROLLUP#machine#{id}#{g}"),
            Self::Outlet(id) => format!("ROLLUP#outlet#{id}#{g}"),
        }
    }
}

/// The counter updates one treatment adds: every granularity of every scope it counts in.
/// 4 granularities × at most 4 scopes = 16 writes, well inside a transaction's 100.
pub fn increments(tz: Tz, at: DateTime<Utc>, scopes: &[Scope], t: Treatment) -> Vec<Update> {
    GRANULARITIES
        .iter()
        .flat_map(|&g| {
            let sk = g.key(&g.floor(tz, at));
            scopes.iter().map(move |s| {
                Update::new(Key::new(s.pk(g), sk.clone()))
                    .add("total", 1)
                    .add(t.as_str(), 1)
            })
        })
        .collect()
}

/// One bucket's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    pub total: i64,
    #[serde(rename = "BASIC")]
    pub basic: i64,
    #[serde(rename = "STANDARD")]
    pub standard: i64,
    #[serde(rename = "PREMIUM")]
    pub premium: i64,
}

impl Counts {
    pub fn get(&self, series: &str) -> i64 {
        match series {
            "BASIC" => self.basic,
            "STANDARD" => self.standard,
            "PREMIUM" => self.premium,
            _ => self.total,
        }
    }
    pub fn add(&mut self, o: &Counts) {
        self.total += o.total;
        self.basic += o.basic;
        self.standard += o.standard;
        self.premium += o.premium;
    }
}

/// The series every stats response carries, in order.
pub const SERIES: [&str; 4] = ["total", "BASIC", "STANDARD", "PREMIUM"];

/// The stored buckets of a scope from `first` to `last` (sort keys, inclusive), by key. Costs
/// one query per page of buckets, whatever the number of events behind them.
pub async fn read(
    table: &dyn Table,
    scope: &Scope,
    g: Granularity,
    first: &str,
    last: &str,
) -> Result<BTreeMap<String, Counts>> {
    let mut out = BTreeMap::new();
    let mut cursor = None;
    loop {
        let q = civic_store::Query::partition(scope.pk(g))
            .sk(SkRange::Between(first.to_owned(), last.to_owned()))
            .cursor(cursor);
        let page = table.query(q).await?;
        for item in page.items {
            let n = |name: &str| item.get(name).and_then(Value::as_i64).unwrap_or(0);
            let key = item
                .get(civic_store::SK)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let counts = Counts {
                total: n("total"),
                basic: n("BASIC"),
                standard: n("STANDARD"),
                premium: n("PREMIUM"),
            };
            out.insert(key, counts);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// At most this many buckets per series, so one request stays bounded.
pub const MAX_BUCKETS: usize = 20_000;

/// The starts of the buckets that overlap `[start, end]`.
pub fn buckets(
    tz: Tz,
    g: Granularity,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<DateTime<Tz>>> {
    let mut out = Vec::new();
    let mut b = g.floor(tz, start);
    while b.to_utc() <= end {
        if out.len() == MAX_BUCKETS {
            return Err(Error::bad_request(format!(
                "The range holds more than {MAX_BUCKETS} {} buckets; narrow it or use a coarser granularity",
                g.as_str()
            )));
        }
        out.push(b);
        b = g.next(tz, b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// The calendar itself is tested in `civic_core::calendar`; these are ozone's keys and labels.
    #[test]
    fn days_and_months_follow_the_local_calendar() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        // 20:00Z on the 30th is already 1 October in India.
        let t = utc("2025-09-30T20:00:00Z");
        assert_eq!(
            Granularity::Day.key(&Granularity::Day.floor(tz, t)),
            "2025-10-01"
        );
        assert_eq!(
            Granularity::Month.key(&Granularity::Month.floor(tz, t)),
            "2025-10"
        );
        // Hours are local hours (India is UTC+05:30), keyed by their UTC start.
        let h = Granularity::Hour.floor(tz, t);
        assert_eq!(Granularity::Hour.key(&h), "2025-09-30T19:30Z");
        assert_eq!(Granularity::Hour.label(&h), "2025-10-01T01:00:00+05:30");
    }

    #[test]
    fn the_repeated_hour_is_two_buckets_labelled_with_their_offsets() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let autumn = Granularity::Day.floor(tz, utc("2025-10-26T12:00:00Z"));
        let hours = buckets(
            tz,
            Granularity::Hour,
            autumn.to_utc(),
            utc("2025-10-26T22:59:00Z"),
        )
        .unwrap();
        assert_eq!(hours.len(), 25);
        let labels: Vec<String> = hours.iter().map(|h| Granularity::Hour.label(h)).collect();
        assert_eq!(labels[2], "2025-10-26T02:00:00+02:00");
        assert_eq!(labels[3], "2025-10-26T02:00:00+01:00");
        let keys: std::collections::BTreeSet<String> =
            hours.iter().map(|h| Granularity::Hour.key(h)).collect();
        assert_eq!(keys.len(), 25);
    }

    #[test]
    fn one_treatment_touches_every_granularity_of_every_scope() {
        let scopes = [
            Scope::All,
            Scope::Device("d1".into()),
            Scope::Machine(3),
            Scope::Outlet(1),
        ];
        let writes = increments(
            Tz::UTC,
            utc("2025-09-16T12:34:56Z"),
            &scopes,
            Treatment::Basic,
        );
        assert_eq!(writes.len(), 16);
        let u = &writes[0];
        assert_eq!(
            (u.key.pk.as_str(), u.key.sk.as_str()),
            ("ROLLUP#all#minute", "2025-09-16T12:34Z")
        );
        let u = &writes[15];
        assert_eq!(
            (u.key.pk.as_str(), u.key.sk.as_str()),
            ("ROLLUP#outlet#1#month", "2025-09")
        );
    }

    #[test]
    fn too_many_buckets_are_refused() {
        let r = buckets(
            Tz::UTC,
            Granularity::Minute,
            utc("2025-01-01T00:00:00Z"),
            utc("2025-03-01T00:00:00Z"),
        );
        assert!(r.is_err());
    }
}
