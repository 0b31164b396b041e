//! Table cases: TTL expiry and round-trip counting.

use std::sync::Arc;

use civic_store::{Cond, Query, StoreError, Table, Update, Write, counting, now_epoch};
use serde_json::json;

use crate::{item, key, query_sks};

pub(crate) async fn ttl_expired_items_are_absent(t: Arc<dyn Table>) {
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

pub(crate) async fn ttl_update_over_expired_starts_fresh(t: Arc<dyn Table>) {
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

pub(crate) async fn round_trips_are_counted(t: Arc<dyn Table>) {
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
