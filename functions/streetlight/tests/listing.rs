//! A city's light listing spread over several index shards (`STREETLIGHT_INDEX_SHARDS`) reads
//! back as one: every light once, by light id, page after page behind one cursor, on the
//! embedded store and on moto's DynamoDB; lights stored before sharding (their entry under the
//! unsharded `CITY#{city}`) stay listed, and move to their shard when next written.

use std::collections::BTreeSet;
use std::sync::Arc;

use civic_core::Platform;
use civic_core::fields::Body;
use civic_core::layers::Limits;
use civic_store::{Backend, Cond, GSI1PK, GSI1SK, PK, Query, SK, Shards, Table, VERSION};
use civic_testkit::moto;
use serde_json::json;
use streetlight::keys::{city_pk, light_key};
use streetlight::lights::{Light, Status, city_lights, create_light, report_status};
use streetlight::{Config, State};

const SHARDS: u32 = 4;

/// Lights created now: in their shards of Delhi's listing.
fn new_ids() -> Vec<String> {
    (0..23).map(|i| format!("SL{i:03}")).collect()
}

/// Lights stored before sharding, sorting among the new ones.
const OLD_IDS: [&str; 3] = ["SL0005", "SL010x", "SL999"];

fn with_shards(s: State) -> State {
    let config = Config {
        index_shards: Shards::new(SHARDS).unwrap(),
        ..(*s.config).clone()
    };
    State {
        config: Arc::new(config),
        ..s
    }
}

async fn seed(s: &State) {
    for id in new_ids() {
        let light = json!({"lightId": id, "name": "Light", "city": "Delhi",
            "latitude": 28.6, "longitude": 77.2});
        create_light(
            s.table.as_ref(),
            s.config.index_shards,
            Body::of(light).read().unwrap(),
        )
        .await
        .unwrap();
    }
    // A Mumbai light is not Delhi's, whatever its shard.
    let mumbai = json!({"lightId": "MB001", "name": "Light", "city": "Mumbai",
        "latitude": 19.0, "longitude": 72.8});
    let body = Body::of(mumbai).read().unwrap();
    create_light(s.table.as_ref(), s.config.index_shards, body)
        .await
        .unwrap();
    for (n, id) in OLD_IDS.iter().enumerate() {
        put_unsharded(s.table.as_ref(), n as i64 + 100, id).await;
    }
}

/// A light as written before sharding: its index entry in the city's one partition.
async fn put_unsharded(table: &dyn Table, n: i64, id: &str) {
    let light = Light {
        id: n,
        light_id: id.into(),
        name: "Old light".into(),
        city: "Delhi".into(),
        latitude: 28.6,
        longitude: 77.2,
        address: None,
        status: Status::Off,
        is_automatic: true,
        brightness: 100,
        last_status_change: "2025-12-16T10:30:00Z".into(),
        error_details: None,
    };
    let key = light_key(id);
    let keys = [
        (PK, key.pk),
        (SK, key.sk),
        (GSI1PK, city_pk("Delhi")),
        (GSI1SK, id.to_owned()),
    ];
    let mut item = civic_core::item::to_item(&light, &keys).unwrap();
    item.insert(VERSION.into(), 1.into());
    table.put(item, Cond::Always).await.unwrap();
}

/// Delhi's light ids, `limit` at a time, following the cursor.
async fn list_all(s: &State, limit: usize) -> Vec<String> {
    let (mut ids, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = city_lights(s, "delhi", limit, cursor).await.unwrap();
        assert!(page.items.len() <= limit);
        ids.extend(page.items.into_iter().map(|l| l.light_id));
        pages += 1;
        assert!(pages < 100, "the cursor keeps coming back");
        cursor = page.cursor;
        if cursor.is_none() {
            return ids;
        }
    }
}

fn expected() -> Vec<String> {
    let mut all: Vec<String> = new_ids();
    all.extend(OLD_IDS.map(String::from));
    all.sort();
    all
}

async fn lists_every_light_once_in_order(s: State) {
    let s = with_shards(s);
    seed(&s).await;
    // The new lights are spread: more than one shard holds some.
    let table = s.table.as_ref();
    let mut used = 0;
    for pk in s.config.index_shards.all(&city_pk("Delhi")) {
        let page = table.query(Query::index(pk)).await.unwrap();
        used += usize::from(!page.items.is_empty());
    }
    assert!(used > 1, "the listing is sharded");
    for limit in [1, 4, 7, 1000] {
        assert_eq!(list_all(&s, limit).await, expected(), "limit {limit}");
    }
    // An old light written again moves to its shard, listed once.
    report_status(&s, OLD_IDS[1], Status::On, None, "device")
        .await
        .unwrap();
    let moved = table.get(&light_key(OLD_IDS[1])).await.unwrap().unwrap();
    let shard = s.config.index_shards.pk(&city_pk("Delhi"), OLD_IDS[1]);
    assert_eq!(moved[GSI1PK], shard.as_str());
    let listed = list_all(&s, 5).await;
    assert_eq!(listed, expected());
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), listed.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_listing_merges_its_shards() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let p = Platform::local(dir.path(), backend, Limits::default()).unwrap();
    let s = State::new(&p);
    assert_eq!(
        s.config.index_shards,
        Shards::new(16).unwrap(),
        "the default"
    );
    lists_every_light_once_in_order(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dynamodb_listing_merges_its_shards() {
    let sdk = moto::aws_config().await;
    let backend = Backend::aws_with_config(&sdk, moto::unique("civic"));
    let table = moto::unique("civic-streetlight");
    backend.ensure_table(&table).await.unwrap();
    let p = Platform::new(backend.clone(), vec![7; 32], Limits::default()).unwrap();
    let s = State {
        table: backend.table(&table),
        ..State::new(&p)
    };
    lists_every_light_once_in_order(s).await;
}
