//! DynamoDB stream consumers: an app's aggregator, fed its table's change feed.

use aws_lambda_events::event::dynamodb::TimeWindowEvent;
use civic_core::StreamFunction;
use civic_store::stream::from_lambda_event;
use serde_json::json;

use crate::{Error, init_tracing};

/// Runs a DynamoDB stream consumer: each invocation's records become
/// [`civic_store::stream::Change`]s of the shard the event names (see [`civic_store::stream`]
/// for why the mapping needs a tumbling window), handed to the function in stream order.
///
/// Any error fails the whole batch, so the event source mapping retries it (bisecting, then
/// reporting it to its failure destination): the function keeps a per-shard checkpoint, so
/// records of a retried batch that it already applied change nothing. The answer carries the
/// empty window state Lambda requires of a tumbling-window consumer.
pub async fn run_stream(function: &'static StreamFunction) -> Result<(), Error> {
    init_tracing(true);
    let platform = crate::iot::platform(&function.app).await?;
    let handler = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<TimeWindowEvent>| {
            // A window's last invocation may carry no records: nothing to run.
            let batch = from_lambda_event(event.payload).map(|changes| {
                let (first, last) = (changes.first()?, changes.last()?);
                let range = (first.shard.clone(), first.seq.clone(), last.seq.clone());
                Some((range, (function.run)(&platform, changes)))
            });
            async move {
                if let Some(((shard, from, to), run)) = batch? {
                    let report = run.await?;
                    tracing::info!(function = function.name, shard, from, to, %report, "stream batch done");
                }
                Ok::<_, Error>(json!({"state": {}, "batchItemFailures": []}))
            }
        },
    );
    lambda_runtime::run(handler).await
}
