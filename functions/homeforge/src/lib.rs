//! HomeForge: a smart home. Users with roles and avatars, rooms, device types proposed by users
//! and reviewed by admins, devices with a merged `current_state`, and a React Flow topology.
//! Contract: `shared/seeds/homeforge-api.md`.
//!
//! Table layout (`civic-homeforge`): each entity kind is one partition sorted by id (the
//! staff's "all X" listing is one query), and GSI1 holds the second view.
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | user | `USERS` | `{id:010}` | |
//! | username uniqueness | `USERNAME#{lowercase}` | `USERNAME` | |
//! | room | `ROOMS` | `{id:010}` | `OWNER#{user}` / `ROOM#{id:010}` |
//! | device type | `TYPES` | `{id:010}` | `TYPES#{pending,approved,denied}` / `{id:010}` |
//! | proposer's copy of a type | `USER#{proposer}` | `PROPOSAL#{id:010}` | |
//! | type name uniqueness | `TYPENAME#{lowercase}` | `TYPENAME` | |
//! | device (+ one `state.{key}` attribute per state key) | `DEVICES` | `{id:010}` | `OWNER#{user}` / `DEVICE#{id:010}` |
//!
//! Device state keys are attributes of their own, so a state patch is one `UpdateItem` that
//! sets only its keys: concurrent patches of different keys cannot overwrite each other.

pub mod auth;
pub mod device_types;
pub mod devices;
pub mod keys;
pub mod live;
pub mod rooms;
pub mod sync;
pub mod topology;
pub mod users;

use std::sync::{Arc, OnceLock};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use civic_auth::{Auth, TokenKind};
use civic_core::config::{self, ConfigError, Env, FromEnv};
use civic_core::fields::Body;
use civic_core::openapi::BearerAuth;
use civic_core::{App, Error, Function, IotFunction, Json, Platform, Result, page};
use civic_store::{Blob, Table, Typed};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

pub use crate::keys::sk;
use crate::sync::{DeviceSync, PublishSync};
use crate::users::UserRecord;

pub const APP: App = App {
    name: "homeforge",
    format: civic_core::error::drf,
    functions: None,
    config: || civic_auth::Config::get().and(Config::get()).map(drop),
};

pub const AUTH: Function = Function {
    name: "homeforge-auth",
    // The first function serves the app's document, so it alone names every function.
    app: App {
        functions: Some(|| FUNCTIONS),
        ..APP
    },
    routes: |p| router(p, auth::routes()),
};
pub const USERS: Function = Function {
    name: "homeforge-users",
    app: APP,
    routes: |p| router(p, users::routes()),
};
pub const ROOMS: Function = Function {
    name: "homeforge-rooms",
    app: APP,
    routes: |p| router(p, rooms::routes()),
};
pub const DEVICE_TYPES: Function = Function {
    name: "homeforge-device-types",
    app: APP,
    routes: |p| router(p, device_types::routes()),
};
pub const DEVICES: Function = Function {
    name: "homeforge-devices",
    app: APP,
    routes: |p| router(p, devices::routes().merge(topology::routes())),
};
/// Every Lambda function of this app.
pub const FUNCTIONS: &[Function] = &[AUTH, USERS, ROOMS, DEVICE_TYPES, DEVICES];
/// The topic rule `homeforge/devices/+/state`: devices' reported state.
pub const STATE_IN: IotFunction = IotFunction {
    name: "homeforge-iot",
    app: APP,
    handler: |p| civic_core::iot::consumer(State::new(p), devices::device_message),
};
/// Every topic-rule consumer of this app.
pub const IOT: &[IotFunction] = &[STATE_IN];

fn router(p: &Platform, routes: OpenApiRouter<State>) -> OpenApiRouter {
    router_with(State::new(p), routes)
}

/// An endpoint group's routes over a given state: how another device-sync implementation (or a
/// test double) is put in place.
pub fn router_with(state: State, routes: OpenApiRouter<State>) -> OpenApiRouter {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes)
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Civic HomeForge API", version = "1.0.0",
        description = "JWT bearer auth (`POST /api/login/`). Roles: owner > admin > user > viewer (read-only). Errors are DRF-style: `{\"field\": [\"msg\"]}` or `{\"detail\": \"...\"}`. Live updates: MQTT over WebSocket (civic-local: `/mqtt`; AWS: IoT Core WSS with the `homeforge-live-auth` authorizer), user name `homeforge`, password an access token. Topic `homeforge/live/owners/{ownerId}/devices/{deviceId}` (kind `device`, data: `{id, owner, status, current_state, last_seen}`, seq: the device's `live_seq`, as in its REST shape), after each state change (PATCH or the device's MQTT report). Owners and admins may subscribe to `homeforge/live/#`, others only to `homeforge/live/owners/{their id}/#`. Envelope: `{v, app, kind, seq, at, data}`. After reconnecting, re-read here and drop messages whose seq is not newer."),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "users"), (name = "rooms"), (name = "device-types"),
        (name = "admin", description = "Device-type review (owners and admins)"), (name = "devices"), (name = "topology"))
)]
struct ApiDoc;

/// Deployment settings, from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// The public base URL that precedes `/api/` and `/media/` (`HOMEFORGE_PUBLIC_URL`). Unset:
    /// the request's own scheme, host and `X-Forwarded-Prefix`.
    pub public_url: Option<String>,
    /// The gateway node's address in the topology (`HOMEFORGE_GATEWAY_IP`).
    pub gateway_ip: String,
}

impl FromEnv for Config {
    fn from_env(env: &mut Env) -> Self {
        Self {
            public_url: env
                .text("HOMEFORGE_PUBLIC_URL")
                .map(|u| u.trim_end_matches('/').to_owned()),
            gateway_ip: env
                .text("HOMEFORGE_GATEWAY_IP")
                .unwrap_or_else(|| "192.168.1.1".into()),
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
    pub config: Arc<Config>,
    pub platform: Platform,
    /// Where desired device state goes instead of [`State::sync`]'s default (tests).
    pub sync: Option<Arc<dyn DeviceSync>>,
}

impl State {
    pub fn new(p: &Platform) -> Self {
        Self {
            table: p.table(APP.name),
            auth: Auth::for_app(p, APP.name),
            config: Arc::new(Config::get().cloned().unwrap_or_else(|e| panic!("{e}"))),
            platform: p.clone(),
            sync: None,
        }
    }

    // Made from the platform when called: only the functions whose handlers call it link
    // the S3 or IoT SDK behind it (issue 20), so the state holds the platform instead.
    pub fn blob(&self) -> Arc<dyn Blob> {
        self.platform.blob()
    }

    /// Where desired device state goes: the platform's publisher (IoT Core or MQTT).
    pub fn sync(&self) -> Arc<dyn DeviceSync> {
        match &self.sync {
            Some(sync) => sync.clone(),
            None => Arc::new(PublishSync(self.platform.publisher())),
        }
    }

    /// Where devices' state changes go for browsers ([`live`]).
    pub fn live(&self) -> civic_core::live::Live {
        self.platform.live(APP.name)
    }

    /// On AWS with a device policy: a registered device gets its IoT Core certificate.
    pub fn provisioner(&self) -> Option<Arc<dyn civic_iot::Provision>> {
        self.platform.provisioner()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only.
    Viewer,
    User,
    Admin,
    Owner,
}

impl Role {
    pub const CHOICES: [Role; 4] = [Role::Owner, Role::Admin, Role::User, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::User => "user",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// A role field's value, or DRF's choice error.
    pub fn parse(value: &str) -> std::result::Result<Self, String> {
        Self::CHOICES
            .into_iter()
            .find(|r| r.as_str() == value.trim())
            .ok_or_else(|| format!("\"{value}\" is not a valid choice."))
    }

    pub fn is_staff(self) -> bool {
        self >= Role::Admin
    }
}

/// The authenticated caller: a valid access token whose user still exists. The record is read
/// on every request (one `GetItem`), so a role change or a deleted user applies at once.
pub struct Caller(pub UserRecord);

impl Caller {
    pub fn id(&self) -> i64 {
        self.0.id
    }
    pub fn role(&self) -> Role {
        self.0.role
    }
    pub fn is_staff(&self) -> bool {
        self.0.role.is_staff()
    }
    /// Staff see everything; others what they own.
    pub fn can_see(&self, owner: i64) -> bool {
        self.is_staff() || owner == self.id()
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    State: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        caller(&State::from_ref(state), &parts.headers)
            .await?
            .ok_or_else(|| {
                Error::Unauthorized("Authentication credentials were not provided.".into())
            })
    }
}

/// The caller of a request that may be anonymous; a token that is present must be valid.
pub async fn caller(s: &State, headers: &HeaderMap) -> Result<Option<Caller>> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    let invalid = || Error::Unauthorized("Given token not valid for any token type".into());
    let token = civic_auth::secret::bearer_token(headers).ok_or_else(invalid)?;
    let claims = s
        .auth
        .verify(token, TokenKind::Access)
        .map_err(|_| invalid())?;
    let id = claims.sub.parse().map_err(|_| invalid())?;
    let user = UserRecord::load(s.table.as_ref(), id)
        .await?
        .ok_or_else(|| Error::Unauthorized("User not found".into()))?;
    // A password change since the token was issued revokes it.
    claims
        .check_version(user.token_version)
        .map_err(|_| invalid())?;
    Ok(Some(Caller(user)))
}

/// Role guards: they run before the body is read, so a caller without the role gets 403
/// whatever they sent. `Staff`: owners and admins. `Writer`: anyone but a viewer.
pub struct AtLeast<const RANK: u8>(pub Caller);
pub type Staff = AtLeast<2>;
pub type Writer = AtLeast<1>;

impl<const RANK: u8, S> FromRequestParts<S> for AtLeast<RANK>
where
    S: Send + Sync,
    State: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match RANK {
            2 if !caller.is_staff() => Err(Error::Forbidden(
                "Only Admins/Owners can perform this action.".into(),
            )),
            1 if caller.role() == Role::Viewer => {
                Err(Error::Forbidden("Viewers have read-only access.".into()))
            }
            _ => Ok(Self(caller)),
        }
    }
}

/// An integer id in the path. Anything else matches no object: 404, as Django's `<int:pk>`.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        params
            .iter()
            .last()
            .and_then(|(_, v)| v.parse().ok())
            .filter(|id| *id > 0)
            .map(Id)
            .ok_or_else(not_found)
    }
}

pub fn not_found() -> Error {
    Error::NotFound("Not found.".into())
}

/// A primary key given in a body: an integer, or a string of digits (DRF accepts both).
pub fn pk(v: &Value) -> std::result::Result<i64, String> {
    let id = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        other => {
            let kind = match other {
                Value::Bool(_) => "bool",
                Value::Array(_) => "list",
                Value::Object(_) => "dict",
                _ => "null",
            };
            return Err(format!(
                "Incorrect type. Expected pk value, received {kind}."
            ));
        }
    };
    id.filter(|id| *id > 0)
        .ok_or_else(|| format!("Invalid pk \"{}\" - object does not exist.", pk_text(v)))
}

/// A primary key read from a body, with the value as sent (DRF's errors quote it).
#[derive(Clone, Debug, Default)]
pub struct Pk {
    pub id: i64,
    pub given: Value,
}

impl Pk {
    /// The field's pk, DRF's error recorded when it is none; absent or null reads as `None`.
    pub fn read(b: &mut Body, field: &str, required: bool) -> Option<Self> {
        let given = b.typed::<Value>(field, required)?;
        match pk(&given) {
            Ok(id) => Some(Self { id, given }),
            Err(msg) => {
                b.error(field, msg);
                None
            }
        }
    }

    /// DRF's error for a pk that names no object.
    pub fn no_such_object(&self) -> String {
        no_such_object(&self.given)
    }
}

pub fn no_such_object(v: &Value) -> String {
    format!("Invalid pk \"{}\" - object does not exist.", pk_text(v))
}

fn pk_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct PageParams {
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// Opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// One page of a listing: one query, with the next page's cursor in `X-Next-Cursor` so the
/// body stays the seed's plain array.
pub async fn list<T, O>(
    table: &dyn Table,
    query: civic_store::Query,
    params: PageParams,
    out: impl Fn(T) -> O,
) -> Result<Response>
where
    T: DeserializeOwned + Send,
    O: Serialize,
{
    let limit = page::limit(params.limit, 100, 1000)?;
    let res = table
        .query_as::<T>(query.limit(limit).cursor(params.cursor))
        .await?;
    let items: Vec<O> = res.items.into_iter().map(out).collect();
    Ok(page::with_cursor(Json(items), res.cursor))
}

/// The public base URL that precedes `/api/` and `/media/`: configured, or the request's own.
/// `X-Forwarded-Prefix` carries a path prefix added in front of the app (civic-local's
/// `/homeforge`, a custom domain's base path).
pub struct Base(pub String);

impl<S> FromRequestParts<S> for Base
where
    S: Send + Sync,
    State: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        if let Some(url) = &State::from_ref(state).config.public_url {
            return Ok(Self(url.clone()));
        }
        let h = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let proto = match h("x-forwarded-proto") {
            Some("https") => "https",
            _ => "http",
        };
        let host = h("host").unwrap_or("localhost");
        let prefix = h("x-forwarded-prefix")
            .filter(|p| p.starts_with('/') && !p.contains(['?', '#', ' ']))
            .unwrap_or("")
            .trim_end_matches('/');
        Ok(Self(format!("{proto}://{host}{prefix}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_parse_and_rank() {
        assert_eq!(Role::parse("owner"), Ok(Role::Owner));
        assert_eq!(
            Role::parse("god").unwrap_err(),
            "\"god\" is not a valid choice."
        );
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::User && Role::User > Role::Viewer);
        assert!(Role::Admin.is_staff() && !Role::User.is_staff());
    }

    #[test]
    fn pks_accept_integers_and_digit_strings() {
        assert_eq!(pk(&json!(2)), Ok(2));
        assert_eq!(pk(&json!("7")), Ok(7));
        assert!(pk(&json!("abc")).unwrap_err().contains("does not exist"));
        assert!(pk(&json!(-1)).unwrap_err().contains("does not exist"));
        assert!(pk(&json!(true)).unwrap_err().contains("received bool"));
    }
}
