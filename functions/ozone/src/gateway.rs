//! The device gateway: handshake by MAC, idempotent device events and the legacy form ingest
//! (device admin is in `devices`).
//!
//! A device claims its token with a handshake once staff have assigned its MAC a device id: a
//! fresh random token whose digest is stored on the device (one live token per device). After
//! that, knowing the MAC is not enough: only the device's current token renews it, and staff
//! rotate or revoke it (`OZONE_HANDSHAKE_REISSUE=true` restores the seed's reissue to anyone).
//! A token speaks only for the device whose record holds its digest. The legacy form names a
//! device by MAC, so it needs that device's token too, unless staff allowed the device's
//! token-less reports (recorded on the device, with who and when).

use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::State as S;
use axum::http::HeaderMap;
use chrono::DateTime;
use civic_auth::secret::bearer_token;
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Form, Json, Result, retry};
use civic_store::{Cond, Item, Key, StoreError, Table, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::rollup::{self, Scope};
use crate::{
    State, Treatment, iso, iso_ms, now, parse_bool, parse_time, required, valid_device_id,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(handshake))
        .routes(routes!(device_events))
        .routes(routes!(legacy_ingest))
        .merge(crate::devices::routes())
}

/// A device's status, binding and counters, as stored and shown. Its token digest is stored
/// beside these fields and never shown.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Device {
    pub device_id: String,
    /// Staff only (a MAC is what a handshake presents): absent for other users.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    pub firmware: Option<String>,
    #[serde(default)]
    pub notes: String,
    pub assigned_at: String,
    pub last_seen: Option<String>,
    pub wifi_connected: Option<bool>,
    pub rtc_available: Option<bool>,
    pub sd_card_available: Option<bool>,
    pub current_count_basic: Option<i64>,
    pub current_count_standard: Option<i64>,
    pub current_count_premium: Option<i64>,
    pub uptime_seconds: Option<i64>,
    pub device_timestamp: Option<String>,
    /// The latest event's type: BASIC|STANDARD|PREMIUM|status or another event name.
    pub mode: Option<String>,
    pub machine_id: Option<i64>,
    pub outlet_id: Option<i64>,
    #[serde(default)]
    pub event_count: i64,
    pub last_event_at: Option<String>,
    /// Staff only: whether `POST /api/iot/` takes this device's reports without its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_ingest: Option<LegacyIngest>,
    /// Staff only, on AWS: the device's current IoT Core certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iot_certificate: Option<Certificate>,
}

impl Device {
    /// The device as a user who is not staff sees it: without what identifies or admits it.
    pub fn without_staff_fields(self) -> Self {
        Self {
            mac: String::new(),
            legacy_ingest: None,
            iot_certificate: None,
            ..self
        }
    }
}

/// A staff decision on the token-less legacy form ingest, recorded with who and when.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LegacyIngest {
    /// `true`: a form report naming this device's MAC is taken without a bearer token.
    pub allowed: bool,
    /// The staff member who decided.
    pub by: String,
    pub at: String,
}

/// `v` as a map attribute of a stored item.
pub(crate) fn attribute<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// The IoT Core certificate a device was issued: at its first claim, or by staff.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Certificate {
    /// `None` while it is being issued.
    pub arn: Option<String>,
    pub issued_at: String,
    /// `handshake` (the first claim) or the staff member who rotated it.
    pub issued_by: String,
}

pub fn device_key(device_id: &str) -> Key {
    Key::new(format!("DEVICE#{device_id}"), "DEVICE")
}

pub(crate) fn mac_key(mac: &str) -> Key {
    Key::new(format!("MAC#{mac}"), "MAC")
}

pub const TOKEN_DIGEST: &str = "token_digest";
/// The device item's attribute holding its [`Certificate`].
pub const CERTIFICATE: &str = "iot_certificate";
/// The device item's attribute holding its [`LegacyIngest`] decision.
pub const LEGACY_INGEST: &str = "legacy_ingest";
/// The device item's attribute holding its last event's receipt stamp.
const LAST_RECEIPT: &str = "last_receipt";

/// A stored device with what the API never shows.
pub struct DeviceRecord {
    pub device: Device,
    pub token_digest: Option<String>,
    pub version: i64,
    /// The receipt stamp of its last stored event (see [`receipt_stamp`]); 0 before any.
    pub last_receipt: i64,
}

impl DeviceRecord {
    pub fn from_item(item: Item) -> Result<Self> {
        let token_digest = item
            .get(TOKEN_DIGEST)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let version = item.get("version").and_then(Value::as_i64).unwrap_or(0);
        let last_receipt = item.get(LAST_RECEIPT).and_then(Value::as_i64).unwrap_or(0);
        Ok(Self {
            device: from_item(item)?,
            token_digest,
            version,
            last_receipt,
        })
    }

    pub async fn load(table: &dyn Table, device_id: &str) -> Result<Option<Self>> {
        table
            .get(&device_key(device_id))
            .await?
            .map(Self::from_item)
            .transpose()
    }
}

/// `SET last_seen` and the index key that sorts devices by it.
pub fn touch(u: Update, device_id: &str, at: &str) -> Update {
    u.set("last_seen", at)
        .set("GSI1SK", format!("{at}#{device_id}"))
}

/// `EC:E3:34:46:2B:C0`, `ec-e3-34-46-2b-c0` or `ece334462bc0` → `EC:E3:34:46:2B:C0`.
pub fn normalize_mac(field: &str, mac: &str) -> Result<String> {
    let hex: String = mac
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-'))
        .collect();
    let separators = mac.trim().len() - hex.len();
    if hex.len() != 12
        || !hex.chars().all(|c| c.is_ascii_hexdigit())
        || !matches!(separators, 0 | 5)
    {
        return Err(Error::field(
            field,
            "Enter a valid MAC address, e.g. EC:E3:34:46:2B:C0.",
        ));
    }
    let hex = hex.to_ascii_uppercase();
    Ok((0..6)
        .map(|i| &hex[i * 2..i * 2 + 2])
        .collect::<Vec<_>>()
        .join(":"))
}

fn firmware(v: &Option<String>) -> Result<Option<String>> {
    match v.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) if f.len() > 64 => Err(Error::field(
            "firmware",
            "Ensure this field has no more than 64 characters.",
        )),
        f => Ok(f.map(str::to_owned)),
    }
}

pub(crate) fn missing_device() -> Error {
    Error::Conflict("The device record is missing; ask an admin to re-assign it".into())
}

/// Records that `mac` made contact (created on its first) and returns its registration, which
/// names its device id once staff have assigned one. Unassigned MACs are listed as pending.
async fn contact(table: &dyn Table, mac: &str, firmware: Option<&str>, at: &str) -> Result<Item> {
    let mut seen = Update::new(mac_key(mac))
        .set("last_seen", at)
        .set_if_absent("mac", mac)
        .set_if_absent("first_seen", at)
        .set_if_absent("GSI1PK", "MACS")
        .set_if_absent("GSI1SK", mac)
        // Assignment is guarded by this version; contacts only refresh the details.
        .set_if_absent("version", 0);
    if let Some(f) = firmware {
        seen = seen.set("firmware", f);
    }
    Ok(table.update(seen).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct HandshakeRequest {
    #[schema(required, nullable = false)]
    mac: Option<String>,
    firmware: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HandshakeReply {
    device_id: Option<String>,
    /// A fresh bearer token (the previous one stops working); `null` until staff assign the
    /// MAC a device id.
    token: Option<String>,
    assigned: bool,
    /// On AWS, at the device's first claim only: the thing, certificate and private key for
    /// MQTT to IoT Core (staff rotate it with `POST /api/devices/{device_id}/certificate/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    iot: Option<civic_iot::DeviceCredentials>,
}

/// Device registration and token acquisition. Unknown MACs are recorded for an admin to assign.
/// An assigned device gets a token when it holds none (new, or revoked by staff) or presents
/// its current one as a bearer; a handshake for a device that holds a token changes nothing
/// (409, or 401 with a wrong bearer), unless `OZONE_HANDSHAKE_REISSUE=true` (the seed's
/// behaviour: every handshake of an assigned MAC gets a fresh token).
#[utoipa::path(post, path = "/api/handshake", tag = "devices", request_body = HandshakeRequest,
    responses((status = 200, body = HandshakeReply), (status = 400),
        (status = 401, description = "A bearer was sent and is not this device's token"),
        (status = 409, description = "The device already holds a token (send it as a bearer to renew it; staff can rotate or revoke it), or its record is missing"),
        (status = 429, description = "Too many refused tokens for this MAC: `Retry-After` gives the seconds to wait"),
        (status = 503, description = "On AWS: issuing the device's first certificate failed; nothing changed")))]
async fn handshake(
    S(s): S<State>,
    headers: HeaderMap,
    Json(req): Json<HandshakeRequest>,
) -> Result<Json<HandshakeReply>> {
    let mac = normalize_mac("mac", required("mac", &req.mac)?)?;
    let firmware = firmware(&req.firmware)?;
    let at = iso_ms(now());
    let record = contact(s.table.as_ref(), &mac, firmware.as_deref(), &at).await?;
    let Some(device_id) = record.get("device_id").and_then(Value::as_str) else {
        return Ok(Json(HandshakeReply {
            device_id: None,
            token: None,
            assigned: false,
            iot: None,
        }));
    };
    let bearer = bearer_token(&headers);
    // A refused device token counts per MAC, as failed logins do per account (issue 15).
    let attempt = claim(&s, device_id, bearer, firmware.as_deref(), &at);
    let scope = civic_auth::backoff::Scope::Handshake;
    let claim = civic_auth::backoff::guard(s.table.as_ref(), scope, &mac, attempt).await?;
    let iot = match (&s.provisioner, claim.certify) {
        (Some(p), true) => Some(first_certificate(&s, p.as_ref(), device_id, &claim).await?),
        _ => None,
    };
    Ok(Json(HandshakeReply {
        device_id: Some(device_id.to_owned()),
        token: Some(claim.token),
        assigned: true,
        iot,
    }))
}

/// A token a handshake won, and whether it must also issue the device's first certificate.
struct Claim {
    token: String,
    /// The device's version after the claim.
    version: i64,
    certify: bool,
}

/// Whether a handshake presenting `bearer` may replace `record`'s token.
fn may_claim(s: &State, record: &DeviceRecord, bearer: Option<&str>) -> Result<()> {
    let Some(digest) = record.token_digest.as_deref() else {
        return Ok(()); // unclaimed: new, or revoked by staff
    };
    match bearer {
        Some(t) if s.tokens.matches(t, digest) => Ok(()), // the device renews its own
        _ if s.config.handshake_reissue => Ok(()),
        Some(_) => Err(Error::Unauthorized("Invalid token for this device".into())),
        // 409, not 401/403: the request is well formed and no sign-in would change the
        // answer; the device's state (claimed) does, when staff rotate or revoke its token.
        None => Err(Error::Conflict(format!(
            "Device {} already holds a token: send it as a bearer to renew it, or ask staff to rotate or revoke it",
            record.device.device_id
        ))),
    }
}

/// Hands `device_id` a fresh token if [`may_claim`] allows, in one write guarded by the
/// device's version, so that of concurrent handshakes one wins and the others see its token.
/// On AWS a device's first claim also marks its certificate as being issued in that write:
/// only that claim issues one, never a repeat handshake (whose certificate would retire the
/// real device's).
async fn claim(
    s: &State,
    device_id: &str,
    bearer: Option<&str>,
    firmware: Option<&str>,
    at: &str,
) -> Result<Claim> {
    retry::optimistic(move || async move {
        let record = DeviceRecord::load(s.table.as_ref(), device_id)
            .await?
            .ok_or_else(missing_device)?;
        may_claim(s, &record, bearer)?;
        let certify = s.provisioner.is_some() && record.device.iot_certificate.is_none();
        let (token, digest) = s.tokens.issue();
        let mut u = touch(Update::new(device_key(device_id)), device_id, at)
            .set(TOKEN_DIGEST, digest)
            .add("version", 1)
            .cond(Cond::Version(record.version));
        if let Some(f) = firmware {
            u = u.set("firmware", f);
        }
        if certify {
            let pending = Certificate {
                arn: None,
                issued_at: at.to_owned(),
                issued_by: "handshake".into(),
            };
            let pending = attribute(&pending)?;
            u = u.set(CERTIFICATE, pending);
        }
        match s.table.update(u).await {
            Ok(_) => Ok(Some(Claim {
                token,
                version: record.version + 1,
                certify,
            })),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// Issues the certificate of a device's first claim. If that fails, the claim is undone
/// (unless the device changed since), so the device's next handshake tries again.
async fn first_certificate(
    s: &State,
    p: &dyn civic_iot::Provision,
    device_id: &str,
    claim: &Claim,
) -> Result<civic_iot::DeviceCredentials> {
    let issued = crate::devices::issue_certificate(s, p, device_id, "handshake").await;
    if issued.is_err() {
        let undo = Update::new(device_key(device_id))
            .remove(TOKEN_DIGEST)
            .remove(CERTIFICATE)
            .add("version", 1)
            .cond(Cond::Version(claim.version));
        if let Err(e) = s.table.update(undo).await {
            tracing::warn!(device_id, error = %e, "could not undo a claim whose certificate failed");
        }
    }
    issued
}

/// An event, as stored and listed.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub device_id: String,
    /// Legacy type: BASIC|STANDARD|PREMIUM|status (or the event name).
    pub event_type: String,
    pub event_id: String,
    pub event: String,
    pub treatment: Option<Treatment>,
    pub counter: Option<i64>,
    pub occurred_at: String,
    pub device_timestamp: Option<String>,
    pub wifi_status: Option<Value>,
    pub payload: Option<Value>,
    pub count_basic: Option<i64>,
    pub count_standard: Option<i64>,
    pub count_premium: Option<i64>,
    pub firmware: Option<String>,
    pub received_at: String,
}

impl Event {
    pub fn is_status(&self) -> bool {
        self.event_type == "status"
    }
}

/// The last receipt stamp this process handed out.
static LAST_STAMP: AtomicI64 = AtomicI64::new(0);

/// Receipt order, for events that occurred in the same second: the time of receipt in
/// microseconds since the epoch, made strictly greater than every stamp this process handed
/// out before and than `floor`, the device's last stored stamp (which another Lambda instance
/// may have written). Kept in the events' sort keys, so no extra write and no shared counter:
/// a device's next event sorts after its previous one whatever the clocks of the processes
/// that took them; events of different devices taken by different processes follow the clock.
pub fn receipt_stamp(floor: i64) -> i64 {
    let now = now().timestamp_micros();
    let next = |last: i64| now.max(last + 1).max(floor + 1);
    let last = LAST_STAMP
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(next(last)))
        .unwrap_or_else(|last| last);
    next(last)
}

/// Sorts by the second the event occurred, then by receipt (16 digits: µs until year 2286).
fn event_key(device_id: &str, occurred_at: &str, receipt: i64, event_id: &str) -> Key {
    Key::new(
        format!("EVENTS#{device_id}"),
        format!("{occurred_at}#{receipt:016}#{event_id}"),
    )
}

#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

/// Stores an event exactly once. One transaction writes the event-id marker (only if absent:
/// that is the idempotency), the event, the device's status and every rollup the event counts
/// in; a repeated event id fails the marker's condition and changes nothing. Raw events and
/// markers expire after the retention period; rollups stay. Events of the same second sort by
/// their [`receipt_stamp`], which the device's status keeps for the next one.
pub async fn ingest(s: &State, record: &DeviceRecord, e: &Event, status: Update) -> Result<Stored> {
    let device = &record.device;
    let receipt = receipt_stamp(record.last_receipt);
    let status = status.set(LAST_RECEIPT, receipt);
    let expires_at = now().timestamp() + s.config.retention_secs;
    let marker = Item::from_iter([
        (
            "PK".to_owned(),
            Value::from(format!("EVENTID#{}#{}", e.device_id, e.event_id)),
        ),
        ("SK".to_owned(), "EVENTID".into()),
        ("occurred_at".to_owned(), e.occurred_at.clone().into()),
        ("expires_at".to_owned(), expires_at.into()),
    ]);
    let key = event_key(&e.device_id, &e.occurred_at, receipt, &e.event_id);
    let mut event = to_item(
        e,
        &[
            ("PK", key.pk),
            ("SK", key.sk),
            ("GSI1PK", "EVENTS".into()),
            (
                "GSI1SK",
                format!(
                    "{}#{receipt:016}#{}#{}",
                    e.occurred_at, e.device_id, e.event_id
                ),
            ),
        ],
    )?;
    event.insert("expires_at".into(), expires_at.into());
    let mut writes = vec![
        Write::Put {
            item: marker,
            cond: Cond::NotExists,
        },
        Write::Put {
            item: event,
            cond: Cond::Always,
        },
        Write::Update(status.cond(Cond::Exists)),
    ];
    if let Some(t) = e.treatment {
        let at = DateTime::parse_from_rfc3339(&e.occurred_at)
            .map_err(|err| Error::Internal(err.to_string()))?
            .to_utc();
        let mut scopes = vec![Scope::All, Scope::Device(e.device_id.clone())];
        scopes.extend(device.machine_id.map(Scope::Machine));
        scopes.extend(device.outlet_id.map(Scope::Outlet));
        writes.extend(rollup::increments(s.config.tz, at, &scopes, t));
    }
    let (table, writes) = (s.table.as_ref(), &writes);
    retry::optimistic(move || async move {
        match table.transact(writes.clone()).await {
            Ok(()) => Ok(Some(Stored::New)),
            Err(StoreError::TransactionCanceled(failed)) if failed.contains(&0) => {
                Ok(Some(Stored::Duplicate))
            }
            Err(StoreError::TransactionCanceled(_)) => {
                Err(Error::Unauthorized("Unknown device".into()))
            }
            // Concurrent transactions on the same items: try again.
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// What an event changes in its device's status.
fn status_update(device_id: &str, e: &Event, received: &str) -> Update {
    let mut u = touch(Update::new(device_key(device_id)), device_id, received)
        .set("mode", e.event_type.clone())
        .set("last_event_at", e.occurred_at.clone())
        .add("event_count", 1);
    if let Some(ts) = &e.device_timestamp {
        u = u.set("device_timestamp", ts.clone());
    }
    if let Some(f) = &e.firmware {
        u = u.set("firmware", f.clone());
    }
    if let (Some(t), Some(c)) = (e.treatment, e.counter) {
        u = u.set(t.count_field(), c);
    }
    match &e.wifi_status {
        Some(Value::Bool(b)) => u.set("wifi_connected", *b),
        Some(Value::String(w)) => u.set(
            "wifi_connected",
            matches!(
                w.to_ascii_lowercase().as_str(),
                "connected" | "ok" | "on" | "true"
            ),
        ),
        _ => u,
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
async fn device_events(
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
    let device_id = required("device_id", &req.device_id)?;
    valid_device_id("device_id", device_id)?;
    let event_id = required("event_id", &req.event_id)?;
    if event_id.len() > 128
        || event_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::field(
            "event_id",
            "Enter up to 128 characters without spaces.",
        ));
    }
    let event = req
        .event
        .as_deref()
        .map(str::trim)
        .unwrap_or("treatment")
        .to_owned();
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
    let treatment = match req.treatment.as_deref().map(str::trim) {
        None | Some("") if event == "treatment" => {
            return Err(Error::field("treatment", "This field is required."));
        }
        None | Some("") => None,
        Some(t) => Some(Treatment::parse(t).ok_or_else(|| {
            Error::field(
                "treatment",
                format!("\"{t}\" is not a valid choice (BASIC, STANDARD, PREMIUM)."),
            )
        })?),
    };
    if req.counter.is_some_and(|c| c < 0) {
        return Err(Error::field(
            "counter",
            "Ensure this value is greater than or equal to 0.",
        ));
    }
    let received = now();
    let occurred = match req.ts.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(ts) => DateTime::parse_from_rfc3339(ts)
            .map_err(|_| {
                Error::field(
                    "ts",
                    "Enter an ISO 8601 date-time such as 2025-09-16T12:34:56Z.",
                )
            })?
            .to_utc(),
        None => received,
    };
    let firmware = firmware(&req.firmware)?;
    let record = match sender {
        Sender::Token(headers) => authenticate(s, headers, device_id).await?,
        Sender::Topic => DeviceRecord::load(s.table.as_ref(), device_id)
            .await?
            .ok_or_else(|| Error::Unauthorized(format!("Unknown device {device_id}")))?,
    };
    let event_type = match (treatment, event.as_str()) {
        (Some(t), "treatment") => t.as_str().to_owned(),
        (_, "status" | "heartbeat") => "status".to_owned(),
        (_, other) => other.to_owned(),
    };
    let e = Event {
        device_id: device_id.to_owned(),
        event_type,
        event_id: event_id.to_owned(),
        // Only treatments bill; another event names no treatment in the rollups.
        treatment: treatment.filter(|_| event == "treatment"),
        event,
        counter: req.counter,
        occurred_at: iso(occurred),
        device_timestamp: req.ts,
        wifi_status: req.wifi_status,
        payload: req.payload,
        count_basic: None,
        count_standard: None,
        count_premium: None,
        firmware,
        received_at: iso(received),
    };
    let status = status_update(device_id, &e, &iso_ms(received));
    ingest(s, &record, &e, status).await?;
    Ok(Ack {
        ack: true,
        event_id: e.event_id,
    })
}

/// The legacy firmware's form fields (all text, parsed here so bad values get field errors).
#[derive(Deserialize, ToSchema)]
pub struct LegacyForm {
    /// BASIC|STANDARD|PREMIUM|status
    #[schema(required, nullable = false)]
    mode: Option<String>,
    #[schema(required, nullable = false)]
    macaddr: Option<String>,
    type1: Option<String>,
    type2: Option<String>,
    type3: Option<String>,
    count1: Option<String>,
    count2: Option<String>,
    count3: Option<String>,
    /// `2024-01-15 14:30:25`, in the configured time zone.
    timestamp: Option<String>,
    rtc_available: Option<String>,
    sd_available: Option<String>,
}

fn number(field: &str, v: &Option<String>) -> Result<Option<f64>> {
    match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Some)
            .ok_or_else(|| Error::field(field, "A valid non-negative number is required.")),
    }
}

fn count(field: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| Error::field(field, "A valid non-negative integer is required.")),
    }
}

/// The device a legacy report speaks for, checked before anything is stored: its MAC must be
/// assigned (an unknown one is listed for staff, as a handshake's is, then refused with 403),
/// and the report needs the device's bearer token unless staff allowed the device's token-less
/// reports (`PUT /api/devices/{device_id}/legacy-ingest/`). A MAC alone is no credential.
async fn legacy_sender(
    s: &State,
    headers: &HeaderMap,
    mac: &str,
    at: &str,
) -> Result<DeviceRecord> {
    let table = s.table.as_ref();
    let registration = table.get(&mac_key(mac)).await?;
    let device_id = registration
        .as_ref()
        .and_then(|r| r.get("device_id"))
        .and_then(Value::as_str);
    let Some(device_id) = device_id else {
        contact(table, mac, None, at).await?;
        return Err(Error::Forbidden(format!(
            "Device {mac} is not assigned; an admin must assign a device_id first"
        )));
    };
    let record = DeviceRecord::load(table, device_id)
        .await?
        .ok_or_else(|| Error::Forbidden(format!("Device {mac} is not assigned")))?;
    let allowed = record
        .device
        .legacy_ingest
        .as_ref()
        .is_some_and(|l| l.allowed);
    match bearer_token(headers) {
        Some(t)
            if record
                .token_digest
                .as_deref()
                .is_some_and(|d| s.tokens.matches(t, d)) =>
        {
            Ok(record)
        }
        Some(_) => Err(Error::Unauthorized("Invalid token for this device".into())),
        None if allowed => Ok(record),
        None => Err(Error::Unauthorized(
            "A device token is required (Authorization: Bearer <token>)".into(),
        )),
    }
}

/// Legacy IoT ingest (`application/x-www-form-urlencoded`), by MAC, with the device's bearer
/// token (see [`legacy_sender`]). Retries of the same report are stored once: the event id is
/// derived from the report's content.
#[utoipa::path(post, path = "/api/iot", tag = "devices",
    request_body(content = LegacyForm, content_type = "application/x-www-form-urlencoded"),
    security(("device" = []), ()),
    responses((status = 200, body = Value, example = json!({"status": "ok"})), (status = 400),
        (status = 401, description = "No bearer (and staff have not allowed this device's token-less reports), or not this device's token"),
        (status = 403, description = "The MAC is not assigned")))]
async fn legacy_ingest(
    S(s): S<State>,
    headers: HeaderMap,
    Form(f): Form<LegacyForm>,
) -> Result<Json<Value>> {
    let mode = required("mode", &f.mode)?;
    let treatment = match mode {
        "status" => None,
        m => Some(Treatment::parse(m).ok_or_else(|| {
            Error::field(
                "mode",
                format!("\"{m}\" is not a valid choice (BASIC, STANDARD, PREMIUM, status)."),
            )
        })?),
    };
    let mac = normalize_mac("macaddr", required("macaddr", &f.macaddr)?)?;
    let counts = [
        count("count1", &f.count1)?,
        count("count2", &f.count2)?,
        count("count3", &f.count3)?,
    ];
    let on_times = [
        number("type1", &f.type1)?,
        number("type2", &f.type2)?,
        number("type3", &f.type3)?,
    ];
    let rtc = parse_bool("rtc_available", f.rtc_available.as_deref())?;
    let sd = parse_bool("sd_available", f.sd_available.as_deref())?;
    let received = now();
    let occurred = match f
        .timestamp
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        Some(t) => parse_time("timestamp", t, s.config.tz)?,
        None => received,
    };

    let record = legacy_sender(&s, &headers, &mac, &iso_ms(received)).await?;
    let device_id = record.device.device_id.as_str();

    // By device id, not MAC: every other field is shown to users with the event, so a digest
    // of the MAC would let anyone signed in find it by trying the few million of a vendor.
    let fingerprint = format!(
        "{device_id}|{mode}|{}|{counts:?}|{on_times:?}",
        iso(occurred)
    );
    let digest: String = Sha256::digest(fingerprint.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let e = Event {
        device_id: device_id.to_owned(),
        event_type: mode.to_owned(),
        event_id: format!("legacy-{digest}"),
        event: if treatment.is_some() {
            "treatment"
        } else {
            "status"
        }
        .into(),
        treatment,
        counter: treatment.and_then(|t| counts[t.index()]),
        occurred_at: iso(occurred),
        device_timestamp: f.timestamp.clone(),
        wifi_status: None,
        payload: Some(
            json!({"type1": on_times[0], "type2": on_times[1], "type3": on_times[2], "rtc_available": rtc, "sd_available": sd}),
        ),
        count_basic: counts[0],
        count_standard: counts[1],
        count_premium: counts[2],
        firmware: None,
        received_at: iso(received),
    };
    // The report reached us over the network, so its Wi-Fi works.
    let mut status = status_update(device_id, &e, &iso_ms(received)).set("wifi_connected", true);
    for (t, c) in Treatment::ALL.iter().zip(counts) {
        if let Some(c) = c.filter(|_| Some(*t) != e.treatment) {
            status = status.set(t.count_field(), c);
        }
    }
    if let Some(r) = rtc {
        status = status.set("rtc_available", r);
    }
    if let Some(sd) = sd {
        status = status.set("sd_card_available", sd);
    }
    ingest(&s, &record, &e, status).await?;
    Ok(Json(json!({"status": "ok"})))
}

#[cfg(test)]
mod tests {
    use super::normalize_mac;

    #[test]
    fn macs_are_normalized_and_checked() {
        for ok in [
            "EC:E3:34:46:2B:C0",
            "ec-e3-34-46-2b-c0",
            "ece334462bc0",
            " EC:E3:34:46:2b:c0 ",
        ] {
            assert_eq!(
                normalize_mac("mac", ok).unwrap(),
                "EC:E3:34:46:2B:C0",
                "{ok}"
            );
        }
        for bad in [
            "",
            "EC:E3:34:46:2B",
            "EC:E3:34:46:2B:C0:11",
            "GG:E3:34:46:2B:C0",
            "EC:E3:34:462B:C0",
            "EC::E3:34:46:2B:C0",
        ] {
            assert!(normalize_mac("mac", bad).is_err(), "{bad}");
        }
    }
}
