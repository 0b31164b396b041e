//! `POST /api/device/events` and the MQTT topic rule: one idempotent device event each.

use axum::extract::State as S;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use civic_auth::secret::bearer_token;
use civic_core::{Error, Json, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{DeviceRecord, Event, firmware, ingest, status_update};
use crate::{State, Treatment, iso, iso_ms, now, required, valid_device_id};

#[derive(Deserialize, ToSchema)]
pub struct DeviceEvent {
    #[schema(required, nullable = false)]
    device_id: Option<String>,
    firmware: Option<String>,
    /// Unique per device; a repeat is acknowledged without storing anything.
    #[schema(required, nullable = false)]
    event_id: Option<String>,
    /// Default `treatment`; `status`/`heartbeat` are status reports.
    event: Option<String>,
    /// BASIC, STANDARD or PREMIUM; required for treatments.
    treatment: Option<String>,
    /// Billing counter at press time.
    counter: Option<i64>,
    /// When it happened (RFC 3339); default: when received.
    ts: Option<String>,
    wifi_status: Option<Value>,
    payload: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct Ack {
    ack: bool,
    event_id: String,
}

/// Idempotent event ingest: a duplicate `event_id` gets the same ack and stores nothing.
#[utoipa::path(post, path = "/api/device/events", tag = "devices", request_body = DeviceEvent, security(("device" = [])),
    responses((status = 200, body = Ack), (status = 400), (status = 401)))]
pub(super) async fn device_events(
    S(s): S<State>,
    headers: HeaderMap,
    Json(req): Json<DeviceEvent>,
) -> Result<Json<Ack>> {
    Ok(Json(accept_event(&s, req, Sender::Token(&headers)).await?))
}

/// The topic rule's message: the seed's event body with `device_id` from the topic
/// (`ozone/devices/{device_id}/events`), which overrides any `device_id` in the payload.
pub async fn device_message(s: State, msg: Value) -> Result<Value> {
    let ack = accept_event(&s, civic_core::iot::message(msg)?, Sender::Topic).await?;
    civic_core::iot::report(ack)
}

/// Who vouches that an event comes from its device.
pub enum Sender<'a> {
    /// HTTP: the device's bearer token.
    Token(&'a HeaderMap),
    /// MQTT: the topic names the device, and IoT Core's policy lets a device's certificate
    /// publish only on its own topic. The device must be assigned.
    Topic,
}

/// Validates and stores one device event, once per `event_id`: the logic behind
/// `/api/device/events/` and the MQTT rule.
pub async fn accept_event(s: &State, req: DeviceEvent, sender: Sender<'_>) -> Result<Ack> {
    let received = now();
    let e = req.check(received)?;
    let device_id = e.device_id.as_str();
    let record = match sender {
        Sender::Token(headers) => authenticate(s, headers, device_id).await?,
        Sender::Topic => DeviceRecord::load(s.table.as_ref(), device_id)
            .await?
            .ok_or_else(|| Error::Unauthorized(format!("Unknown device {device_id}")))?,
    };
    let status = status_update(device_id, &e, &iso_ms(received));
    ingest(s, &record, &e, status).await?;
    Ok(Ack {
        ack: true,
        event_id: e.event_id,
    })
}

impl DeviceEvent {
    /// The event this request describes, every field checked before anything is read, so a
    /// bad request is a 400 whoever sends it.
    fn check(self, received: DateTime<Utc>) -> Result<Event> {
        let device_id = required("device_id", &self.device_id)?.to_owned();
        valid_device_id("device_id", &device_id)?;
        let event_id = event_id(required("event_id", &self.event_id)?)?.to_owned();
        let event = event_name(self.event.as_deref())?;
        let treatment = treatment(self.treatment.as_deref(), &event)?;
        if self.counter.is_some_and(|c| c < 0) {
            return Err(Error::field(
                "counter",
                "Ensure this value is greater than or equal to 0.",
            ));
        }
        let occurred = occurred_at(self.ts.as_deref(), received)?;
        let firmware = firmware(&self.firmware)?;
        let event_type = match (treatment, event.as_str()) {
            (Some(t), "treatment") => t.as_str().to_owned(),
            (_, "status" | "heartbeat") => "status".to_owned(),
            (_, other) => other.to_owned(),
        };
        Ok(Event {
            device_id,
            event_type,
            event_id,
            // Only treatments bill; another event names no treatment in the rollups.
            treatment: treatment.filter(|_| event == "treatment"),
            event,
            counter: self.counter,
            occurred_at: iso(occurred),
            device_timestamp: self.ts,
            wifi_status: self.wifi_status,
            payload: self.payload,
            count_basic: None,
            count_standard: None,
            count_premium: None,
            firmware,
            received_at: iso(received),
        })
    }
}

/// Event ids are part of keys: no spaces, and short enough for one.
fn event_id(id: &str) -> Result<&str> {
    if id.len() > 128 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::field(
            "event_id",
            "Enter up to 128 characters without spaces.",
        ));
    }
    Ok(id)
}

/// The event's name, `treatment` when none is given.
fn event_name(event: Option<&str>) -> Result<String> {
    let event = event.map(str::trim).unwrap_or("treatment").to_owned();
    if event.is_empty()
        || event.len() > 32
        || !event
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::field(
            "event",
            "Enter up to 32 lower-case letters, digits or '_'.",
        ));
    }
    Ok(event)
}

/// The treatment named, which a `treatment` event must name.
fn treatment(treatment: Option<&str>, event: &str) -> Result<Option<Treatment>> {
    match treatment.map(str::trim) {
        None | Some("") if event == "treatment" => {
            Err(Error::field("treatment", "This field is required."))
        }
        None | Some("") => Ok(None),
        Some(t) => Treatment::parse(t).map(Some).ok_or_else(|| {
            Error::field(
                "treatment",
                format!("\"{t}\" is not a valid choice (BASIC, STANDARD, PREMIUM)."),
            )
        }),
    }
}

/// When the event happened: its `ts`, or when it was received.
fn occurred_at(ts: Option<&str>, received: DateTime<Utc>) -> Result<DateTime<Utc>> {
    match ts.map(str::trim).filter(|t| !t.is_empty()) {
        Some(ts) => Ok(DateTime::parse_from_rfc3339(ts)
            .map_err(|_| {
                Error::field(
                    "ts",
                    "Enter an ISO 8601 date-time such as 2025-09-16T12:34:56Z.",
                )
            })?
            .to_utc()),
        None => Ok(received),
    }
}

/// The device a bearer token speaks for, which must be `device_id`.
async fn authenticate(s: &State, headers: &HeaderMap, device_id: &str) -> Result<DeviceRecord> {
    let token = bearer_token(headers).ok_or_else(|| {
        Error::Unauthorized("A device token is required (Authorization: Bearer <token>)".into())
    })?;
    let record = DeviceRecord::load(s.table.as_ref(), device_id).await?;
    match record {
        Some(r)
            if r.token_digest
                .as_deref()
                .is_some_and(|d| s.tokens.matches(token, d)) =>
        {
            Ok(r)
        }
        _ => Err(Error::Unauthorized("Invalid token for this device".into())),
    }
}
