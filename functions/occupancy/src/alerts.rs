//! Alerts: the open ones (an index holds only open alerts, by camera) and resolving one. They are
//! raised by the timeline ([`crate::timeline`]) and the scheduler, one open alert per camera and
//! type; resolving frees the type, so the next occurrence opens a new alert.

use axum::extract::State as S;
use chrono::Utc;
use civic_core::item::from_item;
use civic_core::retry::won;
use civic_core::{Error, Json, Query, Result, calendar, page};
use civic_store::{Cond, GSI1PK, GSI1SK, Table, Typed, Update, VERSION, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::cameras::Record;
use crate::keys::{OPEN_ALERTS, alert_key, facility_key, open_alerts_of};
use crate::{Id, State};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(resolve))
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    pub camera_id: i64,
    /// `capacity_exceeded`, `capacity_warning`, `anomaly_detected`, `negative_count` or
    /// `equipment_failure`.
    pub alert_type: String,
    pub current_occupancy: i64,
    pub message: String,
    pub is_resolved: bool,
    /// When the condition was last seen.
    pub timestamp: String,
    /// How many times the condition was seen while the alert was open.
    #[serde(default)]
    pub occurrences: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct AlertParams {
    /// Only this camera's alerts.
    camera_id: Option<i64>,
    /// Extension: page size, 1–1000 (default 1000).
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Unresolved alerts, by camera then id.
#[utoipa::path(get, path = "/api/occupancy/alerts", operation_id = "list_alerts", tag = "alerts", params(AlertParams),
    responses((status = 200, body = Vec<Alert>), (status = 400)))]
async fn list(S(s): S<State>, Query(q): Query<AlertParams>) -> Result<axum::response::Response> {
    let limit = page::limit(q.limit, 1000, 1000)?;
    let mut query = civic_store::Query::index(OPEN_ALERTS)
        .limit(limit)
        .cursor(q.cursor);
    if let Some(camera) = q.camera_id {
        query = query.prefix(open_alerts_of(camera));
    }
    let res = s.table.query_as::<Alert>(query).await?;
    Ok(page::with_cursor(Json(res.items), res.cursor))
}

#[derive(Serialize, ToSchema)]
pub struct Resolved {
    status: &'static str,
    alert_id: i64,
    resolved_at: String,
}

/// Mark an alert resolved. Resolving twice answers with the first resolution.
#[utoipa::path(put, path = "/api/occupancy/alerts/{alert_id}/resolve", tag = "alerts",
    params(("alert_id" = i64, Path)),
    responses((status = 200, body = Resolved), (status = 404)))]
async fn resolve(S(s): S<State>, Id(id): Id) -> Result<Json<Resolved>> {
    let (resolved_at, closed) = close(s.table.as_ref(), id).await?;
    if let Some((alert, version)) = closed {
        crate::live::alert(&s.platform, &alert, version).await;
    }
    Ok(Json(Resolved {
        status: "success",
        alert_id: id,
        resolved_at,
    }))
}

/// Closes an alert, frees its type on the camera and uncounts it from the facility, in one
/// transaction conditional on both versions. Returns when it was resolved.
pub async fn resolve_alert(table: &dyn Table, id: i64) -> Result<String> {
    Ok(close(table, id).await?.0)
}

/// [`resolve_alert`], and the alert as this call stored it with its version (`None` when it
/// was resolved before: nothing changed, nothing to publish).
async fn close(table: &dyn Table, id: i64) -> Result<(String, Option<(Alert, i64)>)> {
    civic_core::retry::optimistic(move || async move {
        let item = table
            .get(&alert_key(id))
            .await?
            .ok_or_else(|| Error::NotFound(format!("Alert {id} not found")))?;
        let version = item.get(VERSION).and_then(Value::as_i64).unwrap_or(0);
        let alert: Alert = from_item(item)?;
        if let Some(at) = alert.resolved_at {
            return Ok(Some((at, None)));
        }
        let now = calendar::rfc3339(Utc::now());
        let mut writes = vec![
            Write::Update(
                Update::new(alert_key(id))
                    .set("is_resolved", true)
                    .set("resolved_at", now.clone())
                    .remove(GSI1PK)
                    .remove(GSI1SK)
                    .add(VERSION, 1)
                    .cond(Cond::Version(version)),
            ),
            Write::Update(
                Update::new(facility_key())
                    .add("active_alerts", -1)
                    .set("last_updated", now.clone()),
            ),
        ];
        let mut rec = Record::load(table, alert.camera_id).await?;
        if rec.live.alerts.get(&alert.alert_type) == Some(&id) {
            rec.live.alerts.remove(&alert.alert_type);
            let expected = rec.version;
            rec.version += 1;
            writes.push(Write::Put {
                item: rec.to_item()?,
                cond: Cond::Version(expected),
            });
        }
        let resolved = Alert {
            is_resolved: true,
            resolved_at: Some(now.clone()),
            ..alert
        };
        let closed = Some((resolved, version + 1));
        won(table.transact(writes).await).map(|won| won.then_some((now, closed)))
    })
    .await
}
