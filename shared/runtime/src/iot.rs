//! IoT Core glue: topic-rule consumers, and the device publisher of apps that command devices.

use civic_core::{App, IotFunction, Platform};
use serde_json::json;

use crate::{Error, init_tracing};

/// The platform from the environment, for every kind of function (HTTP, topic rule, stream,
/// S3, schedule). Commands and live updates go out through IoT Core's data plane, and devices
/// are provisioned under `DEVICE_POLICY`, each client made at its first use
/// ([`Platform::publisher`], [`Platform::provisioner`]).
pub(crate) async fn platform(app: &App) -> Result<Platform, Error> {
    (app.config)()?;
    Ok(Platform::from_env().await?)
}

/// Runs a topic-rule consumer: the event is the rule's `SELECT` output. A rejected message
/// (malformed, unknown device) is logged and the invocation succeeds, since a retry cannot
/// help; any other error fails it, so Lambda retries.
pub async fn run_iot(function: &'static IotFunction) -> Result<(), Error> {
    init_tracing(true);
    let platform = platform(&function.app).await?;
    let handler = (function.handler)(&platform);
    let service = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            // Kept for the log: a rejected message is not retried, so the log is its record.
            let message = event.payload.to_string();
            let run = handler(event.payload);
            async move {
                match run.await {
                    Ok(report) => Ok(report),
                    Err(e) if e.status().is_client_error() => {
                        tracing::warn!(function = function.name, error = %e, message, "message rejected");
                        Ok(json!({"rejected": e.to_string()}))
                    }
                    Err(e) => Err(Error::from(e)),
                }
            }
        },
    );
    lambda_runtime::run(service).await
}
