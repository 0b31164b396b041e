//! EcoFlow: organizations → zones → cameras, people counted in camera frames (crowd alerts and
//! carbon figures), alerts with a lifecycle, broadcast notifications, status and health.
//! Contract: `shared/seeds/ecoflow-api.md`.
//!
//! Table layout (`civic-ecoflow`):
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | user | `USER#{email}` | `USER` | `USERS` / `{id:010}` |
//! | organization | `ORG#{o}` | `ORG` | `SITES` / `{o:010}` |
//! | zone | `ORG#{o}` | `ZONE#{z:010}` | `SITES` / `{o:010}#ZONE#{z:010}` |
//! | camera | `ORG#{o}` | `ZONE#{z:010}#CAM#{c:010}` | `SITES` / `{o:010}#ZONE#{z:010}#CAM#{c:010}` |
//! | zone / camera pointer | `ZONE#{z}` / `CAMERA#{c}` | `ZONE` / `CAMERA` | |
//! | alert (and its list views) | `ALERTS`, `ALERTS#{status}`, `ORGALERTS#{o}`, `ORGALERTS#{o}#{status}` | `{id:010}` | |
//! | open automatic alert marker | `OPENALERT#{source}#{type}` | `OPENALERT` | |
//! | notification | `NOTIFICATIONS` | `{id:010}` | |
//! | detection (all, by zone) | `DETECTIONS`, `DETECTIONS#ZONE#{z}` | `{id:010}` | `CARBONLOG`, `CARBONLOG#ZONE#{z}` / `{id:010}`, only when it recorded a carbon figure |
//! | carbon totals | `CARBON` | `ALL`, `ZONE#{z}` | |
//! | counted upload | `UPLOAD#{bucket}/{key}` | `{etag}` | |
//!
//! An organization's partition holds it, its zones and their cameras in nesting order, so one
//! query reads a whole tree; the `SITES` index holds every tree in the same order, so one
//! query reads a page of trees. Zones and cameras are found by id through their pointers.

pub mod alerts;
pub mod auth;
pub mod carbon;
/// The one body checker every app uses (it began here, as DRF's serializers).
pub use civic_core::fields;
pub mod live;
pub mod notifications;
pub mod sensor;
pub mod sites;
pub mod status;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use civic_auth::{Auth, Claims};
use civic_core::openapi::BearerAuth;
use civic_core::{App, Error, Function, Platform, Result, S3Function};
use civic_store::{Blob, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

pub const APP: App = App {
    name: "ecoflow",
    format: civic_core::error::drf,
    functions: None,
    config: || civic_auth::Config::get().map(drop),
};

pub const AUTH: Function = Function {
    name: "ecoflow-auth",
    // The first function serves the app's document, so it alone names every function.
    app: App {
        functions: Some(|| FUNCTIONS),
        ..APP
    },
    routes: |p| router(p, auth::routes()),
};
pub const SITES: Function = Function {
    name: "ecoflow-sites",
    app: APP,
    routes: |p| router(p, sites::routes()),
};
pub const ALERTS: Function = Function {
    name: "ecoflow-alerts",
    app: APP,
    routes: |p| router(p, alerts::routes().merge(notifications::routes())),
};
pub const STATUS: Function = Function {
    name: "ecoflow-status",
    app: APP,
    routes: |p| router(p, status::routes()),
};
pub const SENSOR: Function = Function {
    name: "ecoflow-sensor",
    app: APP,
    routes: |p| router(p, sensor::routes()),
};
pub const CARBON: Function = Function {
    name: "ecoflow-carbon",
    app: APP,
    routes: |p| router(p, carbon::routes()),
};
/// Every HTTP Lambda function of this app.
pub const FUNCTIONS: &[Function] = &[AUTH, SITES, ALERTS, STATUS, SENSOR, CARBON];

/// Counts frames cameras upload straight to the bucket (`sensor/uploads/`).
pub const COUNTER: S3Function = S3Function {
    name: "ecoflow-counter",
    app: APP,
    run: |p, event| Box::pin(sensor::counter::run(State::new(p), event)),
};
/// Every S3-triggered Lambda function of this app.
pub const S3_FUNCTIONS: &[S3Function] = &[COUNTER];

fn router(p: &Platform, routes: OpenApiRouter<State>) -> OpenApiRouter {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes)
        .with_state(State::new(p))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Civic EcoFlow API", version = "1.0.0",
        description = "Reads need `Authorization: Bearer <access>` (any role); writes to sites, alerts and notifications need an ADMIN. `status` and `health` are public.\n\nLive updates: MQTT over WebSocket (civic-local: `/mqtt`; AWS: IoT Core WSS with the `ecoflow-live-auth` authorizer), user name `ecoflow`, password an access token; any role may subscribe to `ecoflow/live/#`. Topics: `ecoflow/live/alerts/{id}` (kind `alert`, data: the alert as returned here, seq: its version, 1 when created; kind `alert_deleted`, data `{id}`, seq: the version after the last) and `ecoflow/live/notifications/{id}` (kind `notification`, data: the notification as returned here, seq 1; kind `notification_deleted`, seq 2). Envelope: `{v, app, kind, seq, at, data}`. After reconnecting, re-read here and drop messages whose seq is not newer."),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "organizations"), (name = "zones"), (name = "cameras"),
        (name = "alerts", description = "Alerts with an OPEN → ACKNOWLEDGED → CLOSED lifecycle"),
        (name = "notifications", description = "Broadcasts to every user"),
        (name = "sensor", description = "People counted in camera frames: `sahi_count` is sliced NanoDet, `gemini_count` is CenterNet (an independent second model, not Gemini; the name is kept for compatibility)"),
        (name = "carbon"), (name = "system"))
)]
struct ApiDoc;

#[derive(Clone, FromRef)]
pub struct State {
    pub table: Arc<dyn Table>,
    pub auth: Auth,
    /// For presigned uploads and the blob store.
    pub platform: Platform,
}

impl State {
    pub fn new(p: &Platform) -> Self {
        Self {
            table: p.table(APP.name),
            auth: Auth::for_app(p, APP.name),
            platform: p.clone(),
        }
    }

    // Made from the platform when called: only the functions whose handlers call it link
    // the S3 or IoT SDK behind it (issue 20), so the state holds the platform instead.
    pub fn blob(&self) -> Arc<dyn Blob> {
        self.platform.blob()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Role::User, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

impl std::str::FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Role::parse(s).ok_or(())
    }
}

/// The authenticated caller: a valid EcoFlow access token.
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: Role,
}

impl User {
    fn from_claims(c: Claims) -> Result<Self> {
        let invalid = || Error::Unauthorized("Given token not valid for any token type".into());
        Ok(Self {
            id: c.sub.parse().map_err(|_| invalid())?,
            email: c.extra_str("email").ok_or_else(invalid)?.to_owned(),
            role: Role::parse(&c.role).ok_or_else(invalid)?,
        })
    }
}

impl<S> FromRequestParts<S> for User
where
    S: Send + Sync,
    Auth: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Err(Error::Unauthorized(
                "Authentication credentials were not provided.".into(),
            ));
        }
        User::from_claims(Auth::from_ref(state).bearer(parts)?)
    }
}

/// An ADMIN caller. Extracted before the body is read, so others get 403 whatever they sent.
pub struct Admin(pub User);

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    Auth: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let user = User::from_request_parts(parts, state).await?;
        if user.role != Role::Admin {
            return Err(Error::Forbidden(
                "You do not have permission to perform this action.".into(),
            ));
        }
        Ok(Self(user))
    }
}

/// An integer id from the path (the last parameter). Anything else names no object, so it is
/// a 404, as Django's `<int:pk>` routes answer.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::NotFound("Not found.".into()))?;
        params
            .iter()
            .last()
            .and_then(|(_, v)| v.parse().ok())
            .filter(|id: &i64| *id > 0)
            .map(Id)
            .ok_or_else(|| Error::NotFound("Not found.".into()))
    }
}

/// Django's 404 for a missing object of `model`.
pub fn not_found(model: &str) -> Error {
    Error::NotFound(format!("No {model} matches the given query."))
}

/// Zero-padded, so that ids sort as text in sort keys.
pub fn pad(id: i64) -> String {
    format!("{id:010}")
}

/// The optimistic-concurrency version of a stored item (0 if it has none).
pub fn version_of(item: &civic_store::Item) -> i64 {
    item.get(civic_store::VERSION)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `item` stamped with `version`.
pub fn with_version(mut item: civic_store::Item, version: i64) -> civic_store::Item {
    item.insert(civic_store::VERSION.into(), version.into());
    item
}
