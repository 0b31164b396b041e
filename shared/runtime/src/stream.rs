//! DynamoDB stream consumers: an app's aggregator, fed the table's change feed.

use std::future::Future;

use aws_lambda_events::event::dynamodb::TimeWindowEvent;
use civic_core::{App, Platform};
use civic_store::stream::{Change, from_lambda_event};
use serde_json::json;

use crate::{Error, init_tracing};

/// Runs a DynamoDB stream consumer: each invocation's records become [`Change`]s of the shard
/// the event names (see [`civic_store::stream`] for why the mapping needs a tumbling window),
/// and `apply` gets them in stream order with the state `state` built once at init.
///
/// Any error fails the whole batch, so the event source mapping retries it (bisecting, then
/// sending it to its failure destination): `apply` keeps a per-shard checkpoint, so records of
/// a retried batch that were already applied change nothing. The answer carries the empty
/// window state Lambda requires of a tumbling-window consumer.
pub async fn run_stream<S, F, Fut>(
    app: &App,
    state: fn(&Platform) -> S,
    apply: F,
) -> Result<(), Error>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, Vec<Change>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = civic_core::Result<()>> + Send,
{
    init_tracing(true);
    (app.config)()?;
    let platform = Platform::from_env().await?;
    let state = state(&platform);
    let apply = &apply;
    let handler =
        lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<TimeWindowEvent>| {
            let state = state.clone();
            async move {
                let changes = from_lambda_event(event.payload)?;
                if let (Some(first), Some(last)) = (changes.first(), changes.last()) {
                    let (shard, from, to) =
                        (first.shard.clone(), first.seq.clone(), last.seq.clone());
                    let count = changes.len();
                    apply(state, changes).await?;
                    tracing::info!(
                        app = app.name,
                        shard,
                        from,
                        to,
                        count,
                        "stream batch applied"
                    );
                }
                Ok::<_, Error>(json!({"state": {}, "batchItemFailures": []}))
            }
        });
    lambda_runtime::run(handler).await
}
