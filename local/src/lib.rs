//! `civic-local`: the whole platform in one process. It reads `template.yaml`, builds each
//! function's own router (the code Lambda runs) and serves every HttpApi route of the template
//! at `/{app}{path}`, on the embedded store or on DynamoDB + S3.

pub mod bench;
pub mod iot_rules;
pub mod landing;
pub mod mqtt;
pub mod preflight;
pub mod registry;
pub mod s3events;
pub mod sim;
pub mod template;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::{MethodFilter, any_service, on_service};
use civic_core::{Limits, Platform, RatePlan, openapi};
use civic_store::Backend;

pub use template::{FunctionDef, Route};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// redb + files in the data dir.
    Embedded,
    /// DynamoDB + S3 from the standard AWS environment (AWS_ENDPOINT_URL for moto/LocalStack).
    Aws,
}

#[derive(Clone, Debug, clap::Args)]
pub struct ServeOpts {
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    #[arg(long, default_value = ".civic")]
    pub data_dir: PathBuf,
    /// A SAM template to serve instead of the one built into civic-local.
    #[arg(long)]
    pub template: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendKind::Embedded)]
    pub backend: BackendKind,
    /// S3 bucket for the aws backend.
    #[arg(long, default_value = "civic-local")]
    pub bucket: String,
    /// `plan` switches on the seeds' planned rate limits (1000 requests an hour, 100 a minute,
    /// per client IP); `off`, the seeds' "currently unlimited", is the default.
    #[arg(long, env = "RATE_LIMIT", default_value = "off", value_parser = parse_plan)]
    pub rate_limit: RatePlan,
    /// Requests per hour per client IP, replacing the plan's figure (0 = unlimited).
    #[arg(long, env = "RATE_LIMIT_PER_HOUR")]
    pub rate_per_hour: Option<u32>,
    /// Requests per minute per client IP, replacing the plan's figure (0 = unlimited).
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE")]
    pub rate_per_minute: Option<u32>,
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = Limits::default().body_bytes)]
    pub body_limit: usize,
    #[command(flatten)]
    pub mqtt: mqtt::MqttOpts,
}

impl ServeOpts {
    fn limits(&self) -> Limits {
        let mut l = Limits {
            body_bytes: self.body_limit,
            ..Limits::default()
        };
        if self.rate_limit == RatePlan::Plan {
            l = l.plan();
        }
        l.per_hour = self.rate_per_hour.unwrap_or(l.per_hour);
        l.per_minute = self.rate_per_minute.unwrap_or(l.per_minute);
        l
    }

    /// The rate limits as the landing page and the start-up log state them.
    fn rate_limit_text(&self) -> String {
        match self.limits() {
            Limits { per_hour: 0, per_minute: 0, .. } => {
                "off, as the seeds have it (--rate-limit plan switches on 1000/hour, 100/minute per IP)".into()
            }
            l => format!("{} an hour, {} a minute per client IP (0 = no limit)", l.per_hour, l.per_minute),
        }
    }

    pub async fn platform(&self) -> Result<Platform> {
        preflight::data_dir(&self.data_dir)?;
        let backend = match self.backend {
            BackendKind::Embedded => Backend::embedded(&self.data_dir)
                .map_err(|e| preflight::store_error(&self.data_dir, e))?,
            BackendKind::Aws => {
                let b = Backend::aws(self.bucket.clone()).await;
                b.ensure_bucket().await.context("creating the bucket")?;
                b
            }
        };
        for f in registry::all() {
            backend
                .ensure_table(&format!("civic-{}", f.app.name))
                .await
                .context("creating a table")?;
        }
        Platform::local(&self.data_dir, backend, self.limits()).map_err(anyhow::Error::msg)
    }
}

fn parse_plan(s: &str) -> Result<RatePlan, String> {
    s.parse()
}

/// Disagreements between the template and the linked routers; empty when they agree.
pub fn check(defs: &[FunctionDef], platform: &Platform) -> Vec<String> {
    let mut problems = Vec::new();
    for def in defs {
        if let Some(job) = registry::find_job(&def.binary) {
            if def.schedules.is_empty() || !def.routes.is_empty() {
                problems.push(format!(
                    "{}: scheduled function {} needs Schedule events and no HttpApi events",
                    def.id, job.name
                ));
            }
            for expr in def.schedules.iter().filter(|e| template::rate(e).is_none()) {
                problems.push(format!("{}: schedule {expr:?} is not supported locally (use rate(N minutes|hours|days))", def.id));
            }
            continue;
        }
        if registry::find_iot(&def.binary).is_some() {
            if !def.routes.is_empty() || !def.schedules.is_empty() {
                problems.push(format!(
                    "{}: topic-rule consumer {} takes no HttpApi or Schedule events (an AWS::IoT::TopicRule invokes it)",
                    def.id, def.binary
                ));
            }
            continue;
        }
        if registry::find_s3(&def.binary).is_some() {
            if def.s3.is_empty() || !def.routes.is_empty() {
                problems.push(format!(
                    "{}: S3 function {} needs S3 events and no HttpApi events",
                    def.id, def.binary
                ));
            }
            continue;
        }
        let Some(f) = registry::find(&def.binary) else {
            problems.push(format!(
                "{}: binary {} is not linked into civic-local",
                def.id, def.binary
            ));
            continue;
        };
        let (_, spec) = f.build(platform);
        let mut ops = openapi::operations(&spec);
        // On Lambda the app's first function also serves the app's document (civic_runtime).
        if f.serves_document() {
            ops.push(("GET".into(), openapi::DOCUMENT_PATH.into()));
        }
        for (method, path) in &ops {
            if !def.routes.iter().any(|r| r.covers(method, path)) {
                problems.push(format!(
                    "{}: {method} {path} is served by {} but no HttpApi event routes it",
                    def.id, f.name
                ));
            }
        }
        for r in &def.routes {
            if !ops.iter().any(|(m, p)| r.covers(m, p)) {
                problems.push(format!(
                    "{}: HttpApi event {} {} reaches no route of {}",
                    def.id, r.method, r.path, f.name
                ));
            }
        }
    }
    let names = registry::all()
        .map(|f| f.name)
        .chain(registry::jobs().map(|j| j.name))
        .chain(registry::s3_functions().map(|f| f.name))
        .chain(registry::iot_functions().map(|f| f.name));
    for name in names.filter(|n| !defs.iter().any(|d| d.binary == *n)) {
        problems.push(format!("function {name} is not declared in the template"));
    }
    for functions in registry::APPS {
        if let Err(e) = openapi::document(functions, platform) {
            problems.push(format!("{}'s OpenAPI document: {e}", functions[0].app.name));
        }
    }
    problems
}

/// The platform's router: every template route at `/{app}{path}`, plus `/{app}/docs`.
pub fn router(defs: &[FunctionDef], platform: &Platform) -> Result<Router> {
    let problems = check(defs, platform);
    if !problems.is_empty() {
        return Err(preflight::disagreement(&problems));
    }
    let mut apps: BTreeMap<&str, (Router, &[civic_core::Function])> = BTreeMap::new();
    for def in defs {
        let Some(f) = registry::find(&def.binary) else {
            continue; // a scheduled function: no routes
        };
        let (svc, _) = f.build(platform);
        let svc = tower::ServiceBuilder::new()
            .map_request(move |req| as_lambda_sees_it(req, f.app.name))
            .service(svc);
        // Unknown paths under the app get its own 404 body, from its first function.
        let (router, _) = apps.entry(f.app.name).or_insert_with(|| {
            (
                Router::new().fallback_service(svc.clone()),
                (f.app.functions)(),
            )
        });
        // `/openapi.json` is the app's document, served with its docs below.
        for r in def
            .routes
            .iter()
            .filter(|r| r.path != openapi::DOCUMENT_PATH)
        {
            let method = match r.method.as_str() {
                "ANY" => None,
                m => Some(
                    MethodFilter::try_from(http_method(m)?).map_err(|e| anyhow::anyhow!("{e}"))?,
                ),
            };
            let route = match method {
                None => any_service(svc.clone()),
                Some(m) => on_service(m, svc.clone()),
            };
            *router = std::mem::take(router).route(&r.axum_path(), route);
        }
    }
    let (mut docs, mut api) = (Router::new(), Router::new());
    for (app, (router, functions)) in apps {
        api = api.nest_service(&format!("/{app}"), router);
        // The same document Lambda serves (civic_runtime::http_router); check() vouched for it.
        let mut spec = openapi::document(functions, platform).map_err(anyhow::Error::msg)?;
        // Lambda serves each app at its API's root; here it is mounted at `/{app}`, which
        // Swagger UI's "Try it out" and generated clients must prefix to every path.
        spec.servers = Some(vec![utoipa::openapi::server::Server::new(format!(
            "/{app}"
        ))]);
        docs = docs.merge(openapi::docs(app, spec));
    }
    let api = api.fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"detail": "Not found"})),
        )
    });
    // Swagger UI lives at `docs/` with its slash; only the API paths are slash-insensitive.
    Ok(docs.fallback_service(civic_core::layers::into_service(api)))
}

/// API Gateway hands a function the request alone: drop what local routing added to it (its
/// path parameters above all, which the function's router captures again), keeping the
/// caller's address for the rate limiter. The `/{app}` prefix it stripped is passed on as
/// `X-Forwarded-Prefix`, as a reverse proxy would, for apps that print their own URLs.
fn as_lambda_sees_it(req: axum::extract::Request, app: &str) -> axum::extract::Request {
    let (mut parts, body) = req.into_parts();
    if let Ok(prefix) = axum::http::HeaderValue::from_str(&format!("/{app}")) {
        parts.headers.insert("x-forwarded-prefix", prefix);
    }
    let caller = parts
        .extensions
        .remove::<axum::extract::ConnectInfo<SocketAddr>>();
    parts.extensions = Default::default();
    if let Some(c) = caller {
        parts.extensions.insert(c);
    }
    axum::extract::Request::from_parts(parts, body)
}

/// Runs each scheduled function at its template rate, as EventBridge would.
fn start_schedules(defs: &[FunctionDef], platform: &Platform) {
    for def in defs {
        let Some(job) = registry::find_job(&def.binary) else {
            continue;
        };
        for period in def.schedules.iter().filter_map(|e| template::rate(e)) {
            let platform = platform.clone();
            tokio::spawn(async move {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    tick.tick().await;
                    match (job.run)(&platform).await {
                        Ok(report) => tracing::info!(job = job.name, %report, "scheduled run done"),
                        Err(e) => {
                            tracing::warn!(job = job.name, error = %e, "scheduled run failed")
                        }
                    }
                }
            });
        }
    }
}

fn http_method(m: &str) -> Result<axum::http::Method> {
    m.parse()
        .with_context(|| format!("unknown HTTP method {m}"))
}

/// Serves until ctrl-c or SIGTERM; prints the bound address first (port 0 picks a free one).
pub async fn serve(opts: ServeOpts) -> Result<()> {
    // First: no device port opens beyond loopback without device logins.
    opts.mqtt.check()?;
    let yaml = preflight::template(opts.template.as_deref())?;
    let defs = template::parse(&yaml)?;
    let listener = preflight::listen(opts.host, opts.port, "--port").await?;
    let detector = Arc::new(preflight::detector()?);
    let platform = opts.platform().await?;
    // Before anything starts: a stale binary or template is a one-line error, not a half-start.
    let problems = check(&defs, &platform);
    if !problems.is_empty() {
        return Err(preflight::disagreement(&problems));
    }
    // Before the routers: the apps' command publisher is the broker's.
    let (platform, devices) =
        mqtt::Devices::start(&opts.mqtt, &yaml, platform, registry::DEVICES).await?;
    let uploads = s3events::Dispatcher::new(&defs, platform.clone(), opts.bucket.clone());
    let landing = landing::Landing {
        platform: platform.clone(),
        detector,
        mqtt: devices.url.clone(),
        rate_limit: opts.rate_limit_text(),
        occupancy_access: landing::occupancy_access(&yaml),
    };
    let app = router(&defs, &platform)?
        .merge(s3events::router(uploads))
        .merge(devices.router())
        .merge(landing::router(landing));
    start_schedules(&defs, &platform);
    start_ttl_sweeper(&platform);
    let addr = listener.local_addr()?;
    // The first line on stdout, which scripts and tests wait for: the address is its last word.
    println!("civic-local listening on http://{addr}");
    tracing::info!("open http://{addr}/ for the apps, their docs and health");
    tracing::info!("rate limits: {}", opts.rate_limit_text());
    tracing::info!("occupancy access: {}", landing::occupancy_access(&yaml));
    log_routes(&defs, addr);
    let make = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, make)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

/// DynamoDB deletes expired items in the background; the embedded store does it here.
fn start_ttl_sweeper(platform: &Platform) {
    let Backend::Embedded { store, .. } = &platform.backend else {
        return;
    };
    let store = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            let s = store.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.sweep_expired()).await {
                tracing::warn!(error = %e, "TTL sweep failed");
            }
        }
    });
}

fn log_routes(defs: &[FunctionDef], addr: SocketAddr) {
    for def in defs {
        let app = registry::find(&def.binary)
            .map(|f| f.app.name)
            .unwrap_or_default();
        for r in &def.routes {
            tracing::debug!(
                "{:<6} http://{addr}/{app}{} -> {}",
                r.method,
                r.path,
                def.binary
            );
        }
    }
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(dir: &std::path::Path) -> Platform {
        let backend = Backend::embedded(dir).unwrap();
        Platform::local(dir, backend, Limits::default()).unwrap()
    }

    fn template() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap()
    }

    #[test]
    fn the_template_and_the_routers_agree() {
        let dir = tempfile::tempdir().unwrap();
        let problems = check(
            &template::parse(&template()).unwrap(),
            &platform(dir.path()),
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// Each app's one document (what civic-local and Lambda serve): no schema name given to
    /// two different schemas, no operation served twice, and every `$ref` found.
    #[test]
    fn every_apps_document_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let mut problems = Vec::new();
        for functions in registry::APPS {
            let app = functions[0].app.name;
            match openapi::document(functions, &p) {
                Err(e) => problems.push(format!("{app}: {e}")),
                Ok(doc) => problems.extend(
                    openapi::dangling_refs(&doc)
                        .into_iter()
                        .map(|r| format!("{app}: {r} is not in the document")),
                ),
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// `GET /openapi.json` is routed to each app's first function (civic_runtime serves the
    /// app's document there on Lambda) and to no other.
    #[test]
    fn the_document_route_belongs_to_the_first_function() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let mut defs = template::parse(&template()).unwrap();
        let docs = Route {
            method: "GET".into(),
            path: openapi::DOCUMENT_PATH.into(),
        };
        let index = |defs: &[FunctionDef], binary: &str| {
            defs.iter().position(|d| d.binary == binary).unwrap()
        };
        let auth = index(&defs, "streetlight-auth");
        defs[auth].routes.retain(|r| *r != docs);
        let lights = index(&defs, "streetlight-lights");
        defs[lights].routes.push(docs);
        let problems = check(&defs, &p);
        assert!(
            problems.iter().any(|m| m.contains(
                "GET /openapi.json is served by streetlight-auth but no HttpApi event routes it"
            )),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|m| m.contains(
                "HttpApi event GET /openapi.json reaches no route of streetlight-lights"
            )),
            "{problems:#?}"
        );
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }

    #[test]
    fn a_disagreement_is_reported_and_refuses_to_serve() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let mut defs = template::parse(&template()).unwrap();
        let lights = defs
            .iter_mut()
            .find(|d| d.binary == "streetlight-lights")
            .unwrap();
        lights.routes = vec![
            Route {
                method: "GET".into(),
                path: "/api/lights/list".into(),
            },
            Route {
                method: "ANY".into(),
                path: "/api/bogus".into(),
            },
        ];
        let problems = check(&defs, &p);
        assert!(problems.iter().any(|m| m.contains("POST /api/lights/control is served by streetlight-lights but no HttpApi event routes it")), "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|m| m.contains("HttpApi event ANY /api/bogus reaches no route")),
            "{problems:#?}"
        );
        assert!(router(&defs, &p).is_err());

        let job = defs
            .iter_mut()
            .find(|d| d.binary == "occupancy-scheduler")
            .unwrap();
        job.schedules = vec!["cron(0 12 * * ? *)".into()];
        let problems = check(&defs, &p);
        assert!(
            problems
                .iter()
                .any(|m| m.contains("schedule \"cron(0 12 * * ? *)\" is not supported locally")),
            "{problems:#?}"
        );

        defs.retain(|d| d.binary != "streetlight-auth");
        defs[0].binary = "ghost".into();
        let problems = check(&defs, &p);
        assert!(
            problems
                .iter()
                .any(|m| m.contains("binary ghost is not linked")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|m| m.contains("function streetlight-auth is not declared")),
            "{problems:#?}"
        );
    }
}
