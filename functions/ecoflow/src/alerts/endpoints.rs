//! The alert endpoints: list (one query per filter), manual create, read, partial update,
//! the lifecycle moves (acknowledge, close) and delete.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::retry::won;
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Key, Write};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    Alert, AlertStatus, MANUAL, Record, change, list_partition, load, main_key, marker_key, save,
    transition, views,
};
use crate::fields::{Body, FromBody, Patch, Valid, int_param};
use crate::sites::{camera_tree, no_such, zone_tree};
use crate::{Admin, Id, State, User, pad};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, update, delete))
        .routes(routes!(acknowledge))
        .routes(routes!(close))
}

const TEXT_MAX: usize = 255;

#[derive(Deserialize, IntoParams)]
pub struct AlertParams {
    /// `OPEN`, `ACKNOWLEDGED` or `CLOSED`.
    status: Option<String>,
    /// Alerts raised in this organization's zones.
    org_id: Option<String>,
    /// Extension: page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Alerts, newest first; filters combine. One query.
#[utoipa::path(get, path = "/api/alerts", operation_id = "list_alerts", tag = "alerts", params(AlertParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<Alert>), (status = 400), (status = 401)))]
async fn list(S(s): S<State>, _: User, Query(q): Query<AlertParams>) -> Result<Response> {
    let status = match q.status.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<AlertStatus>().map_err(|_| {
            Error::field(
                "status",
                format!("Select a valid choice. {v} is not one of the available choices."),
            )
        })?),
    };
    let org = int_param("org_id", q.org_id.as_deref())?;
    let limit = page::limit(q.limit, 100, 1000)?;
    let newest = civic_store::Query::partition(list_partition(org, status))
        .reverse()
        .limit(limit)
        .cursor(q.cursor);
    page::items::<Alert>(s.table.as_ref(), newest).await
}

/// Request schema (for the docs: the body is checked field by field). On `PUT` every field
/// is optional and `zone_id`/`camera_id` are ignored.
#[derive(ToSchema)]
pub struct AlertInput {
    #[schema(value_type = String)]
    heading: Option<String>,
    sub_heading: Option<String>,
    /// Default `OPEN`.
    status: Option<AlertStatus>,
    /// Extension: the zone it concerns (its organization is stored too).
    zone_id: Option<i64>,
    /// Extension: the camera it concerns (its zone and organization are stored too).
    camera_id: Option<i64>,
}

impl FromBody for AlertInput {
    fn from_body(body: &mut Body) -> Self {
        Self {
            heading: body.string("heading", true, false, TEXT_MAX),
            sub_heading: body.string("sub_heading", false, true, TEXT_MAX),
            status: body.choice::<AlertStatus>("status", false),
            zone_id: body.int("zone_id", false, 1..=i64::MAX),
            camera_id: body.int("camera_id", false, 1..=i64::MAX),
        }
    }
}

/// Create an alert manually (`alert_type` `MANUAL`).
#[utoipa::path(post, path = "/api/alerts", operation_id = "create_alert", tag = "alerts", request_body = AlertInput, security(("bearer" = [])),
    responses((status = 201, body = Alert), (status = 400), (status = 401), (status = 403)))]
async fn create(
    S(s): S<State>,
    Admin(user): Admin,
    Valid(input): Valid<AlertInput>,
) -> Result<(StatusCode, Json<Alert>)> {
    let AlertInput {
        heading,
        sub_heading,
        status,
        zone_id,
        camera_id,
    } = input;
    let table = s.table.as_ref();
    // Where it was raised: the camera names its zone, the zone its organization.
    let (org, zone) = match (camera_id, zone_id) {
        (Some(c), _) => {
            let tree = camera_tree(table, c)
                .await?
                .ok_or_else(|| no_such("camera_id", c))?;
            let (node, _) = tree.camera(c).ok_or_else(|| no_such("camera_id", c))?;
            if zone_id.is_some_and(|z| z != node.zone.id) {
                return Err(Error::field("zone_id", "The camera is not in this zone."));
            }
            (Some(tree.org.id), Some(node.zone.id))
        }
        (None, Some(z)) => {
            let tree = zone_tree(table, z)
                .await?
                .ok_or_else(|| no_such("zone_id", z))?;
            (Some(tree.org.id), Some(z))
        }
        (None, None) => (None, None),
    };
    let now = civic_core::time::now_rfc3339();
    let mut alert = Alert {
        id: ids::next_id(table, "alert").await?,
        heading: heading.unwrap_or_default(),
        sub_heading: sub_heading.unwrap_or_default(),
        status: AlertStatus::Open,
        created_at: now.clone(),
        updated_at: now.clone(),
        alert_type: MANUAL.into(),
        organization_id: org,
        zone_id: zone,
        camera_id,
        acknowledged_by: None,
        acknowledged_at: None,
        closed_by: None,
        closed_at: None,
    };
    transition(
        &mut alert,
        status.unwrap_or(AlertStatus::Open),
        user.id,
        &now,
    );
    let record = Record {
        alert,
        marker: None,
    };
    save(&s, None, &record).await?;
    Ok((StatusCode::CREATED, Json(record.alert)))
}

#[utoipa::path(get, path = "/api/alerts/{id}", operation_id = "get_alert", tag = "alerts", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = Alert), (status = 401), (status = 404)))]
async fn detail(S(s): S<State>, _: User, Id(id): Id) -> Result<Json<Alert>> {
    Ok(Json(load(s.table.as_ref(), id).await?.0.alert))
}

#[derive(ToSchema)]
pub struct AlertUpdate {
    heading: Option<String>,
    sub_heading: Option<String>,
    /// A new status goes through the lifecycle: who and when are recorded.
    status: Option<AlertStatus>,
}

/// Read as a partial update (`Patch<AlertUpdate>`): `heading`, when present, may not be blank.
impl FromBody for AlertUpdate {
    fn from_body(body: &mut Body) -> Self {
        Self {
            heading: body.string("heading", true, false, TEXT_MAX),
            sub_heading: body.string("sub_heading", false, true, TEXT_MAX),
            status: body.choice::<AlertStatus>("status", false),
        }
    }
}

/// Update an alert (e.g. `{"status": "CLOSED"}`); every field is optional.
#[utoipa::path(put, path = "/api/alerts/{id}", operation_id = "update_alert", tag = "alerts", params(("id" = i64, Path)),
    request_body = AlertUpdate, security(("bearer" = [])),
    responses((status = 200, body = Alert), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn update(
    S(s): S<State>,
    Admin(user): Admin,
    Id(id): Id,
    Patch(input): Patch<AlertUpdate>,
) -> Result<Json<Alert>> {
    let AlertUpdate {
        heading,
        sub_heading,
        status,
    } = input;
    let alert = change(&s, id, |a, now| {
        crate::sites::set(&mut a.heading, &heading);
        crate::sites::set(&mut a.sub_heading, &sub_heading);
        if let Some(to) = status {
            transition(a, to, user.id, now);
        }
        Ok(())
    })
    .await?;
    Ok(Json(alert))
}

/// Extension: OPEN → ACKNOWLEDGED, recording who and when. Acknowledging again changes
/// nothing; a CLOSED alert cannot be acknowledged (409).
#[utoipa::path(post, path = "/api/alerts/{id}/acknowledge", tag = "alerts", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Alert), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn acknowledge(S(s): S<State>, Admin(user): Admin, Id(id): Id) -> Result<Json<Alert>> {
    let alert = change(&s, id, |a, now| match a.status {
        AlertStatus::Closed => Err(Error::Conflict(
            "A closed alert cannot be acknowledged.".into(),
        )),
        _ => {
            transition(a, AlertStatus::Acknowledged, user.id, now);
            Ok(())
        }
    })
    .await?;
    Ok(Json(alert))
}

/// Extension: OPEN or ACKNOWLEDGED → CLOSED, recording who and when; an automatic alert's
/// source may raise its type again. Closing again changes nothing.
#[utoipa::path(post, path = "/api/alerts/{id}/close", tag = "alerts", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Alert), (status = 401), (status = 403), (status = 404)))]
async fn close(S(s): S<State>, Admin(user): Admin, Id(id): Id) -> Result<Json<Alert>> {
    let alert = change(&s, id, |a, now| {
        transition(a, AlertStatus::Closed, user.id, now);
        Ok(())
    })
    .await?;
    Ok(Json(alert))
}

#[utoipa::path(delete, path = "/api/alerts/{id}", operation_id = "delete_alert", tag = "alerts", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete(S(s): S<State>, _: Admin, Id(id): Id) -> Result<StatusCode> {
    let table = s.table.as_ref();
    let version = retry::optimistic(|| async {
        let (record, version) = load(table, id).await?;
        let mut writes = vec![Write::Delete {
            key: main_key(id),
            cond: Cond::Version(version),
        }];
        for pk in &views(&record.alert)[1..] {
            writes.push(Write::Delete {
                key: Key::new(pk.clone(), pad(id)),
                cond: Cond::Always,
            });
        }
        if let (Some(marker), true) = (&record.marker, record.alert.status != AlertStatus::Closed) {
            writes.push(Write::Delete {
                key: marker_key(marker),
                cond: Cond::Always,
            });
        }
        won(table.transact(writes).await).map(|won| won.then_some(version))
    })
    .await?;
    crate::live::alert_deleted(&s.platform, id, version).await;
    Ok(StatusCode::NO_CONTENT)
}
