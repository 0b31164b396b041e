//! The rollup aggregator counts each event exactly once in the shared rollups (every
//! device's, each outlet's), on the embedded store's feed and on moto's DynamoDB stream:
//! whether a batch comes twice, comes again overlapping, or the store fails a transaction
//! before or after committing it (a crash, or a lost answer, between its writes and the
//! function's success).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_tz::Tz;
use civic_core::Platform;
use civic_core::layers::Limits;
use civic_store::stream::{Change, Feed};
use civic_store::{Backend, Cond, Table, Update};
use civic_testkit::flaky::Flaky;
use civic_testkit::moto;
use ozone::gateway::{Device, DeviceRecord, Event, ingest};
use ozone::keys::device_key;
use ozone::rollup::{self, Granularity, Scope};
use ozone::{State, Treatment, aggregate};
use serde_json::json;

/// Devices and their outlets.
const DEVICES: [(&str, Option<i64>); 4] = [
    ("d-1", Some(1)),
    ("d-2", Some(1)),
    ("d-3", Some(2)),
    ("d-4", None),
];

/// 72 treatments, each in its own minute from 10:00 on 2025-09-16: more
/// distinct buckets than one transaction holds, so a batch takes several.
fn events() -> Vec<(usize, String, Treatment)> {
    (0..72)
        .map(|i| {
            let at = format!("2025-09-16T{:02}:{:02}:07Z", 10 + i / 60, i % 60);
            (i % DEVICES.len(), at, Treatment::ALL[i % 3])
        })
        .collect()
}

/// Stores the devices and ingests [`events`] (per-device rollups inline, shared ones left to
/// the aggregator).
async fn ingest_all(s: &State) {
    for (id, outlet) in DEVICES {
        let item = json!({"PK": device_key(id).pk, "SK": device_key(id).sk, "device_id": id,
                          "assigned_at": "2025-09-01T00:00:00Z", "outlet_id": outlet});
        s.table
            .put(item.as_object().unwrap().clone(), Cond::Always)
            .await
            .unwrap();
    }
    for (n, (d, at, t)) in events().into_iter().enumerate() {
        let (id, outlet) = DEVICES[d];
        let record = DeviceRecord {
            device: Device {
                device_id: id.into(),
                outlet_id: outlet,
                ..Device::default()
            },
            token_digest: None,
            version: 1,
            last_receipt: 0,
        };
        let e = Event {
            device_id: id.into(),
            event_type: t.as_str().into(),
            event_id: format!("e-{n}"),
            event: "treatment".into(),
            treatment: Some(t),
            counter: None,
            occurred_at: at.clone(),
            device_timestamp: Some(at),
            wifi_status: None,
            payload: None,
            count_basic: None,
            count_standard: None,
            count_premium: None,
            firmware: None,
            received_at: "2025-09-16T13:00:00Z".into(),
        };
        ingest(s, &record, &e, Update::new(device_key(id)))
            .await
            .unwrap();
    }
}

/// What the shared rollups must hold: hour buckets of every device, and of each outlet.
fn expected() -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (d, at, _) in events() {
        let hour = format!("{}:00Z", &at[..13]);
        *out.entry(format!("all {hour}")).or_default() += 1;
        if let Some(o) = DEVICES[d].1 {
            *out.entry(format!("outlet {o} {hour}")).or_default() += 1;
        }
    }
    out
}

/// What the shared rollups hold (hour and day buckets must agree).
async fn counted(table: &dyn Table) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (name, scope) in [
        ("all", Scope::All),
        ("outlet 1", Scope::Outlet(1)),
        ("outlet 2", Scope::Outlet(2)),
    ] {
        let hours = rollup::read(
            table,
            Tz::UTC,
            &scope,
            Granularity::Hour,
            "2025-09-16T00:00Z",
            "2025-09-16T23:00Z",
        )
        .await
        .unwrap();
        let days = rollup::read(
            table,
            Tz::UTC,
            &scope,
            Granularity::Day,
            "2025-09-16",
            "2025-09-16",
        )
        .await
        .unwrap();
        let sum: i64 = hours.values().map(|c| c.total).sum();
        assert_eq!(days.get("2025-09-16").map_or(0, |c| c.total), sum, "{name}");
        let by_kind: i64 = hours
            .values()
            .map(|c| c.basic + c.standard + c.premium)
            .sum();
        assert_eq!(by_kind, sum, "{name}: treatments add up");
        for (hour, c) in hours {
            out.insert(format!("{name} {hour}"), c.total);
        }
    }
    out
}

/// Runs every delivery scenario on `s`, whose table's changes `changes` reads.
async fn deliveries_count_once(s: State, changes: Vec<Change>) {
    let events: Vec<&Change> = changes
        .iter()
        .filter(|c| {
            c.new_image
                .as_ref()
                .is_some_and(|i| i["PK"].as_str().unwrap().starts_with("EVENTS#"))
        })
        .collect();
    assert_eq!(events.len(), 72, "every event is in the feed");
    let table = s.table.clone();
    assert!(
        counted(table.as_ref()).await.values().all(|n| *n == 0),
        "nothing counted inline"
    );

    // Crashes: the 1st transaction fails before committing, the 2nd after.
    let flaky = State {
        table: Arc::new(Flaky::new(table.clone(), vec![(1, false), (2, true)])),
        ..s.clone()
    };
    assert!(aggregate::apply(&flaky, changes.clone()).await.is_err());
    assert!(aggregate::apply(&flaky, changes.clone()).await.is_err());
    // A part of the batch again, then the whole, then the whole again.
    let half = changes.len() / 2;
    aggregate::apply(&s, changes[..half].to_vec())
        .await
        .unwrap();
    aggregate::apply(&s, changes.clone()).await.unwrap();
    aggregate::apply(&s, changes.clone()).await.unwrap();
    assert_eq!(counted(table.as_ref()).await, expected());
}

fn with_fleet_stream(p: &Platform) -> State {
    let s = State::new(p);
    assert_eq!(s.config.fleet_rollups, aggregate::Mode::Stream);
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_feed_is_aggregated_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let Backend::Embedded { store, .. } = &backend else {
        unreachable!()
    };
    let feed = store.enable_stream("civic-ozone").unwrap();
    let p = Platform::local(dir.path(), backend.clone(), Limits::default()).unwrap();
    let s = with_fleet_stream(&p);
    ingest_all(&s).await;
    let changes = feed.changes(None, 10_000).await.unwrap();
    deliveries_count_once(s, changes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dynamodb_stream_is_aggregated_exactly_once() {
    let sdk = moto::aws_config().await;
    let backend = Backend::aws_with_config(&sdk, moto::unique("civic"));
    let table = moto::unique("civic-ozone");
    backend.ensure_table(&table).await.unwrap();
    let p = Platform::new(backend.clone(), vec![7; 32], Limits::default()).unwrap();
    let s = State {
        table: backend.table(&table),
        ..with_fleet_stream(&p)
    };
    ingest_all(&s).await;
    let changes = civic_testkit::streams::changes(&sdk, &table).await;
    deliveries_count_once(s, changes).await;
}
