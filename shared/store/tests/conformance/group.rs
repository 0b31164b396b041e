//! The embedded store's group commit: calls queued while the writer is busy commit together,
//! each with its own atomicity, in the order they were queued.

use std::future::Future;
use std::time::{Duration, Instant};

use civic_store::{
    CommitStats, Cond, Embedded, EmbeddedTable, Query, StoreError, Table, Update, Write,
};
use serde_json::json;
use tokio::task::JoinHandle;

use super::{item, key, query_sks};

/// Spawns `call` and returns once it is queued behind the held writer, so calls queue in the
/// order they are spawned.
async fn queue<T: Send + 'static>(
    store: &Embedded,
    call: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    let before = store.queued_writes();
    let handle = tokio::spawn(call);
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.queued_writes() == before {
        assert!(Instant::now() < deadline, "the call never queued");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    handle
}

fn open() -> (tempfile::TempDir, Embedded, EmbeddedTable) {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(dir.path()).unwrap();
    let table = store.table("app");
    (dir, store, table)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_condition_mid_group_changes_nothing_and_the_rest_commit() {
    let (_dir, store, t) = open();
    t.put(
        item(json!({"PK": "P", "SK": "taken", "label": "x"})),
        Cond::Always,
    )
    .await
    .unwrap();
    let before = CommitStats::now();

    let held = store.hold_writer().unwrap();
    let a = queue(&store, {
        let t = t.clone();
        async move {
            t.put(item(json!({"PK": "P", "SK": "a"})), Cond::Always)
                .await
        }
    })
    .await;
    let taken = queue(&store, {
        let t = t.clone();
        async move {
            t.put_if_absent(item(json!({"PK": "P", "SK": "taken", "x": 1})))
                .await
        }
    })
    .await;
    // A transaction whose second write fails: its first write must not land.
    let canceled = queue(&store, {
        let t = t.clone();
        async move {
            t.transact(vec![
                Write::Put {
                    item: item(json!({"PK": "P", "SK": "c"})),
                    cond: Cond::Always,
                },
                Write::Update(
                    Update::new(key("P", "missing"))
                        .add("n", 1)
                        .cond(Cond::Exists),
                ),
            ])
            .await
        }
    })
    .await;
    // An update that fails while computing (ADD on a string) after checking its condition.
    let bad_add = queue(&store, {
        let t = t.clone();
        async move {
            t.transact(vec![
                Write::Put {
                    item: item(json!({"PK": "P", "SK": "d"})),
                    cond: Cond::Always,
                },
                Write::Update(Update::new(key("P", "taken")).add("label", 1)),
            ])
            .await
        }
    })
    .await;
    let e = queue(&store, {
        let t = t.clone();
        async move {
            t.put(item(json!({"PK": "P", "SK": "e"})), Cond::Always)
                .await
        }
    })
    .await;
    drop(held);

    a.await.unwrap().unwrap();
    assert!(matches!(
        taken.await.unwrap(),
        Err(StoreError::ConditionFailed)
    ));
    assert!(matches!(
        canceled.await.unwrap(),
        Err(StoreError::TransactionCanceled(at)) if at == [1]
    ));
    assert!(bad_add.await.unwrap().is_err());
    e.await.unwrap().unwrap();

    assert_eq!(
        query_sks(&t, Query::partition("P")).await,
        ["a", "e", "taken"]
    );
    let stored = t.get(&key("P", "taken")).await.unwrap().unwrap();
    assert!(!stored.contains_key("x"), "the refused put changed nothing");
    let after = CommitStats::now();
    assert_eq!(after.groups_since(&before), 1, "one group, one fsync");
    assert_eq!(after.calls - before.calls, 5);
    assert_eq!(after.max, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_on_one_key_in_one_group_see_each_other_in_order() {
    let (_dir, store, t) = open();
    let held = store.hold_writer().unwrap();
    let mut calls = Vec::new();
    for g in ["G1", "G2"] {
        let it = item(json!({"PK": "P", "SK": "k", "GSI1PK": g, "GSI1SK": "1", "n": 1}));
        let t2 = t.clone();
        calls.push(
            queue(
                &store,
                async move { t2.put(it, Cond::Always).await.map(drop) },
            )
            .await,
        );
    }
    let t2 = t.clone();
    let add = queue(&store, async move {
        t2.update(Update::new(key("P", "k")).add("n", 2).cond(Cond::Exists))
            .await
    })
    .await;
    let t2 = t.clone();
    let refused = queue(&store, async move {
        t2.put_if_absent(item(json!({"PK": "P", "SK": "k"}))).await
    })
    .await;
    let t2 = t.clone();
    let versioned = queue(&store, async move {
        t2.put_versioned(item(json!({"PK": "P", "SK": "v"})), None)
            .await
    })
    .await;
    let t2 = t.clone();
    let stale = queue(&store, async move {
        t2.put_versioned(item(json!({"PK": "P", "SK": "v"})), None)
            .await
    })
    .await;
    drop(held);

    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(add.await.unwrap().unwrap()["n"], json!(3));
    assert!(matches!(
        refused.await.unwrap(),
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(versioned.await.unwrap().unwrap(), 1);
    assert!(matches!(
        stale.await.unwrap(),
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(t.get(&key("P", "k")).await.unwrap().unwrap()["n"], json!(3));
    assert!(query_sks(&t, Query::index("G1")).await.is_empty());
    assert_eq!(query_sks(&t, Query::index("G2")).await, ["k"]);
}

/// A group of only refused calls has nothing to make durable: no fsync.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_that_changes_nothing_does_not_fsync() {
    let (_dir, store, t) = open();
    t.put(item(json!({"PK": "P", "SK": "k"})), Cond::Always)
        .await
        .unwrap();
    let before = CommitStats::now();
    let held = store.hold_writer().unwrap();
    let mut calls = Vec::new();
    for _ in 0..3 {
        let t2 = t.clone();
        calls.push(
            queue(&store, async move {
                t2.put_if_absent(item(json!({"PK": "P", "SK": "k"}))).await
            })
            .await,
        );
    }
    drop(held);
    for call in calls {
        assert!(matches!(
            call.await.unwrap(),
            Err(StoreError::ConditionFailed)
        ));
    }
    assert_eq!(CommitStats::now().groups_since(&before), 0);
}

/// Many concurrent writers, in groups of whatever size the timing makes: every acknowledged
/// write is there, once.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_all_land() {
    let (_dir, _store, t) = open();
    let before = CommitStats::now();
    let writers = (0..32).map(|w| {
        let t = t.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                let it = item(json!({"PK": format!("w{w}"), "SK": format!("{i:03}")}));
                t.put(it, Cond::NotExists).await.unwrap();
            }
        })
    });
    futures::future::join_all(writers).await;
    let stats = CommitStats::now();
    for w in 0..32 {
        assert_eq!(
            query_sks(&t, Query::partition(format!("w{w}"))).await.len(),
            20
        );
    }
    assert_eq!(stats.calls - before.calls, 640);
}
