//! The embedded change feed: every committed write of a streamed table, in commit order, with
//! the item afterwards; nothing for a write that did not commit; kept until trimmed.

use civic_store::stream::{ChangeKind, Feed};
use civic_store::{Cond, Embedded, StoreError, Table, Update, Write};
use serde_json::json;

use super::key;

/// An item at (pk, sk) with `extra` attributes.
fn item(pk: &str, sk: &str, extra: serde_json::Value) -> civic_store::Item {
    let mut i = super::item(json!({"PK": pk, "SK": sk}));
    i.extend(extra.as_object().unwrap().clone());
    i
}

fn kinds(changes: &[civic_store::stream::Change]) -> Vec<(ChangeKind, Option<String>)> {
    changes
        .iter()
        .map(|c| {
            let sk = c
                .new_image
                .as_ref()
                .map(|i| i["SK"].as_str().unwrap().to_owned());
            (c.kind, sk)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_writes_are_fed_in_order_and_failed_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(dir.path()).unwrap();
    let t = store.enable_stream("app").unwrap();
    t.put(item("p", "a", json!({"n": 1})), Cond::Always)
        .await
        .unwrap();
    t.update(Update::new(key("p", "a")).add("n", 2))
        .await
        .unwrap();
    // Refused: no record.
    let refused = t.put(item("p", "a", json!({})), Cond::NotExists).await;
    assert!(matches!(refused, Err(StoreError::ConditionFailed)));
    let cancelled = t
        .transact(vec![
            Write::Put {
                item: item("p", "b", json!({})),
                cond: Cond::Always,
            },
            Write::Check {
                key: key("p", "zz"),
                cond: Cond::Exists,
            },
        ])
        .await;
    assert!(matches!(cancelled, Err(StoreError::TransactionCanceled(_))));
    t.transact(vec![
        Write::Put {
            item: item("p", "c", json!({})),
            cond: Cond::Always,
        },
        Write::Delete {
            key: key("p", "a"),
            cond: Cond::Always,
        },
    ])
    .await
    .unwrap();
    // Deleting nothing changes nothing.
    t.delete(&key("p", "nope"), Cond::Always).await.unwrap();

    let all = t.changes(None, 100).await.unwrap();
    assert_eq!(
        kinds(&all),
        [
            (ChangeKind::Insert, Some("a".into())),
            (ChangeKind::Modify, Some("a".into())),
            (ChangeKind::Insert, Some("c".into())),
            (ChangeKind::Remove, None),
        ]
    );
    assert_eq!(all[1].new_image.as_ref().unwrap()["n"], json!(3));
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(all.iter().all(|c| c.shard == "local"));

    // Paging and trimming.
    let after_first = t.changes(Some(&all[0].seq), 2).await.unwrap();
    assert_eq!(kinds(&after_first), kinds(&all[1..3]));
    t.trim(&all[2].seq).await.unwrap();
    assert_eq!(
        kinds(&t.changes(None, 100).await.unwrap()),
        kinds(&all[3..])
    );

    // The stream is a property of the table: it survives a restart, and other tables have none.
    drop(t);
    drop(store);
    let store = Embedded::open(dir.path()).unwrap();
    let t = store.table("app");
    t.put(item("p", "d", json!({})), Cond::Always)
        .await
        .unwrap();
    let kept = t.changes(None, 100).await.unwrap();
    assert_eq!(
        kinds(&kept).last(),
        Some(&(ChangeKind::Insert, Some("d".into())))
    );
    assert!(
        kept[0].seq == all[3].seq,
        "numbering goes on after a restart"
    );
    // Trimming everything does not restart the numbering either.
    t.trim(&kept[1].seq).await.unwrap();
    assert!(t.changes(None, 10).await.unwrap().is_empty());
    t.put(item("p", "e", json!({})), Cond::Always)
        .await
        .unwrap();
    let fresh = t.changes(Some(&kept[1].seq), 10).await.unwrap();
    assert_eq!(kinds(&fresh), [(ChangeKind::Insert, Some("e".into()))]);
    assert!(fresh[0].seq > kept[1].seq);
    let other = store.table("other");
    other
        .put(item("p", "a", json!({})), Cond::Always)
        .await
        .unwrap();
    assert!(matches!(
        other.changes(None, 10).await,
        Err(StoreError::Invalid(_))
    ));
}
