//! System status (the process answers) and health (the store and the blob store answer).

use axum::extract::State as S;
use axum::http::StatusCode;
use civic_core::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(health))
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    status: &'static str,
    message: &'static str,
}

#[utoipa::path(get, path = "/api/status", tag = "system", responses((status = 200, body = Status)))]
async fn status() -> Json<Status> {
    Json(Status {
        status: "OK",
        message: "Ecoflow system is operational.",
    })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `OK` or `DEGRADED`.
    overall_status: &'static str,
    /// The table (`OK` or `DOWN`).
    database: &'static str,
    /// The blob store that will hold uploaded images (`OK` or `DOWN`).
    external_service: &'static str,
}

/// Pings the table and the blob store, concurrently: 200 when both answer, else 503.
#[utoipa::path(get, path = "/api/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(S(s): S<State>) -> (StatusCode, Json<Health>) {
    let blobs = s.blob();
    let (db, blob) = tokio::join!(s.table.ping(), blobs.ping());
    let word = |r: &civic_store::Result<()>| match r {
        Ok(()) => "OK",
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            "DOWN"
        }
    };
    let ok = db.is_ok() && blob.is_ok();
    let health = Health {
        overall_status: if ok { "OK" } else { "DEGRADED" },
        database: word(&db),
        external_service: word(&blob),
    };
    let status = match ok {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(health))
}
