//! The DynamoDB backend's tables have a `NEW_IMAGE` stream, and its records read back (through
//! the DynamoDB Streams API on moto) as `Change`s in commit order.

use civic_store::stream::ChangeKind;
use civic_store::{Backend, Cond, Item, Key, Update};
use civic_testkit::{moto, streams};
use serde_json::json;

fn item(value: serde_json::Value) -> Item {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn writes_come_back_from_the_stream_in_order_with_their_new_images() {
    let sdk = moto::aws_config().await;
    let backend = Backend::aws_with_config(&sdk, moto::unique("unused"));
    let name = moto::unique("streams");
    backend.ensure_table(&name).await.unwrap();
    let table = backend.table(&name);

    let a = Key::new("EVENTS#a", "1");
    let put =
        |pk: &str, n: i64| item(json!({"PK": pk, "SK": "1", "n": n, "temp": 21.5, "on": true}));
    table
        .put(put("EVENTS#a", 1), Cond::NotExists)
        .await
        .unwrap();
    table
        .update(Update::new(a.clone()).add("n", 2))
        .await
        .unwrap();
    table
        .put(put("EVENTS#b", 7), Cond::NotExists)
        .await
        .unwrap();
    table.delete(&a, Cond::Always).await.unwrap();

    let changes = streams::changes(&sdk, &name).await;
    let summary: Vec<_> = changes
        .iter()
        .map(|c| {
            let image = c.new_image.as_ref();
            let pk = image.map(|i| i["PK"].clone());
            (c.kind, pk, image.map(|i| i["n"].clone()))
        })
        .collect();
    assert_eq!(
        summary,
        [
            (ChangeKind::Insert, Some(json!("EVENTS#a")), Some(json!(1))),
            (ChangeKind::Modify, Some(json!("EVENTS#a")), Some(json!(3))),
            (ChangeKind::Insert, Some(json!("EVENTS#b")), Some(json!(7))),
            (ChangeKind::Remove, None, None),
        ]
    );
    let first = changes[0].new_image.as_ref().unwrap();
    assert!(
        first["n"].is_i64() || first["n"].is_u64(),
        "a number: {first:?}"
    );
    assert_eq!(
        (first["temp"].clone(), first["on"].clone()),
        (json!(21.5), json!(true))
    );
    // One shard on a small table; padded sequence numbers strictly increase along it.
    assert!(
        changes
            .iter()
            .all(|c| c.shard == changes[0].shard && !c.shard.is_empty())
    );
    assert!(
        changes.windows(2).all(|w| w[0].seq < w[1].seq),
        "{changes:?}"
    );
}

#[tokio::test]
async fn a_table_without_writes_has_an_empty_stream() {
    let sdk = moto::aws_config().await;
    let backend = Backend::aws_with_config(&sdk, moto::unique("unused"));
    let name = moto::unique("streams");
    backend.ensure_table(&name).await.unwrap();
    assert!(streams::changes(&sdk, &name).await.is_empty());
}
