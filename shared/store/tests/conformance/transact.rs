//! Table cases: transactions and concurrent writers.

use std::collections::HashSet;
use std::sync::Arc;

use civic_store::{Cond, StoreError, Table, Update, Write};
use serde_json::json;

use crate::{item, key};

pub(crate) async fn transact_all_or_nothing(t: Arc<dyn Table>) {
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

pub(crate) async fn transact_conflict_positions_with_every_kind(t: Arc<dyn Table>) {
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

pub(crate) async fn concurrent_adds_are_atomic(t: Arc<dyn Table>) {
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

pub(crate) async fn concurrent_put_if_absent_one_wins(t: Arc<dyn Table>) {
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
