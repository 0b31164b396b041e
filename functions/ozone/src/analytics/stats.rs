//! `/api/test/stats` and `/api/events/analytics`: treatments per bucket from the rollups.

use std::collections::BTreeMap;

use axum::extract::State as S;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use civic_core::{Error, Json, Query, Result};
use civic_store::Table;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::rollup::{self, Counts, Granularity, SERIES, Scope};
use crate::{
    State, Treatment, User, iso, now, parse_bool, parse_days, parse_id, parse_time, valid_device_id,
};

#[derive(Deserialize, IntoParams)]
pub struct StatsParams {
    outlet_id: Option<String>,
    machine_id: Option<String>,
    /// The most specific filter wins: device, then machine, then outlet.
    device_id: Option<String>,
    /// minute|hour|day|month (default day).
    granularity: Option<String>,
    /// ISO date or date-time; default: the start of the day `days - 1` days before `end`.
    start: Option<String>,
    /// ISO date or date-time; default now. A bare date means the end of that day.
    end: Option<String>,
    /// Calendar days up to `end`, today included (default 7), when `start` is not given.
    days: Option<String>,
    /// Running totals instead of per-bucket counts.
    cumulative: Option<String>,
    /// Moving-average window in buckets (0 = off).
    ma: Option<String>,
    /// Also return the previous period of the same length.
    compare: Option<String>,
}

/// A checked stats request.
pub struct StatsQuery {
    scope: Scope,
    filters: Value,
    g: Granularity,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    cumulative: bool,
    pub(super) ma: usize,
    compare: bool,
}

impl StatsParams {
    pub(super) fn check(&self, tz: Tz) -> Result<StatsQuery> {
        let outlet = parse_id("outlet_id", self.outlet_id.as_deref())?;
        let machine = parse_id("machine_id", self.machine_id.as_deref())?;
        let device = self
            .device_id
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty());
        if let Some(d) = device {
            valid_device_id("device_id", d)?;
        }
        let scope = match (device, machine, outlet) {
            (Some(d), _, _) => Scope::Device(d.to_owned()),
            (None, Some(m), _) => Scope::Machine(m),
            (None, None, Some(o)) => Scope::Outlet(o),
            _ => Scope::All,
        };
        let g = match self.granularity.as_deref().map(str::trim).unwrap_or("") {
            "" | "day" => Granularity::Day,
            "minute" => Granularity::Minute,
            "hour" => Granularity::Hour,
            "month" => Granularity::Month,
            other => {
                return Err(Error::field(
                    "granularity",
                    format!("\"{other}\" is not a valid choice (minute, hour, day, month)."),
                ));
            }
        };
        let end = match self.end.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            // A bare date includes that whole day.
            Some(e) if e.len() == 10 => {
                let next = parse_time("end", e, tz)? + Duration::hours(36);
                Granularity::Day.floor(tz, next).to_utc() - Duration::seconds(1)
            }
            Some(e) => parse_time("end", e, tz)?,
            None => now(),
        };
        let start = match self
            .start
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => parse_time("start", s, tz)?,
            None => {
                let days = parse_days(self.days.as_deref(), 7)?;
                let last_day = Granularity::Day.floor(tz, end);
                rollup::start_of_day(tz, last_day.date_naive() - Duration::days(days - 1)).to_utc()
            }
        };
        if start > end {
            return Err(Error::field("start", "Must not be after end."));
        }
        let ma = match self.ma.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            None => 0,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|m| *m <= 1000)
                .ok_or_else(|| Error::field("ma", "Must be a whole number from 0 to 1000."))?,
        };
        Ok(StatsQuery {
            filters: json!({"outlet_id": outlet, "machine_id": machine, "device_id": device}),
            scope,
            g,
            start,
            end,
            cumulative: parse_bool("cumulative", self.cumulative.as_deref())?.unwrap_or(false),
            ma,
            compare: parse_bool("compare", self.compare.as_deref())?.unwrap_or(false),
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct Series {
    pub(super) name: String,
    pub(super) data: Vec<f64>,
}

/// One period's buckets.
#[derive(Serialize, ToSchema)]
pub struct Period {
    start: String,
    end: String,
    pub(super) labels: Vec<String>,
    /// `total`, `BASIC`, `STANDARD`, `PREMIUM`, each one value per label.
    pub(super) series: Vec<Series>,
    /// Trailing moving averages of the per-bucket counts (only with `ma` > 0).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) moving_average: Vec<Series>,
    totals: Counts,
}

#[derive(Serialize, ToSchema)]
pub struct Stats {
    success: bool,
    granularity: Granularity,
    time_zone: String,
    filters: Value,
    cumulative: bool,
    ma: usize,
    #[serde(flatten)]
    pub(super) current: Period,
    /// The period of the same length just before (only with `compare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) previous: Option<Period>,
    /// Percent change of each total against the previous period (`null` from zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    change_pct: Option<BTreeMap<String, Option<f64>>>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The buckets of `[start, end]` for one scope, from its rollups: one query per page.
async fn period(
    table: &dyn Table,
    tz: Tz,
    q: &StatsQuery,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Period> {
    let buckets = rollup::buckets(tz, q.g, start, end)?;
    let keys: Vec<String> = buckets.iter().map(|b| q.g.key(b)).collect();
    let stored = match (keys.first(), keys.last()) {
        (Some(first), Some(last)) => rollup::read(table, tz, &q.scope, q.g, first, last).await?,
        _ => BTreeMap::new(),
    };
    let counts: Vec<Counts> = keys
        .iter()
        .map(|k| stored.get(k).copied().unwrap_or_default())
        .collect();
    let mut totals = Counts::default();
    counts.iter().for_each(|c| totals.add(c));
    let raw = |name: &str| {
        counts
            .iter()
            .map(|c| c.get(name) as f64)
            .collect::<Vec<_>>()
    };
    let series = SERIES
        .iter()
        .map(|name| {
            let mut data = raw(name);
            if q.cumulative {
                data.iter_mut().fold(0.0, |acc, x| {
                    *x += acc;
                    *x
                });
            }
            Series {
                name: (*name).to_owned(),
                data,
            }
        })
        .collect();
    let moving_average = if q.ma == 0 {
        Vec::new()
    } else {
        SERIES
            .iter()
            .map(|name| {
                let data = raw(name);
                let avg = (0..data.len())
                    .map(|i| {
                        let window = &data[i.saturating_sub(q.ma - 1)..=i];
                        round2(window.iter().sum::<f64>() / window.len() as f64)
                    })
                    .collect();
                Series {
                    name: (*name).to_owned(),
                    data: avg,
                }
            })
            .collect()
    };
    Ok(Period {
        start: iso(start),
        end: iso(end),
        labels: buckets.iter().map(|b| q.g.label(b)).collect(),
        series,
        moving_average,
        totals,
    })
}

pub(super) async fn compute(s: &State, q: &StatsQuery) -> Result<Stats> {
    let tz = s.config.tz;
    let current = period(s.table.as_ref(), tz, q, q.start, q.end).await?;
    let (previous, change_pct) = if q.compare {
        let prev_end = q.start - Duration::seconds(1);
        let prev = period(
            s.table.as_ref(),
            tz,
            q,
            q.start - (q.end - q.start) - Duration::seconds(1),
            prev_end,
        )
        .await?;
        let change = SERIES
            .iter()
            .map(|name| {
                let (now, before) = (
                    current.totals.get(name) as f64,
                    prev.totals.get(name) as f64,
                );
                let pct = (before != 0.0).then(|| round2((now - before) / before * 100.0));
                ((*name).to_owned(), pct)
            })
            .collect();
        (Some(prev), Some(change))
    } else {
        (None, None)
    };
    Ok(Stats {
        success: true,
        granularity: q.g,
        time_zone: tz.name().to_owned(),
        filters: q.filters.clone(),
        cumulative: q.cumulative,
        ma: q.ma,
        current,
        previous,
        change_pct,
    })
}

/// Usage statistics: treatments per bucket, by scope, in the configured time zone's calendar.
#[utoipa::path(get, path = "/api/test/stats", tag = "analytics", params(StatsParams), security(("session" = [])),
    responses((status = 200, body = Stats), (status = 400), (status = 401)))]
pub(super) async fn stats(
    S(s): S<State>,
    _user: User,
    Query(q): Query<StatsParams>,
) -> Result<Json<Stats>> {
    let q = q.check(s.config.tz)?;
    Ok(Json(compute(&s, &q).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct AnalyticsParams {
    device_id: Option<String>,
    /// Calendar days, today included (default 7).
    days: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DailyUsage {
    date: String,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize, ToSchema)]
pub struct EventsAnalytics {
    success: bool,
    device_id: Option<String>,
    days: i64,
    time_zone: String,
    total_treatments: i64,
    by_treatment: BTreeMap<String, i64>,
    daily: Vec<DailyUsage>,
    /// The day with the most treatments (the earliest on a tie); `null` without any.
    busiest_day: Option<String>,
    average_per_day: f64,
}

/// Treatment analytics for the last `days` days, from the day rollups.
#[utoipa::path(get, path = "/api/events/analytics", tag = "analytics", params(AnalyticsParams), security(("session" = [])),
    responses((status = 200, body = EventsAnalytics), (status = 400), (status = 401)))]
pub(super) async fn events_analytics(
    S(s): S<State>,
    _user: User,
    Query(q): Query<AnalyticsParams>,
) -> Result<Json<EventsAnalytics>> {
    let days = parse_days(q.days.as_deref(), 7)?;
    let device = q
        .device_id
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let params = StatsParams {
        outlet_id: None,
        machine_id: None,
        device_id: device.clone(),
        granularity: Some("day".into()),
        start: None,
        end: None,
        days: Some(days.to_string()),
        cumulative: None,
        ma: None,
        compare: None,
    };
    let st = compute(&s, &params.check(s.config.tz)?).await?;
    let per_day: Vec<Counts> = (0..st.current.labels.len())
        .map(|i| {
            let v = |n: usize| st.current.series[n].data[i] as i64;
            Counts {
                total: v(0),
                basic: v(1),
                standard: v(2),
                premium: v(3),
            }
        })
        .collect();
    let busiest = per_day
        .iter()
        .enumerate()
        .filter(|(_, c)| c.total > 0)
        .max_by_key(|(i, c)| (c.total, std::cmp::Reverse(*i)))
        .map(|(i, _)| st.current.labels[i].clone());
    let t = st.current.totals;
    Ok(Json(EventsAnalytics {
        success: true,
        device_id: device,
        days,
        time_zone: st.time_zone,
        total_treatments: t.total,
        by_treatment: Treatment::ALL
            .iter()
            .map(|x| (x.as_str().to_owned(), t.get(x.as_str())))
            .collect(),
        daily: st
            .current
            .labels
            .into_iter()
            .zip(per_day)
            .map(|(date, counts)| DailyUsage { date, counts })
            .collect(),
        busiest_day: busiest,
        average_per_day: round2(t.total as f64 / days as f64),
    }))
}
