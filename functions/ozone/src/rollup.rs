//! Usage rollups: for each scope (everything, a device, a machine, an outlet), counter items
//! bumped with `ADD`. Stats read O(buckets / 60) of these and never the raw events.
//!
//! Two items per scope and event, not four: an hour item holds its hour's totals and the counts
//! of each of its minutes, and a month item its month's totals and each of its days' counts.
//! Why: every item an event writes costs at least one write unit, and at fleet scale the write
//! units are the bill (docs/scale.md). Both stay well under 1 KB for one device (a minute or day
//! attribute per series seen), so each write still costs one unit.
//!
//! Buckets follow the configured time zone's calendar ([`civic_core::calendar`]): a day is a
//! local calendar day (23 or 25 hours across DST) and a month a calendar month. Minute and hour
//! buckets are keyed by their start instant in UTC, so the local hour repeated at a DST
//! fall-back stays two buckets.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use chrono_tz::Tz;
use civic_core::calendar::Unit;
pub use civic_core::calendar::start_of_day;
use civic_core::{Error, Result};
use civic_store::{Item, Key, SK, SkRange, Table, Update};
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

/// Where a bucket is stored: minutes inside their hour's item, days inside their month's.
fn home(g: Granularity) -> Granularity {
    match g {
        Granularity::Minute | Granularity::Hour => Granularity::Hour,
        Granularity::Day | Granularity::Month => Granularity::Month,
    }
}

/// The attribute of a minute (`m07B`) or day (`d31P`) inside its home item: the bucket's
/// position there and the series' initial. A bucket's total is the sum of its series.
fn part_name(g: Granularity, start: &DateTime<Tz>, t: Treatment) -> String {
    let (prefix, n) = match g {
        Granularity::Minute => ('m', start.minute()),
        _ => ('d', start.day()),
    };
    format!("{prefix}{n:02}{}", &t.as_str()[..1])
}

/// The counter updates one treatment adds to each scope: its hour item (the hour and the
/// minute) and its month item (the month and the day). At most 4 scopes × 2 = 8 writes.
pub fn increments(tz: Tz, at: DateTime<Utc>, scopes: &[Scope], t: Treatment) -> Vec<Update> {
    let (minute, day) = (
        Granularity::Minute.floor(tz, at),
        Granularity::Day.floor(tz, at),
    );
    [(Granularity::Hour, minute), (Granularity::Month, day)]
        .into_iter()
        .flat_map(|(g, part)| {
            let sk = g.key(&g.floor(tz, at));
            let sub = if g == Granularity::Hour {
                Granularity::Minute
            } else {
                Granularity::Day
            };
            let part = part_name(sub, &part, t);
            scopes.iter().map(move |s| {
                Update::new(Key::new(s.pk(g), sk.clone()))
                    .add("total", 1)
                    .add(t.as_str(), 1)
                    .add(&part, 1)
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

/// The stored buckets of a scope from `first` to `last` (sort keys, inclusive), by key: one
/// query per page of home items, whatever the number of events behind them.
///
/// Minutes and days counted before they moved into their hour's and month's items are in
/// their own items (`ROLLUP#…#minute`, `…#day`), which are read too (concurrently), so an
/// upgrade keeps their history.
pub async fn read(
    table: &dyn Table,
    tz: Tz,
    scope: &Scope,
    g: Granularity,
    first: &str,
    last: &str,
) -> Result<BTreeMap<String, Counts>> {
    let home_g = home(g);
    if home_g == g {
        return query(table, scope.pk(g), first, last, |key, item| {
            vec![(key.to_owned(), totals(item))]
        })
        .await;
    }
    let (from, to) = (home_key(tz, g, first)?, home_key(tz, g, last)?);
    let parts = query(table, scope.pk(home_g), &from, &to, |key, item| {
        parts(tz, g, key, item)
    });
    let legacy = query(table, scope.pk(g), first, last, |key, item| {
        vec![(key.to_owned(), totals(item))]
    });
    let (parts, legacy) = tokio::try_join!(parts, legacy)?;
    let mut out: BTreeMap<String, Counts> = parts
        .into_iter()
        .filter(|(k, _)| (first..=last).contains(&k.as_str()))
        .collect();
    for (k, c) in legacy {
        out.entry(k).or_default().add(&c);
    }
    Ok(out)
}

/// The key of the home item holding the minute or day keyed `key`.
fn home_key(tz: Tz, g: Granularity, key: &str) -> Result<String> {
    if g == Granularity::Day {
        return Ok(key.get(..7).unwrap_or(key).to_owned());
    }
    let at = chrono::NaiveDateTime::parse_from_str(key, "%Y-%m-%dT%H:%MZ")
        .map_err(|e| Error::Internal(format!("minute key {key}: {e}")))?
        .and_utc();
    Ok(Granularity::Hour.key(&Granularity::Hour.floor(tz, at)))
}

/// A home item's minutes or days, each keyed as its own bucket would be.
fn parts(tz: Tz, g: Granularity, home_key: &str, item: &Item) -> Vec<(String, Counts)> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    let hour = chrono::NaiveDateTime::parse_from_str(home_key, "%Y-%m-%dT%H:%MZ").ok();
    for (name, n) in item {
        let (Some(n), Some(rest)) = (n.as_i64(), name.strip_prefix(['m', 'd'])) else {
            continue;
        };
        let (Some(pos), Some(series)) = (rest.get(..2), rest.get(2..)) else {
            continue;
        };
        let key = match (g, hour, pos.parse::<i64>()) {
            (Granularity::Minute, Some(h), Ok(m)) if name.starts_with('m') => {
                let start = (h.and_utc() + chrono::Duration::minutes(m)).with_timezone(&tz);
                Granularity::Minute.key(&start)
            }
            (Granularity::Day, _, Ok(_)) if name.starts_with('d') => format!("{home_key}-{pos}"),
            _ => continue,
        };
        let c = out.entry(key).or_default();
        c.total += n;
        match series {
            "B" => c.basic += n,
            "S" => c.standard += n,
            "P" => c.premium += n,
            _ => c.total -= n,
        }
    }
    out.into_iter().collect()
}

/// An item's totals.
fn totals(item: &Item) -> Counts {
    let n = |name: &str| item.get(name).and_then(Value::as_i64).unwrap_or(0);
    Counts {
        total: n("total"),
        basic: n("BASIC"),
        standard: n("STANDARD"),
        premium: n("PREMIUM"),
    }
}

/// Every item of `pk` from `first` to `last`, each read by `each` (given its sort key).
async fn query(
    table: &dyn Table,
    pk: String,
    first: &str,
    last: &str,
    each: impl Fn(&str, &Item) -> Vec<(String, Counts)>,
) -> Result<BTreeMap<String, Counts>> {
    let mut out = BTreeMap::new();
    let mut cursor = None;
    loop {
        let q = civic_store::Query::partition(pk.clone())
            .sk(SkRange::Between(first.to_owned(), last.to_owned()))
            .cursor(cursor);
        let page = table.query(q).await?;
        for item in &page.items {
            let key = item.get(SK).and_then(Value::as_str).unwrap_or_default();
            out.extend(each(key, item));
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

    fn added(u: &Update, name: &str) -> Option<i64> {
        u.add
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_i64())
    }

    #[test]
    fn one_treatment_writes_an_hour_and_a_month_item_per_scope() {
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
        assert_eq!(writes.len(), 8);
        let u = &writes[0];
        assert_eq!(
            (u.key.pk.as_str(), u.key.sk.as_str()),
            ("ROLLUP#all#hour", "2025-09-16T12:00Z")
        );
        assert_eq!(added(u, "m34B"), Some(1));
        let u = &writes[7];
        assert_eq!(
            (u.key.pk.as_str(), u.key.sk.as_str()),
            ("ROLLUP#outlet#1#month", "2025-09")
        );
        assert_eq!(added(u, "d16B"), Some(1));
    }

    /// What `increments` writes, `parts` reads back under the bucket keys stats ask for, in a
    /// zone whose hours start at :30 UTC.
    #[test]
    fn minutes_and_days_read_back_under_their_own_keys() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        let at = utc("2025-09-30T20:07:00Z");
        let writes = increments(tz, at, &[Scope::All], Treatment::Premium);
        let item = |u: &Update| -> Item {
            u.add
                .iter()
                .map(|(n, v)| (n.clone(), Value::Number(v.clone())))
                .collect()
        };
        let minutes = parts(
            tz,
            Granularity::Minute,
            &writes[0].key.sk,
            &item(&writes[0]),
        );
        let minute = Granularity::Minute.key(&Granularity::Minute.floor(tz, at));
        assert_eq!(writes[0].key.sk, "2025-09-30T19:30Z");
        assert_eq!(
            minutes,
            vec![(
                minute,
                Counts {
                    total: 1,
                    premium: 1,
                    ..Counts::default()
                }
            )]
        );
        let days = parts(tz, Granularity::Day, &writes[1].key.sk, &item(&writes[1]));
        assert_eq!(days[0].0, "2025-10-01");
        assert_eq!(days[0].1.premium, 1);
        assert_eq!(
            home_key(tz, Granularity::Minute, "2025-09-30T20:07Z").unwrap(),
            "2025-09-30T19:30Z"
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
