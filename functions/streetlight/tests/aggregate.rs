//! The summary aggregator counts each status change exactly once in its city's summary, on the
//! embedded store's feed and on moto's DynamoDB stream: whether a batch comes twice, comes
//! again overlapping, or the store fails a transaction before or after committing it (a crash,
//! or a lost answer, between its writes and the function's success). Reports that change
//! nothing count nothing. And log ids: no shared counter, one light's stay ordered and unique
//! under concurrent reports, after the counter-allocated ids stored before.

use std::collections::BTreeSet;
use std::sync::Arc;

use civic_core::Platform;
use civic_core::fields::Body;
use civic_core::layers::Limits;
use civic_store::stream::{Change, Feed};
use civic_store::{Backend, Cond, PK, Query, SK, Shards, Table, Typed};
use civic_testkit::flaky::Flaky;
use civic_testkit::moto;
use serde_json::{Value, json};
use streetlight::keys::{LOGS, city_pk, light_key, light_pk, log_key, summary_key};
use streetlight::lights::{ControlLog, Light, Status, create_light, report_status};
use streetlight::{Config, State, aggregate};

const CITIES: [&str; 2] = ["Delhi", "Mumbai"];
const PER_CITY: usize = 3;

fn light_id(city: usize, n: usize) -> String {
    format!("SL{city}{n:02}")
}

/// Lights, all off, counted in their cities' summaries as creation counts them.
async fn seed(table: &dyn Table) {
    for (c, city) in CITIES.iter().enumerate() {
        for n in 0..PER_CITY {
            let light = json!({"lightId": light_id(c, n), "name": format!("Light {n}"),
                "city": city, "latitude": 28.6, "longitude": 77.2, "status": "off"});
            create_light(
                table,
                Shards::new(16).unwrap(),
                Body::of(light).read().unwrap(),
            )
            .await
            .unwrap();
        }
    }
}

/// 60 reports over the lights: switches, faults, repairs, and repeats of the status a light
/// already has (written, logged, counted nowhere).
async fn report_all(s: &State) {
    seed(s.table.as_ref()).await;
    let statuses = [
        Status::On,
        Status::On,
        Status::Off,
        Status::Error,
        Status::On,
    ];
    for k in 0..60usize {
        let (c, n) = (k % CITIES.len(), (k / 2) % PER_CITY);
        let status = statuses[(k / 3 + n) % statuses.len()];
        let details = (status == Status::Error).then(|| "lamp failure".to_owned());
        report_status(s, &light_id(c, n), status, details, "device")
            .await
            .unwrap();
    }
}

/// Per city: (total, on, off, in error), from its summary or from its lights.
type Counts = Vec<(i64, i64, i64, i64)>;

async fn summaries(table: &dyn Table) -> Counts {
    let mut out = Vec::new();
    for city in CITIES {
        let s = table.get(&summary_key(city)).await.unwrap().unwrap();
        let n = |name: &str| s[name].as_i64().unwrap();
        out.push((
            n("total_lights"),
            n("lights_on"),
            n("lights_off"),
            n("lights_in_error"),
        ));
    }
    out
}

async fn lights(table: &dyn Table) -> Counts {
    let mut out = Vec::new();
    for city in CITIES {
        let shards = Shards::new(16).unwrap();
        let page = shards
            .page::<Light>(table, &city_pk(city), |q| q, None)
            .await;
        let lights = page.unwrap().items;
        let n = |st: Status| lights.iter().filter(|l| l.status == st).count() as i64;
        let total = lights.len() as i64;
        out.push((total, n(Status::On), n(Status::Off), n(Status::Error)));
    }
    out
}

/// Runs every delivery scenario on `s`, whose table's changes `changes` reads.
async fn deliveries_count_once(s: State, changes: Vec<Change>) {
    let table = s.table.clone();
    let expected = lights(table.as_ref()).await;
    let moved = |c: &Counts| c.iter().map(|x| x.1 + x.3).sum::<i64>();
    assert!(moved(&expected) > 0, "{expected:?}");
    let seeded = vec![(PER_CITY as i64, 0, PER_CITY as i64, 0); CITIES.len()];
    assert_eq!(
        summaries(table.as_ref()).await,
        seeded,
        "nothing counted inline"
    );

    // Crashes on the first half: the 1st transaction fails before committing, the 2nd after.
    let flaky = Flaky::new(table.clone(), vec![(1, false), (2, true)]);
    let half = changes[..changes.len() / 2].to_vec();
    assert!(aggregate::apply(&flaky, half.clone()).await.is_err());
    assert_eq!(
        summaries(table.as_ref()).await,
        seeded,
        "nothing before the commit"
    );
    assert!(aggregate::apply(&flaky, half.clone()).await.is_err());
    // The whole batch, again, and the half again.
    aggregate::apply(table.as_ref(), changes.clone())
        .await
        .unwrap();
    aggregate::apply(table.as_ref(), changes.clone())
        .await
        .unwrap();
    aggregate::apply(table.as_ref(), half).await.unwrap();
    assert_eq!(summaries(table.as_ref()).await, expected);
    for city in CITIES {
        let summary = table.get(&summary_key(city)).await.unwrap().unwrap();
        assert!(summary["last_updated"].as_str().unwrap().ends_with('Z'));
    }
}

fn with_mode(p: &Platform, mode: aggregate::Mode) -> State {
    let s = State::new(p);
    assert_eq!(
        s.config.city_summary,
        aggregate::Mode::Stream,
        "the default"
    );
    State {
        config: Arc::new(Config {
            city_summary: mode,
            ..(*s.config).clone()
        }),
        ..s
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_feed_is_aggregated_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let Backend::Embedded { store, .. } = &backend else {
        unreachable!()
    };
    let feed = store.enable_stream("civic-streetlight").unwrap();
    let p = Platform::local(dir.path(), backend.clone(), Limits::default()).unwrap();
    let s = with_mode(&p, aggregate::Mode::Stream);
    report_all(&s).await;
    let changes = feed.changes(None, 100_000).await.unwrap();
    deliveries_count_once(s, changes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dynamodb_stream_is_aggregated_exactly_once() {
    let sdk = moto::aws_config().await;
    let backend = Backend::aws_with_config(&sdk, moto::unique("civic"));
    let table = moto::unique("civic-streetlight");
    backend.ensure_table(&table).await.unwrap();
    let p = Platform::new(backend.clone(), vec![7; 32], Limits::default()).unwrap();
    let s = State {
        table: backend.table(&table),
        ..with_mode(&p, aggregate::Mode::Stream)
    };
    report_all(&s).await;
    let changes = civic_testkit::streams::changes(&sdk, &table).await;
    deliveries_count_once(s, changes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_counters_are_kept_in_the_lights_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let p = Platform::local(dir.path(), backend.clone(), Limits::default()).unwrap();
    let s = with_mode(&p, aggregate::Mode::Inline);
    report_all(&s).await;
    let table = s.table.as_ref();
    assert_eq!(summaries(table).await, lights(table).await);
    for (c, _) in CITIES.iter().enumerate() {
        for n in 0..PER_CITY {
            let light = table.get(&light_key(&light_id(c, n))).await.unwrap();
            assert_eq!(
                light.unwrap().get(aggregate::DELTA),
                None,
                "no delta to count"
            );
        }
    }
}

/// Concurrent reports on one light that already has a counter-allocated log (id 7): its logs,
/// by key, are the chain of its changes, with unique increasing ids after the old one; and no
/// report writes a `COUNTER` item.
#[tokio::test(flavor = "multi_thread")]
async fn log_ids_stay_ordered_without_a_counter() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let p = Platform::local(dir.path(), backend.clone(), Limits::default()).unwrap();
    let base = with_mode(&p, aggregate::Mode::Stream);
    seed(base.table.as_ref()).await;
    let id = light_id(0, 0);
    let old = ControlLog {
        id: 7,
        light_id: id.clone(),
        action: "off".into(),
        performed_by: "admin@example.com".into(),
        control_type: "manual".into(),
        previous_status: Status::On,
        new_status: Status::Off,
        created_at: "2025-12-16T10:30:00Z".into(),
    };
    let key = log_key(&id, 7);
    let item = civic_core::item::to_item(&old, &[(PK, key.pk), (SK, key.sk)]).unwrap();
    base.table.put(item, Cond::Always).await.unwrap();

    let spy = Arc::new(Flaky::new(base.table.clone(), Vec::new()));
    let s = State {
        table: spy.clone(),
        ..base
    };
    let statuses = [Status::On, Status::Off, Status::Error];
    let reports = (0..24).map(|k| report_status(&s, &id, statuses[k % 3], None, "device"));
    for r in futures::future::join_all(reports).await {
        r.unwrap();
    }
    let written = spy.written();
    assert!(written.len() >= 48, "a light and a log per report");
    assert!(written.iter().all(|k| k.pk != "COUNTER"), "{written:?}");

    let query = Query::partition(light_pk(&id)).prefix(LOGS);
    let logs = s.table.query_as::<ControlLog>(query).await.unwrap().items;
    assert_eq!(logs.len(), 25);
    assert_eq!(logs[0].id, 7, "the counter's log sorts first");
    let ids: Vec<i64> = logs.iter().map(|l| l.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "key order is id order: {ids:?}"
    );
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
    // In key order, each log starts from the status the one before left.
    assert_eq!(logs[1].previous_status, Status::Off, "as seeded");
    for w in logs[1..].windows(2) {
        assert_eq!(
            w[1].previous_status,
            w[0].new_status,
            "{:?}",
            (w[0].id, w[1].id)
        );
    }
    let light = s.table.get(&light_key(&id)).await.unwrap().unwrap();
    assert_eq!(light["last_log_id"], Value::from(*ids.last().unwrap()));
    assert_eq!(light["status"], json!(logs.last().unwrap().new_status));
}
