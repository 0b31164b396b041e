//! Blob cases: put/get/delete, listing pages, cursors, round trips and capped reads.

use std::sync::Arc;

use bytes::Bytes;
use civic_store::{Blob, StoreError, counting};

pub(crate) async fn blob_put_get_delete(b: Arc<dyn Blob>) {
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

pub(crate) async fn blob_list_pages(b: Arc<dyn Blob>) {
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

pub(crate) async fn blob_bad_cursor(b: Arc<dyn Blob>) {
    b.put("k", Bytes::from_static(b"v"), "text/plain")
        .await
        .unwrap();
    let res = b.list("", Some("%%% not a cursor".into()), 10).await;
    assert!(matches!(res, Err(StoreError::BadCursor)), "{res:?}");
}

pub(crate) async fn blob_round_trips(b: Arc<dyn Blob>) {
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

/// Issue 15, item 4: a consumer's read is capped, and an object over the cap comes back as its
/// size alone (S3: from `HeadObject`; files: from their metadata).
pub(crate) async fn blob_get_capped_refuses_oversize_objects(b: Arc<dyn Blob>) {
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
