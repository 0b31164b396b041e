//! Table cases: single-item puts, conditions, updates and deletes.

use std::sync::Arc;

use civic_store::{Cond, StoreError, Table, Update, Write};
use serde_json::json;

use crate::{item, key};

pub(crate) async fn get_put_overwrite(t: Arc<dyn Table>) {
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

pub(crate) async fn put_if_absent_conflicts(t: Arc<dyn Table>) {
    let first = item(json!({"PK": "P", "SK": "S", "n": 1}));
    t.put_if_absent(first.clone()).await.unwrap();
    let err = t
        .put_if_absent(item(json!({"PK": "P", "SK": "S", "n": 2})))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert_eq!(t.get(&key("P", "S")).await.unwrap(), Some(first));
}

pub(crate) async fn put_versioned_checks_version(t: Arc<dyn Table>) {
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

pub(crate) async fn put_conditions_on_missing_item(t: Arc<dyn Table>) {
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

pub(crate) async fn invalid_writes_rejected(t: Arc<dyn Table>) {
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

pub(crate) async fn update_actions_return_all_new(t: Arc<dyn Table>) {
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

pub(crate) async fn update_exists_on_missing_fails(t: Arc<dyn Table>) {
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

pub(crate) async fn update_version_condition(t: Arc<dyn Table>) {
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

pub(crate) async fn delete_returns_old_item(t: Arc<dyn Table>) {
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
