//! Changing a light's status: manual control by operators and admins, and status reports from
//! devices (over HTTP or the MQTT topic rule). Each change is logged and counted.

use axum::extract::State as S;
use axum::http::StatusCode;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::change::{Change, change_status};
use super::model::{Light, Status};
use crate::{AtLeast, Operator, Reply, State, reply, required_string};

#[derive(ToSchema)]
pub struct ControlRequest {
    #[serde(rename = "lightId")]
    light_id: String,
    /// `on` or `off`.
    action: String,
}

impl FromBody for ControlRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            light_id: required_string(b, "lightId"),
            action: required_string(b, "action"),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ControlData {
    light_id: String,
    status: Status,
    is_automatic: bool,
    last_status_change: String,
}

/// Turn a light on or off (operator or admin). Switches the light to manual mode.
#[utoipa::path(post, path = "/api/lights/control", tag = "lights", request_body = ControlRequest, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<ControlData>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn control(
    S(s): S<State>,
    AtLeast(user): Operator,
    Valid(req): Valid<ControlRequest>,
) -> Result<Reply<ControlData>> {
    let status = match req.action.as_str() {
        "on" => Status::On,
        "off" => Status::Off,
        _ => return Err(Error::bad_request("action must be \"on\" or \"off\"")),
    };
    let change = Change {
        status,
        error_details: None,
        manual: true,
        performed_by: user.email.clone(),
    };
    let light = change_status(&s, &req.light_id, change).await?;
    command(&s, &light.light_id, status).await;
    let data = ControlData {
        light_id: light.light_id,
        status: light.status,
        is_automatic: light.is_automatic,
        last_status_change: light.last_status_change,
    };
    Ok(reply(
        StatusCode::OK,
        format!("Light turned {}", status.as_str()),
        data,
    ))
}

/// Tells the light's device to switch. The change is stored already; a device that misses
/// the command reports its real status, so a failed publish is logged, not returned.
async fn command(s: &State, light_id: &str, status: Status) {
    let topic = format!("streetlight/lights/{light_id}/command");
    let msg = serde_json::json!({"action": status.as_str()});
    if let Err(e) = s.devices().publish(&topic, &msg).await {
        tracing::warn!(light = light_id, error = %e, "command not published");
    }
}

#[derive(ToSchema)]
pub struct StatusRequest {
    #[serde(rename = "lightId")]
    light_id: String,
    /// `on`, `off` or `error`.
    #[schema(required, nullable = false)]
    status: Option<Status>,
    #[serde(rename = "errorDetails")]
    error_details: Option<String>,
}

impl FromBody for StatusRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            light_id: required_string(b, "lightId"),
            // Required too, but named only once `lightId` is there, as the seed's handler does.
            status: b.typed("status", false),
            error_details: b.typed("errorDetails", false),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct StatusData {
    light_id: String,
    status: Status,
    error_details: Option<String>,
    last_status_change: String,
}

/// A status report from a light's device (operator or admin credentials; devices over MQTT use
/// the same logic). Logged as an automatic change.
#[utoipa::path(post, path = "/api/lights/update-status", tag = "lights", request_body = StatusRequest, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<StatusData>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn update_status(
    S(s): S<State>,
    AtLeast(user): Operator,
    Valid(req): Valid<StatusRequest>,
) -> Result<Reply<StatusData>> {
    let data = status_report(&s, req, &user.email).await?;
    Ok(reply(StatusCode::OK, "Light status updated", data))
}

/// The topic rule's message: `{status, errorDetails}` and `lightId` from the topic
/// (`streetlight/lights/{lightId}/status`). The device's certificate policy lets it publish
/// only on its own topic, so the change is logged as performed by `device`.
pub async fn device_status(s: State, msg: Value) -> Result<Value> {
    let data = status_report(&s, crate::read_message(msg)?, "device").await?;
    civic_core::iot::report(data)
}

async fn status_report(s: &State, req: StatusRequest, by: &str) -> Result<StatusData> {
    let status = req
        .status
        .ok_or_else(|| Error::bad_request("Missing required fields: status"))?;
    let light = report_status(s, &req.light_id, status, req.error_details, by).await?;
    Ok(StatusData {
        light_id: light.light_id,
        status: light.status,
        error_details: light.error_details,
        last_status_change: light.last_status_change,
    })
}

/// A device's status report: the domain function behind `update-status` and the MQTT rule.
pub async fn report_status(
    s: &State,
    light_id: &str,
    status: Status,
    details: Option<String>,
    by: &str,
) -> Result<Light> {
    let error_details = if status == Status::Error {
        details.filter(|d| !d.trim().is_empty())
    } else {
        None
    };
    change_status(
        s,
        light_id,
        Change {
            status,
            error_details,
            manual: false,
            performed_by: by.to_owned(),
        },
    )
    .await
}
