//! Typed reads: items decode straight into the caller's struct, with the same liveness,
//! order and cursors as untyped reads.

use std::sync::Arc;

use civic_store::{Cond, Query, StoreError, Table, Typed, now_epoch};
use serde::Deserialize;
use serde_json::json;

use crate::{item, key};

#[derive(Debug, Deserialize, PartialEq)]
struct Thing {
    name: String,
    n: i64,
}

pub(crate) async fn typed_reads_decode_live_items(t: Arc<dyn Table>) {
    for i in 0..5 {
        let mut it = json!({"PK": "P", "SK": format!("{i}"), "GSI1PK": "G", "GSI1SK": format!("{i}"),
            "name": format!("thing {i}"), "n": i, "extra": {"nested": [1, 2]}});
        if i == 2 {
            it["expires_at"] = json!(now_epoch() - 1);
        }
        t.put(item(it), Cond::Always).await.unwrap();
    }
    let one: Option<Thing> = t.get_as(&key("P", "1")).await.unwrap();
    assert_eq!(
        one,
        Some(Thing {
            name: "thing 1".into(),
            n: 1
        })
    );
    assert_eq!(
        t.get_as::<Thing>(&key("P", "2")).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(t.get_as::<Thing>(&key("P", "9")).await.unwrap(), None);

    for query in [Query::partition("P"), Query::index("G")] {
        let first = t.query_as::<Thing>(query.clone().limit(2)).await.unwrap();
        assert_eq!(first.items.iter().map(|x| x.n).collect::<Vec<_>>(), [0, 1]);
        let rest = t
            .query_as::<Thing>(query.clone().cursor(first.cursor.clone()))
            .await
            .unwrap();
        assert_eq!(rest.items.iter().map(|x| x.n).collect::<Vec<_>>(), [3, 4]);
        let back = t.query_as::<Thing>(query.reverse().limit(1)).await.unwrap();
        assert_eq!(back.items[0].n, 4);
        assert!(back.cursor.is_some());
    }

    // A record that is not a `Thing` is a server-side fault, not the caller's.
    t.put(
        item(json!({"PK": "P", "SK": "bad", "name": 5})),
        Cond::Always,
    )
    .await
    .unwrap();
    assert!(matches!(
        t.get_as::<Thing>(&key("P", "bad")).await,
        Err(StoreError::Corrupt(_))
    ));
}
