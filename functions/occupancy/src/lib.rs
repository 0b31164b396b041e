//! Occupancy: cameras with virtual lines count people crossing them; live occupancy per camera
//! and for the facility, 5-minute/hourly/daily/monthly history, calibration and alerts.
//! Contract: `shared/seeds/occupancy-api.md`.
//!
//! Table layout (`civic-occupancy`):
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | camera (config + live state) | `CAMERA#{id}` | `CAMERA` | `CAMERAS` (or `CAMERAS#inactive`) / `{id:010}` |
//! | camera_id uniqueness | `CAMERAID#{camera_id}` | `CAMERAID` | |
//! | bucket (5-minute log, hour, day, month) | `CAMERA#{id}` | `LOG#…`, `HOUR#…`, `DAY#…`, `MONTH#…` | |
//! | calibration log entry | `CAMERA#{id}` | `LOG#{time}#CAL` | |
//! | hour-of-week baseline | `CAMERA#{id}` | `BASELINE` | |
//! | tracked person seen in a bucket | `SEEN#{id}#{bucket sk}` | `{track_id}` (TTL) | |
//! | line | `LINE#{id}` | `LINE` | `LINES#{camera}` / `{id:010}` |
//! | alert | `ALERT#{id}` | `ALERT` | `OPENALERTS` / `{camera:010}#{id:010}` while open |
//! | facility counters | `FACILITY` | `FACILITY` | |
//! | aggregator checkpoint | `AGG#{feed shard}` | `CHECKPOINT` | |
//!
//! Every change of a camera's occupancy (crossings, calibration, the scheduler's tick) goes
//! through one versioned write of the camera item, in one transaction with the bucket and
//! alert writes it implies ([`timeline`]); the facility's crossing counters follow from the
//! change feed ([`aggregate`]). Reads never scan: history is O(buckets).

pub mod admin;
pub mod aggregate;
pub mod alerts;
pub mod analytics;
pub mod buckets;
pub mod cameras;
pub mod frames;
pub mod ingest;
pub mod keys;
pub mod live;
pub mod timeline;

use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequestParts, Request, State as AxState};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;
use civic_auth::Auth;
use civic_core::config::{self, ConfigError, Env, FromEnv};
use civic_core::openapi::BearerAuth;
use civic_core::{
    App, Error, Function, IotFunction, Platform, Problem, Result, Scheduled, StreamFunction,
};
use civic_store::Table;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub const APP: App = App {
    name: "occupancy",
    format: error_body,
    functions: None,
    config: || civic_auth::Config::get().and(Config::get()).map(drop),
};

/// FastAPI's error body: `{"detail": "..."}`.
fn error_body(p: &Problem) -> Value {
    json!({ "detail": p.message })
}

pub const CAMERAS: Function = Function {
    name: "occupancy-cameras",
    // The first function serves the app's document, so it alone names every function.
    app: App {
        functions: Some(|| FUNCTIONS),
        ..APP
    },
    routes: |p| router(p, cameras::routes()),
};
pub const INGEST: Function = Function {
    name: "occupancy-ingest",
    app: APP,
    routes: |p| router(p, ingest::routes().merge(frames::routes())),
};
pub const ANALYTICS: Function = Function {
    name: "occupancy-analytics",
    app: APP,
    routes: |p| router(p, analytics::routes()),
};
pub const ALERTS: Function = Function {
    name: "occupancy-alerts",
    app: APP,
    routes: |p| router(p, alerts::routes()),
};
pub const ADMIN: Function = Function {
    name: "occupancy-admin",
    app: APP,
    routes: |p| router(p, admin::routes()),
};
/// The scheduled rollup pass (an EventBridge schedule, a timer in civic-local).
pub const SCHEDULER: Scheduled = Scheduled {
    name: "occupancy-scheduler",
    app: APP,
    run: |p| Box::pin(admin::scheduled(State::new(p))),
};
/// Every Lambda function of this app.
pub const FUNCTIONS: &[Function] = &[CAMERAS, INGEST, ANALYTICS, ALERTS, ADMIN];
/// Functions driven by S3 uploads: frame batches counted server-side.
pub const S3_FUNCTIONS: &[civic_core::S3Function] = &[frames::FRAMES];
/// Every scheduled function of this app.
pub const JOBS: &[Scheduled] = &[SCHEDULER];
/// The topic rule `occupancy/cameras/+/crossings`: the same ingest as the HTTP extension.
pub const CROSSINGS_IN: IotFunction = IotFunction {
    name: "occupancy-iot",
    app: APP,
    handler: |p| civic_core::iot::consumer(State::new(p), ingest::camera_message),
};
/// Every topic-rule consumer of this app.
pub const IOT: &[IotFunction] = &[CROSSINGS_IN];
/// The table's stream: the facility's crossing counters, counted off the request path.
pub const AGGREGATOR: StreamFunction = StreamFunction {
    name: "occupancy-aggregator",
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

fn router(p: &Platform, routes: OpenApiRouter<State>) -> OpenApiRouter {
    let state = State::new(p);
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes);
    if state.config.require_auth {
        router = router.layer(middleware::from_fn_with_state(state.clone(), require_token));
        // Then every operation says so (and lists the 401 it may get).
        router.get_openapi_mut().security =
            Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
    }
    if let Some(cors) = civic_core::layers::cors(&state.config.cors_origins, false) {
        router = router.layer(cors);
    }
    router.with_state(state)
}

/// The seed's browser examples call from their own origin: the listed origins may
/// (`OCCUPANCY_CORS_ORIGINS`, comma-separated; none: no CORS headers at all).
/// With `OCCUPANCY_REQUIRE_AUTH=true` every route wants an occupancy access token.
async fn require_token(AxState(s): AxState<State>, req: Request, next: Next) -> Response {
    match s.auth.bearer_headers(req.headers()) {
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Civic Occupancy Analytics API", version = "1.0.0",
        description = "Deployed (the template), every route needs `Authorization: Bearer <occupancy access token>` (OCCUPANCY_REQUIRE_AUTH, default true in the template); civic-local is open by default, as the seed. Live updates: MQTT over WebSocket (civic-local: `/mqtt`; AWS: IoT Core WSS with the `occupancy-live-auth` authorizer), user name `occupancy`, password an access token (when the app runs open, any non-empty password). Topics: `occupancy/live/cameras/{camera_id}` (kind `camera`, data: `GET /cameras/{camera_id}/live`'s body, seq: the camera's version), `occupancy/live/facility` (kind `facility`, data: `GET /facility/live`'s body, seq: its change count) and `occupancy/live/alerts/{alert_id}` (kind `alert`, data: the alert as `GET /alerts` lists it, sent when it opens and when it is resolved, seq: its version). Envelope: `{v, app, kind, seq, at, data}`. After reconnecting, re-read here and drop messages whose seq is not newer."),
    modifiers(&BearerAuth),
    tags((name = "cameras"), (name = "lines"), (name = "ingest", description = "Extension: crossing ingest"),
        (name = "occupancy"), (name = "history"), (name = "alerts"), (name = "facility"), (name = "admin"))
)]
struct ApiDoc;

/// Deployment settings, from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Calendar of hours, days and months (`OCCUPANCY_TIME_ZONE`, IANA name, default `UTC`).
    /// Buckets are keyed at ingest in this zone, so changing it later splits history.
    pub tz: Tz,
    /// An active camera silent this long raises `equipment_failure`
    /// (`OCCUPANCY_SILENCE_SECS`, default 900).
    pub silence_secs: i64,
    /// Bearer-token protection of every route (`OCCUPANCY_REQUIRE_AUTH`): open by default
    /// locally, as in the seed; closed by default in Lambda, so a function deployed without
    /// the template's setting is never open to the internet.
    pub require_auth: bool,
    /// Browser origins allowed by CORS (`OCCUPANCY_CORS_ORIGINS`, comma-separated).
    pub cors_origins: Vec<String>,
    /// Where the facility's crossing counters are counted
    /// (`OCCUPANCY_FACILITY_COUNTERS`, default `stream`); see [`aggregate`].
    pub facility_counters: aggregate::Mode,
}

impl FromEnv for Config {
    fn from_env(env: &mut Env) -> Self {
        Self {
            tz: env.get("OCCUPANCY_TIME_ZONE", Tz::UTC),
            silence_secs: env.get("OCCUPANCY_SILENCE_SECS", 900),
            require_auth: env.get("OCCUPANCY_REQUIRE_AUTH", config::in_lambda()),
            cors_origins: env.list("OCCUPANCY_CORS_ORIGINS"),
            facility_counters: env.get("OCCUPANCY_FACILITY_COUNTERS", aggregate::Mode::Stream),
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
    pub auth: Auth,
    pub config: Arc<Config>,
    /// For presigned frame-batch uploads.
    pub platform: Platform,
}

impl State {
    pub fn new(p: &Platform) -> Self {
        Self {
            table: p.table(APP.name),
            auth: Auth::for_app(p, APP.name),
            config: Arc::new(Config::get().cloned().unwrap_or_else(|e| panic!("{e}"))),
            platform: p.clone(),
        }
    }
}

/// An integer path parameter (`{camera_id}`, `{line_id}`, `{alert_id}`): anything else is a 400
/// in the app's format rather than axum's plain-text rejection.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        // The last parameter: civic-local's own route (`/cameras/{camera_id}/...`) captures the
        // same segment before the function's router does.
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::bad_request("Invalid path parameter"))?;
        let raw = params
            .iter()
            .last()
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default();
        raw.parse().map(Id).map_err(|_| {
            Error::bad_request(format!("Path parameter must be an integer, got '{raw}'"))
        })
    }
}

pub fn camera_not_found(id: i64) -> Error {
    Error::NotFound(format!("Camera {id} not found"))
}

/// One decimal place, as the seed prints averages and percentages.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
