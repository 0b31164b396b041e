//! Closing buckets: the scheduled function (every 5 minutes) and `POST /aggregate` tick each
//! camera's timeline to now. Rollups are already current (they are kept at ingest); a tick only
//! closes the buckets that ended (stores their final average, feeds the anomaly baseline) and
//! raises `equipment_failure` for an active camera that has been silent too long.

use axum::extract::State as S;
use axum::http::StatusCode;
use chrono::Utc;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::{Json, Result, calendar};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;
use crate::cameras::{Record, active_cameras};
use crate::timeline::{self, Op};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(aggregate))
}

/// Ticks one camera's timeline to now; what it wrote (a day's unique count reset, an
/// `equipment_failure`) goes out live.
pub async fn tick(s: &State, camera: i64) -> Result<()> {
    let op = Op::Tick { at: Utc::now() };
    let applied = timeline::apply(s.table.as_ref(), &s.config, camera, vec![op]).await?;
    crate::live::applied(s, &applied).await;
    Ok(())
}

/// The scheduled pass over every active camera (one page query per 1000 cameras, one tick each).
/// Returns how many cameras were ticked.
pub async fn sweep(s: &State) -> Result<usize> {
    let cameras = active_cameras(s.table.as_ref()).await?;
    for c in &cameras {
        tick(s, c.id).await?;
    }
    Ok(cameras.len())
}

#[derive(ToSchema)]
pub struct AggregateRequest {
    /// One camera, or null for all.
    camera_id: Option<i64>,
    /// Required: `hourly`, `daily` or `monthly`. Every level is closed by the same pass; the
    /// level is echoed.
    aggregation_level: String,
}

impl FromBody for AggregateRequest {
    fn from_body(b: &mut Body) -> Self {
        // Both types first: a wrong one is the answer, as it was for a typed body.
        let camera_id = b.typed("camera_id", false);
        let level = match b.typed::<String>("aggregation_level", false) {
            None => b.refuse("aggregation_level is required: hourly, daily or monthly"),
            Some(l) if !["hourly", "daily", "monthly"].contains(&l.as_str()) => {
                b.refuse("aggregation_level must be one of hourly, daily, monthly")
            }
            level => level,
        };
        Self {
            camera_id,
            aggregation_level: level.unwrap_or_default(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AggregateAccepted {
    status: &'static str,
    level: String,
    timestamp: String,
}

/// Trigger the rollup pass now (normally run by the schedule).
#[utoipa::path(post, path = "/api/occupancy/aggregate", tag = "admin", request_body = AggregateRequest,
    responses((status = 202, body = AggregateAccepted), (status = 400), (status = 404)))]
async fn aggregate(
    S(s): S<State>,
    Valid(req): Valid<AggregateRequest>,
) -> Result<(StatusCode, Json<AggregateAccepted>)> {
    let level = req.aggregation_level;
    let table = s.table.as_ref();
    match req.camera_id {
        Some(id) => {
            Record::load(table, id).await?;
            tick(&s, id).await?;
        }
        None => {
            sweep(&s).await?;
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(AggregateAccepted {
            status: "aggregation_triggered",
            level,
            timestamp: calendar::rfc3339(Utc::now()),
        }),
    ))
}

/// The scheduled pass (every 5 minutes in the template): close ended buckets of every active
/// camera and raise `equipment_failure` for silent ones.
pub async fn scheduled(state: State) -> Result<serde_json::Value> {
    let cameras = sweep(&state).await?;
    Ok(serde_json::json!({ "cameras": cameras }))
}
