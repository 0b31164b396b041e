//! Reads: live occupancy per camera and for the facility, and history from the rollup buckets
//! kept at ingest (O(buckets) per request, never the crossings).

use axum::extract::State as S;
use chrono::{DateTime, Datelike, Duration, Utc};
use civic_core::item::from_item;
use civic_core::{Error, Json, Query, Result, calendar};
use civic_store::{Item, SkRange, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::buckets::Granularity;
use crate::cameras::Record;
use crate::keys::{camera_pk, facility_key};
use crate::{Id, State, round1};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(logs))
        .routes(routes!(hourly))
        .routes(routes!(daily))
        .routes(routes!(monthly))
        .routes(routes!(facility_live))
        .routes(routes!(facility_stats))
}

#[derive(Serialize, ToSchema)]
pub struct LiveOccupancy {
    camera_id: i64,
    /// Entries − exits since the last calibration, never below 0.
    current_occupancy: i64,
    total_entries: i64,
    total_exits: i64,
    /// Unique tracked persons today (local calendar day).
    unique_persons: i64,
    last_updated: String,
}

/// A camera's current occupancy: one read.
#[utoipa::path(get, path = "/api/occupancy/cameras/{camera_id}/live", tag = "occupancy",
    params(("camera_id" = i64, Path)),
    responses((status = 200, body = LiveOccupancy), (status = 404)))]
async fn live(S(s): S<State>, Id(id): Id) -> Result<Json<LiveOccupancy>> {
    let rec = Record::load(s.table.as_ref(), id).await?;
    let l = &rec.live;
    let today = l
        .current
        .get(Granularity::Day.name())
        .is_some_and(|d| d.end > Utc::now().timestamp());
    Ok(Json(LiveOccupancy {
        camera_id: id,
        current_occupancy: l.occupancy,
        total_entries: l.total_entries,
        total_exits: l.total_exits,
        unique_persons: if today { l.unique_today } else { 0 },
        last_updated: l.last_updated.clone().unwrap_or(rec.camera.created_at),
    }))
}

/// The stored buckets of a camera whose sort keys run from `from` to the end of `g`'s range.
async fn buckets(
    table: &dyn Table,
    camera: i64,
    from: String,
    g: Granularity,
    forward: bool,
) -> Result<Vec<Item>> {
    Record::load(table, camera).await?;
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let mut q = civic_store::Query::partition(camera_pk(camera))
            .sk(SkRange::Between(from.clone(), format!("{}~", g.prefix())))
            .cursor(cursor);
        if !forward {
            q = q.reverse();
        }
        let page = table.query(q).await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

fn int(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(Value::as_i64).unwrap_or(0)
}

/// Time-weighted average occupancy of a bucket, up to now for the open one.
fn average(item: &Item, now: DateTime<Utc>) -> f64 {
    if let Some(avg) = item.get("avg_occupancy").and_then(Value::as_f64) {
        return round1(avg);
    }
    let (start, end) = (int(item, "start"), int(item, "end"));
    let until = end.min(now.timestamp());
    let area = item.get("area").and_then(Value::as_f64).unwrap_or(0.0);
    let tail = (until - int(item, "last_at")).max(0) as f64 * int(item, "last_level") as f64;
    round1((area + tail) / (until - start).max(1) as f64)
}

fn label(item: &Item) -> String {
    item.get("label")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn in_range(name: &str, value: Option<i64>, default: i64, max: i64) -> Result<i64> {
    let v = value.unwrap_or(default);
    if (1..=max).contains(&v) {
        Ok(v)
    } else {
        Err(Error::bad_request(format!(
            "{name} must be between 1 and {max}"
        )))
    }
}

#[derive(Deserialize, IntoParams)]
pub struct HoursParams {
    /// Last N hours (default 24, at most 720).
    hours: Option<i64>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    id: i64,
    camera_id: i64,
    entry_count: i64,
    exit_count: i64,
    /// Occupancy at the end of the period (or set by the calibration).
    net_occupancy: i64,
    timestamp: String,
    /// Unique tracked persons in the period.
    tracked_persons: i64,
    is_manual_calibration: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
}

/// 5-minute occupancy logs and calibration entries, oldest first.
#[utoipa::path(get, path = "/api/occupancy/cameras/{camera_id}/logs", tag = "history",
    params(("camera_id" = i64, Path), HoursParams),
    responses((status = 200, body = Vec<LogEntry>), (status = 400), (status = 404)))]
async fn logs(
    S(s): S<State>,
    Id(id): Id,
    Query(q): Query<HoursParams>,
) -> Result<Json<Vec<LogEntry>>> {
    let hours = in_range("hours", q.hours, 24, 720)?;
    let now = Utc::now();
    let from = Granularity::Log
        .bucket(s.config.tz, now - Duration::hours(hours))
        .sk();
    let items = buckets(s.table.as_ref(), id, from, Granularity::Log, true).await?;
    let entries = items
        .into_iter()
        .map(|item| {
            if item.get("is_manual_calibration").and_then(Value::as_bool) == Some(true) {
                return from_item(item);
            }
            Ok(LogEntry {
                id: int(&item, "id"),
                camera_id: id,
                entry_count: int(&item, "entries"),
                exit_count: int(&item, "exits"),
                net_occupancy: int(&item, "last_level"),
                timestamp: label(&item),
                tracked_persons: int(&item, "unique_persons"),
                is_manual_calibration: false,
                notes: None,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Json(entries))
}

#[derive(Deserialize, IntoParams)]
pub struct DaysParams {
    /// Last N days (hourly: default 7; daily: default 30; at most 3660).
    days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Hourly {
    /// Local hour start, `YYYY-MM-DD HH:MM` (the repeated hour at a DST fall-back appears twice).
    hour: String,
    camera_id: i64,
    entries: i64,
    exits: i64,
    avg_occupancy: f64,
    peak_occupancy: i64,
    unique_persons: i64,
}

/// Hourly rollups (hours with activity), oldest first.
#[utoipa::path(get, path = "/api/occupancy/cameras/{camera_id}/hourly", tag = "history",
    params(("camera_id" = i64, Path), DaysParams),
    responses((status = 200, body = Vec<Hourly>), (status = 400), (status = 404)))]
async fn hourly(
    S(s): S<State>,
    Id(id): Id,
    Query(q): Query<DaysParams>,
) -> Result<Json<Vec<Hourly>>> {
    let days = in_range("days", q.days, 7, 3660)?;
    let now = Utc::now();
    let from = Granularity::Hour
        .bucket(s.config.tz, now - Duration::days(days))
        .sk();
    let items = buckets(s.table.as_ref(), id, from, Granularity::Hour, true).await?;
    Ok(Json(
        items
            .iter()
            .map(|i| Hourly {
                hour: label(i),
                camera_id: id,
                entries: int(i, "entries"),
                exits: int(i, "exits"),
                avg_occupancy: average(i, now),
                peak_occupancy: int(i, "peak"),
                unique_persons: int(i, "unique_persons"),
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Daily {
    date: String,
    camera_id: i64,
    entries: i64,
    exits: i64,
    /// Time-weighted over the day (so far, for today).
    avg_occupancy: f64,
    peak_occupancy: i64,
    /// Local hour (0–23) when the peak was first reached.
    peak_hour: i64,
    unique_persons: i64,
}

/// Daily rollups in the configured time zone's calendar, newest first.
#[utoipa::path(get, path = "/api/occupancy/cameras/{camera_id}/daily", tag = "history",
    params(("camera_id" = i64, Path), DaysParams),
    responses((status = 200, body = Vec<Daily>), (status = 400), (status = 404)))]
async fn daily(
    S(s): S<State>,
    Id(id): Id,
    Query(q): Query<DaysParams>,
) -> Result<Json<Vec<Daily>>> {
    let days = in_range("days", q.days, 30, 3660)?;
    let now = Utc::now();
    let first = now.with_timezone(&s.config.tz).date_naive() - Duration::days(days - 1);
    let from = format!("{}{}", Granularity::Day.prefix(), first.format("%Y-%m-%d"));
    let items = buckets(s.table.as_ref(), id, from, Granularity::Day, false).await?;
    Ok(Json(
        items
            .iter()
            .map(|i| Daily {
                date: label(i),
                camera_id: id,
                entries: int(i, "entries"),
                exits: int(i, "exits"),
                avg_occupancy: average(i, now),
                peak_occupancy: int(i, "peak"),
                peak_hour: int(i, "peak_hour"),
                unique_persons: int(i, "unique_persons"),
            })
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct MonthsParams {
    /// Last N months (default 12, at most 1200).
    months: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Monthly {
    period: String,
    camera_id: i64,
    entries: i64,
    exits: i64,
    /// Time-weighted average occupancy over the month (the mean of its daily averages).
    avg_daily_occupancy: f64,
    peak_occupancy: i64,
    unique_persons: i64,
}

/// Monthly rollups, newest first.
#[utoipa::path(get, path = "/api/occupancy/cameras/{camera_id}/monthly", tag = "history",
    params(("camera_id" = i64, Path), MonthsParams),
    responses((status = 200, body = Vec<Monthly>), (status = 400), (status = 404)))]
async fn monthly(
    S(s): S<State>,
    Id(id): Id,
    Query(q): Query<MonthsParams>,
) -> Result<Json<Vec<Monthly>>> {
    let months = in_range("months", q.months, 12, 1200)?;
    let now = Utc::now();
    let local = now.with_timezone(&s.config.tz);
    let index = i64::from(local.year()) * 12 + i64::from(local.month0()) - (months - 1);
    let from = format!(
        "{}{:04}-{:02}",
        Granularity::Month.prefix(),
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    );
    let items = buckets(s.table.as_ref(), id, from, Granularity::Month, false).await?;
    Ok(Json(
        items
            .iter()
            .map(|i| Monthly {
                period: label(i),
                camera_id: id,
                entries: int(i, "entries"),
                exits: int(i, "exits"),
                avg_daily_occupancy: average(i, now),
                peak_occupancy: int(i, "peak"),
                unique_persons: int(i, "unique_persons"),
            })
            .collect(),
    ))
}

/// The facility's counters, kept in the same transactions as the per-camera figures.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Facility {
    occupancy: i64,
    entries: i64,
    exits: i64,
    total_cameras: i64,
    active_cameras: i64,
    capacity: i64,
    active_alerts: i64,
    last_updated: Option<String>,
}

async fn facility(table: &dyn Table) -> Result<Facility> {
    Ok(match table.get(&facility_key()).await? {
        Some(item) => from_item(item)?,
        None => Facility::default(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct FacilityLive {
    facility_occupancy: i64,
    total_entries_all_cameras: i64,
    total_exits_all_cameras: i64,
    cameras_active: i64,
    last_updated: String,
}

/// Facility-wide occupancy (the sum over all cameras): one read.
#[utoipa::path(get, path = "/api/occupancy/facility/live", tag = "facility",
    responses((status = 200, body = FacilityLive)))]
async fn facility_live(S(s): S<State>) -> Result<Json<FacilityLive>> {
    let f = facility(s.table.as_ref()).await?;
    Ok(Json(FacilityLive {
        facility_occupancy: f.occupancy,
        total_entries_all_cameras: f.entries,
        total_exits_all_cameras: f.exits,
        cameras_active: f.active_cameras,
        last_updated: f.last_updated.unwrap_or_else(civic_core::time::now_rfc3339),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct FacilityStats {
    total_cameras: i64,
    active_cameras: i64,
    total_persons_in_facility: i64,
    /// Percent of the active cameras' summed `max_occupancy` (0 when none is set).
    capacity_utilization: f64,
    active_alerts: i64,
    timestamp: String,
}

/// Facility statistics: one read.
#[utoipa::path(get, path = "/api/occupancy/facility/stats", tag = "facility",
    responses((status = 200, body = FacilityStats)))]
async fn facility_stats(S(s): S<State>) -> Result<Json<FacilityStats>> {
    let f = facility(s.table.as_ref()).await?;
    let utilization = if f.capacity > 0 {
        f.occupancy as f64 * 100.0 / f.capacity as f64
    } else {
        0.0
    };
    Ok(Json(FacilityStats {
        total_cameras: f.total_cameras,
        active_cameras: f.active_cameras,
        total_persons_in_facility: f.occupancy,
        capacity_utilization: round1(utilization),
        active_alerts: f.active_alerts,
        timestamp: calendar::rfc3339(Utc::now()),
    }))
}
