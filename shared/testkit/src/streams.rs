//! Reads a table's DynamoDB stream back from moto, as the aggregator on AWS would receive it.

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{Shard, ShardIteratorType};
use civic_store::stream::{Change, from_streams_record};

/// Every change recorded in `table`'s latest stream: each shard read from `TRIM_HORIZON` to its
/// end, parents before children (the order DynamoDB guarantees for any one item), each
/// record converted with [`from_streams_record`]. Panics on any failure: a test helper.
///
/// An open shard is read until a page comes back empty. moto returns a shard's records at
/// once; real DynamoDB may return an empty page before the end, so this is for moto only.
pub async fn changes(sdk: &SdkConfig, table: &str) -> Vec<Change> {
    let arn = latest_stream(sdk, table).await;
    let client = Client::new(sdk);
    let mut changes = Vec::new();
    for shard_id in lineage_order(shards(&client, &arn).await) {
        changes.extend(read_shard(&client, &arn, &shard_id).await);
    }
    changes
}

async fn latest_stream(sdk: &SdkConfig, table: &str) -> String {
    let out = aws_sdk_dynamodb::Client::new(sdk)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeTable {table}: {e:?}"));
    let arn = out.table().and_then(|t| t.latest_stream_arn());
    arn.unwrap_or_else(|| panic!("table {table} has no stream"))
        .to_owned()
}

/// All shards of the stream, following `LastEvaluatedShardId` pages.
async fn shards(client: &Client, arn: &str) -> Vec<Shard> {
    let mut shards = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .describe_stream()
            .stream_arn(arn)
            .set_exclusive_start_shard_id(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStream {arn}: {e:?}"));
        let description = out
            .stream_description()
            .expect("DescribeStream: no description");
        shards.extend(description.shards().iter().cloned());
        start = description.last_evaluated_shard_id().map(str::to_owned);
        if start.is_none() {
            return shards;
        }
    }
}

/// Shard ids with every shard after its parent (when the parent is still listed).
fn lineage_order(shards: Vec<Shard>) -> Vec<String> {
    let ids: Vec<&str> = shards.iter().filter_map(|s| s.shard_id()).collect();
    let mut done: Vec<String> = Vec::new();
    while done.len() < ids.len() {
        let before = done.len();
        for shard in &shards {
            let id = shard.shard_id().unwrap_or_default();
            let parent_done = shard
                .parent_shard_id()
                .is_none_or(|p| !ids.contains(&p) || done.iter().any(|d| d == p));
            if parent_done && !done.iter().any(|d| d == id) {
                done.push(id.to_owned());
            }
        }
        assert!(done.len() > before, "shard lineage has a cycle");
    }
    done
}

async fn read_shard(client: &Client, arn: &str, shard_id: &str) -> Vec<Change> {
    let out = client
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetShardIterator {shard_id}: {e:?}"));
    let mut iterator = out.shard_iterator().map(str::to_owned);
    let mut changes = Vec::new();
    while let Some(it) = iterator {
        let page = client
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRecords {shard_id}: {e:?}"));
        if page.records().is_empty() {
            break;
        }
        for record in page.records() {
            let change = from_streams_record(shard_id, record.clone());
            changes.push(change.unwrap_or_else(|e| panic!("record of {shard_id}: {e}")));
        }
        iterator = page.next_shard_iterator().map(str::to_owned);
    }
    changes
}
