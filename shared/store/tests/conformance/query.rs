//! Table cases: sort-key ranges, pagination and the GSI.

use std::sync::Arc;

use std::collections::HashSet;

use civic_store::{Cond, GSI1PK, GSI1SK, Query, SkRange, StoreError, Table, Update, Write};
use serde_json::json;

use crate::{drain, item, key, query_sks};

pub(crate) async fn query_sort_key_ranges(t: Arc<dyn Table>) {
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

pub(crate) async fn query_pagination_visits_each_item_once(t: Arc<dyn Table>) {
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

pub(crate) async fn query_bad_cursor(t: Arc<dyn Table>) {
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

pub(crate) async fn gsi_query_follows_writes(t: Arc<dyn Table>) {
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

pub(crate) async fn gsi_pagination(t: Arc<dyn Table>) {
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
