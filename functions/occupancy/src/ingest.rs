//! Crossing ingest (the extension the seed implies) and manual calibration: the two ways a
//! camera's occupancy changes. MQTT and frame counting reuse [`ingest`].

use std::collections::HashMap;

use axum::extract::State as S;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::{Error, Json, Result, calendar, ids};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::cameras::{Record, lines_of};
use crate::timeline::{self, Crossing, Op};
use crate::{Id, State};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(calibrate))
}

/// One detected line crossing.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct CrossingEvent {
    pub line_id: i64,
    /// `entry` or `exit`.
    pub direction: Crossing,
    /// RFC 3339; at most 5 minutes in the future.
    pub timestamp: String,
    /// Detector confidence, 0–1: below the line's `confidence_threshold` the crossing is ignored.
    pub confidence: f64,
    /// The tracker's id of the person (string or number): unique persons are counted by it.
    #[schema(value_type = Option<String>)]
    pub track_id: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
pub struct Batch {
    pub events: Vec<CrossingEvent>,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Crossings counted (the rest were below threshold, on inactive lines, or in a direction
    /// the line or camera does not count).
    pub accepted: usize,
}

pub const MAX_BATCH: usize = 1000;
const MAX_SKEW_SECS: i64 = 300;

fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|_| Error::bad_request(format!("timestamp '{s}' is not RFC 3339")))?
        .to_utc();
    if t > now + Duration::seconds(MAX_SKEW_SECS) {
        return Err(Error::bad_request(format!(
            "timestamp '{s}' is in the future"
        )));
    }
    Ok(t)
}

fn track(v: &Option<Value>) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        _ => Err(Error::bad_request(
            "track_id must be a short string or a number",
        )),
    }
}

/// Counts a batch of crossings for a camera: validates all of it first (all or nothing), then
/// applies what the lines count, and publishes the result live. Returns how many were counted.
pub async fn ingest(s: &State, camera: i64, events: Vec<CrossingEvent>) -> Result<usize> {
    let table = s.table.as_ref();
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(Error::bad_request(format!(
            "events must hold 1 to {MAX_BATCH} crossings"
        )));
    }
    let rec = Record::load(table, camera).await?;
    if !rec.camera.is_active {
        return Err(Error::Conflict(format!("Camera {camera} is not active")));
    }
    let lines: HashMap<i64, _> = lines_of(table, camera)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let now = Utc::now();
    let mut ops = Vec::with_capacity(events.len());
    for e in &events {
        let line = lines.get(&e.line_id).ok_or_else(|| {
            Error::bad_request(format!(
                "Line {} does not belong to camera {camera}",
                e.line_id
            ))
        })?;
        if !(0.0..=1.0).contains(&e.confidence) {
            return Err(Error::bad_request("confidence must be between 0 and 1"));
        }
        let at = parse_time(&e.timestamp, now)?;
        let track = track(&e.track_id)?;
        let counted = line.is_active
            && e.confidence >= line.confidence_threshold
            && timeline::counts(rec.camera.camera_type, line.direction, e.direction);
        if counted {
            ops.push(Op::Cross {
                at,
                kind: e.direction,
                track,
                line: line.id,
            });
        }
    }
    if ops.is_empty() {
        return Ok(0);
    }
    let applied = timeline::apply(table, &s.config, camera, ops).await?;
    crate::live::applied(s, &applied).await;
    Ok(applied.accepted)
}

/// Extension: ingest detected line crossings for a camera (also fed by MQTT
/// `occupancy/cameras/{camera_id}/crossings`). Updates live occupancy, the 5-minute, hourly,
/// daily and monthly rollups and alerts in one transaction per chunk; the facility's counters
/// follow from the change feed about a second later.
#[utoipa::path(post, path = "/api/occupancy/cameras/{camera_id}/events", tag = "ingest", request_body = Batch,
    params(("camera_id" = i64, Path)),
    responses((status = 202, body = Accepted), (status = 400), (status = 404), (status = 409)))]
async fn events(
    S(s): S<State>,
    Id(id): Id,
    Json(batch): Json<Batch>,
) -> Result<(StatusCode, Json<Accepted>)> {
    let accepted = ingest(&s, id, batch.events).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted })))
}

/// The topic rule's message: the crossing-ingest body with `camera_id` (the camera's integer
/// id, as in the HTTP path) from the topic `occupancy/cameras/{camera_id}/crossings`.
pub async fn camera_message(s: State, msg: Value) -> Result<Value> {
    let camera = civic_core::iot::int_id(&msg, "camera_id")?;
    let batch: Batch = civic_core::iot::message(msg)?;
    let accepted = ingest(&s, camera, batch.events).await?;
    civic_core::iot::report(Accepted { accepted })
}

#[derive(ToSchema)]
pub struct Calibration {
    /// The head count: the camera's occupancy from now on.
    occupancy_value: i64,
    notes: Option<String>,
}

impl FromBody for Calibration {
    fn from_body(b: &mut Body) -> Self {
        // Both types first: a wrong one is the answer, as it was for a typed body.
        let (value, notes) = (
            b.typed("occupancy_value", false),
            b.typed::<String>("notes", false),
        );
        let occupancy_value = match value {
            None => b.refuse("occupancy_value is required"),
            Some(v) if !(0..=1_000_000).contains(&v) => {
                b.refuse("occupancy_value must be between 0 and 1000000")
            }
            value => value,
        };
        Self {
            occupancy_value: occupancy_value.unwrap_or_default(),
            notes: notes.map(|n| n.chars().take(1000).collect()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Calibrated {
    status: &'static str,
    camera_id: i64,
    occupancy_set_to: i64,
    timestamp: String,
}

/// Set a camera's occupancy after a manual head count; writes a log entry with
/// `is_manual_calibration = true`.
#[utoipa::path(post, path = "/api/occupancy/cameras/{camera_id}/calibrate", tag = "occupancy", request_body = Calibration,
    params(("camera_id" = i64, Path)),
    responses((status = 200, body = Calibrated), (status = 400), (status = 404)))]
async fn calibrate(
    S(s): S<State>,
    Id(id): Id,
    Valid(req): Valid<Calibration>,
) -> Result<Json<Calibrated>> {
    let (value, notes) = (req.occupancy_value, req.notes);
    let table = s.table.as_ref();
    Record::load(table, id).await?;
    let log_id = ids::next_id(table, "log").await?;
    let at = Utc::now();
    let set = Op::Set {
        at,
        value,
        notes,
        log_id,
    };
    let applied = timeline::apply(table, &s.config, id, vec![set]).await?;
    crate::live::applied(&s, &applied).await;
    Ok(Json(Calibrated {
        status: "success",
        camera_id: id,
        occupancy_set_to: value,
        timestamp: calendar::rfc3339(at),
    }))
}
