//! `civic-local`: the whole platform in one process. It reads `template.yaml`, builds each
//! function's own router (the code Lambda runs) and serves every HttpApi route of the template
//! at `/{app}{path}`, on the embedded store or on DynamoDB + S3.

/// Every binary of this crate (the local program, the benches) allocates with mimalloc: list
/// endpoints allocate a string per field of every item, and glibc's malloc took a quarter of
/// their CPU in the profile of `civic-bench`. Its `no_thp` feature: with transparent huge pages
/// its arenas kept whole 2 MiB pages resident (the soak bench: 740 MiB after a minute of mixed
/// load with them, 328 MiB without).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod bench;

/// The local program's runtime. Every embedded-store read and password hash runs on tokio's
/// blocking pool, which by default grows to 512 threads, each with its own allocator heap:
/// under the soak bench's mixed load it held 138 threads and ~700 MiB. Four per core (at
/// least 8) keep the disk and the cores busy; more only queue on the same store and cores
/// (the soak bench stored 1.8 times more events with 8 than with 138).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads((4 * cores).max(8))
        .build()
}
pub mod console;
pub mod iot_rules;
pub mod landing;
pub mod model;
pub mod mqtt;
pub mod preflight;
pub mod provision;
pub mod registry;
mod routing;
pub mod s3events;
pub mod samlocal;
pub mod sim;
pub mod streams;
pub mod template;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use civic_core::{Limits, Platform, RatePlan};
use civic_store::Backend;

const MIB: usize = 1024 * 1024;

pub use routing::{check, router};
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
    /// API requests in flight at once, all apps together; past it a request gets 503 with
    /// `Retry-After` (civic_core's `Limits::in_flight` says why the default).
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = civic_core::layers::IN_FLIGHT as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Uploads to `/_uploads/` being received or with their S3 events still running; the next
    /// waits for a place, then gets 503 with `Retry-After`. Each holds up to 64 MiB in memory
    /// and its events may run the person detector, so a few at once keep the CPU busy while
    /// bounding memory to a few hundred MiB.
    #[arg(long, env = "MAX_UPLOADS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_uploads: u32,
    /// The embedded store's page cache in MiB: most of the process's memory beyond its own
    /// footprint once the data outgrows it (README, "Memory").
    #[arg(long, env = "STORE_CACHE_MB", default_value_t = civic_store::DEFAULT_CACHE_MB,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub store_cache_mb: u32,
    #[command(flatten)]
    pub mqtt: mqtt::MqttOpts,
    #[command(flatten)]
    pub console: console::ConsoleOpts,
}

impl ServeOpts {
    fn limits(&self) -> Limits {
        let mut l = Limits {
            body_bytes: self.body_limit,
            in_flight: self.max_in_flight as usize,
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
            BackendKind::Embedded => {
                let cache = self.store_cache_mb as usize * MIB;
                Backend::embedded_with_cache(&self.data_dir, cache)
            }
            .map_err(|e| preflight::store_error(&self.data_dir, e))?,
            BackendKind::Aws => Backend::aws(self.bucket.clone()).await,
        };
        provision::store(&backend).await?;
        Platform::local(&self.data_dir, backend, self.limits()).map_err(anyhow::Error::msg)
    }
}

/// A bounded place is full: 503 with `Retry-After`, as the apps' load shedding answers, for
/// civic-local's own endpoints (uploads, live connections), which answer in plain text.
pub(crate) fn busy(why: &'static str) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let retry = [(header::RETRY_AFTER, "1")];
    (StatusCode::SERVICE_UNAVAILABLE, retry, why).into_response()
}

fn parse_plan(s: &str) -> Result<RatePlan, String> {
    s.parse()
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

/// Serves until ctrl-c or SIGTERM; prints the bound address first (port 0 picks a free one).
pub async fn serve(opts: ServeOpts) -> Result<()> {
    // First: no device port opens beyond loopback without device logins.
    opts.mqtt.check()?;
    preflight::config()?;
    let yaml = preflight::template(opts.template.as_deref())?;
    let defs = template::parse(&yaml)?;
    let listener = preflight::listen(opts.host, opts.port, "--port").await?;
    let detector = Arc::new(preflight::detector()?);
    // The change-feed followers start before the broker, and publish live updates through it.
    let later = Arc::new(civic_iot::Later::default());
    let platform = opts.platform().await?.with_publisher(later.clone());
    // Before the tables are opened: the embedded store then records their changes.
    let followers = streams::start(&defs, &platform).await?;
    // Before anything starts: a stale binary or template is a one-line error, not a half-start.
    let problems = check(&defs, &platform);
    if !problems.is_empty() {
        return Err(preflight::disagreement(&problems));
    }
    // Before the routers: the apps' command publisher is the broker's.
    let (platform, devices) = mqtt::Devices::start(
        &opts.mqtt,
        &yaml,
        platform,
        registry::DEVICES,
        registry::LIVE,
    )
    .await?;
    later.set(platform.publisher());
    let uploads = s3events::Dispatcher::new(
        &defs,
        platform.clone(),
        opts.bucket.clone(),
        opts.max_uploads as usize,
    );
    let landing = landing::Landing {
        platform: platform.clone(),
        detector,
        mqtt: devices.url.clone(),
        rate_limit: opts.rate_limit_text(),
        occupancy_access: landing::occupancy_access(&yaml),
        streams: followers,
    };
    let app = router(&defs, &platform)?
        .merge(s3events::router(uploads))
        .merge(devices.router())
        .merge(landing::router(landing))
        .merge(console::router(&opts.console));
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
