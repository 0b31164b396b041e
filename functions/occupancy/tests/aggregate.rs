//! The facility aggregator counts each camera write's delta exactly once in the facility's
//! counters, on the embedded store's feed and on moto's DynamoDB stream: whether a batch comes
//! twice, comes again overlapping, or the store fails a transaction before or after committing
//! it (a crash, or a lost answer, between its writes and the function's success). A later
//! write of a camera that carries an earlier write's delta (resolving an alert) counts nothing.

use std::sync::Arc;

use civic_core::Platform;
use civic_core::item::{indexed, to_item};
use civic_core::layers::Limits;
use civic_store::stream::{Change, Feed};
use civic_store::{Backend, Cond, Table, VERSION};
use civic_testkit::flaky::Flaky;
use civic_testkit::moto;
use occupancy::cameras::{Camera, CameraType, Direction, Line, Record};
use occupancy::ingest::{CrossingEvent, ingest};
use occupancy::keys::{by_id, facility_key, line_key, lines_index};
use occupancy::{State, aggregate, alerts};
use serde_json::{Value, json};

/// Cameras 1..=3; camera 1 holds 3 people, so it opens capacity alerts.
const CAMERAS: i64 = 3;

/// A camera and its bidirectional line (same id), as registration and line creation leave them.
async fn seed(table: &dyn Table) {
    for id in 1..=CAMERAS {
        let camera = Camera {
            id,
            camera_id: format!("cam-{id}"),
            camera_name: format!("Entrance {id}"),
            location: None,
            camera_type: CameraType::Bidirectional,
            is_active: true,
            max_occupancy: (id == 1).then_some(3),
            resolution_width: 1920,
            resolution_height: 1080,
            created_at: "2026-11-01T00:00:00Z".into(),
        };
        let record = Record {
            camera,
            live: Default::default(),
            version: 1,
        };
        table
            .put(record.to_item().unwrap(), Cond::Always)
            .await
            .unwrap();
        let line = Line {
            id,
            camera_id: id,
            line_name: "door".into(),
            x1: 0,
            y1: 540,
            x2: 1920,
            y2: 540,
            direction: Direction::Bidirectional,
            confidence_threshold: 0.5,
            is_active: true,
            created_at: "2026-11-01T00:00:00Z".into(),
        };
        let keys = indexed(line_key(id), lines_index(id), by_id(id));
        let mut item = to_item(&line, &keys).unwrap();
        item.insert(VERSION.into(), 1.into());
        table.put(item, Cond::Always).await.unwrap();
    }
}

/// 40 batches over the cameras, each a few entries and an exit a minute apart; then the
/// first alert found is resolved (a camera write carrying a stale delta).
async fn ingest_all(s: &State) {
    seed(s.table.as_ref()).await;
    for n in 0..40i64 {
        let cam = n % CAMERAS + 1;
        let events: Vec<CrossingEvent> = (0..=n % 4)
            .map(|j| {
                let dir = if j == 3 { "exit" } else { "entry" };
                let at = format!("2026-11-02T{:02}:{:02}:{:02}Z", 8 + n / 20, n % 60, j);
                serde_json::from_value(json!({"line_id": cam, "direction": dir,
                    "timestamp": at, "confidence": 0.9, "track_id": format!("t{n}-{j}")}))
                .unwrap()
            })
            .collect();
        ingest(s, cam, events).await.unwrap();
    }
    let rec = Record::load(s.table.as_ref(), 1).await.unwrap();
    let alert = *rec
        .live
        .alerts
        .values()
        .next()
        .expect("camera 1 opened an alert");
    alerts::resolve_alert(s.table.as_ref(), alert)
        .await
        .unwrap();
}

/// (occupancy, entries, exits, active alerts): the facility's, or the cameras' sums.
type Counts = (i64, i64, i64, i64);

async fn facility(table: &dyn Table) -> Counts {
    let f = table
        .get(&facility_key())
        .await
        .unwrap()
        .unwrap_or_default();
    let n = |name: &str| f.get(name).and_then(Value::as_i64).unwrap_or(0);
    (n("occupancy"), n("entries"), n("exits"), n("active_alerts"))
}

async fn cameras(table: &dyn Table) -> Counts {
    let mut sum = (0, 0, 0, 0);
    for id in 1..=CAMERAS {
        let live = Record::load(table, id).await.unwrap().live;
        sum.0 += live.occupancy;
        sum.1 += live.total_entries;
        sum.2 += live.total_exits;
        sum.3 += live.alerts.len() as i64;
    }
    sum
}

/// Runs every delivery scenario on `s`, whose table's changes `changes` reads.
async fn deliveries_count_once(s: State, changes: Vec<Change>) {
    let table = s.table.clone();
    let expected = cameras(table.as_ref()).await;
    assert!(
        expected.1 > 0 && expected.2 > 0 && expected.3 > 0,
        "{expected:?}"
    );
    let (occupancy, entries, exits, _) = facility(table.as_ref()).await;
    assert_eq!(
        (occupancy, entries, exits),
        (0, 0, 0),
        "nothing counted inline"
    );

    // Crashes on the first half: the 1st transaction fails before committing, the 2nd after.
    let flaky = State {
        table: Arc::new(Flaky::new(table.clone(), vec![(1, false), (2, true)])),
        ..s.clone()
    };
    let half = changes[..changes.len() / 2].to_vec();
    assert!(aggregate::apply(&flaky, half.clone()).await.is_err());
    assert_eq!(
        facility(table.as_ref()).await.1,
        0,
        "nothing before the commit"
    );
    assert!(aggregate::apply(&flaky, half.clone()).await.is_err());
    // The whole batch, again, and the half again.
    aggregate::apply(&s, changes.clone()).await.unwrap();
    aggregate::apply(&s, changes.clone()).await.unwrap();
    aggregate::apply(&s, half).await.unwrap();
    assert_eq!(facility(table.as_ref()).await, expected);
    let f = table.get(&facility_key()).await.unwrap().unwrap();
    assert!(f["last_updated"].as_str().unwrap().ends_with('Z'));
}

fn with_stream_counters(p: &Platform) -> State {
    let s = State::new(p);
    assert_eq!(s.config.facility_counters, aggregate::Mode::Stream);
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_feed_is_aggregated_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let Backend::Embedded { store, .. } = &backend else {
        unreachable!()
    };
    let feed = store.enable_stream("civic-occupancy").unwrap();
    let p = Platform::local(dir.path(), backend.clone(), Limits::default()).unwrap();
    let s = with_stream_counters(&p);
    ingest_all(&s).await;
    let changes = feed.changes(None, 100_000).await.unwrap();
    deliveries_count_once(s, changes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dynamodb_stream_is_aggregated_exactly_once() {
    let sdk = moto::aws_config().await;
    let backend = Backend::aws_with_config(&sdk, moto::unique("civic"));
    let table = moto::unique("civic-occupancy");
    backend.ensure_table(&table).await.unwrap();
    let p = Platform::new(backend.clone(), vec![7; 32], Limits::default()).unwrap();
    let s = State {
        table: backend.table(&table),
        ..with_stream_counters(&p)
    };
    ingest_all(&s).await;
    let changes = civic_testkit::streams::changes(&sdk, &table).await;
    deliveries_count_once(s, changes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_counters_are_kept_in_the_cameras_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let p = Platform::local(dir.path(), backend.clone(), Limits::default()).unwrap();
    let base = State::new(&p);
    let config = occupancy::Config {
        facility_counters: aggregate::Mode::Inline,
        ..(*base.config).clone()
    };
    let s = State {
        config: Arc::new(config),
        ..base
    };
    ingest_all(&s).await;
    let table = s.table.as_ref();
    assert_eq!(facility(table).await, cameras(table).await);
    for id in 1..=CAMERAS {
        let live = Record::load(table, id).await.unwrap().live;
        assert_eq!(live.facility, None, "no delta for an aggregator to count");
    }
}
