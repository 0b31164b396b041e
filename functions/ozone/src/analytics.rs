//! Analytics: usage stats (with cumulative, moving average and comparison), filter options,
//! CSV exports, events analytics, and the admin flush. Stats read rollups, so their cost
//! follows the number of buckets asked for, never the number of events.

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

use axum::extract::State as S;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use civic_core::csv_export::{self, Cell};
use civic_core::item::from_item;
use civic_core::{Error, Json, Query, Result, page};
use civic_store::{Cond, Item, Key, SkRange, Table, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::catalog::{Machine, Outlet};
use crate::gateway::{Device, Event, device_key};
use crate::rollup::{self, Counts, Granularity, SERIES, Scope};
use crate::{
    Staff, State, Treatment, User, iso, now, parse_bool, parse_days, parse_id, parse_time,
    valid_device_id,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(stats_options))
        .routes(routes!(stats_export))
        .routes(routes!(events_analytics))
        .routes(routes!(export))
        .routes(routes!(flush))
}

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
    ma: usize,
    compare: bool,
}

impl StatsParams {
    fn check(&self, tz: Tz) -> Result<StatsQuery> {
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
    name: String,
    data: Vec<f64>,
}

/// One period's buckets.
#[derive(Serialize, ToSchema)]
pub struct Period {
    start: String,
    end: String,
    labels: Vec<String>,
    /// `total`, `BASIC`, `STANDARD`, `PREMIUM`, each one value per label.
    series: Vec<Series>,
    /// Trailing moving averages of the per-bucket counts (only with `ma` > 0).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    moving_average: Vec<Series>,
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
    current: Period,
    /// The period of the same length just before (only with `compare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<Period>,
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
        (Some(first), Some(last)) => rollup::read(table, &q.scope, q.g, first, last).await?,
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

async fn compute(s: &State, q: &StatsQuery) -> Result<Stats> {
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
async fn stats(S(s): S<State>, _user: User, Query(q): Query<StatsParams>) -> Result<Json<Stats>> {
    let q = q.check(s.config.tz)?;
    Ok(Json(compute(&s, &q).await?))
}

/// The same stats as CSV: one row per bucket (`label,total,BASIC,STANDARD,PREMIUM`, then the
/// moving averages and the previous period's columns when asked for).
#[utoipa::path(get, path = "/api/test/stats-export.csv", tag = "analytics", params(StatsParams), security(("session" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400), (status = 401)))]
async fn stats_export(
    S(s): S<State>,
    _user: User,
    Query(q): Query<StatsParams>,
) -> Result<Response> {
    let q = q.check(s.config.tz)?;
    let st = compute(&s, &q).await?;
    let mut header = vec![Cell::from("label")];
    header.extend(SERIES.iter().map(|n| Cell::from(*n)));
    header.extend(
        st.current
            .moving_average
            .iter()
            .map(|m| Cell::Text(format!("{}_ma{}", m.name, q.ma))),
    );
    if let Some(p) = &st.previous {
        header.push(Cell::from("previous_label"));
        header.extend(
            p.series
                .iter()
                .map(|m| Cell::Text(format!("previous_{}", m.name))),
        );
    }
    let mut rows = vec![header];
    for (i, label) in st.current.labels.iter().enumerate() {
        let mut row = vec![Cell::from(label.as_str())];
        let columns = st.current.series.iter().chain(&st.current.moving_average);
        row.extend(columns.map(|c| Cell::Float(c.data[i])));
        if let Some(p) = &st.previous {
            row.push(Cell::from(p.labels.get(i).cloned()));
            row.extend(p.series.iter().map(|c| Cell::from(c.data.get(i).copied())));
        }
        rows.push(row);
    }
    csv_export::response(rows, "stats_export.csv")
}

#[derive(Deserialize, IntoParams)]
pub struct OptionsParams {
    /// Machines of this outlet only.
    outlet_id: Option<String>,
    /// Devices of this machine only (current and past).
    machine_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OptionItem {
    id: Value,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    outlet_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    machine_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct StatsOptions {
    success: bool,
    outlets: Vec<OptionItem>,
    machines: Vec<OptionItem>,
    devices: Vec<OptionItem>,
    granularities: Vec<Granularity>,
}

/// At most this many of each kind of option (one page of one query each).
const MAX_OPTIONS: usize = 1000;

/// Filter options for the stats UI: outlets, machines (of an outlet), devices (of a machine).
#[utoipa::path(get, path = "/api/test/stats-options", tag = "analytics", params(OptionsParams), security(("session" = [])),
    responses((status = 200, body = StatsOptions), (status = 400), (status = 401)))]
async fn stats_options(
    S(s): S<State>,
    _user: User,
    Query(q): Query<OptionsParams>,
) -> Result<Json<StatsOptions>> {
    let outlet = parse_id("outlet_id", q.outlet_id.as_deref())?;
    let machine = parse_id("machine_id", q.machine_id.as_deref())?;
    let table = s.table.as_ref();
    let page = |query: civic_store::Query| async move {
        Ok::<_, Error>(table.query(query.limit(MAX_OPTIONS)).await?.items)
    };

    let outlets = page(civic_store::Query::index("OUTLETS"))
        .await?
        .into_iter()
        .map(|i| {
            from_item::<Outlet>(i).map(|o| OptionItem {
                id: o.id.into(),
                name: o.name,
                outlet_id: None,
                machine_id: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut machines_query = civic_store::Query::index("MACHINES");
    if let Some(o) = outlet {
        machines_query = machines_query.prefix(format!("{o:010}#"));
    }
    let machines = page(machines_query)
        .await?
        .into_iter()
        .map(|i| {
            from_item::<Machine>(i).map(|m| OptionItem {
                id: m.id.into(),
                name: m.name,
                outlet_id: Some(m.outlet),
                machine_id: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let devices = match machine {
        // A machine's devices, current and past, share its partition.
        Some(m) => page(civic_store::Query::partition(format!("MACHINE#{m:010}")).prefix("BIND#"))
            .await?
            .into_iter()
            .filter_map(|i| {
                i.get("device_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .map(|d| OptionItem {
                id: d.clone().into(),
                name: d,
                outlet_id: None,
                machine_id: Some(m),
            })
            .collect(),
        None => page(civic_store::Query::index("DEVICES").reverse())
            .await?
            .into_iter()
            .map(|i| {
                from_item::<Device>(i).map(|d| OptionItem {
                    id: d.device_id.clone().into(),
                    name: d.device_id,
                    outlet_id: d.outlet_id,
                    machine_id: d.machine_id,
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(Json(StatsOptions {
        success: true,
        outlets,
        machines,
        devices,
        granularities: rollup::GRANULARITIES.to_vec(),
    }))
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
async fn events_analytics(
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

#[derive(Deserialize, IntoParams)]
pub struct ExportParams {
    device_id: Option<String>,
    /// Days to look back (default 30).
    days: Option<String>,
    /// Extension: rows per download, 1–50000 (default 10000); the rest via `cursor`.
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous download's `X-Next-Cursor` header.
    cursor: Option<String>,
}

const EXPORT_COLUMNS: [&str; 15] = [
    "event_id",
    "device_id",
    "event_type",
    "event",
    "treatment",
    "counter",
    "occurred_at",
    "device_timestamp",
    "received_at",
    "firmware",
    "count_basic",
    "count_standard",
    "count_premium",
    "wifi_status",
    "payload",
];

/// Device-supplied text (`firmware`, `device_timestamp`, the JSON columns) goes out as text
/// cells, which the CSV helper neutralises; counters stay numbers.
fn export_row(e: Event) -> Vec<Cell> {
    let json = |v: Option<Value>| Cell::from(v.map(|v| v.to_string()));
    vec![
        e.event_id.into(),
        e.device_id.into(),
        e.event_type.into(),
        e.event.into(),
        e.treatment.map(Treatment::as_str).into(),
        e.counter.into(),
        e.occurred_at.into(),
        e.device_timestamp.into(),
        e.received_at.into(),
        e.firmware.into(),
        e.count_basic.into(),
        e.count_standard.into(),
        e.count_premium.into(),
        json(e.wifi_status),
        json(e.payload),
    ]
}

/// Raw events as CSV, oldest first (staff). Paginated: a download holds at most `limit` rows
/// and names the next one in `X-Next-Cursor`.
#[utoipa::path(get, path = "/api/export", tag = "analytics", params(ExportParams), security(("session" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400), (status = 401), (status = 403)))]
async fn export(S(s): S<State>, _staff: Staff, Query(q): Query<ExportParams>) -> Result<Response> {
    let days = parse_days(q.days.as_deref(), 30)?;
    let limit = page::limit(q.limit, 10_000, 50_000)?;
    let since = iso(now() - Duration::days(days));
    let base = crate::data::events_query(q.device_id.as_deref())?.sk(SkRange::Gte(since));
    let mut rows = vec![csv_export::header_row(&EXPORT_COLUMNS)];
    let mut cursor = q.cursor;
    while rows.len() <= limit {
        let want = (limit + 1 - rows.len()).min(1000);
        let res = s
            .table
            .query(base.clone().limit(want).cursor(cursor))
            .await?;
        for item in res.items {
            rows.push(export_row(from_item(item)?));
        }
        cursor = res.cursor;
        if cursor.is_none() {
            break;
        }
    }
    let res = csv_export::response(rows, "telemetry_export.csv")?;
    Ok(page::with_cursor(res, cursor))
}

#[derive(Serialize, ToSchema)]
pub struct FlushReply {
    success: bool,
    message: String,
    /// Items deleted by this call.
    deleted: usize,
    /// `false` when time ran out: call again to continue.
    complete: bool,
}

/// How long one flush call works before it reports progress.
const FLUSH_BUDGET: StdDuration = StdDuration::from_secs(5);
const FLUSH_BATCH: usize = 50;

/// Flush all telemetry (staff): raw events, their idempotency markers and every rollup, and
/// the devices' telemetry counters. Devices, tokens, outlets and machines stay. Works in
/// bounded batches; repeat while `complete` is false.
#[utoipa::path(post, path = "/api/flush", tag = "analytics", security(("session" = [])),
    responses((status = 200, body = FlushReply), (status = 401), (status = 403)))]
async fn flush(S(s): S<State>, _staff: Staff) -> Result<Json<FlushReply>> {
    let table = s.table.as_ref();
    let started = Instant::now();
    let mut deleted = 0;
    let out_of_time = || started.elapsed() > FLUSH_BUDGET;

    // Raw events and their markers.
    loop {
        let res = table
            .query(civic_store::Query::index("EVENTS").limit(FLUSH_BATCH / 2))
            .await?;
        if res.items.is_empty() {
            break;
        }
        let mut writes = Vec::new();
        for item in &res.items {
            let e: Event = from_item(item.clone())?;
            writes.push(Write::Delete {
                key: Key::of(item)?,
                cond: Cond::Always,
            });
            writes.push(Write::Delete {
                key: Key::new(format!("EVENTID#{}#{}", e.device_id, e.event_id), "EVENTID"),
                cond: Cond::Always,
            });
        }
        deleted += delete_all(table, writes).await?;
        if out_of_time() {
            return Ok(Json(progress(deleted)));
        }
    }

    // Rollups of every scope that can have them.
    let devices: Vec<String> = table
        .query_all(civic_store::Query::index("DEVICES").limit(1000))
        .await?
        .iter()
        .filter_map(|i| i.get("device_id")?.as_str().map(str::to_owned))
        .collect();
    let ids = |items: Vec<Item>| -> Vec<i64> {
        items.iter().filter_map(|i| i.get("id")?.as_i64()).collect()
    };
    let mut scopes = vec![Scope::All];
    scopes.extend(devices.iter().cloned().map(Scope::Device));
    scopes.extend(
        ids(table
            .query_all(civic_store::Query::index("MACHINES").limit(1000))
            .await?)
        .into_iter()
        .map(Scope::Machine),
    );
    scopes.extend(
        ids(table
            .query_all(civic_store::Query::index("OUTLETS").limit(1000))
            .await?)
        .into_iter()
        .map(Scope::Outlet),
    );
    for scope in &scopes {
        for g in rollup::GRANULARITIES {
            loop {
                let res = table
                    .query(civic_store::Query::partition(scope.pk(g)).limit(FLUSH_BATCH))
                    .await?;
                if res.items.is_empty() {
                    break;
                }
                let writes = res
                    .items
                    .iter()
                    .map(|i| {
                        Key::of(i).map(|key| Write::Delete {
                            key,
                            cond: Cond::Always,
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                deleted += delete_all(table, writes).await?;
                if out_of_time() {
                    return Ok(Json(progress(deleted)));
                }
            }
        }
    }

    // The devices' telemetry counters.
    for d in devices {
        let reset = Update::new(device_key(&d))
            .set("event_count", 0)
            .remove("current_count_basic")
            .remove("current_count_standard")
            .remove("current_count_premium")
            .remove("last_event_at")
            .remove("mode")
            .cond(Cond::Exists);
        match table.update(reset).await {
            Ok(_) | Err(civic_store::StoreError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(FlushReply {
        success: true,
        message: "All telemetry data flushed".into(),
        deleted,
        complete: true,
    }))
}

fn progress(deleted: usize) -> FlushReply {
    FlushReply {
        success: true,
        message: "Flush in progress; call again to continue".into(),
        deleted,
        complete: false,
    }
}

async fn delete_all(table: &dyn Table, writes: Vec<Write>) -> Result<usize> {
    let n = writes.len();
    if n > 0 {
        table.transact(writes).await?;
    }
    Ok(n)
}
