//! The template's `DynamoDB` stream events, run locally as Lambda's event source mapping
//! would: each stream function gets its app table's changes in order, in batches, and a batch
//! that fails comes again (the functions are exactly-once by their own checkpoints).
//!
//! On the embedded store the feed is the store's own ([`civic_store::Embedded::enable_stream`]);
//! on `--backend aws` it is the table's DynamoDB stream, read shard by shard with the Streams
//! API. Both are polled: the lag of a change is at most about one [`POLL`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use civic_core::{Platform, StreamFunction};
use civic_store::Backend;
use civic_store::stream::{Change, Feed, from_streams_record};

use crate::registry;
use crate::template::FunctionDef;

/// How often an idle feed is asked for news.
pub const POLL: Duration = Duration::from_millis(200);
/// The most records per batch (the template's `BatchSize` is the AWS figure).
const BATCH: usize = 1000;

/// How far a follower got: when (epoch ms) it last started a read that found nothing new, so
/// every change committed before then has been delivered. `/_local/health` shows it, and tests
/// wait on it instead of sleeping.
#[derive(Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn caught_up_at(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn mark(&self, read_started: u64) {
        self.0.fetch_max(read_started, Ordering::Relaxed);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts a follower per stream function the template declares, and returns their progress
/// by function name. Call before anything opens the tables, so the embedded store records
/// their writes from the start.
pub async fn start(
    defs: &[FunctionDef],
    platform: &Platform,
) -> Result<BTreeMap<&'static str, Progress>> {
    let mut followers = BTreeMap::new();
    for def in defs.iter().filter(|d| !d.streams.is_empty()) {
        let Some(f) = registry::find_stream(&def.binary) else {
            continue;
        };
        let table = platform.table_name(f.app.name);
        let platform = platform.clone();
        let progress = Progress::default();
        followers.insert(f.name, progress.clone());
        match &platform.backend {
            Backend::Embedded { store, .. } => {
                let feed = store
                    .enable_stream(&table)
                    .with_context(|| format!("enabling the change feed of {table}"))?;
                tokio::spawn(follow_embedded(feed, f, platform, progress));
            }
            Backend::Aws { .. } => {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let reader = Shards::new(&sdk, &table);
                tokio::spawn(follow_dynamo(reader, f, platform, progress));
            }
        }
    }
    Ok(followers)
}

/// Runs `f` on one batch; whether it was applied.
async fn deliver(f: &StreamFunction, platform: &Platform, batch: Vec<Change>) -> bool {
    match (f.run)(platform, batch).await {
        Ok(report) => {
            tracing::debug!(function = f.name, %report, "stream batch applied");
            true
        }
        Err(e) => {
            tracing::warn!(function = f.name, error = %e, "stream batch failed; retrying");
            false
        }
    }
}

async fn follow_embedded(
    feed: impl Feed,
    f: &'static StreamFunction,
    platform: Platform,
    progress: Progress,
) {
    // The feed keeps what is not trimmed; after a restart it starts over and the function's
    // checkpoint skips what it already applied.
    let mut after: Option<String> = None;
    loop {
        let started = now_ms();
        let batch = match feed.changes(after.as_deref(), BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(function = f.name, error = %e, "reading the change feed failed");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|c| c.seq.clone()) else {
            progress.mark(started);
            tokio::time::sleep(POLL).await;
            continue;
        };
        if deliver(f, &platform, batch).await {
            if let Err(e) = feed.trim(&last).await {
                tracing::warn!(function = f.name, error = %e, "trimming the change feed failed");
            }
            after = Some(last);
        } else {
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn follow_dynamo(
    mut shards: Shards,
    f: &'static StreamFunction,
    platform: Platform,
    progress: Progress,
) {
    loop {
        let started = now_ms();
        // Poll again at once only while batches keep coming and applying.
        let mut busy = false;
        match shards.poll().await {
            Ok(batches) => {
                if batches.iter().all(|(_, _, b)| b.is_empty()) {
                    progress.mark(started);
                }
                for (shard, next, batch) in batches {
                    let empty = batch.is_empty();
                    let applied = empty || deliver(f, &platform, batch).await;
                    if applied {
                        shards.at.insert(shard, next);
                    }
                    busy |= !empty && applied;
                }
            }
            Err(e) => tracing::warn!(function = f.name, error = %e, "reading the stream failed"),
        }
        if !busy {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A DynamoDB stream's shards and where each one's reading stands.
///
/// Each poll asks for a fresh iterator after the last record applied, rather than keeping the
/// `NextShardIterator` of the previous page: iterators expire after 15 minutes, and moto's
/// stay on a stale copy of the shard after a cancelled transaction (they then return the
/// cancelled writes and miss every later one).
struct Shards {
    table: String,
    dynamo: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    /// Shard id → sequence number of the last record applied (`None`: none yet).
    at: BTreeMap<String, Option<String>>,
}

/// A shard's records after its position, and the raw sequence number of the last one.
type ShardBatch = (String, Option<String>, Vec<Change>);

impl Shards {
    fn new(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        Self {
            table: table.to_owned(),
            dynamo: aws_sdk_dynamodb::Client::new(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
            at: BTreeMap::new(),
        }
    }

    /// One batch per shard (new shards from their oldest record). A shard only moves on when
    /// its entry in `at` is set to the batch's last sequence number, so a failed batch is read
    /// again.
    async fn poll(&mut self) -> Result<Vec<ShardBatch>> {
        let arn = self.stream_arn().await?;
        let described = self
            .streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await?;
        let shards = described
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default();
        for id in shards.iter().filter_map(|s| s.shard_id()) {
            self.at.entry(id.to_owned()).or_default();
        }
        let mut out = Vec::new();
        for (shard, after) in &self.at {
            let iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard)
                .set_shard_iterator_type(Some(match after {
                    Some(_) => ShardIteratorType::AfterSequenceNumber,
                    None => ShardIteratorType::TrimHorizon,
                }))
                .set_sequence_number(after.clone())
                .send()
                .await?;
            let Some(iterator) = iterator.shard_iterator else {
                continue;
            };
            let page = self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(BATCH as i32)
                .send()
                .await?;
            let last = page
                .records()
                .last()
                .and_then(|r| r.dynamodb()?.sequence_number().map(str::to_owned));
            let changes = page
                .records()
                .iter()
                .map(|r| from_streams_record(shard, r.clone()))
                .collect::<civic_store::Result<Vec<_>>>()?;
            out.push((shard.clone(), last.or_else(|| after.clone()), changes));
        }
        Ok(out)
    }

    async fn stream_arn(&self) -> Result<String> {
        let described = self
            .dynamo
            .describe_table()
            .table_name(&self.table)
            .send()
            .await?;
        let arn = described.table().and_then(|t| t.latest_stream_arn());
        Ok(arn
            .with_context(|| format!("table {} has no stream", self.table))?
            .to_owned())
    }
}
