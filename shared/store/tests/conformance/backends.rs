//! Backend-specific cases: the filesystem blob store's paths, the embedded store's file and
//! sweep, and the backend factory.

use bytes::Bytes;
use civic_store::{Backend, Cond, Embedded, Query, StoreError, Table, Update, now_epoch};
use civic_testkit::moto;
use serde_json::json;

use crate::{drain, fs_blob, item, key, query_sks};

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
