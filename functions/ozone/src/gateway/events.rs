//! `POST /api/device/events` and the MQTT topic rule: one idempotent device event each.

use axum::extract::State as S;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use civic_auth::secret::bearer_token;
use civic_core::fields::{Body, FromBody, REQUIRED, Valid};
use civic_core::{Error, Json, Result};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{DeviceRecord, Event, firmware, ingest, status_update};
use crate::{State, Treatment, count, iso, iso_ms, now, valid_device_id};

#[derive(ToSchema)]
pub struct DeviceEvent {
    device_id: String,
    firmware: Option<String>,
    /// Unique per device; a repeat is acknowledged without storing anything.
    event_id: String,
    /// Default `treatment`; `status`/`heartbeat` are status reports.
    #[schema(value_type = Option<String>)]
    event: String,
    /// BASIC, STANDARD or PREMIUM; required for treatments.
    #[schema(value_type = Option<String>)]
    treatment: Option<Treatment>,
    /// Billing counter at press time.
    counter: Option<i64>,
    /// When it happened (RFC 3339); default: when received.
    ts: Option<String>,
    /// `ts` as a time; `None`: when received.
    #[schema(ignore)]
    occurred: Option<DateTime<Utc>>,
    wifi_status: Option<Value>,
    payload: Option<Value>,
}

/// Every field checked before anything is read, so a bad request is a 400 whoever sends it.
impl FromBody for DeviceEvent {
    fn from_body(b: &mut Body) -> Self {
        let device_id = b.required_text("device_id");
        if let Some(id) = &device_id {
            b.check(valid_device_id("device_id", id));
        }
        let event_id = b.required_text("event_id").filter(|id| event_id(b, id));
        let event = event_name(b);
        let treatment = treatment(b, event.as_deref());
        let counter = count(b, "counter");
        let ts = b.typed::<String>("ts", false);
        Self {
            device_id: device_id.unwrap_or_default(),
            event_id: event_id.unwrap_or_default(),
            event: event.unwrap_or_default(),
            treatment,
            counter,
            occurred: ts.as_deref().and_then(|ts| occurred_at(b, ts)),
            ts,
            firmware: firmware(b),
            wifi_status: b.typed("wifi_status", false),
            payload: b.typed("payload", false),
        }
    }
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
    Valid(req): Valid<DeviceEvent>,
) -> Result<Json<Ack>> {
    Ok(Json(accept_event(&s, req, Sender::Token(&headers)).await?))
}

/// The topic rule's message: the seed's event body with `device_id` from the topic
/// (`ozone/devices/{device_id}/events`), which overrides any `device_id` in the payload.
pub async fn device_message(s: State, msg: Value) -> Result<Value> {
    if !msg.is_object() {
        return Err(Error::bad_request(
            "Invalid message: expected a JSON object",
        ));
    }
    let req = Body::of(msg).read()?;
    let ack = accept_event(&s, req, Sender::Topic).await?;
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

/// Stores one checked device event, once per `event_id`: the logic behind
/// `/api/device/events/` and the MQTT rule.
pub async fn accept_event(s: &State, req: DeviceEvent, sender: Sender<'_>) -> Result<Ack> {
    let received = now();
    let e = req.event(received);
    let device_id = e.device_id.as_str();
    let record = match sender {
        Sender::Token(headers) => authenticate(s, headers, device_id).await?,
        Sender::Topic => DeviceRecord::load(s.table.as_ref(), device_id)
            .await?
            .ok_or_else(|| Error::Unauthorized(format!("Unknown device {device_id}")))?,
    };
    let status = status_update(s, device_id, &e, &iso_ms(received));
    ingest(s, &record, &e, status).await?;
    Ok(Ack {
        ack: true,
        event_id: e.event_id,
    })
}

impl DeviceEvent {
    /// The event this request describes, `received` at that time.
    fn event(self, received: DateTime<Utc>) -> Event {
        let event_type = match (self.treatment, self.event.as_str()) {
            (Some(t), "treatment") => t.as_str().to_owned(),
            (_, "status" | "heartbeat") => "status".to_owned(),
            (_, other) => other.to_owned(),
        };
        Event {
            device_id: self.device_id,
            event_type,
            event_id: self.event_id,
            // Only treatments bill; another event names no treatment in the rollups.
            treatment: self.treatment.filter(|_| self.event == "treatment"),
            event: self.event,
            counter: self.counter,
            occurred_at: iso(self.occurred.unwrap_or(received)),
            device_timestamp: self.ts,
            wifi_status: self.wifi_status,
            payload: self.payload,
            count_basic: None,
            count_standard: None,
            count_premium: None,
            firmware: self.firmware,
            received_at: iso(received),
        }
    }
}

/// Event ids are part of keys: no spaces, and short enough for one.
fn event_id(b: &mut Body, id: &str) -> bool {
    let ok = id.len() <= 128 && !id.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        b.error("event_id", "Enter up to 128 characters without spaces.");
    }
    ok
}

/// The event's name, `treatment` when none is given.
fn event_name(b: &mut Body) -> Option<String> {
    let event = b.typed::<String>("event", false);
    let event = event.as_deref().map_or("treatment", str::trim).to_owned();
    if event.is_empty()
        || event.len() > 32
        || !event
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        b.error("event", "Enter up to 32 lower-case letters, digits or '_'.");
        return None;
    }
    Some(event)
}

/// The treatment named, which a `treatment` event must name.
fn treatment(b: &mut Body, event: Option<&str>) -> Option<Treatment> {
    let treatment = b.typed::<String>("treatment", false);
    match treatment.as_deref().map(str::trim) {
        None | Some("") if event == Some("treatment") => {
            b.error("treatment", REQUIRED);
            None
        }
        None | Some("") => None,
        Some(t) => Treatment::parse(t).or_else(|| {
            b.error(
                "treatment",
                format!("\"{t}\" is not a valid choice (BASIC, STANDARD, PREMIUM)."),
            );
            None
        }),
    }
}

/// When the event happened, from a non-blank `ts`.
fn occurred_at(b: &mut Body, ts: &str) -> Option<DateTime<Utc>> {
    let ts = Some(ts.trim()).filter(|t| !t.is_empty())?;
    match DateTime::parse_from_rfc3339(ts) {
        Ok(t) => Some(t.to_utc()),
        Err(_) => {
            b.error(
                "ts",
                "Enter an ISO 8601 date-time such as 2025-09-16T12:34:56Z.",
            );
            None
        }
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
