//! The standard stack every app router gets, in one place: error rendering in the app's
//! format, body limits, per-IP rate limits, a 404 fallback, round-trip accounting, tracing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower::Layer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::trace::TraceLayer;

use crate::platform::env_or;
use crate::{Error, ErrorFormat, Problem};

/// Header that reports how many store round trips a request cost.
pub const ROUND_TRIPS_HEADER: &str = "x-store-round-trips";

/// An app's identity: its name (URL prefix, token audience, table name) and error format.
#[derive(Clone, Copy)]
pub struct App {
    pub name: &'static str,
    pub format: ErrorFormat,
    /// The app's HTTP functions (its `FUNCTIONS`), for the one document of the whole app
    /// ([`crate::openapi::document`]) that its first function serves on Lambda. A fn pointer,
    /// because `FUNCTIONS` holds this `App` and a const cannot contain itself.
    pub functions: fn() -> &'static [crate::Function],
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub body_bytes: usize,
    /// Requests per hour per client IP; 0 disables.
    pub per_hour: u32,
    /// Burst: requests per minute per client IP; 0 disables.
    pub per_minute: u32,
}

impl Default for Limits {
    /// 1 MiB bodies and no rate limit: the seeds' APIs are "currently unlimited, ready for
    /// configuration"; [`Limits::plan`] is that configuration.
    fn default() -> Self {
        Self {
            body_bytes: 1 << 20,
            per_hour: 0,
            per_minute: 0,
        }
    }
}

impl Limits {
    /// The seeds' planned limits, per client IP: 1000 requests an hour, bursts of 100 a minute.
    pub fn plan(mut self) -> Self {
        self.per_hour = 1000;
        self.per_minute = 100;
        self
    }

    /// `RATE_LIMIT=plan` switches the plan on (`off`, the default, leaves it off);
    /// `RATE_LIMIT_PER_HOUR` and `RATE_LIMIT_PER_MINUTE`, when set, replace either figure.
    pub fn from_env() -> Self {
        let mut d = Self::default();
        if env_or("RATE_LIMIT", RatePlan::Off) == RatePlan::Plan {
            d = d.plan();
        }
        Self {
            body_bytes: env_or("BODY_LIMIT_BYTES", d.body_bytes),
            per_hour: env_or("RATE_LIMIT_PER_HOUR", d.per_hour),
            per_minute: env_or("RATE_LIMIT_PER_MINUTE", d.per_minute),
        }
    }

    pub fn unlimited_rate(mut self) -> Self {
        self.per_hour = 0;
        self.per_minute = 0;
        self
    }
}

/// Whether the seeds' rate-limit plan is on: `RATE_LIMIT` / `--rate-limit`, `off` or `plan`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RatePlan {
    #[default]
    Off,
    Plan,
}

impl std::str::FromStr for RatePlan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" | "" => Ok(Self::Off),
            "plan" => Ok(Self::Plan),
            _ => Err(format!("{s:?} is neither `off` nor `plan`")),
        }
    }
}

/// The caller's address, set by whoever knows it (the Lambda glue from the API Gateway
/// request context, the local server from the socket). Never taken from `X-Forwarded-For`,
/// which any client can forge.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl App {
    /// Wraps an app's router in the standard stack.
    pub fn finish(self, router: Router, limits: &Limits) -> Router {
        let limiter = Arc::new(Limiter::new(limits));
        router
            .fallback(|| async { Error::NotFound("Not found".into()) })
            .layer(middleware::from_fn_with_state(limiter, rate_limit))
            .layer(DefaultBodyLimit::max(limits.body_bytes))
            .layer(RequestBodyLimitLayer::new(limits.body_bytes))
            .layer(middleware::from_fn(count_round_trips))
            .layer(middleware::map_response_with_state(self.format, render))
            .layer(TraceLayer::new_for_http())
    }
}

/// Trailing slashes must be trimmed before routing, so this wraps the router from outside.
pub fn into_service(router: Router) -> NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

struct Limiter {
    hour: Option<DefaultKeyedRateLimiter<IpAddr>>,
    minute: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Limiter {
    fn new(l: &Limits) -> Self {
        let keyed = |n: u32, quota: fn(NonZeroU32) -> Quota| {
            NonZeroU32::new(n).map(|n| RateLimiter::keyed(quota(n)))
        };
        Self {
            hour: keyed(l.per_hour, Quota::per_hour),
            minute: keyed(l.per_minute, Quota::per_minute),
        }
    }
}

fn client_ip(req: &Request) -> IpAddr {
    let ext = req.extensions();
    ext.get::<ClientIp>()
        .map(|c| c.0)
        .or_else(|| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

async fn rate_limit(State(limiter): State<Arc<Limiter>>, req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    for (l, window) in [(&limiter.minute, "minute"), (&limiter.hour, "hour")] {
        if let Some(l) = l
            && let Err(not_until) = l.check_key(&ip)
        {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let mut res = Error::TooManyRequests(format!(
                "Rate limit exceeded for this {window}; retry later"
            ))
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
    }
    next.run(req).await
}

async fn count_round_trips(req: Request, next: Next) -> Response {
    let (mut res, n) = civic_store::counting(next.run(req)).await;
    res.headers_mut()
        .insert(ROUND_TRIPS_HEADER, HeaderValue::from(n));
    res
}

/// Renders every error response in the app's format: our own [`Problem`]s and the bare
/// statuses produced by axum and tower (404, 405, 413, ...).
async fn render(State(format): State<ErrorFormat>, res: Response) -> Response {
    let (mut parts, body) = res.into_parts();
    let problem = match parts.extensions.remove::<Problem>() {
        Some(p) => p,
        None if parts.status.as_u16() >= 400 && !is_json(&parts.headers) => Problem {
            status: parts.status,
            message: default_message(parts.status),
            fields: Vec::new(),
        },
        None => return Response::from_parts(parts, body),
    };
    let bytes = serde_json::to_vec(&format(&problem)).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "Not found".into(),
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large".into(),
        s => s.canonical_reason().unwrap_or("Error").into(),
    }
}

/// CORS for browser frontends served from `origins` (none: no CORS headers at all). With
/// `credentials`, cookies travel too (session-based apps).
pub fn cors(origins: &[String], credentials: bool) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_credentials(credentials)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .expose_headers([
                HeaderName::from_static(crate::page::NEXT_CURSOR_HEADER),
                header::CONTENT_DISPOSITION,
            ])
    })
}
