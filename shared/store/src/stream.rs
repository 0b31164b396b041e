//! Change feeds: what DynamoDB Streams delivers (view type `NEW_IMAGE`) and what the embedded
//! store emulates, in one shape, so one aggregator consumes both.
//!
//! Records of one shard come in commit order; `seq` orders them. Consumers keep their own
//! checkpoint (the `seq` of the last record they applied) and skip records at or below it, so a
//! redelivered batch changes nothing.

use crate::Item;

/// What a change did to its item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

/// One committed change of a table.
#[derive(Clone, Debug)]
pub struct Change {
    /// The stream shard it came from.
    pub shard: String,
    /// Position within the shard, normalised by [`seq`] so string order is stream order.
    pub seq: String,
    pub kind: ChangeKind,
    /// The item after the change; `None` for a removal.
    pub new_image: Option<Item>,
}

/// A table's change feed, read in order and trimmed once consumed. Trimming is only garbage
/// collection: consumers keep their own checkpoint, so records read again are skipped.
#[async_trait::async_trait]
pub trait Feed: Send + Sync {
    /// Up to `limit` changes after `after` (a [`Change::seq`]; `None`: from the oldest kept).
    async fn changes(&self, after: Option<&str>, limit: usize) -> crate::Result<Vec<Change>>;
    /// Forgets the changes up to and including `upto`.
    async fn trim(&self, upto: &str) -> crate::Result<()>;
}

/// Width of a normalised sequence number. DynamoDB's are decimal strings of up to 40 digits.
pub const SEQ_WIDTH: usize = 40;

/// A sequence number zero-padded to [`SEQ_WIDTH`], so comparing strings compares positions.
pub fn seq(raw: impl std::fmt::Display) -> String {
    format!("{raw:0>SEQ_WIDTH$}")
}

// DynamoDB Streams records, as Lambda delivers them and as the Streams API returns them.
//
// Which shard a record came from. The checkpoint is only exact per shard: DynamoDB orders
// records within a shard (and across a parent shard and its children, which Lambda reads
// parent first), never across sibling shards, which one event source mapping reads
// concurrently, one batch per shard at a time. A table at fleet scale has many partitions, so
// many open shards: one checkpoint per stream ARN would let shard A's checkpoint run past
// records shard B has not delivered yet, and drop them.
//
// A plain Lambda stream event does not name its shard: a record carries `eventID` (a random
// id per record), `eventSourceARN` (the stream, not the shard) and `SequenceNumber` (ordered
// only within its shard). The shard appears in the event when the mapping has a tumbling
// window (`TumblingWindowInSeconds`): the event then carries `shardId`, and every record of one
// invocation comes from that shard. So the Lambda conversion takes the shard from there and
// refuses an event without it; the aggregator's mapping sets a window (template.yaml) only so
// that events name their shard. The window's state is not used: each invocation is applied
// with its checkpoint, and the answer carries an empty state.
//
// Within one shard the mapping must also deliver in order: `ParallelizationFactor: 1`. With
// more, one shard's records are split by partition key over concurrent batches, and a batch
// that checkpoints a later sequence number makes the other batch's earlier records look done.

use aws_lambda_events::event::dynamodb::{EventRecord, TimeWindowEvent};
use aws_sdk_dynamodbstreams::types::{OperationType, Record};

use crate::StoreError;

/// The changes of one Lambda invocation of a DynamoDB stream mapping with a tumbling window,
/// in stream order, all from the shard the event names.
pub fn from_lambda_event(event: TimeWindowEvent) -> crate::Result<Vec<Change>> {
    let Some(shard) = event
        .time_window_properties
        .shard_id
        .filter(|s| !s.is_empty())
    else {
        return Err(StoreError::Invalid(
            "the stream event names no shard: its event source mapping needs a tumbling window \
             (TumblingWindowInSeconds) for the per-shard checkpoint"
                .into(),
        ));
    };
    let mut changes = event
        .dynamo_db_event
        .records
        .into_iter()
        .map(|r| from_lambda_record(&shard, r))
        .collect::<crate::Result<Vec<_>>>()?;
    // Lambda delivers a shard's records in order the first time, and says a redelivery may
    // not be: applied out of order, a later checkpoint would hide an earlier record.
    changes.sort_by(|a, b| a.seq.cmp(&b.seq));
    Ok(changes)
}

/// One record of a Lambda DynamoDB stream event, read from `shard`.
pub fn from_lambda_record(shard: &str, record: EventRecord) -> crate::Result<Change> {
    let kind = match record.event_name.as_str() {
        "INSERT" => ChangeKind::Insert,
        "MODIFY" => ChangeKind::Modify,
        "REMOVE" => ChangeKind::Remove,
        other => return Err(bad_record(format!("unknown eventName {other:?}"))),
    };
    let raw_seq = record.change.sequence_number.as_deref();
    let seq = seq(raw_seq.ok_or_else(|| bad_record("no SequenceNumber".into()))?);
    // The event type fills an absent image with an empty map.
    let image = Some(record.change.new_image).filter(|i| !i.is_empty());
    change(shard, seq, kind, image.map(image_item).transpose()?)
}

/// One record of the DynamoDB Streams API (`GetRecords`), read from `shard`.
pub fn from_streams_record(shard: &str, record: Record) -> crate::Result<Change> {
    let kind = match record.event_name() {
        Some(OperationType::Insert) => ChangeKind::Insert,
        Some(OperationType::Modify) => ChangeKind::Modify,
        Some(OperationType::Remove) => ChangeKind::Remove,
        other => return Err(bad_record(format!("unknown eventName {other:?}"))),
    };
    let body = record
        .dynamodb
        .ok_or_else(|| bad_record("no dynamodb body".into()))?;
    let raw_seq = body.sequence_number.as_deref();
    let seq = seq(raw_seq.ok_or_else(|| bad_record("no SequenceNumber".into()))?);
    change(
        shard,
        seq,
        kind,
        body.new_image.map(image_item).transpose()?,
    )
}

/// Checks that the image matches the kind: a removal has none (with `NEW_IMAGE` the item is
/// gone), an insert or modify must have one, or the stream lacks the `NEW_IMAGE` view.
fn change(
    shard: &str,
    seq: String,
    kind: ChangeKind,
    image: Option<Item>,
) -> crate::Result<Change> {
    let new_image = match (kind, image) {
        (ChangeKind::Remove, _) => None,
        (_, Some(image)) => Some(image),
        (_, None) => {
            return Err(bad_record(format!(
                "{kind:?} at {seq} has no NewImage: the stream view type must include NEW_IMAGE"
            )));
        }
    };
    Ok(Change {
        shard: shard.to_owned(),
        seq,
        kind,
        new_image,
    })
}

/// An image as an item, numbers as JSON numbers: the same serde_dynamo conversion the DynamoDB
/// backend's reads use.
fn image_item(image: impl Into<serde_dynamo::Item>) -> crate::Result<Item> {
    serde_dynamo::from_item(image).map_err(|e| bad_record(format!("image: {e}")))
}

fn bad_record(msg: String) -> StoreError {
    StoreError::Corrupt(format!("stream record: {msg}"))
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{AttributeValue, StreamRecord};
    use serde_json::json;

    /// A tumbling-window event as Lambda sends it (records shaped like the AWS docs' sample).
    fn lambda_event(shard: Option<&str>) -> TimeWindowEvent {
        let record = |id: &str, name: &str, seq: &str, image: serde_json::Value| {
            json!({"eventID": id, "eventName": name, "eventVersion": "1.1",
                   "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
                   "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/2024",
                   "dynamodb": {"Keys": {"PK": {"S": "A"}, "SK": {"S": "1"}},
                                "NewImage": image, "SequenceNumber": seq, "SizeBytes": 40,
                                "StreamViewType": "NEW_IMAGE"}})
        };
        let image = json!({"PK": {"S": "A"}, "SK": {"S": "1"}, "n": {"N": "42"},
                           "x": {"N": "2.5"}, "on": {"BOOL": true}});
        let mut removed = record("3", "REMOVE", "1000", json!(null));
        removed["dynamodb"]
            .as_object_mut()
            .unwrap()
            .remove("NewImage");
        let event = json!({
            "Records": [record("2", "MODIFY", "900", image.clone()), removed,
                        record("1", "INSERT", "800", image)],
            "window": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:15:00Z"},
            "state": {}, "shardId": shard, "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/2024",
            "isFinalInvokeForWindow": false, "isWindowTerminatedEarly": false,
        });
        serde_json::from_value(event).unwrap()
    }

    #[test]
    fn lambda_events_become_changes_of_their_shard_in_stream_order() {
        let changes = from_lambda_event(lambda_event(Some("shardId-0001"))).unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [ChangeKind::Insert, ChangeKind::Modify, ChangeKind::Remove]
        );
        assert!(changes.iter().all(|c| c.shard == "shardId-0001"));
        assert_eq!(changes[0].seq, seq("800"));
        assert!(changes[2].new_image.is_none());
        let image = changes[0].new_image.as_ref().unwrap();
        assert_eq!(image["n"], json!(42));
        assert!(image["n"].is_u64() || image["n"].is_i64());
        assert_eq!(image["x"], json!(2.5));
        assert_eq!(image["on"], json!(true));
    }

    #[test]
    fn an_event_that_names_no_shard_is_refused() {
        let err = from_lambda_event(lambda_event(None)).unwrap_err();
        assert!(err.to_string().contains("TumblingWindowInSeconds"), "{err}");
    }

    #[test]
    fn a_write_without_new_image_is_refused() {
        let mut event = lambda_event(Some("s"));
        event.dynamo_db_event.records[0].change.new_image = Default::default();
        let err = from_lambda_event(event).unwrap_err();
        assert!(err.to_string().contains("NEW_IMAGE"), "{err}");
    }

    #[test]
    fn streams_api_records_become_changes() {
        let body = StreamRecord::builder()
            .sequence_number("12")
            .new_image("PK", AttributeValue::S("A".into()))
            .new_image("n", AttributeValue::N("-7".into()))
            .build();
        let record = Record::builder()
            .event_name(OperationType::Insert)
            .dynamodb(body)
            .build();
        let change = from_streams_record("shard-9", record).unwrap();
        assert_eq!(
            (change.shard.as_str(), change.kind),
            ("shard-9", ChangeKind::Insert)
        );
        assert_eq!(change.seq, seq(12));
        assert_eq!(change.new_image.unwrap()["n"], json!(-7));
        let removed = Record::builder()
            .event_name(OperationType::Remove)
            .dynamodb(StreamRecord::builder().sequence_number("13").build())
            .build();
        assert!(
            from_streams_record("s", removed)
                .unwrap()
                .new_image
                .is_none()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_sequence_numbers_sort_like_numbers() {
        let small = seq("900");
        let big = seq("49612345678901234567890123456789");
        assert_eq!(small.len(), SEQ_WIDTH);
        assert!(small < big);
        assert_eq!(seq(7u64), format!("{}7", "0".repeat(39)));
    }
}
