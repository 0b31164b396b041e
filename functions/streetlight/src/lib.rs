//! Streetlight: street lights per city, map and summary, manual control by role, status updates
//! from devices, control logs. Contract: `shared/seeds/streetlight-api.md`.
//!
//! Table layout (`civic-streetlight`):
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | user | `USER#{email}` | `USER` | `USERS` / `{id:010}` |
//! | light | `LIGHT#{light_id}` | `META` | `CITY#{city}[#nn]` / `{light_id}` |
//! | control log | `LIGHT#{light_id}` | `LOG#{id:012}` | |
//! | city summary | `CITY#{city}` | `SUMMARY` | |
//! | aggregator checkpoint | `AGG#{feed shard}` | `CHECKPOINT` | |
//!
//! `#nn` is the light's shard of its city's listing ([`civic_store::Shards`], by light id; none
//! for shard 0, so lights written before sharding stay listed); readers merge the shards.
//! A light's `META` sorts after its `LOG#` items, so one reverse query returns the light and
//! its newest logs (the detail endpoint). Log ids are time stamps, not a shared counter
//! ([`lights::log_id`]). A status change's counts in the city summary follow from the
//! table's change feed ([`aggregate`]), or, with `STREETLIGHT_CITY_SUMMARY=inline`, are
//! written in the same transaction as the light's status.

pub mod aggregate;
pub mod auth;
pub mod keys;
pub mod lights;
pub mod live;
pub mod users;

use std::sync::{Arc, OnceLock};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use civic_auth::Auth;
use civic_core::config::{self, ConfigError, Env, FromEnv};
use civic_core::fields::{BLANK, Body, FromBody, REQUIRED};
use civic_core::openapi::BearerAuth;
use civic_core::{
    App, Error, Function, IotFunction, Json, Platform, Problem, Result, StreamFunction,
};
use civic_iot::Publisher;
use civic_store::Table;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

pub const APP: App = App {
    name: "streetlight",
    format: error_body,
    functions: None,
    config: || civic_auth::Config::get().and(Config::get()).map(drop),
};

/// Errors use the same envelope as successes, with `data: null`.
fn error_body(p: &Problem) -> Value {
    let message = match p.fields.is_empty() {
        true => p.message.clone(),
        false => fields_message(&p.fields),
    };
    json!({"status": p.status.as_u16(), "message": message, "data": null})
}

pub const AUTH: Function = Function {
    name: "streetlight-auth",
    // The first function serves the app's document, so it alone names every function.
    app: App {
        functions: Some(|| FUNCTIONS),
        ..APP
    },
    routes: auth_routes,
};
pub const LIGHTS: Function = Function {
    name: "streetlight-lights",
    app: APP,
    routes: lights_routes,
};
/// Every Lambda function of this app.
pub const FUNCTIONS: &[Function] = &[AUTH, LIGHTS];
/// The topic rule `streetlight/lights/+/status`: devices' status reports.
pub const STATUS_IN: IotFunction = IotFunction {
    name: "streetlight-iot",
    app: APP,
    handler: |p| civic_core::iot::consumer(State::new(p), lights::device_status),
};
/// Every topic-rule consumer of this app.
pub const IOT: &[IotFunction] = &[STATUS_IN];
/// The table's stream: the cities' summary counters, counted off the request path.
pub const AGGREGATOR: StreamFunction = StreamFunction {
    name: "streetlight-aggregator",
    app: APP,
    run: |p, changes| {
        let (p, table) = (p.clone(), p.table(APP.name));
        Box::pin(async move {
            let records = changes.len();
            for (city, summary) in aggregate::apply(table.as_ref(), changes).await? {
                live::summary(&p, &city, summary).await;
            }
            Ok(serde_json::json!({ "records": records }))
        })
    },
};
/// Every change-feed consumer of this app.
pub const STREAMS: &[StreamFunction] = &[AGGREGATOR];

fn auth_routes(p: &Platform) -> OpenApiRouter {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::routes())
        .merge(users::routes())
        .with_state(State::new(p))
}

fn lights_routes(p: &Platform) -> OpenApiRouter {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(lights::routes())
        .with_state(State::new(p))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Civic Streetlight API", version = "1.0.0", description = "Live updates: MQTT over WebSocket (civic-local: `/mqtt`; AWS: IoT Core WSS with the `streetlight-live-auth` authorizer), user name `streetlight`, password an access token. Topics: `streetlight/live/cities/{city}/lights/{lightId}` (kind `light`, data: a light as returned here, seq: its version) and `streetlight/live/cities/{city}/summary` (kind `summary`, data: the summary, seq: its change count). Envelope: `{v, app, kind, seq, at, data}`. After reconnecting, re-read here and drop messages whose seq is not newer."),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "users", description = "Admin: user management"), (name = "lights"))
)]
struct ApiDoc;

/// Deployment settings, from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the cities' summary counters are counted (`STREETLIGHT_CITY_SUMMARY`, default
    /// `stream`); see [`aggregate`].
    pub city_summary: aggregate::Mode,
    /// Partitions of each city's light listing (`STREETLIGHT_INDEX_SHARDS`, 1 to 64, default
    /// 16). Why: every status report rewrites its light, and so its entry in the city's
    /// listing; one partition per city would take the whole city's report rate.
    pub index_shards: civic_store::Shards,
}

impl FromEnv for Config {
    fn from_env(env: &mut Env) -> Self {
        Self {
            city_summary: env.get("STREETLIGHT_CITY_SUMMARY", aggregate::Mode::Stream),
            index_shards: env.get(
                "STREETLIGHT_INDEX_SHARDS",
                civic_store::Shards::new(16).unwrap(),
            ),
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

#[derive(Clone, FromRef)]
pub struct State {
    pub table: Arc<dyn Table>,
    pub auth: Auth,
    /// Where live updates go ([`live`]).
    pub platform: Platform,
    pub config: Arc<Config>,
}

impl State {
    pub fn new(p: &Platform) -> Self {
        Self {
            table: p.table(APP.name),
            auth: Auth::for_app(p, APP.name),
            platform: p.clone(),
            config: Arc::new(Config::get().cloned().unwrap_or_else(|e| panic!("{e}"))),
        }
    }

    // Made from the platform when called: only the functions whose handlers call it link
    // the IoT SDK behind it (issue 20), so the state holds the platform instead.
    /// Commands to lights (`streetlight/lights/{lightId}/command`).
    pub fn devices(&self) -> Arc<dyn Publisher> {
        self.platform.publisher()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The authenticated caller: a valid access token of this app whose account still exists at
/// the token's version. Role and city come from the account's record, read on every request
/// (one `GetItem`), so a role change or a deleted account applies to the next request and a
/// password change ends every older token.
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub city: String,
    /// The app's first user: only they may change another admin's account.
    pub first_admin: bool,
}

impl User {
    /// The caller named by `headers`' bearer token.
    pub async fn from_headers(s: &State, headers: &axum::http::HeaderMap) -> Result<Self> {
        Self::from_claims(s, s.auth.bearer_headers(headers)?).await
    }

    /// The caller a verified token names, if their account still exists at its version.
    pub async fn from_claims(s: &State, claims: civic_auth::Claims) -> Result<Self> {
        let email = claims.extra_str("email").unwrap_or_default();
        let user = users::UserRecord::load(s.table.as_ref(), email)
            .await?
            .filter(|u| u.id == claims.sub)
            .ok_or_else(|| Error::Unauthorized("User no longer exists".into()))?;
        claims.check_version(user.token_version)?;
        Ok(Self {
            id: user.id,
            email: user.email,
            role: user.role,
            city: user.city,
            first_admin: user.first_admin,
        })
    }
}

impl<S> FromRequestParts<S> for User
where
    S: Send + Sync,
    State: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self> {
        User::from_headers(&State::from_ref(state), &parts.headers).await
    }
}

/// Role guards: `AtLeast<RANK>` extracts the caller only when their role ranks at least
/// `RANK` (viewer 0 < operator 1 < admin 2). It runs before the body is read, so a caller
/// without the role gets 403 whatever they sent.
pub struct AtLeast<const RANK: u8>(pub User);
pub type Operator = AtLeast<1>;
pub type Admin = AtLeast<2>;

impl<const RANK: u8, S> FromRequestParts<S> for AtLeast<RANK>
where
    S: Send + Sync,
    State: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self> {
        let user = User::from_request_parts(parts, state).await?;
        let min = [Role::Viewer, Role::Operator, Role::Admin][usize::from(RANK).min(2)];
        if user.role < min {
            let msg = format!(
                "Insufficient permissions: this action requires the {} role",
                min.as_str()
            );
            return Err(Error::Forbidden(msg));
        }
        Ok(Self(user))
    }
}

/// The seed's success envelope: `{status, message, data}`.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    pub status: u16,
    pub message: String,
    pub data: T,
}

pub type Reply<T> = (StatusCode, Json<Envelope<T>>);

pub fn reply<T>(status: StatusCode, message: impl Into<String>, data: T) -> Reply<T> {
    (
        status,
        Json(Envelope {
            status: status.as_u16(),
            message: message.into(),
            data,
        }),
    )
}

/// A required string field, trimmed; blank counts as missing.
fn required_string(b: &mut Body, field: &str) -> String {
    b.strict_string(field, true, false, usize::MAX)
        .unwrap_or_default()
}

/// A password, as sent (not trimmed); blank counts as missing.
fn secret(b: &mut Body, field: &str) -> String {
    match b.typed::<String>(field, true) {
        Some(s) if s.trim().is_empty() => {
            b.error(field, BLANK);
            s
        }
        s => s.unwrap_or_default(),
    }
}

/// Field errors in the seed's words: `Missing required fields: a, b` (in request order) when
/// every one is a missing or blank field, else the first other one.
pub(crate) fn fields_message(fields: &[(String, String)]) -> String {
    let missing = |msg: &str| msg == REQUIRED || msg == BLANK;
    match fields.iter().find(|(_, msg)| !missing(msg)) {
        Some((field, msg)) => format!("Invalid request body: {field}: {msg}"),
        None => {
            let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
            format!("Missing required fields: {}", names.join(", "))
        }
    }
}

/// `T` from a message that did not come over HTTP (an MQTT report, an imported row), its
/// field errors worded as the envelope words them.
pub(crate) fn read_message<T: FromBody>(msg: Value) -> Result<T> {
    Body::of(msg).read().map_err(|e| match e {
        Error::Fields(fields) => Error::bad_request(fields_message(&fields)),
        other => other,
    })
}
