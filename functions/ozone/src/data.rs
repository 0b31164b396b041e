//! Data queries for signed-in users: events, device status (online, all, the UI's live view)
//! and per-device telemetry. Every listing is one page of one query.

use axum::extract::State as S;
use axum::response::Response;
use chrono::Duration;
use civic_core::{Error, Json, Query, Result, page};
use civic_store::{Page, SkRange, Typed};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::UserRecord;
use crate::gateway::{Device, DeviceRecord, Event};
use crate::keys::{DEVICES, EVENTS, device_count_key, events_pk};
use crate::rollup::{Counts, Granularity, Scope};
use crate::{
    Config, State, User, iso, iso_ms, now, parse_bool, parse_days, required_param, valid_device_id,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(online))
        .routes(routes!(all_devices))
        .routes(routes!(devices_data))
        .routes(routes!(summary))
        .routes(routes!(latest))
}

/// A device as listed: its stored status plus whether it is online now. Its `mac`,
/// `legacy_ingest` and `iot_certificate` are shown to staff only: a MAC is what a handshake
/// and the legacy form present, so every signed-in user knowing it would weaken both.
#[derive(Serialize, ToSchema)]
pub struct DeviceOut {
    #[serde(flatten)]
    pub device: Device,
    pub assigned: bool,
    pub online: bool,
}

impl DeviceOut {
    /// `device` as `viewer` may see it.
    pub fn new(config: &Config, device: Device, viewer: &UserRecord) -> Self {
        let device = if viewer.is_staff {
            device
        } else {
            device.without_staff_fields()
        };
        let cutoff = iso_ms(now() - Duration::seconds(config.online_secs));
        let online = device
            .last_seen
            .as_deref()
            .is_some_and(|t| t >= cutoff.as_str());
        Self {
            device,
            assigned: true,
            online,
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct EventParams {
    device_id: Option<String>,
    /// Days to look back (default 7).
    days: Option<String>,
    /// `true` leaves out status (heartbeat) events.
    exclude_status: Option<String>,
    /// Extension: page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Events, newest first: one device's or everyone's, within `days`.
#[utoipa::path(get, path = "/api/events", tag = "data", params(EventParams), security(("session" = [])),
    responses((status = 200, body = Vec<Event>), (status = 400), (status = 401)))]
async fn events(S(s): S<State>, _user: User, Query(q): Query<EventParams>) -> Result<Response> {
    let days = parse_days(q.days.as_deref(), 7)?;
    let exclude_status =
        parse_bool("exclude_status", q.exclude_status.as_deref())?.unwrap_or(false);
    let limit = page::limit(q.limit, 100, 1000)?;
    let since = iso(now() - Duration::days(days));
    let shape = |q: civic_store::Query| q.sk(SkRange::Gte(since.clone())).reverse().limit(limit);
    let mut res = events_page(&s, q.device_id.as_deref(), shape, q.cursor).await?;
    if exclude_status {
        res.items.retain(|e| !e.is_status());
    }
    Ok(page::with_cursor(Json(res.items), res.cursor))
}

#[derive(Deserialize, IntoParams)]
pub struct DeviceParams {
    /// Extension: page size, 1–1000 (default 1000).
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// A page of devices, most recently heard from first; `Some(window)` keeps those heard from
/// within it (the index range does the work, not a filter over every device).
async fn device_page(
    s: &State,
    viewer: &UserRecord,
    q: DeviceParams,
    online_only: bool,
) -> Result<(Vec<DeviceOut>, Option<String>)> {
    let limit = page::limit(q.limit, 1000, 1000)?;
    let since = iso_ms(now() - Duration::seconds(s.config.online_secs));
    let shape = |q: civic_store::Query| {
        let q = q.reverse().limit(limit);
        if online_only {
            q.sk(SkRange::Gte(since.clone()))
        } else {
            q
        }
    };
    let shards = s.config.index_shards;
    let res = shards
        .page::<Device>(s.table.as_ref(), DEVICES, shape, q.cursor)
        .await?;
    let devices = res
        .items
        .into_iter()
        .map(|d| DeviceOut::new(&s.config, d, viewer))
        .filter(|d| !online_only || d.online)
        .collect();
    Ok((devices, res.cursor))
}

/// Devices heard from in the last five minutes (`OZONE_ONLINE_WINDOW_SECS`).
#[utoipa::path(get, path = "/api/devices/online", tag = "data", params(DeviceParams), security(("session" = [])),
    responses((status = 200, body = Vec<DeviceOut>), (status = 401)))]
async fn online(S(s): S<State>, User(u): User, Query(q): Query<DeviceParams>) -> Result<Response> {
    let (devices, cursor) = device_page(&s, &u, q, true).await?;
    Ok(page::with_cursor(Json(devices), cursor))
}

/// Every assigned device, online or not, most recently heard from first.
#[utoipa::path(get, path = "/api/devices/all", tag = "data", params(DeviceParams), security(("session" = [])),
    responses((status = 200, body = Vec<DeviceOut>), (status = 401)))]
async fn all_devices(
    S(s): S<State>,
    User(u): User,
    Query(q): Query<DeviceParams>,
) -> Result<Response> {
    let (devices, cursor) = device_page(&s, &u, q, false).await?;
    Ok(page::with_cursor(Json(devices), cursor))
}

/// The stored device counter; only its `total` is read.
#[derive(Deserialize)]
struct DeviceCount {
    #[serde(default)]
    total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceCounts {
    total: i64,
    online: usize,
    offline: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DevicesData {
    success: bool,
    timestamp: String,
    counts: DeviceCounts,
    /// Treatments today (in the configured time zone), from the day rollup.
    usage_today: Counts,
    devices: Vec<DeviceOut>,
}

/// The UI's live view: device counts, today's usage and the devices, newest contact first.
#[utoipa::path(get, path = "/api/devices-data", tag = "data", params(DeviceParams), security(("session" = [])),
    responses((status = 200, body = DevicesData), (status = 401)))]
async fn devices_data(
    S(s): S<State>,
    User(u): User,
    Query(q): Query<DeviceParams>,
) -> Result<Response> {
    let total = s
        .table
        .get_as::<DeviceCount>(&device_count_key())
        .await?
        .map_or(0, |c| c.total);
    let (online, _) = device_page(
        &s,
        &u,
        DeviceParams {
            limit: None,
            cursor: None,
        },
        true,
    )
    .await?;
    let (devices, cursor) = device_page(&s, &u, q, false).await?;
    let today = Granularity::Day;
    let key = today.key(&today.floor(s.config.tz, now()));
    let usage_today = crate::rollup::read(
        s.table.as_ref(),
        s.config.tz,
        &Scope::All,
        today,
        &key,
        &key,
    )
    .await?
    .remove(&key)
    .unwrap_or_default();
    let body = DevicesData {
        success: true,
        timestamp: iso(now()),
        counts: DeviceCounts {
            total,
            online: online.len(),
            offline: (total - online.len() as i64).max(0),
        },
        usage_today,
        devices,
    };
    Ok(page::with_cursor(Json(body), cursor))
}

#[derive(Deserialize, IntoParams)]
pub struct DeviceIdParam {
    device_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TreatmentCounts {
    basic: Option<i64>,
    standard: Option<i64>,
    premium: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Summary {
    #[serde(flatten)]
    device: DeviceOut,
    /// The latest counter per treatment.
    counts: TreatmentCounts,
}

/// A device's latest status: counters, mode, connectivity.
#[utoipa::path(get, path = "/api/telemetry/summary", tag = "data", params(DeviceIdParam), security(("session" = [])),
    responses((status = 200, body = Summary), (status = 400), (status = 401), (status = 404)))]
async fn summary(
    S(s): S<State>,
    User(u): User,
    Query(q): Query<DeviceIdParam>,
) -> Result<Json<Summary>> {
    let id = required_param("device_id", &q.device_id)?;
    valid_device_id("device_id", id)?;
    let device = DeviceRecord::load(s.table.as_ref(), id)
        .await?
        .ok_or_else(|| Error::NotFound("Device not found.".into()))?
        .device;
    let counts = TreatmentCounts {
        basic: device.current_count_basic,
        standard: device.current_count_standard,
        premium: device.current_count_premium,
    };
    Ok(Json(Summary {
        device: DeviceOut::new(&s.config, device, &u),
        counts,
    }))
}

/// The most recent event: of one device, or of any without `device_id`.
#[utoipa::path(get, path = "/api/telemetry/latest", tag = "data", params(DeviceIdParam), security(("session" = [])),
    responses((status = 200, body = Event), (status = 400), (status = 401), (status = 404)))]
async fn latest(
    S(s): S<State>,
    _user: User,
    Query(q): Query<DeviceIdParam>,
) -> Result<Json<Event>> {
    latest_event(&s, q.device_id.as_deref())
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound("No telemetry yet.".into()))
}

async fn latest_event(s: &State, device_id: Option<&str>) -> Result<Option<Event>> {
    let mut cursor = None;
    // A page can be empty while a cursor remains (expired items are skipped), so follow it.
    loop {
        let res = events_page(s, device_id, |q| q.reverse().limit(1), cursor).await?;
        if let Some(event) = res.items.into_iter().next() {
            return Ok(Some(event));
        }
        match res.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(None),
        }
    }
}

/// A page of events, in time order as `shape` sets it: of one device (its own partition) or
/// of every device (the index shards, merged).
pub(crate) async fn events_page(
    s: &State,
    device_id: Option<&str>,
    shape: impl Fn(civic_store::Query) -> civic_store::Query,
    cursor: Option<String>,
) -> Result<Page<Event>> {
    Ok(match device_id.map(str::trim).filter(|d| !d.is_empty()) {
        Some(id) => {
            valid_device_id("device_id", id)?;
            let q = shape(civic_store::Query::partition(events_pk(id))).cursor(cursor);
            s.table.query_as::<Event>(q).await?
        }
        None => {
            let shards = s.config.index_shards;
            shards.page(s.table.as_ref(), EVENTS, shape, cursor).await?
        }
    })
}
