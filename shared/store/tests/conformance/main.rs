//! One suite of cases, run against every backend: the embedded store and DynamoDB (moto) for
//! `Table`, the filesystem and S3 (moto) for `Blob`. Each (case, backend) is its own test.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use civic_store::{
    Backend, Blob, Cond, Embedded, FsBlob, GSI1PK, GSI1SK, Item, Key, Page, Query, SkRange,
    StoreError, Table, Update, Write, counting, now_epoch,
};
use civic_testkit::moto;
use serde_json::{Value, json};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Backends

/// Keeps a backend's resources (a temp dir) alive for the test.
type Guard = Option<TempDir>;

async fn embedded_table() -> (Arc<dyn Table>, Guard) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    backend.ensure_table("app").await.unwrap();
    (backend.table("app"), Some(dir))
}

async fn dynamo_table() -> (Arc<dyn Table>, Guard) {
    let backend = Backend::aws_with_config(&moto::aws_config().await, moto::unique("unused"));
    let name = moto::unique("table");
    backend.ensure_table(&name).await.unwrap();
    (backend.table(&name), None)
}

async fn fs_blob() -> (Arc<dyn Blob>, Guard) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(FsBlob::open(dir.path()).unwrap()), Some(dir))
}

async fn s3_blob() -> (Arc<dyn Blob>, Guard) {
    let backend = Backend::aws_with_config(&moto::aws_config().await, moto::unique("bucket"));
    backend.ensure_bucket().await.unwrap();
    (backend.blob(), None)
}

/// Stamps out one test per (case, backend).
macro_rules! cases {
    ($module:ident, $make:ident, $($case:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (it, _guard) = super::$make().await;
                    super::$case(it).await;
                }
            )*
        }
    };
}

macro_rules! table_suite {
    ($($case:ident),* $(,)?) => {
        cases!(embedded, embedded_table, $($case),*);
        cases!(dynamo, dynamo_table, $($case),*);
    };
}

macro_rules! blob_suite {
    ($($case:ident),* $(,)?) => {
        cases!(fsblob, fs_blob, $($case),*);
        cases!(s3, s3_blob, $($case),*);
    };
}

table_suite!(
    get_put_overwrite,
    put_if_absent_conflicts,
    put_versioned_checks_version,
    put_conditions_on_missing_item,
    invalid_writes_rejected,
    update_actions_return_all_new,
    update_exists_on_missing_fails,
    update_version_condition,
    delete_returns_old_item,
    transact_all_or_nothing,
    transact_conflict_positions_with_every_kind,
    concurrent_adds_are_atomic,
    concurrent_put_if_absent_one_wins,
    query_sort_key_ranges,
    query_pagination_visits_each_item_once,
    query_bad_cursor,
    gsi_query_follows_writes,
    gsi_pagination,
    ttl_expired_items_are_absent,
    ttl_update_over_expired_starts_fresh,
    round_trips_are_counted,
);

blob_suite!(
    blob_put_get_delete,
    blob_list_pages,
    blob_bad_cursor,
    blob_round_trips,
    blob_get_capped_refuses_oversize_objects
);

// ---------------------------------------------------------------------------------------------
// Helpers

fn item(v: Value) -> Item {
    v.as_object().cloned().expect("a JSON object")
}

fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

fn sks(page: &Page) -> Vec<&str> {
    page.items
        .iter()
        .map(|i| i["SK"].as_str().unwrap())
        .collect()
}

async fn query_sks(t: &dyn Table, q: Query) -> Vec<String> {
    let page = t.query(q).await.unwrap();
    assert!(
        page.cursor.is_none(),
        "an unlimited query returns everything at once"
    );
    sks(&page).into_iter().map(str::to_owned).collect()
}

/// Follows cursors to the end, returning every item's SK in order.
async fn drain(t: &dyn Table, q: Query) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = t.query(q.clone().cursor(cursor)).await.unwrap();
        assert!(page.items.len() <= q.limit.unwrap_or(usize::MAX));
        out.extend(sks(&page).into_iter().map(str::to_owned));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

// ---------------------------------------------------------------------------------------------
// Table cases

async fn get_put_overwrite(t: Arc<dyn Table>) {
    assert!(t.get(&key("P", "S")).await.unwrap().is_none());
    let first =
        item(json!({"PK": "P", "SK": "S", "a": 1, "nested": {"l": [1, "two", null, true]}}));
    t.put(first.clone(), Cond::Always).await.unwrap();
    assert_eq!(t.get(&key("P", "S")).await.unwrap(), Some(first));

    // A put replaces the whole item.
    let second = item(json!({"PK": "P", "SK": "S", "b": "x", "f": 1.5}));
    t.put(second.clone(), Cond::Always).await.unwrap();
    assert_eq!(t.get(&key("P", "S")).await.unwrap(), Some(second));
    assert!(t.get(&key("P", "other")).await.unwrap().is_none());
}

async fn put_if_absent_conflicts(t: Arc<dyn Table>) {
    let first = item(json!({"PK": "P", "SK": "S", "n": 1}));
    t.put_if_absent(first.clone()).await.unwrap();
    let err = t
        .put_if_absent(item(json!({"PK": "P", "SK": "S", "n": 2})))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert_eq!(t.get(&key("P", "S")).await.unwrap(), Some(first));
}

async fn put_versioned_checks_version(t: Arc<dyn Table>) {
    let it = item(json!({"PK": "P", "SK": "S", "v": "a"}));
    assert_eq!(t.put_versioned(it.clone(), None).await.unwrap(), 1);
    let err = t.put_versioned(it.clone(), None).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert_eq!(
        t.put_versioned(item(json!({"PK": "P", "SK": "S", "v": "b"})), Some(1))
            .await
            .unwrap(),
        2
    );
    // A writer that read version 1 lost the race.
    let err = t
        .put_versioned(item(json!({"PK": "P", "SK": "S", "v": "c"})), Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    let stored = t.get(&key("P", "S")).await.unwrap().unwrap();
    assert_eq!(stored["v"], json!("b"));
    assert_eq!(stored["version"], json!(2));
}

async fn put_conditions_on_missing_item(t: Arc<dyn Table>) {
    for cond in [Cond::Exists, Cond::Version(1)] {
        let err = t
            .put(item(json!({"PK": "P", "SK": "S"})), cond)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    }
    assert!(t.get(&key("P", "S")).await.unwrap().is_none());
    t.put(item(json!({"PK": "P", "SK": "S"})), Cond::NotExists)
        .await
        .unwrap();
    t.put(item(json!({"PK": "P", "SK": "S", "x": 1})), Cond::Exists)
        .await
        .unwrap();
    assert_eq!(t.get(&key("P", "S")).await.unwrap().unwrap()["x"], json!(1));
}

async fn invalid_writes_rejected(t: Arc<dyn Table>) {
    let invalid =
        |r: Result<(), StoreError>| assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    invalid(t.put(item(json!({"PK": "P"})), Cond::Always).await);
    invalid(t.put(item(json!({"PK": "P", "SK": 3})), Cond::Always).await);
    invalid(
        t.put(
            item(json!({"PK": "P", "SK": "S", "GSI1PK": 3, "GSI1SK": "x"})),
            Cond::Always,
        )
        .await,
    );
    invalid(
        t.update(Update::new(key("P", "S")).set("PK", "Q"))
            .await
            .map(drop),
    );
    invalid(
        t.update(Update::new(key("P", "S")).set("a", 1).add("a", 1))
            .await
            .map(drop),
    );
    let dup = vec![
        Write::Check {
            key: key("P", "S"),
            cond: Cond::Always,
        },
        Write::Delete {
            key: key("P", "S"),
            cond: Cond::Always,
        },
    ];
    invalid(t.transact(dup).await);
    assert!(t.get(&key("P", "S")).await.unwrap().is_none());
}

async fn update_actions_return_all_new(t: Arc<dyn Table>) {
    // On a missing item: created, ADD starting from 0.
    let new = t
        .update(
            Update::new(key("P", "S"))
                .set("a", "x")
                .set_if_absent("b", 10)
                .add("n", 1),
        )
        .await
        .unwrap();
    assert_eq!(
        new,
        item(json!({"PK": "P", "SK": "S", "a": "x", "b": 10, "n": 1}))
    );
    assert!(
        new["n"].is_i64(),
        "ADD of integers stays an integer: {:?}",
        new["n"]
    );

    let new = t
        .update(
            Update::new(key("P", "S"))
                .set_if_absent("b", 20)
                .add("n", 2)
                .remove("a")
                .set("c", json!([1, 2])),
        )
        .await
        .unwrap();
    assert_eq!(
        new,
        item(json!({"PK": "P", "SK": "S", "b": 10, "n": 3, "c": [1, 2]}))
    );
    assert!(new["n"].is_i64());

    let new = t
        .update(Update::new(key("P", "S")).add("n", -5).add("m", 7))
        .await
        .unwrap();
    assert_eq!((new["n"].as_i64(), new["m"].as_i64()), (Some(-2), Some(7)));
    let new = t
        .update(Update::new(key("P", "S")).add("f", serde_json::Number::from_f64(0.5).unwrap()))
        .await
        .unwrap();
    assert_eq!(new["f"].as_f64(), Some(0.5));
    assert_eq!(t.get(&key("P", "S")).await.unwrap(), Some(new));
}

async fn update_exists_on_missing_fails(t: Arc<dyn Table>) {
    let err = t
        .update(Update::new(key("P", "S")).add("n", 1).cond(Cond::Exists))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert!(t.get(&key("P", "S")).await.unwrap().is_none());

    t.put(item(json!({"PK": "P", "SK": "S"})), Cond::Always)
        .await
        .unwrap();
    let err = t
        .update(Update::new(key("P", "S")).add("n", 1).cond(Cond::NotExists))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    let new = t
        .update(Update::new(key("P", "S")).add("n", 1).cond(Cond::Exists))
        .await
        .unwrap();
    assert_eq!(new["n"], json!(1));
}

async fn update_version_condition(t: Arc<dyn Table>) {
    t.put_versioned(item(json!({"PK": "P", "SK": "S"})), None)
        .await
        .unwrap();
    let err = t
        .update(
            Update::new(key("P", "S"))
                .set("x", 1)
                .cond(Cond::Version(5)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    let new = t
        .update(
            Update::new(key("P", "S"))
                .set("x", 1)
                .add("version", 1)
                .cond(Cond::Version(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        (new["x"].as_i64(), new["version"].as_i64()),
        (Some(1), Some(2))
    );
}

async fn delete_returns_old_item(t: Arc<dyn Table>) {
    assert_eq!(t.delete(&key("P", "S"), Cond::Always).await.unwrap(), None);
    let err = t.delete(&key("P", "S"), Cond::Exists).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");

    let it = item(json!({"PK": "P", "SK": "S", "version": 3}));
    t.put(it.clone(), Cond::Always).await.unwrap();
    let err = t
        .delete(&key("P", "S"), Cond::Version(2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert_eq!(t.get(&key("P", "S")).await.unwrap(), Some(it.clone()));
    assert_eq!(
        t.delete(&key("P", "S"), Cond::Version(3)).await.unwrap(),
        Some(it)
    );
    assert!(t.get(&key("P", "S")).await.unwrap().is_none());
}

async fn transact_all_or_nothing(t: Arc<dyn Table>) {
    t.put(
        item(json!({"PK": "P", "SK": "a", "version": 1, "n": 0})),
        Cond::Always,
    )
    .await
    .unwrap();
    t.put(item(json!({"PK": "P", "SK": "d"})), Cond::Always)
        .await
        .unwrap();
    t.put(
        item(json!({"PK": "P", "SK": "e", "version": 1})),
        Cond::Always,
    )
    .await
    .unwrap();

    let failing = vec![
        Write::Put {
            item: item(json!({"PK": "P", "SK": "b"})),
            cond: Cond::NotExists,
        },
        Write::Update(
            Update::new(key("P", "a"))
                .add("n", 1)
                .cond(Cond::Version(1)),
        ),
        Write::Delete {
            key: key("P", "c"),
            cond: Cond::Exists,
        },
        Write::Check {
            key: key("P", "e"),
            cond: Cond::Version(9),
        },
        Write::Delete {
            key: key("P", "d"),
            cond: Cond::Always,
        },
    ];
    match t.transact(failing).await {
        Err(StoreError::TransactionCanceled(positions)) => assert_eq!(positions, vec![2, 3]),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert!(
        t.get(&key("P", "b")).await.unwrap().is_none(),
        "nothing was applied"
    );
    assert_eq!(t.get(&key("P", "a")).await.unwrap().unwrap()["n"], json!(0));
    assert!(t.get(&key("P", "d")).await.unwrap().is_some());

    let ok = vec![
        Write::Put {
            item: item(json!({"PK": "P", "SK": "b"})),
            cond: Cond::NotExists,
        },
        Write::Update(
            Update::new(key("P", "a"))
                .add("n", 1)
                .cond(Cond::Version(1)),
        ),
        Write::Check {
            key: key("P", "c"),
            cond: Cond::NotExists,
        },
        Write::Delete {
            key: key("P", "d"),
            cond: Cond::Exists,
        },
    ];
    t.transact(ok).await.unwrap();
    assert!(t.get(&key("P", "b")).await.unwrap().is_some());
    assert_eq!(t.get(&key("P", "a")).await.unwrap().unwrap()["n"], json!(1));
    assert!(t.get(&key("P", "d")).await.unwrap().is_none());
}

async fn transact_conflict_positions_with_every_kind(t: Arc<dyn Table>) {
    t.put(item(json!({"PK": "P", "SK": "x"})), Cond::Always)
        .await
        .unwrap();
    let writes = vec![
        Write::Check {
            key: key("P", "x"),
            cond: Cond::Always,
        },
        Write::Put {
            item: item(json!({"PK": "P", "SK": "x2"})),
            cond: Cond::Exists,
        },
        Write::Update(Update::new(key("P", "y")).set("a", 1).cond(Cond::Exists)),
        Write::Delete {
            key: key("P", "x3"),
            cond: Cond::Version(1),
        },
        Write::Put {
            item: item(json!({"PK": "P", "SK": "z"})),
            cond: Cond::Always,
        },
    ];
    match t.transact(writes).await {
        Err(StoreError::TransactionCanceled(positions)) => assert_eq!(positions, vec![1, 2, 3]),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert!(t.get(&key("P", "z")).await.unwrap().is_none());
    assert!(t.get(&key("P", "y")).await.unwrap().is_none());
}

async fn concurrent_adds_are_atomic(t: Arc<dyn Table>) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(
                async move { t.update(Update::new(key("P", "counter")).add("n", 1)).await },
            )
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        let new = task.await.unwrap().unwrap();
        assert!(
            seen.insert(new["n"].as_i64().unwrap()),
            "each ADD saw a distinct value"
        );
    }
    assert_eq!(seen, (1..=50).collect());
    assert_eq!(
        t.get(&key("P", "counter")).await.unwrap().unwrap()["n"],
        json!(50)
    );
}

async fn concurrent_put_if_absent_one_wins(t: Arc<dyn Table>) {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                t.put_if_absent(item(json!({"PK": "P", "SK": "once", "i": i})))
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::ConditionFailed) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
}

async fn query_sort_key_ranges(t: Arc<dyn Table>) {
    for sk in ["c", "a#2", "b#1", "a#1", "b#2", "a"] {
        t.put(item(json!({"PK": "P", "SK": sk})), Cond::Always)
            .await
            .unwrap();
    }
    // Neighbouring partitions must not leak in.
    for pk in ["O", "PA", "P#", "Q"] {
        t.put(item(json!({"PK": pk, "SK": "a#1"})), Cond::Always)
            .await
            .unwrap();
    }
    let t = t.as_ref();
    let q = || Query::partition("P");
    let all = ["a", "a#1", "a#2", "b#1", "b#2", "c"];
    assert_eq!(query_sks(t, q()).await, all);
    assert_eq!(
        query_sks(t, q().reverse()).await,
        all.iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(query_sks(t, q().prefix("a#")).await, ["a#1", "a#2"]);
    assert_eq!(
        query_sks(t, q().prefix("a#").reverse()).await,
        ["a#2", "a#1"]
    );
    assert_eq!(query_sks(t, q().prefix("a")).await, ["a", "a#1", "a#2"]);
    assert_eq!(query_sks(t, q().prefix("zz")).await, Vec::<String>::new());
    let between = || q().sk(SkRange::Between("a#2".into(), "b#2".into()));
    assert_eq!(query_sks(t, between()).await, ["a#2", "b#1", "b#2"]);
    assert_eq!(
        query_sks(t, between().reverse()).await,
        ["b#2", "b#1", "a#2"]
    );
    let gte = || q().sk(SkRange::Gte("b#1".into()));
    assert_eq!(query_sks(t, gte()).await, ["b#1", "b#2", "c"]);
    assert_eq!(query_sks(t, gte().reverse()).await, ["c", "b#2", "b#1"]);
    let lte = || q().sk(SkRange::Lte("a#2".into()));
    assert_eq!(query_sks(t, lte()).await, ["a", "a#1", "a#2"]);
    assert_eq!(query_sks(t, lte().reverse()).await, ["a#2", "a#1", "a"]);
    assert_eq!(
        query_sks(t, Query::partition("nobody")).await,
        Vec::<String>::new()
    );
}

async fn query_pagination_visits_each_item_once(t: Arc<dyn Table>) {
    let all: Vec<String> = (0..23).map(|i| format!("item#{i:02}")).collect();
    for sk in &all {
        t.put(item(json!({"PK": "P", "SK": sk})), Cond::Always)
            .await
            .unwrap();
    }
    t.put(item(json!({"PK": "P", "SK": "other"})), Cond::Always)
        .await
        .unwrap();
    let q = Query::partition("P").prefix("item#").limit(5);
    assert_eq!(drain(t.as_ref(), q.clone()).await, all);
    let reversed: Vec<String> = all.iter().rev().cloned().collect();
    assert_eq!(drain(t.as_ref(), q.clone().reverse()).await, reversed);
    let first = t.query(q.limit(23)).await.unwrap();
    assert_eq!(first.items.len(), 23);
    // An exact fit may still carry a cursor; following it yields nothing more.
    if let Some(c) = first.cursor {
        let rest = t
            .query(
                Query::partition("P")
                    .prefix("item#")
                    .limit(5)
                    .cursor(Some(c)),
            )
            .await
            .unwrap();
        assert!(rest.items.is_empty());
    }
}

async fn query_bad_cursor(t: Arc<dyn Table>) {
    t.put(item(json!({"PK": "P", "SK": "a"})), Cond::Always)
        .await
        .unwrap();
    for cursor in ["not a cursor!", "", "e30", "bm9wZQ"] {
        let err = t
            .query(Query::partition("P").cursor(Some(cursor.into())))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::BadCursor), "{cursor:?}: {err:?}");
    }
    // A cursor from another partition is not this query's.
    t.put(item(json!({"PK": "Q", "SK": "a"})), Cond::Always)
        .await
        .unwrap();
    t.put(item(json!({"PK": "Q", "SK": "b"})), Cond::Always)
        .await
        .unwrap();
    let page = t.query(Query::partition("Q").limit(1)).await.unwrap();
    let err = t
        .query(Query::partition("P").cursor(page.cursor))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BadCursor), "{err:?}");
}

async fn gsi_query_follows_writes(t: Arc<dyn Table>) {
    let put =
        |sk: &str, gsk: &str| item(json!({"PK": "P", "SK": sk, "GSI1PK": "G", "GSI1SK": gsk}));
    t.put(put("1", "c"), Cond::Always).await.unwrap();
    t.put(put("2", "a"), Cond::Always).await.unwrap();
    t.put(put("3", "b#x"), Cond::Always).await.unwrap();
    t.put(
        item(json!({"PK": "P", "SK": "4", "GSI1PK": "G"})),
        Cond::Always,
    )
    .await
    .unwrap();
    t.put(
        item(json!({"PK": "P", "SK": "5", "GSI1PK": "H", "GSI1SK": "a"})),
        Cond::Always,
    )
    .await
    .unwrap();

    let t = t.as_ref();
    let q = || Query::index("G");
    assert_eq!(query_sks(t, q()).await, ["2", "3", "1"]);
    assert_eq!(query_sks(t, q().reverse()).await, ["1", "3", "2"]);
    assert_eq!(query_sks(t, q().prefix("b#")).await, ["3"]);
    assert_eq!(
        query_sks(t, q().sk(SkRange::Gte("b".into()))).await,
        ["3", "1"]
    );
    let page = t.query(q()).await.unwrap();
    assert_eq!(
        page.items[0],
        put("2", "a"),
        "the index projects whole items"
    );

    // Overwriting moves the item in the index; an update too; deleting removes it.
    t.put(put("2", "z"), Cond::Always).await.unwrap();
    assert_eq!(query_sks(t, q()).await, ["3", "1", "2"]);
    t.update(Update::new(key("P", "3")).set(GSI1PK, "H"))
        .await
        .unwrap();
    assert_eq!(query_sks(t, q()).await, ["1", "2"]);
    assert_eq!(query_sks(t, Query::index("H")).await, ["5", "3"]);
    t.update(Update::new(key("P", "1")).remove(GSI1SK))
        .await
        .unwrap();
    assert_eq!(query_sks(t, q()).await, ["2"]);
    t.delete(&key("P", "2"), Cond::Always).await.unwrap();
    assert_eq!(query_sks(t, q()).await, Vec::<String>::new());
    t.transact(vec![Write::Put {
        item: put("6", "m"),
        cond: Cond::NotExists,
    }])
    .await
    .unwrap();
    assert_eq!(query_sks(t, q()).await, ["6"]);
}

async fn gsi_pagination(t: Arc<dyn Table>) {
    // Several items share each GSI1SK, so the cursor must carry the table keys too. The order
    // among items with equal index keys is unspecified (as in DynamoDB).
    for g in 0..4 {
        for i in 0..4 {
            let it = item(
                json!({"PK": format!("P{i}"), "SK": format!("{g}-{i}"), "GSI1PK": "G", "GSI1SK": format!("g{g}")}),
            );
            t.put(it, Cond::Always).await.unwrap();
        }
    }
    let groups = |sks: &[String]| sks.iter().map(|sk| sk[..1].to_owned()).collect::<Vec<_>>();
    for (q, forward) in [
        (Query::index("G").limit(3), true),
        (Query::index("G").limit(5).reverse(), false),
    ] {
        let sks = drain(t.as_ref(), q).await;
        assert_eq!(sks.len(), 16);
        assert_eq!(
            sks.iter().collect::<HashSet<_>>().len(),
            16,
            "each item exactly once"
        );
        let mut g = groups(&sks);
        if !forward {
            g.reverse();
        }
        assert!(g.is_sorted(), "ordered by GSI1SK: {sks:?}");
    }
}

async fn ttl_expired_items_are_absent(t: Arc<dyn Table>) {
    let past = now_epoch() - 10;
    let future = now_epoch() + 3600;
    let expired =
        item(json!({"PK": "P", "SK": "old", "GSI1PK": "G", "GSI1SK": "1", "expires_at": past}));
    let live =
        item(json!({"PK": "P", "SK": "new", "GSI1PK": "G", "GSI1SK": "2", "expires_at": future}));
    t.put(expired.clone(), Cond::Always).await.unwrap();
    t.put(live.clone(), Cond::Always).await.unwrap();

    assert!(t.get(&key("P", "old")).await.unwrap().is_none());
    assert_eq!(t.get(&key("P", "new")).await.unwrap(), Some(live.clone()));
    assert_eq!(query_sks(t.as_ref(), Query::partition("P")).await, ["new"]);
    assert_eq!(query_sks(t.as_ref(), Query::index("G")).await, ["new"]);

    // Conditions treat it as missing.
    let err = t.put(expired.clone(), Cond::Exists).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    let err = t.delete(&key("P", "old"), Cond::Exists).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    let check = vec![Write::Check {
        key: key("P", "old"),
        cond: Cond::NotExists,
    }];
    t.transact(check).await.unwrap();
    assert_eq!(
        t.delete(&key("P", "old"), Cond::Always).await.unwrap(),
        None,
        "an expired item is not returned"
    );

    t.put(expired, Cond::Always).await.unwrap();
    let fresh = item(json!({"PK": "P", "SK": "old", "n": 1}));
    t.put_if_absent(fresh.clone()).await.unwrap();
    assert_eq!(t.get(&key("P", "old")).await.unwrap(), Some(fresh));
    let err = t.put_if_absent(live).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
}

async fn ttl_update_over_expired_starts_fresh(t: Arc<dyn Table>) {
    let past = now_epoch() - 10;
    let stale = |sk: &str| {
        item(json!({"PK": "P", "SK": sk, "n": 5, "junk": "x", "version": 1, "expires_at": past}))
    };
    t.put(stale("a"), Cond::Always).await.unwrap();
    let new = t
        .update(Update::new(key("P", "a")).add("n", 1))
        .await
        .unwrap();
    assert_eq!(new, item(json!({"PK": "P", "SK": "a", "n": 1})));

    t.put(stale("b"), Cond::Always).await.unwrap();
    for cond in [Cond::Exists, Cond::Version(1)] {
        let err = t
            .update(Update::new(key("P", "b")).add("n", 1).cond(cond))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    }
    let new = t
        .update(
            Update::new(key("P", "b"))
                .set("s", "y")
                .cond(Cond::NotExists),
        )
        .await
        .unwrap();
    assert_eq!(new, item(json!({"PK": "P", "SK": "b", "s": "y"})));

    t.put(stale("c"), Cond::Always).await.unwrap();
    let writes = vec![
        Write::Update(Update::new(key("P", "c")).add("n", 2).cond(Cond::NotExists)),
        Write::Put {
            item: stale("d"),
            cond: Cond::NotExists,
        },
    ];
    t.transact(writes).await.unwrap();
    assert_eq!(
        t.get(&key("P", "c")).await.unwrap(),
        Some(item(json!({"PK": "P", "SK": "c", "n": 2})))
    );
}

async fn round_trips_are_counted(t: Arc<dyn Table>) {
    let (r, n) = counting(t.put(item(json!({"PK": "P", "SK": "S"})), Cond::NotExists)).await;
    assert!(r.is_ok());
    assert_eq!(n, 1);
    assert_eq!(counting(t.get(&key("P", "S"))).await.1, 1);
    assert_eq!(counting(t.get(&key("P", "missing"))).await.1, 1);
    assert_eq!(
        counting(t.update(Update::new(key("P", "S")).add("n", 1)))
            .await
            .1,
        1
    );
    assert_eq!(counting(t.query(Query::partition("P"))).await.1, 1);
    assert_eq!(
        counting(t.transact(vec![Write::Check {
            key: key("P", "S"),
            cond: Cond::Exists
        }]))
        .await
        .1,
        1
    );
    assert_eq!(counting(t.delete(&key("P", "S"), Cond::Always)).await.1, 1);
    let (r, n) = counting(t.ping()).await;
    assert!(r.is_ok());
    assert_eq!(n, 1);
    let (r, n) = counting(t.put_if_absent(item(json!({"PK": "P", "SK": "S"})))).await;
    assert!(r.is_ok());
    assert_eq!(n, 1);
}

// ---------------------------------------------------------------------------------------------
// Blob cases

async fn blob_put_get_delete(b: Arc<dyn Blob>) {
    assert!(b.get("dir/missing.txt").await.unwrap().is_none());
    b.put("dir/a.txt", Bytes::from_static(b"hello"), "text/plain")
        .await
        .unwrap();
    let got = b.get("dir/a.txt").await.unwrap().unwrap();
    assert_eq!(
        (got.body.as_ref(), got.content_type.as_str()),
        (&b"hello"[..], "text/plain")
    );

    let binary: Vec<u8> = (0..=255).cycle().take(70_000).collect();
    b.put("dir/a.txt", Bytes::from(binary.clone()), "image/png")
        .await
        .unwrap();
    let got = b.get("dir/a.txt").await.unwrap().unwrap();
    assert_eq!(
        (got.body.as_ref(), got.content_type.as_str()),
        (&binary[..], "image/png")
    );

    b.put("empty", Bytes::new(), "application/octet-stream")
        .await
        .unwrap();
    assert!(b.get("empty").await.unwrap().unwrap().body.is_empty());

    b.delete("dir/a.txt").await.unwrap();
    assert!(b.get("dir/a.txt").await.unwrap().is_none());
    b.delete("dir/a.txt").await.unwrap();
    b.ping().await.unwrap();
}

async fn blob_list_pages(b: Arc<dyn Blob>) {
    let mut keys: Vec<String> = (0..12).map(|i| format!("p/{i:02}.bin")).collect();
    keys.push("p/sub/deep.bin".into());
    keys.push("p-sibling".into());
    keys.push("q/x".into());
    for k in &keys {
        b.put(k, Bytes::from(k.clone()), "application/octet-stream")
            .await
            .unwrap();
    }
    let list_all = |prefix: &'static str, limit: usize| {
        let b = b.clone();
        async move {
            let (mut out, mut cursor) = (Vec::new(), None);
            for _ in 0..50 {
                let (page, next) = b.list(prefix, cursor, limit).await.unwrap();
                assert!(page.len() <= limit);
                out.extend(page);
                match next {
                    Some(c) => cursor = Some(c),
                    None => return out,
                }
            }
            panic!("listing did not end");
        }
    };
    let under_p: Vec<String> = keys[..13].to_vec();
    assert_eq!(list_all("p/", 5).await, under_p);
    assert_eq!(list_all("p/", 1000).await, under_p);
    assert_eq!(list_all("p/1", 2).await, ["p/10.bin", "p/11.bin"]);
    let mut everything = keys.clone();
    everything.sort();
    assert_eq!(list_all("", 4).await, everything);
    assert_eq!(list_all("p", 100).await, everything[..14].to_vec());
    assert!(list_all("nothing/", 10).await.is_empty());
}

async fn blob_bad_cursor(b: Arc<dyn Blob>) {
    b.put("k", Bytes::from_static(b"v"), "text/plain")
        .await
        .unwrap();
    let res = b.list("", Some("%%% not a cursor".into()), 10).await;
    assert!(matches!(res, Err(StoreError::BadCursor)), "{res:?}");
}

async fn blob_round_trips(b: Arc<dyn Blob>) {
    assert_eq!(
        counting(b.put("k", Bytes::from_static(b"v"), "text/plain"))
            .await
            .1,
        1
    );
    assert_eq!(counting(b.get("k")).await.1, 1);
    assert_eq!(counting(b.list("", None, 10)).await.1, 1);
    assert_eq!(counting(b.delete("k")).await.1, 1);
    assert_eq!(counting(b.ping()).await.1, 1);
}

// ---------------------------------------------------------------------------------------------
// Backend-specific cases

#[tokio::test]
async fn fsblob_rejects_path_traversal() {
    let (b, _guard) = fs_blob().await;
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a//b",
        "a/./b",
        "a/",
        ".",
        "..",
        "a\\b",
    ] {
        let put = b.put(bad, Bytes::from_static(b"x"), "text/plain").await;
        assert!(
            matches!(put, Err(StoreError::Invalid(_))),
            "put {bad:?}: {put:?}"
        );
        assert!(
            matches!(b.get(bad).await, Err(StoreError::Invalid(_))),
            "get {bad:?}"
        );
        assert!(
            matches!(b.delete(bad).await, Err(StoreError::Invalid(_))),
            "delete {bad:?}"
        );
    }
    assert!(b.list("../", None, 10).await.unwrap().0.is_empty());
}

#[tokio::test]
async fn fsblob_object_and_directory_conflict_is_invalid() {
    let (b, _guard) = fs_blob().await;
    b.put("a/b", Bytes::from_static(b"x"), "text/plain")
        .await
        .unwrap();
    assert!(matches!(
        b.put("a", Bytes::new(), "text/plain").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(b.get("a").await.unwrap().is_none());
    b.put("f", Bytes::new(), "text/plain").await.unwrap();
    assert!(matches!(
        b.put("f/g", Bytes::new(), "text/plain").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(b.get("f/g").await.unwrap().is_none());
    // Once `a/b` is gone, `a` can be an object.
    b.delete("a/b").await.unwrap();
    b.put("a", Bytes::from_static(b"y"), "text/plain")
        .await
        .unwrap();
    assert_eq!(b.list("", None, 10).await.unwrap().0, ["a", "f"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Embedded::open(dir.path()).unwrap();
        let t = store.table("app");
        t.put(
            item(json!({"PK": "P", "SK": "S", "GSI1PK": "G", "GSI1SK": "1"})),
            Cond::Always,
        )
        .await
        .unwrap();
        t.update(Update::new(key("P", "S")).add("n", 2))
            .await
            .unwrap();
    }
    let store = Embedded::open(dir.path()).unwrap();
    let t = store.table("app");
    assert_eq!(t.get(&key("P", "S")).await.unwrap().unwrap()["n"], json!(2));
    assert_eq!(query_sks(&t, Query::index("G")).await, ["S"]);
    assert!(
        store
            .table("other")
            .get(&key("P", "S"))
            .await
            .unwrap()
            .is_none(),
        "tables are separate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_sweep_deletes_expired_items() {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(dir.path()).unwrap();
    let (a, b) = (store.table("a"), store.table("b"));
    let past = now_epoch() - 1;
    for i in 0..600 {
        let expires_at = if i % 3 == 0 { now_epoch() + 3600 } else { past };
        let it = item(
            json!({"PK": "P", "SK": format!("{i:04}"), "GSI1PK": "G", "GSI1SK": "x", "expires_at": expires_at}),
        );
        a.put(it, Cond::Always).await.unwrap();
    }
    b.put(
        item(json!({"PK": "P", "SK": "S", "expires_at": past})),
        Cond::Always,
    )
    .await
    .unwrap();
    b.put(item(json!({"PK": "P", "SK": "T"})), Cond::Always)
        .await
        .unwrap();

    let swept = tokio::task::spawn_blocking({
        let store = store.clone();
        move || store.sweep_expired()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(swept, 400 + 1);
    assert_eq!(store.sweep_expired().unwrap(), 0);
    assert_eq!(
        drain(&a, Query::partition("P").limit(1000)).await.len(),
        200
    );
    assert_eq!(drain(&a, Query::index("G").limit(1000)).await.len(), 200);
    assert_eq!(query_sks(&b, Query::partition("P")).await, ["T"]);
}

#[tokio::test]
async fn factory_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    assert!(backend.is_embedded());
    backend.ensure_table("t").await.unwrap();
    backend.ensure_bucket().await.unwrap();
    backend.table("t").ping().await.unwrap();
    backend
        .blob()
        .put("x/y", Bytes::from_static(b"1"), "text/plain")
        .await
        .unwrap();
    assert!(dir.path().join("store.redb").is_file());
    assert!(dir.path().join("blobs").is_dir());
}

#[tokio::test]
async fn factory_aws() {
    let backend = Backend::aws_with_config(&moto::aws_config().await, moto::unique("bucket"));
    assert!(!backend.is_embedded());
    let name = moto::unique("table");
    backend.ensure_table(&name).await.unwrap();
    backend.ensure_table(&name).await.unwrap();
    backend.ensure_bucket().await.unwrap();
    backend.ensure_bucket().await.unwrap();
    backend.table(&name).ping().await.unwrap();
    backend.blob().ping().await.unwrap();
    assert!(
        backend
            .table(&moto::unique("missing"))
            .ping()
            .await
            .is_err()
    );
}

/// Issue 15, item 4: a consumer's read is capped, and an object over the cap comes back as its
/// size alone (S3: from `HeadObject`; files: from their metadata).
async fn blob_get_capped_refuses_oversize_objects(b: Arc<dyn Blob>) {
    use civic_store::Capped;
    let body: Vec<u8> = (0..=255).cycle().take(1000).collect();
    b.put("cap/a.tar", Bytes::from(body.clone()), "application/x-tar")
        .await
        .unwrap();
    match b.get_capped("cap/a.tar", 1000).await.unwrap() {
        Some(Capped::Object(o)) => {
            assert_eq!(
                (&o.body[..], o.content_type.as_str()),
                (&body[..], "application/x-tar")
            )
        }
        other => panic!("1000 bytes fit a cap of 1000: {other:?}"),
    }
    assert!(matches!(
        b.get_capped("cap/a.tar", 999).await.unwrap(),
        Some(Capped::TooLarge { size: 1000 })
    ));
    assert!(b.get_capped("cap/missing.tar", 10).await.unwrap().is_none());
}
