//! `GET sensor/detections/` (extension): every counted frame, newest first, from either
//! entrance. One query of the list partition (all zones, or one zone's), a page at a time.

use axum::extract::State as S;
use axum::response::Response;
use civic_core::{Query, Result, page};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Detection, partition};
use crate::fields::int_param;
use crate::{State, User};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
pub struct DetectionParams {
    /// Only this zone's detections.
    zone_id: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// Opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Counted frames, newest first.
#[utoipa::path(get, path = "/api/sensor/detections", operation_id = "list_detections", tag = "sensor", params(DetectionParams),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<Detection>), (status = 400), (status = 401)))]
async fn list(S(s): S<State>, _: User, Query(q): Query<DetectionParams>) -> Result<Response> {
    let zone = int_param("zone_id", q.zone_id.as_deref())?;
    let limit = page::limit(q.limit, 100, 1000)?;
    let newest = civic_store::Query::partition(partition(zone))
        .reverse()
        .limit(limit)
        .cursor(q.cursor);
    page::items::<Detection>(s.table.as_ref(), newest).await
}
