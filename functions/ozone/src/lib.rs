//! Ozone: machine telemetry. Devices hand-shake by MAC to claim a token and post treatment events
//! that bill customers; staff manage outlets, machines and devices; usage statistics come from
//! rollups kept at ingest time (a device's own) and by the [`aggregate`] (shared ones). Contract: `shared/seeds/ozone-telemetry-api.md`.
//!
//! Table layout (`civic-ozone`; every key is built in [`keys`], rollups' in [`rollup`]):
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | user | `USER#{username, lower case}` | `USER` | `USERS` / `{id:010}` |
//! | session | `SESSION#{digest}` | `SESSION` (TTL) | |
//! | handshake (by MAC) | `MAC#{mac}` | `MAC` | `MACS` / `{mac}` |
//! | device (status, token digest, binding) | `DEVICE#{device_id}` | `DEVICE` | `DEVICES[#nn]` / `{last_seen}#{device_id}` |
//! | event id (idempotency) | `EVENTID#{device_id}#{event_id}` | `EVENTID` (TTL) | |
//! | event | `EVENTS#{device_id}` | `{occurred_at}#{receipt:016}#{event_id}` (TTL) | `EVENTS[#nn]` / `{occurred_at}#{receipt:016}#{device_id}#{event_id}` |
//! | rollup (an hour with its minutes, a month with its days) | `ROLLUP#{scope}#hour`, `…#month` | bucket key | |
//! | outlet | `OUTLET#{id:010}` | `OUTLET` | `OUTLETS` / `{id:010}` |
//! | machine | `MACHINE#{id:010}` | `MACHINE` | `MACHINES` / `{outlet:010}#{id:010}` |
//! | machine–device binding | `MACHINE#{id:010}` | `BIND#{device_id}` | |
//! | device count | `COUNT` | `DEVICES` | |
//! | aggregator checkpoint | `AGG#{feed shard}` | `CHECKPOINT` | |
//!
//! `#nn` is the device's index shard ([`civic_store::Shards`]; none for shard 0). Devices sort by last
//! contact in GSI1, so "online" is one range query per shard. Events sort by the
//! second they occurred, then by `receipt` (`gateway::receipt_stamp`: µs at receipt, strictly
//! increasing per process and per device), so the latest is the one received last.

pub mod aggregate;
pub mod analytics;
pub mod auth;
pub mod catalog;
pub mod data;
pub mod devices;
pub mod gateway;
pub mod keys;
pub mod live;
pub mod mqtt;
pub mod rollup;

use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use civic_auth::{DeviceTokens, Sessions};
use civic_core::config::{self, ConfigError, Env, FromEnv};
use civic_core::fields::Body;
use civic_core::{App, Error, Function, IotFunction, Platform, Problem, Result, StreamFunction};
use civic_store::Table;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::UserRecord;

pub const APP: App = App {
    name: "ozone",
    format: error_body,
    functions: None,
    config: || civic_auth::Config::get().and(Config::get()).map(drop),
};

/// `{"success": false, "error": msg}` plus DRF's keys: `detail` for a general error, or one
/// list of messages per field (`{"name": ["This field is required."]}`).
fn error_body(p: &Problem) -> Value {
    let mut body = Map::new();
    body.insert("success".into(), false.into());
    body.insert("error".into(), p.message.clone().into());
    if p.fields.is_empty() {
        body.insert("detail".into(), p.message.clone().into());
    }
    for (field, msg) in &p.fields {
        let list = body.entry(field.clone()).or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(msg.clone().into());
        }
    }
    Value::Object(body)
}

pub const AUTH: Function = Function {
    name: "ozone-auth",
    // The first function serves the app's document, so it alone names every function.
    app: App {
        functions: Some(|| FUNCTIONS),
        ..APP
    },
    routes: |p| router(p, auth::routes()),
};
pub const GATEWAY: Function = Function {
    name: "ozone-gateway",
    app: APP,
    routes: |p| router(p, gateway::routes()),
};
pub const DATA: Function = Function {
    name: "ozone-data",
    app: APP,
    routes: |p| router(p, data::routes()),
};
pub const CATALOG: Function = Function {
    name: "ozone-catalog",
    app: APP,
    routes: |p| router(p, catalog::routes()),
};
pub const ANALYTICS: Function = Function {
    name: "ozone-analytics",
    app: APP,
    routes: |p| router(p, analytics::routes()),
};
/// Every Lambda function of this app.
pub const FUNCTIONS: &[Function] = &[AUTH, GATEWAY, DATA, CATALOG, ANALYTICS];
/// The topic rule `ozone/devices/+/events`: the same idempotent ingest as the HTTP path.
pub const EVENTS_IN: IotFunction = IotFunction {
    name: "ozone-iot",
    app: APP,
    handler: |p| civic_core::iot::consumer(State::new(p), gateway::device_message),
};
/// Every topic-rule consumer of this app.
pub const IOT: &[IotFunction] = &[EVENTS_IN];
/// The table's stream: usage shared by many devices, counted off the request path.
pub const AGGREGATOR: StreamFunction = StreamFunction {
    name: "ozone-aggregator",
    app: APP,
    run: |p, changes| {
        let state = State::new(p);
        Box::pin(async move {
            let records = changes.len();
            aggregate::apply(&state, changes).await?;
            Ok(serde_json::json!({ "records": records }))
        })
    },
};
/// Every change-feed consumer of this app.
pub const STREAMS: &[StreamFunction] = &[AGGREGATOR];
/// Every scheduled function of this app.
pub const JOBS: &[civic_core::Scheduled] = &[live::SWEEP];

fn router(p: &Platform, routes: OpenApiRouter<State>) -> OpenApiRouter {
    let state = State::new(p);
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes);
    match civic_core::layers::cors(&state.sessions.trusted_origins, true) {
        Some(cors) => router.layer(cors).with_state(state),
        None => router.with_state(state),
    }
}

/// The seed's frontends call with `credentials: include` from their own origin: the trusted
/// origins (`CSRF_TRUSTED_ORIGINS`) may, with cookies. None configured: no CORS at all.
#[derive(OpenApi)]
#[openapi(
    info(title = "Civic Ozone Telemetry API", version = "1.0.0", description = "Live updates: MQTT over WebSocket (civic-local: `/mqtt`; AWS: IoT Core WSS with the app's live authorizer), user name `ozone`, password a live ticket from `POST /api/auth/live/`. Topics: `ozone/live/devices/{deviceId}/events` (kind `event`, data: the stored event, seq: its receipt stamp) and `ozone/live/devices/{deviceId}/status` (kind `status`, data: `{device_id, online, last_seen}`: online on each contact, offline within a minute of the device leaving the online window, with seq one above its last event's). Envelope: `{v, app, kind, seq, at, data}`. After reconnecting, re-read here and drop messages whose seq is not newer."),
    modifiers(&SecuritySchemes),
    tags((name = "auth", description = "Cookie sessions"), (name = "devices", description = "Device gateway: handshake, ingest, device admin"),
        (name = "data"), (name = "outlets"), (name = "machines"), (name = "analytics"))
)]
struct ApiDoc;

/// `session` (the `ozone_sessionid` cookie) and `device` (a handshake token as a bearer).
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, spec: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = spec.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("ozone_sessionid"))),
        );
        c.add_security_scheme(
            "device",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Deployment settings, from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Calendar of days and months in stats (`OZONE_TIME_ZONE`, IANA name, default `UTC`).
    /// Rollups are bucketed at ingest in this zone, so changing it later splits history.
    pub tz: Tz,
    /// How long raw events are kept (`OZONE_EVENT_RETENTION_DAYS`, default 90); rollups stay.
    pub retention_secs: i64,
    /// A device is online when heard from within this window (`OZONE_ONLINE_WINDOW_SECS`, 300).
    pub online_secs: i64,
    /// `OZONE_HANDSHAKE_REISSUE` (default `false`): only a device without a token (new, or
    /// revoked by staff) or presenting its current one gets one, so knowing a MAC is not
    /// enough. `true` is the seed's behaviour: every handshake of an assigned MAC gets a fresh
    /// token (still never a certificate: that is the first claim's or staff's).
    pub handshake_reissue: bool,
    /// Where usage shared by many devices (every device's, an outlet's) is counted
    /// (`OZONE_FLEET_ROLLUPS`, default `stream`); see [`aggregate`].
    pub fleet_rollups: aggregate::Mode,
    /// Partitions of the `EVENTS` and `DEVICES` listings (`OZONE_INDEX_SHARDS`, default 16).
    pub index_shards: civic_store::Shards,
}

impl FromEnv for Config {
    fn from_env(env: &mut Env) -> Self {
        Self {
            tz: env.get("OZONE_TIME_ZONE", Tz::UTC),
            retention_secs: env.get("OZONE_EVENT_RETENTION_DAYS", 90i64) * 86400,
            online_secs: env.get("OZONE_ONLINE_WINDOW_SECS", 300),
            handshake_reissue: env.get("OZONE_HANDSHAKE_REISSUE", false),
            fleet_rollups: env.get("OZONE_FLEET_ROLLUPS", aggregate::Mode::Stream),
            index_shards: env.get("OZONE_INDEX_SHARDS", civic_store::Shards::new(16).unwrap()),
        }
    }
}

impl Config {
    /// Read once per process; the start-up check ([`APP`]'s `config`) is the first reader, so
    /// a bad value stops the start naming its variable.
    pub fn get() -> Result<&'static Self, ConfigError> {
        static CONFIG: OnceLock<Result<Config, ConfigError>> = OnceLock::new();
        config::once(&CONFIG)
    }
}

#[derive(Clone)]
pub struct State {
    pub table: Arc<dyn Table>,
    pub sessions: Arc<Sessions>,
    pub tokens: DeviceTokens,
    pub config: Arc<Config>,
    /// Where live updates go ([`live`]).
    pub platform: Platform,
}

impl State {
    pub fn new(p: &Platform) -> Self {
        Self {
            table: p.table(APP.name),
            sessions: Arc::new(Sessions::new(APP.name)),
            tokens: DeviceTokens::new(APP.name),
            config: Arc::new(Config::get().cloned().unwrap_or_else(|e| panic!("{e}"))),
            platform: p.clone(),
        }
    }

    // Made from the platform when called: only the functions whose handlers call it link
    // the S3 or IoT SDK behind it (issue 20), so the state holds the platform instead.
    /// On AWS with a device policy: a handshake also hands out the device's certificate.
    pub fn provisioner(&self) -> Option<Arc<dyn civic_iot::Provision>> {
        self.platform.provisioner()
    }
}

/// The signed-in user: a live session cookie of this app.
pub struct User(pub UserRecord);

impl FromRequestParts<State> for User {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &State) -> Result<Self> {
        let user = auth::session_user(s, &parts.headers)
            .await?
            .ok_or_else(|| {
                Error::Unauthorized("Authentication credentials were not provided.".into())
            })?;
        s.sessions.check_origin(&parts.method, &parts.headers)?;
        Ok(User(user))
    }
}

/// A signed-in staff member (the first user, or one a superuser made staff).
pub struct Staff(pub UserRecord);

impl FromRequestParts<State> for Staff {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &State) -> Result<Self> {
        let User(user) = User::from_request_parts(parts, s).await?;
        if !user.is_staff {
            return Err(Error::Forbidden(
                "You do not have permission to perform this action.".into(),
            ));
        }
        Ok(Staff(user))
    }
}

/// What a treatment event bills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Treatment {
    Basic,
    Standard,
    Premium,
}

impl Treatment {
    pub const ALL: [Treatment; 3] = [Self::Basic, Self::Standard, Self::Premium];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "BASIC",
            Self::Standard => "STANDARD",
            Self::Premium => "PREMIUM",
        }
    }
    /// Position in [`Treatment::ALL`] (and in the legacy form's `count1..3`).
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
    /// The device status field holding this treatment's latest counter.
    pub fn count_field(self) -> &'static str {
        match self {
            Self::Basic => "current_count_basic",
            Self::Standard => "current_count_standard",
            Self::Premium => "current_count_premium",
        }
    }
}

/// Device ids: 1–64 letters, digits, `-`, `_` or `.` (they are part of keys).
pub fn valid_device_id(field: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            field,
            "Enter 1-64 letters, digits, '-', '_' or '.'.",
        ))
    }
}

/// A present, non-blank query or form value, trimmed (a JSON body's is
/// [`Body::required_text`](civic_core::fields::Body::required_text)).
pub fn required_param<'a>(field: &str, v: &'a Option<String>) -> Result<&'a str> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::field(field, civic_core::fields::REQUIRED))
}

/// An optional count in a body (a counter, an owner-maintained number): a whole number,
/// not negative.
pub fn count(b: &mut Body, field: &str) -> Option<i64> {
    let n = b.typed::<i64>(field, false)?;
    if n < 0 {
        b.error(field, "Ensure this value is greater than or equal to 0.");
        return None;
    }
    Some(n)
}

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// RFC 3339 in UTC with a `Z`, to the second: sortable as text, as the seed prints times.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// [`iso`] to the millisecond, for last contact: devices sort by it.
pub fn iso_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An ISO date (`2025-09-16`, local midnight in the configured zone) or date-time
/// (`2025-09-16T12:34:56Z`; without an offset, local time).
pub fn parse_time(field: &str, s: &str, tz: Tz) -> Result<DateTime<Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(rollup::start_of_day(tz, d).to_utc());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        let local = NaiveDateTime::parse_from_str(s, fmt).ok();
        if let Some(t) = local.and_then(|t| tz.from_local_datetime(&t).earliest()) {
            return Ok(t.to_utc());
        }
    }
    Err(Error::field(
        field,
        "Enter a valid ISO 8601 date or date-time.",
    ))
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`) as query and form values.
pub fn parse_bool(field: &str, v: Option<&str>) -> Result<Option<bool>> {
    match v.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(None),
        Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
        Some("false" | "0" | "no" | "off") => Ok(Some(false)),
        Some(_) => Err(Error::field(field, "Must be a valid boolean.")),
    }
}

/// A positive whole number of days, at most ten years.
pub fn parse_days(v: Option<&str>, default: i64) -> Result<i64> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=3660).contains(d))
            .ok_or_else(|| Error::field("days", "Must be a whole number from 1 to 3660.")),
    }
}

/// An integer id in a query string, e.g. `outlet_id`.
pub fn parse_id(field: &str, v: Option<&str>) -> Result<Option<i64>> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| Error::field(field, "A valid integer is required.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_success_false_and_drf_keys() {
        let general = Problem {
            status: axum::http::StatusCode::NOT_FOUND,
            message: "Not found.".into(),
            fields: vec![],
        };
        assert_eq!(
            error_body(&general),
            json!({"success": false, "error": "Not found.", "detail": "Not found."})
        );
        let fields = Problem {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: "name: required".into(),
            fields: vec![
                ("name".into(), "required".into()),
                ("name".into(), "short".into()),
            ],
        };
        assert_eq!(
            error_body(&fields),
            json!({"success": false, "error": "name: required", "name": ["required", "short"]})
        );
    }

    #[test]
    fn times_parse_as_dates_or_date_times() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(
            iso(parse_time("start", "2025-09-16", tz).unwrap()),
            "2025-09-15T18:30:00Z"
        );
        assert_eq!(
            iso(parse_time("start", "2025-09-16T12:00:00Z", tz).unwrap()),
            "2025-09-16T12:00:00Z"
        );
        assert_eq!(
            iso(parse_time("start", "2025-09-16 12:00:00", tz).unwrap()),
            "2025-09-16T06:30:00Z"
        );
        assert!(parse_time("start", "yesterday", tz).is_err());
        assert!(parse_bool("x", Some("maybe")).is_err());
        assert!(parse_days(Some("0"), 7).is_err());
        assert!(parse_id("outlet_id", Some("abc")).is_err());
    }
}
