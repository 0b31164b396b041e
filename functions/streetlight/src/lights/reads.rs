//! Reading lights: a city's list and map, its summary counters, one light with its recent
//! logs, and a light's control history.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::item::from_item;
use civic_core::{Error, Query, Result, page};
use civic_store::{Page, Typed};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::model::{ControlLog, Light, LightParams, Status, Summary, Versioned, given, not_found};
use crate::keys::{LIGHT_SK, LOGS, city_pk, light_key, light_pk, summary_key};
use crate::{Operator, Reply, State, User, reply};

#[derive(Deserialize, IntoParams)]
pub struct CityParams {
    /// City name (case-insensitive); defaults to the caller's city.
    city: Option<String>,
    /// Extension: page size, 1–1000 (default 1000).
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

impl CityParams {
    fn city<'a>(&'a self, user: &'a User) -> &'a str {
        given(&self.city).unwrap_or(&user.city)
    }
}

async fn city_page(s: &State, user: &User, q: CityParams) -> Result<(Vec<Light>, Option<String>)> {
    let limit = page::limit(q.limit, 1000, 1000)?;
    let res = city_lights(s, q.city(user), limit, q.cursor.clone()).await?;
    Ok((res.items, res.cursor))
}

/// One page of `city`'s lights, by light id: every shard of the city's listing (one query
/// each), merged by GSI1SK behind one cursor, so lights written before sharding (shard 0)
/// and after are listed alike.
pub async fn city_lights(
    s: &State,
    city: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<Page<Light>> {
    let shards = s.config.index_shards;
    let index = city_pk(city);
    let page = shards
        .page(s.table.as_ref(), &index, |q| q.limit(limit), cursor)
        .await?;
    Ok(page)
}

/// All lights of a city (the caller's by default), ordered by light id.
#[utoipa::path(get, path = "/api/lights/list", tag = "lights", params(CityParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Vec<Light>>)), (status = 401)))]
pub(super) async fn list(
    S(s): S<State>,
    user: User,
    Query(q): Query<CityParams>,
) -> Result<Response> {
    let (lights, cursor) = city_page(&s, &user, q).await?;
    Ok(page::with_cursor(
        reply(StatusCode::OK, "Lights retrieved successfully", lights),
        cursor,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize, ToSchema)]
pub struct MapLight {
    light_id: String,
    name: String,
    location: Location,
    status: Status,
}

/// Lights of a city with the minimal data a map needs.
#[utoipa::path(get, path = "/api/lights/map", tag = "lights", params(CityParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Vec<MapLight>>)), (status = 401)))]
pub(super) async fn map(
    S(s): S<State>,
    user: User,
    Query(q): Query<CityParams>,
) -> Result<Response> {
    let (lights, cursor) = city_page(&s, &user, q).await?;
    let points: Vec<MapLight> = lights
        .into_iter()
        .map(|l| MapLight {
            light_id: l.light_id,
            name: l.name,
            location: Location {
                latitude: l.latitude,
                longitude: l.longitude,
            },
            status: l.status,
        })
        .collect();
    Ok(page::with_cursor(
        reply(StatusCode::OK, "Map data retrieved", points),
        cursor,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct SummaryParams {
    /// City name (case-insensitive); defaults to the caller's city.
    city: Option<String>,
}

/// A city's counters, kept current by every status change (one read, never a scan).
#[utoipa::path(get, path = "/api/lights/summary", tag = "lights", params(SummaryParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Summary>)), (status = 401), (status = 404)))]
pub(super) async fn summary(
    S(s): S<State>,
    user: User,
    Query(q): Query<SummaryParams>,
) -> Result<Reply<Summary>> {
    let city = given(&q.city).unwrap_or(&user.city);
    let summary = s
        .table
        .get_as::<Summary>(&summary_key(city))
        .await?
        .ok_or_else(|| Error::NotFound("No data for city".into()))?;
    Ok(reply(StatusCode::OK, "City summary retrieved", summary))
}

#[derive(Serialize, ToSchema)]
pub struct Detail {
    light: Light,
    #[serde(rename = "recentLogs")]
    recent_logs: Vec<ControlLog>,
}

const RECENT_LOGS: usize = 10;

/// A light and its newest control logs, in one query.
#[utoipa::path(get, path = "/api/lights/detail", tag = "lights", params(LightParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Detail>)), (status = 400), (status = 401), (status = 404)))]
pub(super) async fn detail(
    S(s): S<State>,
    _user: User,
    Query(q): Query<LightParams>,
) -> Result<Reply<Detail>> {
    let key = light_key(q.light_id()?);
    let res = s
        .table
        .query(
            civic_store::Query::partition(key.pk)
                .reverse()
                .limit(RECENT_LOGS + 1),
        )
        .await?;
    let mut items = res.items.into_iter();
    let light = items
        .next()
        .filter(|i| i.get(civic_store::SK).and_then(Value::as_str) == Some(LIGHT_SK))
        .ok_or_else(not_found)?;
    let recent_logs = items.map(from_item).collect::<Result<Vec<ControlLog>>>()?;
    Ok(reply(
        StatusCode::OK,
        "Light details retrieved",
        Detail {
            light: from_item(light)?,
            recent_logs,
        },
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct LogParams {
    #[serde(rename = "lightId")]
    #[param(rename = "lightId")]
    light_id: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<usize>,
    /// Opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Extension (operator or admin): a light's control history, newest first.
#[utoipa::path(get, path = "/api/lights/logs", tag = "lights", params(LogParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Vec<ControlLog>>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn logs(
    S(s): S<State>,
    _: Operator,
    Query(q): Query<LogParams>,
) -> Result<Response> {
    let light_id = given(&q.light_id).ok_or_else(|| Error::bad_request("Light ID not provided"))?;
    let limit = page::limit(q.limit, 50, 500)?;
    if q.cursor.is_none() {
        Versioned::load(s.table.as_ref(), light_id).await?;
    }
    let query = civic_store::Query::partition(light_pk(light_id))
        .prefix(LOGS)
        .reverse()
        .limit(limit)
        .cursor(q.cursor);
    let res = s.table.query_as::<ControlLog>(query).await?;
    Ok(page::with_cursor(
        reply(StatusCode::OK, "Control logs retrieved", res.items),
        res.cursor,
    ))
}
