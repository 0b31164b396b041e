//! Alerts: manual ones (the seed's CRUD) and automatic ones ([`raise_auto`], for the image
//! analysis), with a lifecycle OPEN → ACKNOWLEDGED → CLOSED that records who and when.
//!
//! An alert is stored once per list it belongs to (all, by status, by organization, by
//! organization and status; key `{id:010}`), so every filter is one reverse query, newest
//! first. The copy in `ALERTS` is the canonical one: it carries the version every change is
//! conditioned on, and the copies are rewritten in the same transaction.
//!
//! An automatic alert holds a marker item `OPENALERT#{source}#{type}` while it is not CLOSED;
//! creating the marker is conditional, so a source raises one open alert per type at a time.

use std::str::FromStr;

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::item::{from_item, to_item};
use civic_core::retry::won;
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Item, Key, Table, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::fields::{Body, int_param};
use crate::sites::{Zone, camera_tree, no_such, zone_tree};
use crate::{Admin, Id, State, User, not_found, pad, version_of, with_version};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, update, delete))
        .routes(routes!(acknowledge))
        .routes(routes!(close))
}

const ALL: &str = "ALERTS";
/// `alert_type` of alerts created through the API.
pub const MANUAL: &str = "MANUAL";
const TEXT_MAX: usize = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Closed,
}

impl AlertStatus {
    const ALL: [Self; 3] = [Self::Open, Self::Acknowledged, Self::Closed];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Acknowledged => "ACKNOWLEDGED",
            Self::Closed => "CLOSED",
        }
    }
}

impl FromStr for AlertStatus {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    pub heading: String,
    pub sub_heading: String,
    pub status: AlertStatus,
    pub created_at: String,
    pub updated_at: String,
    /// Extension: `MANUAL`, or the automatic alert's type (e.g. `OVERCROWDING`).
    pub alert_type: String,
    /// Extension: where it was raised, when known.
    pub organization_id: Option<i64>,
    pub zone_id: Option<i64>,
    pub camera_id: Option<i64>,
    /// Extension: the user id and time of the acknowledgement and of the closing.
    pub acknowledged_by: Option<i64>,
    pub acknowledged_at: Option<String>,
    pub closed_by: Option<i64>,
    pub closed_at: Option<String>,
}

/// The stored alert: the marker it holds while open, if automatic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    alert: Alert,
    #[serde(default)]
    marker: Option<String>,
}

fn main_key(id: i64) -> Key {
    Key::new(ALL, pad(id))
}

fn list_partition(org: Option<i64>, status: Option<AlertStatus>) -> String {
    match (org, status) {
        (None, None) => ALL.into(),
        (None, Some(s)) => format!("ALERTS#{}", s.as_str()),
        (Some(o), None) => format!("ORGALERTS#{o}"),
        (Some(o), Some(s)) => format!("ORGALERTS#{o}#{}", s.as_str()),
    }
}

/// Every list the alert belongs to; the first is the canonical copy.
fn views(a: &Alert) -> Vec<String> {
    let mut out = vec![
        list_partition(None, None),
        list_partition(None, Some(a.status)),
    ];
    if let Some(o) = a.organization_id {
        out.push(list_partition(Some(o), None));
        out.push(list_partition(Some(o), Some(a.status)));
    }
    out
}

fn marker_key(marker: &str) -> Key {
    Key::new(format!("OPENALERT#{marker}"), "OPENALERT")
}

async fn load(table: &dyn Table, id: i64) -> Result<(Record, i64)> {
    let item = table
        .get(&main_key(id))
        .await?
        .ok_or_else(|| not_found("Alert"))?;
    let version = version_of(&item);
    Ok((from_item(item)?, version))
}

/// Writes `new` (over `old` at its version, or as a new alert) with all its list copies, and
/// takes or frees its marker when it opens or closes. `Ok(false)`: lost a race (or, when it
/// opens, the marker is taken).
async fn save(table: &dyn Table, old: Option<(&Record, i64)>, new: &Record) -> Result<bool> {
    let (version, cond) = match old {
        Some((_, v)) => (v, Cond::Version(v)),
        None => (0, Cond::NotExists),
    };
    let item = |pk: &str| -> Result<Item> {
        to_item(new, &[("PK", pk.to_owned()), ("SK", pad(new.alert.id))])
    };
    let new_views = views(&new.alert);
    let mut writes = vec![Write::Put {
        item: with_version(item(ALL)?, version + 1),
        cond,
    }];
    for pk in &new_views[1..] {
        writes.push(Write::Put {
            item: item(pk)?,
            cond: Cond::Always,
        });
    }
    if let Some((old, _)) = old {
        for pk in views(&old.alert).iter().filter(|v| !new_views.contains(v)) {
            writes.push(Write::Delete {
                key: Key::new(pk.clone(), pad(new.alert.id)),
                cond: Cond::Always,
            });
        }
    }
    if let Some(marker) = &new.marker {
        let was_open = old.is_some_and(|(o, _)| o.alert.status != AlertStatus::Closed);
        let is_open = new.alert.status != AlertStatus::Closed;
        let key = marker_key(marker);
        match (was_open, is_open) {
            (false, true) => {
                let mut m = Item::new();
                m.insert("PK".into(), key.pk.into());
                m.insert("SK".into(), key.sk.into());
                m.insert("alert_id".into(), new.alert.id.into());
                writes.push(Write::Put {
                    item: m,
                    cond: Cond::NotExists,
                });
            }
            (true, false) => writes.push(Write::Delete {
                key,
                cond: Cond::Always,
            }),
            _ => {}
        }
    }
    won(table.transact(writes).await)
}

/// The alert a marker belongs to, if it is held.
async fn holder(table: &dyn Table, marker: &str) -> Result<Option<i64>> {
    Ok(table
        .get(&marker_key(marker))
        .await?
        .and_then(|m| m.get("alert_id").and_then(Value::as_i64)))
}

/// Moves an alert to `to` as user `by`, recording who and when.
fn transition(a: &mut Alert, to: AlertStatus, by: i64, now: &str) {
    if a.status == to {
        return;
    }
    match to {
        AlertStatus::Open => {
            (a.acknowledged_by, a.acknowledged_at) = (None, None);
            (a.closed_by, a.closed_at) = (None, None);
        }
        AlertStatus::Acknowledged => {
            (a.acknowledged_by, a.acknowledged_at) = (Some(by), Some(now.to_owned()));
            (a.closed_by, a.closed_at) = (None, None);
        }
        AlertStatus::Closed => (a.closed_by, a.closed_at) = (Some(by), Some(now.to_owned())),
    }
    a.status = to;
}

/// Applies `edit` to alert `id` under optimistic concurrency. An edit that changes nothing
/// writes nothing; reopening an automatic alert whose type is open again elsewhere is a 409.
async fn change(
    table: &dyn Table,
    id: i64,
    edit: impl Fn(&mut Alert, &str) -> Result<()>,
) -> Result<Alert> {
    retry::optimistic(|| async {
        let (old, version) = load(table, id).await?;
        let mut new = old.clone();
        let now = civic_core::time::now_rfc3339();
        edit(&mut new.alert, &now)?;
        if new == old {
            return Ok(Some(new.alert));
        }
        new.alert.updated_at = now;
        let reopens =
            old.alert.status == AlertStatus::Closed && new.alert.status != AlertStatus::Closed;
        if let (true, Some(marker)) = (reopens, &new.marker)
            && holder(table, marker).await?.is_some_and(|h| h != id)
        {
            return Err(Error::Conflict(format!(
                "Another {} alert from the same source is open",
                new.alert.alert_type
            )));
        }
        let won = save(table, Some((&old, version)), &new).await?;
        Ok(won.then_some(new.alert))
    })
    .await
}

// ---- Automatic alerts -----------------------------------------------------------------

/// What [`raise_auto`] did.
#[derive(Debug)]
pub enum Raised {
    Created(Alert),
    /// An alert of this source and type is open (OPEN or ACKNOWLEDGED): it is returned as is.
    AlreadyOpen(Alert),
}

/// Raises an automatic alert of `alert_type` in `zone`, unless one from the same source is
/// not yet CLOSED. The source is the camera when given, else the zone: pass `camera: None` to
/// deduplicate per zone whichever camera saw it. The organization is stored on the alert, so
/// `?org_id` lists it.
pub async fn raise_auto(
    table: &dyn Table,
    zone: &Zone,
    camera: Option<i64>,
    alert_type: &str,
    heading: &str,
    sub_heading: &str,
) -> Result<Raised> {
    let source = match camera {
        Some(c) => format!("CAMERA#{c}"),
        None => format!("ZONE#{}", zone.id),
    };
    let marker = format!("{source}#{alert_type}");
    if let Some(open) = holder(table, &marker).await? {
        return Ok(Raised::AlreadyOpen(load(table, open).await?.0.alert));
    }
    let now = civic_core::time::now_rfc3339();
    let record = Record {
        alert: Alert {
            id: ids::next_id(table, "alert").await?,
            heading: heading.to_owned(),
            sub_heading: sub_heading.to_owned(),
            status: AlertStatus::Open,
            created_at: now.clone(),
            updated_at: now,
            alert_type: alert_type.to_owned(),
            organization_id: Some(zone.organization_id),
            zone_id: Some(zone.id),
            camera_id: camera,
            acknowledged_by: None,
            acknowledged_at: None,
            closed_by: None,
            closed_at: None,
        },
        marker: Some(marker.clone()),
    };
    // Losing means the marker was taken meanwhile (the alert is new, so nothing else fails).
    retry::optimistic(|| async {
        if save(table, None, &record).await? {
            return Ok(Some(Raised::Created(record.alert.clone())));
        }
        match holder(table, &marker).await? {
            Some(open) => Ok(Some(Raised::AlreadyOpen(load(table, open).await?.0.alert))),
            None => Ok(None),
        }
    })
    .await
}

// ---- Endpoints ------------------------------------------------------------------------

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
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct AlertInput {
    heading: String,
    sub_heading: Option<String>,
    /// Default `OPEN`.
    status: Option<AlertStatus>,
    /// Extension: the zone it concerns (its organization is stored too).
    zone_id: Option<i64>,
    /// Extension: the camera it concerns (its zone and organization are stored too).
    camera_id: Option<i64>,
}

/// Create an alert manually (`alert_type` `MANUAL`).
#[utoipa::path(post, path = "/api/alerts", operation_id = "create_alert", tag = "alerts", request_body = AlertInput, security(("bearer" = [])),
    responses((status = 201, body = Alert), (status = 400), (status = 401), (status = 403)))]
async fn create(
    S(s): S<State>,
    Admin(user): Admin,
    mut body: Body,
) -> Result<(StatusCode, Json<Alert>)> {
    let heading = body.string("heading", true, false, TEXT_MAX);
    let sub_heading = body.string("sub_heading", false, true, TEXT_MAX);
    let status = body.choice::<AlertStatus>("status", false);
    let zone_id = body.int("zone_id", false, 1..=i64::MAX);
    let camera_id = body.int("camera_id", false, 1..=i64::MAX);
    body.finish()?;
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
    save(table, None, &record).await?;
    Ok((StatusCode::CREATED, Json(record.alert)))
}

#[utoipa::path(get, path = "/api/alerts/{id}", operation_id = "get_alert", tag = "alerts", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = Alert), (status = 401), (status = 404)))]
async fn detail(S(s): S<State>, _: User, Id(id): Id) -> Result<Json<Alert>> {
    Ok(Json(load(s.table.as_ref(), id).await?.0.alert))
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct AlertUpdate {
    heading: Option<String>,
    sub_heading: Option<String>,
    /// A new status goes through the lifecycle: who and when are recorded.
    status: Option<AlertStatus>,
}

/// Update an alert (e.g. `{"status": "CLOSED"}`); every field is optional.
#[utoipa::path(put, path = "/api/alerts/{id}", operation_id = "update_alert", tag = "alerts", params(("id" = i64, Path)),
    request_body = AlertUpdate, security(("bearer" = [])),
    responses((status = 200, body = Alert), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn update(S(s): S<State>, Admin(user): Admin, Id(id): Id, body: Body) -> Result<Json<Alert>> {
    let mut body = body.partial();
    let heading = body.string("heading", true, false, TEXT_MAX);
    let sub_heading = body.string("sub_heading", false, true, TEXT_MAX);
    let status = body.choice::<AlertStatus>("status", false);
    body.finish()?;
    let alert = change(s.table.as_ref(), id, |a, now| {
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
    let alert = change(s.table.as_ref(), id, |a, now| match a.status {
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
    let alert = change(s.table.as_ref(), id, |a, now| {
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
    retry::optimistic(|| async {
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
        won(table.transact(writes).await).map(|won| won.then_some(()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
