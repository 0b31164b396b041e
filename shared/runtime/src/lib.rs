//! Lambda entry glue. A function's `main` is one call: build the platform once at init
//! (AWS clients included), hand the app's router to `lambda_http`.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use civic_core::{ClientIp, Function, Platform, S3Function, Scheduled};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::{fmt, prelude::*};

pub use lambda_http::Error;

mod iot;
pub mod live;
mod stream;
pub use iot::run_iot;
pub use live::run_live_authorizer;
pub use stream::run_stream;

/// Serves one endpoint group as an API Gateway HTTP API function.
pub async fn run_http(function: &Function) -> Result<(), Error> {
    init_tracing(true);
    let platform = iot::platform(&function.app).await?;
    let router = http_router(function, &platform)?;
    lambda_http::run(civic_core::layers::into_service(router)).await
}

/// The router Lambda runs for `function`: its routes in the standard stack and, on the app's
/// first function (`FUNCTIONS[0]`, which the template routes `GET /openapi.json` to), the whole
/// app's OpenAPI document, the same [`civic_core::openapi::document`] civic-local serves at
/// `/{app}/openapi.json`. Built at init: a document that does not merge fails the cold start.
pub fn http_router(function: &Function, platform: &Platform) -> Result<axum::Router, Error> {
    let (mut router, _) = function.build(platform);
    if let Some(functions) = function.document_functions() {
        let doc = civic_core::openapi::document(functions, platform)?;
        router = router.merge(civic_core::openapi::document_route(&doc));
    }
    Ok(router.layer(middleware::from_fn(client_ip)))
}

/// Runs a scheduled job once per EventBridge event.
pub async fn run_schedule(job: &'static Scheduled) -> Result<(), Error> {
    init_tracing(true);
    let platform = iot::platform(&job.app).await?;
    let handler =
        lambda_runtime::service_fn(move |_: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let run = (job.run)(&platform);
            async move {
                let report = run.await?;
                tracing::info!(job = job.name, %report, "scheduled run done");
                Ok::<_, Error>(report)
            }
        });
    lambda_runtime::run(handler).await
}

/// Runs an S3 event consumer once per `ObjectCreated` event. An error fails the invocation, so
/// Lambda retries the event (asynchronous invocations are retried twice).
pub async fn run_s3(function: &'static S3Function) -> Result<(), Error> {
    init_tracing(true);
    let platform = iot::platform(&function.app).await?;
    let handler = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<aws_lambda_events::s3::S3Event>| {
            let run = (function.run)(&platform, event.payload);
            async move {
                let report = run.await?;
                tracing::info!(function = function.name, %report, "S3 event done");
                Ok::<_, Error>(report)
            }
        },
    );
    lambda_runtime::run(handler).await
}

/// JSON logs in Lambda (CloudWatch parses them); readable lines locally. `RUST_LOG` filters
/// by target and level (`info,civic_local=debug`).
///
/// A [`Targets`] filter, not `EnvFilter`: that one's span and field directives bring a regex
/// engine into every Lambda bootstrap (issue 20: sizes), and nobody here filters on fields.
pub fn init_tracing(json: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        // civic-local's embedded broker sits behind its device port, which logs what devices
        // do; rumqttd's own lines repeat them, and call its readiness probe an ERROR.
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("rumqttd", LevelFilter::OFF)
        });
    let layer = fmt::layer().with_target(false).with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(layer.json().without_time()).try_init()
    } else {
        registry.with(layer).try_init()
    };
}

/// API Gateway knows the caller's address; the rate limiter keys on it.
async fn client_ip(mut req: Request, next: Next) -> Response {
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.http.source_ip.as_deref().and_then(|s| s.parse().ok())
        }
        _ => None,
    };
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}
