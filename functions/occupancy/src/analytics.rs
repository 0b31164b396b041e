//! Reads: live occupancy per camera and for the facility, and history from the rollup buckets
//! kept at ingest (O(buckets) per request, never the crossings).

use axum::extract::State as S;
use chrono::{DateTime, Datelike, Duration, Utc};
use civic_core::{Error, Json, Query, Result, calendar};
use civic_store::{SkRange, Table, Typed};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::buckets::Granularity;
use crate::cameras::{Record, load_camera};
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
    Ok(Json(LiveOccupancy::of(&rec)))
}

impl LiveOccupancy {
    /// The REST shape of a stored camera's live state (also its live message, [`crate::live`]).
    pub fn of(rec: &Record) -> Self {
        let l = &rec.live;
        let today = l
            .current
            .get(Granularity::Day.name())
            .is_some_and(|d| d.end > Utc::now().timestamp());
        Self {
            camera_id: rec.camera.id,
            current_occupancy: l.occupancy,
            total_entries: l.total_entries,
            total_exits: l.total_exits,
            unique_persons: if today { l.unique_today } else { 0 },
            last_updated: (l.last_updated.clone()).unwrap_or_else(|| rec.camera.created_at.clone()),
        }
    }
}

/// A stored bucket (or, among the logs, a calibration entry) as the history reads use it;
/// a counter not written yet reads as 0.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Bucket {
    label: String,
    entries: i64,
    exits: i64,
    unique_persons: i64,
    start: i64,
    end: i64,
    area: f64,
    peak: i64,
    peak_hour: i64,
    last_level: i64,
    last_at: i64,
    avg_occupancy: Option<f64>,
    /// Log buckets' own id.
    id: i64,
    is_manual_calibration: bool,
    /// A calibration entry holds the [`LogEntry`] it is shown as.
    camera_id: Option<i64>,
    entry_count: i64,
    exit_count: i64,
    net_occupancy: i64,
    timestamp: String,
    tracked_persons: i64,
    notes: Option<String>,
}

impl Bucket {
    /// Time-weighted average occupancy, up to now for the open bucket.
    fn average(&self, now: DateTime<Utc>) -> f64 {
        if let Some(avg) = self.avg_occupancy {
            return round1(avg);
        }
        let until = self.end.min(now.timestamp());
        let tail = (until - self.last_at).max(0) as f64 * self.last_level as f64;
        round1((self.area + tail) / (until - self.start).max(1) as f64)
    }

    /// The 5-minute log entry of camera `id` this bucket or calibration entry shows.
    fn log_entry(self, id: i64) -> LogEntry {
        if self.is_manual_calibration {
            return LogEntry {
                id: self.id,
                camera_id: self.camera_id.unwrap_or(id),
                entry_count: self.entry_count,
                exit_count: self.exit_count,
                net_occupancy: self.net_occupancy,
                timestamp: self.timestamp,
                tracked_persons: self.tracked_persons,
                is_manual_calibration: true,
                notes: self.notes,
            };
        }
        LogEntry {
            id: self.id,
            camera_id: id,
            entry_count: self.entries,
            exit_count: self.exits,
            net_occupancy: self.last_level,
            timestamp: self.label,
            tracked_persons: self.unique_persons,
            is_manual_calibration: false,
            notes: None,
        }
    }
}

/// The stored buckets of a camera whose sort keys run from `from` to the end of `g`'s range.
async fn buckets(
    table: &dyn Table,
    camera: i64,
    from: String,
    g: Granularity,
    forward: bool,
) -> Result<Vec<Bucket>> {
    load_camera(table, camera).await?;
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let mut q = civic_store::Query::partition(camera_pk(camera))
            .sk(SkRange::Between(from.clone(), format!("{}~", g.prefix())))
            .cursor(cursor);
        if !forward {
            q = q.reverse();
        }
        let page = table.query_as::<Bucket>(q).await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
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
    Ok(Json(items.into_iter().map(|b| b.log_entry(id)).collect()))
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
                hour: i.label.clone(),
                camera_id: id,
                entries: i.entries,
                exits: i.exits,
                avg_occupancy: i.average(now),
                peak_occupancy: i.peak,
                unique_persons: i.unique_persons,
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
                date: i.label.clone(),
                camera_id: id,
                entries: i.entries,
                exits: i.exits,
                avg_occupancy: i.average(now),
                peak_occupancy: i.peak,
                peak_hour: i.peak_hour,
                unique_persons: i.unique_persons,
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
                period: i.label.clone(),
                camera_id: id,
                entries: i.entries,
                exits: i.exits,
                avg_daily_occupancy: i.average(now),
                peak_occupancy: i.peak,
                unique_persons: i.unique_persons,
            })
            .collect(),
    ))
}

/// The facility's counters: cameras and capacity kept with the cameras' configuration, the
/// crossing counters by the aggregator ([`crate::aggregate`]; about a second behind the
/// cameras) or, inline, in the cameras' own transactions.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Facility {
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
    Ok(table
        .get_as::<Facility>(&facility_key())
        .await?
        .unwrap_or_default())
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
    Ok(Json(facility(s.table.as_ref()).await?.into()))
}

/// The REST shape of the stored counters (also the facility's live message).
impl From<Facility> for FacilityLive {
    fn from(f: Facility) -> Self {
        Self {
            facility_occupancy: f.occupancy,
            total_entries_all_cameras: f.entries,
            total_exits_all_cameras: f.exits,
            cameras_active: f.active_cameras,
            last_updated: f.last_updated.unwrap_or_else(civic_core::time::now_rfc3339),
        }
    }
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
