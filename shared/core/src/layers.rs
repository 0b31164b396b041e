//! The standard stack every app router gets, in one place: error rendering in the app's
//! format, body limits, per-IP rate limits, a 404 fallback, round-trip accounting, tracing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use tower::Layer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::trace::TraceLayer;

use crate::{Error, ErrorFormat, Problem};

/// Header that reports how many store round trips a request cost.
pub const ROUND_TRIPS_HEADER: &str = "x-store-round-trips";

/// An app's identity: its name (URL prefix, token audience, table name) and error format.
#[derive(Clone, Copy)]
pub struct App {
    pub name: &'static str,
    pub format: ErrorFormat,
    /// The app's HTTP functions (its `FUNCTIONS`), for the one document of the whole app
    /// ([`crate::openapi::document`]) that its first function serves on Lambda. Set only in
    /// that function's copy of the `App`: whatever names them links every route of the app,
    /// and each Lambda binary should link its own routes alone (issue 20). A fn pointer,
    /// because `FUNCTIONS` holds this `App` and a const cannot contain itself.
    pub functions: Option<fn() -> &'static [crate::Function]>,
    /// Reads the app's settings (its `Config` and the shared crates' it uses) once, so that
    /// Lambda's init and civic-local's start fail on a bad value, naming the variable, before
    /// serving anything ([`crate::config`]).
    pub config: fn() -> Result<(), crate::config::ConfigError>,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub body_bytes: usize,
    /// Requests per hour per client IP; 0 disables.
    pub per_hour: u32,
    /// Burst: requests per minute per client IP; 0 disables.
    pub per_minute: u32,
    /// Requests in flight at once, across every app of the process; past it a request is
    /// refused at once with 503 and `Retry-After` ([`Error::Overloaded`]), never queued. It
    /// bounds what load can pin in memory: each request may hold a body of `body_bytes`, and
    /// every write waits in the store's write queue ([`civic_store`]'s group commit).
    pub in_flight: usize,
}

/// [`Limits::in_flight`]'s default: as many write calls as one store group commit takes
/// (512), so the write queue never holds more than a group waiting; with 1 MiB bodies, at
/// most 512 MiB of request bodies. Lambda serves one request per instance and never nears it.
pub const IN_FLIGHT: usize = 512;

impl Default for Limits {
    /// 1 MiB bodies and no rate limit: the seeds' APIs are "currently unlimited, ready for
    /// configuration"; [`Limits::plan`] is that configuration.
    fn default() -> Self {
        Self {
            body_bytes: 1 << 20,
            per_hour: 0,
            per_minute: 0,
            in_flight: IN_FLIGHT,
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
    pub fn from_env(env: &mut crate::config::Env) -> Self {
        let mut d = Self::default();
        if env.get("RATE_LIMIT", RatePlan::Off) == RatePlan::Plan {
            d = d.plan();
        }
        Self {
            body_bytes: env.get("BODY_LIMIT_BYTES", d.body_bytes),
            per_hour: env.get("RATE_LIMIT_PER_HOUR", d.per_hour),
            per_minute: env.get("RATE_LIMIT_PER_MINUTE", d.per_minute),
            // Not read from the environment: a Lambda instance serves one request at a time,
            // and API Gateway's throttling bounds the fleet; the bound matters in civic-local.
            in_flight: d.in_flight,
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
    /// Wraps an app's router in the standard stack. `in_flight` is the process's one count of
    /// requests in flight ([`Limits::in_flight`]), shared by every app's router.
    pub fn finish(self, router: Router, limits: &Limits, in_flight: Arc<Semaphore>) -> Router {
        let limiter = Arc::new(Limiter::new(limits));
        router
            .fallback(|| async { Error::NotFound("Not found".into()) })
            .layer(middleware::from_fn_with_state(limiter, rate_limit))
            .layer(DefaultBodyLimit::max(limits.body_bytes))
            .layer(RequestBodyLimitLayer::new(limits.body_bytes))
            .layer(middleware::from_fn_with_state(in_flight, shed))
            .layer(middleware::from_fn(count_round_trips))
            .layer(middleware::map_response_with_state(self.format, render))
            .layer(TraceLayer::new_for_http().on_failure(log_failure))
    }
}

/// Trailing slashes must be trimmed before routing, so this wraps the router from outside.
pub fn into_service(router: Router) -> NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// Most client keys one window's limiter remembers. Past it, keys whose budget is full again
/// are dropped; if the map is still too big (a flood of distinct addresses), the window starts
/// over: every client gets a fresh budget, which beats memory that grows without end.
const MAX_KEYS: usize = 50_000;

struct Limiter {
    hour: Option<Window>,
    minute: Option<Window>,
}

/// One window's keyed limiter, replaceable when it must be reset.
struct Window {
    quota: Quota,
    cap: usize,
    keys: RwLock<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Window {
    fn new(quota: Quota, cap: usize) -> Self {
        Self {
            quota,
            cap,
            keys: RwLock::new(RateLimiter::keyed(quota)),
        }
    }

    /// `Err(wait)` when `ip`'s bucket is empty.
    fn check(&self, ip: IpAddr) -> Result<(), std::time::Duration> {
        let key = bucket(ip);
        let res = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            let res = keys.check_key(&key);
            if keys.len() > self.cap {
                keys.retain_recent();
                keys.shrink_to_fit();
            }
            res
        };
        if self.len() > self.cap {
            *self.keys.write().unwrap_or_else(|e| e.into_inner()) = RateLimiter::keyed(self.quota);
        }
        res.map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }

    fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The limiter's key for a client address. An IPv6 client usually holds a whole /64 (a
/// single host can pick any of 2^64 addresses), so all of it is one key; an IPv4-mapped IPv6
/// address is its IPv4 address.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

impl Limiter {
    fn new(l: &Limits) -> Self {
        Self::with_cap(l, MAX_KEYS)
    }

    fn with_cap(l: &Limits, cap: usize) -> Self {
        let keyed = |n: u32, quota: fn(NonZeroU32) -> Quota| {
            NonZeroU32::new(n).map(|n| Window::new(quota(n), cap))
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
            && let Err(wait) = l.check(ip)
        {
            let msg = format!("Rate limit exceeded for this {window}; retry later");
            return Error::too_many(msg, wait.as_secs_f64().ceil() as u64).into_response();
        }
    }
    next.run(req).await
}

/// Load shedding: a request past [`Limits::in_flight`] is refused at once, not queued; its
/// place is held until its response is ready.
async fn shed(State(in_flight): State<Arc<Semaphore>>, req: Request, next: Next) -> Response {
    let Ok(_place) = in_flight.try_acquire_owned() else {
        SHED.note();
        return Error::overloaded("The server is busy; retry shortly", 1).into_response();
    };
    next.run(req).await
}

/// Shedding is the server working as designed, under a load that leaves nothing to spare:
/// a log line per refused request would add to it. One WARN a second at most, with a count.
struct ShedLog {
    count: AtomicU64,
    /// The second (since the epoch) of the last WARN.
    logged: AtomicU64,
}

static SHED: ShedLog = ShedLog {
    count: AtomicU64::new(0),
    logged: AtomicU64::new(0),
};

impl ShedLog {
    fn note(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.logged.load(Ordering::Relaxed);
        if now > last
            && self
                .logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let shed = self.count.swap(0, Ordering::Relaxed);
            tracing::warn!(shed, "requests refused with 503: too many in flight");
        }
    }
}

/// tower-http's trace layer logs every 5xx as an ERROR. A 503 is logged where it is decided
/// (shedding above, a store outage by [`Error`]), so only other failures are logged here.
fn log_failure(class: ServerErrorsFailureClass, latency: std::time::Duration, _: &tracing::Span) {
    if let ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) = class {
        return;
    }
    tracing::error!(classification = %class, ?latency, "response failed");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(n: u32) -> Limits {
        Limits {
            per_minute: n,
            ..Limits::default()
        }
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_bucket() {
        let limiter = Limiter::new(&per_minute(1));
        let w = limiter.minute.as_ref().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(w.check(ip("2001:db8:1:2::1")).is_ok());
        // Another address of the same /64: the same, now empty, bucket.
        assert!(w.check(ip("2001:db8:1:2:ffff:ffff:ffff:fffe")).is_err());
        // The neighbouring /64 is another client.
        assert!(w.check(ip("2001:db8:1:3::1")).is_ok());
        // An IPv4-mapped address is its IPv4 address.
        assert!(w.check(ip("192.0.2.7")).is_ok());
        assert!(w.check(ip("::ffff:192.0.2.7")).is_err());
        assert_eq!(bucket(ip("2001:db8:1:2:abcd::9")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn the_limiter_map_stays_bounded() {
        let limiter = Limiter::with_cap(&per_minute(5), 100);
        let w = limiter.minute.as_ref().unwrap();
        for i in 0..10_000u32 {
            let _ = w.check(IpAddr::V4(Ipv4Addr::from(i)));
            assert!(w.len() <= 101, "{} keys after {i} clients", w.len());
        }
        // Each /64 counts once, however many addresses it uses.
        let limiter = Limiter::with_cap(&per_minute(5), 100);
        let w = limiter.minute.as_ref().unwrap();
        for i in 0..1_000u128 {
            let _ = w.check(IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | i)));
        }
        assert_eq!(w.len(), 1);
    }

    /// A router under the standard stack whose `/slow` route holds its place until `gate`
    /// lets it through, and `in_flight` requests already holding theirs.
    async fn held_router(
        in_flight: &Arc<Semaphore>,
    ) -> (
        Router,
        Arc<Semaphore>,
        Vec<tokio::task::JoinHandle<Response>>,
    ) {
        use tower::ServiceExt;
        let gate = Arc::new(Semaphore::new(0));
        let g = gate.clone();
        let slow = move || {
            let g = g.clone();
            async move {
                let _pass = g.acquire().await.unwrap();
                "done"
            }
        };
        let app = App {
            name: "t",
            format: crate::error::drf,
            functions: None,
            config: || Ok(()),
        };
        let router = Router::new().route("/slow", axum::routing::get(slow));
        let router = app.finish(router, &Limits::default(), in_flight.clone());
        let held: Vec<_> = (0..in_flight.available_permits())
            .map(|_| {
                let r = router.clone().oneshot(get("/slow"));
                tokio::spawn(async move { r.await.unwrap() })
            })
            .collect();
        while in_flight.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        (router, gate, held)
    }

    fn get(path: &str) -> Request {
        Request::get(path).body(Body::empty()).unwrap()
    }

    /// Load shedding: with `in_flight` requests in hand, the next is refused at once with 503,
    /// `Retry-After` and the app's own error body, and served again once one finished.
    #[tokio::test]
    async fn past_in_flight_requests_are_refused_with_503_and_retry_after() {
        use tower::ServiceExt;
        let in_flight = Arc::new(Semaphore::new(2));
        let (router, gate, held) = held_router(&in_flight).await;
        // A route and the fallback alike: the bound is the process's, not a route's.
        for path in ["/slow", "/nowhere"] {
            let res = router.clone().oneshot(get(path)).await.unwrap();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(res.headers()[header::RETRY_AFTER], "1");
            let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"detail": "The server is busy; retry shortly"})
            );
        }
        gate.add_permits(1);
        for h in held {
            assert_eq!(h.await.unwrap().status(), StatusCode::OK);
        }
        assert_eq!(
            in_flight.available_permits(),
            2,
            "finished requests give their place back"
        );
        let res = router.oneshot(get("/slow")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// A burst of shed requests logs one WARN with a count (two if it spans a second), and
    /// neither our error log nor tower-http's logs each refusal as an ERROR.
    #[tokio::test]
    async fn shedding_logs_one_warn_a_second_and_no_errors() {
        use tower::ServiceExt;
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let in_flight = Arc::new(Semaphore::new(1));
        let (router, gate, held) = held_router(&in_flight).await;
        for _ in 0..100 {
            let res = router.clone().oneshot(get("/slow")).await.unwrap();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        gate.add_permits(1);
        for h in held {
            assert_eq!(h.await.unwrap().status(), StatusCode::OK);
        }
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let warns = text.lines().filter(|l| l.contains(" WARN ")).count();
        assert!((1..=2).contains(&warns), "{warns} WARN lines:\n{text}");
        assert!(text.contains("too many in flight"), "{text}");
        assert!(!text.contains("ERROR"), "{text}");
    }

    /// A log writer the test reads back.
    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Logs;
        fn make_writer(&'a self) -> Logs {
            self.clone()
        }
    }
}
