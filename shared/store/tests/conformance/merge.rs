//! `query_merged_as`: one listing sharded over several index partitions, read back as one.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use civic_store::{Cond, Query, SkRange, StoreError, Table, counting, now_epoch, query_merged_as};
use serde::Deserialize;
use serde_json::json;

use crate::item;

// `table_suite!` in main.rs is defined after the `mod` lines, out of this file's reach.
macro_rules! merge_suite {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (it, _guard) = crate::embedded_table().await;
                    super::$case(it).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (it, _guard) = crate::dynamo_table().await;
                    super::$case(it).await;
                }
            )*
        }
    };
}

merge_suite!(
    merge_walks_shards_in_global_order,
    merge_with_an_empty_shard,
    merge_skips_expired_items,
    merge_rejects_bad_cursors_and_queries,
);

/// The type pages decode into (key attributes read like any other field).
#[derive(Clone, Debug, Deserialize, PartialEq)]
struct Ev {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(rename = "GSI1SK")]
    at: String,
}

fn ev(pk: &str, sk: &str, at: &str) -> Ev {
    Ev {
        pk: pk.into(),
        sk: sk.into(),
        at: at.into(),
    }
}

/// Stores `e` in shard `gsi_pk`, expiring at `expires_at` when given.
async fn put(t: &dyn Table, gsi_pk: &str, e: &Ev, expires_at: Option<i64>) {
    let mut it = item(json!({"PK": e.pk, "SK": e.sk, "GSI1PK": gsi_pk, "GSI1SK": e.at}));
    if let Some(at) = expires_at {
        it.insert("expires_at".into(), at.into());
    }
    t.put(it, Cond::Always).await.unwrap();
}

/// The shard queries of one listing.
fn shards(pks: &[&str], limit: Option<usize>, forward: bool) -> Vec<Query> {
    pks.iter()
        .map(|pk| {
            let q = Query::index(*pk).sk(SkRange::Gte("2024-02".into()));
            let q = if forward { q } else { q.reverse() };
            Query { limit, ..q }
        })
        .collect()
}

/// (GSI1SK, PK, SK) order, reversed for reverse listings.
fn sorted(mut evs: Vec<Ev>, forward: bool) -> Vec<Ev> {
    evs.sort_by(|a, b| (&a.at, &a.pk, &a.sk).cmp(&(&b.at, &b.pk, &b.sk)));
    if !forward {
        evs.reverse();
    }
    evs
}

/// Follows merged cursors to the end. Each page holds at most the limit and costs at most
/// `max_trips` round trips; with `progress`, only the last page may be empty.
async fn walk(t: &dyn Table, qs: &[Query], max_trips: u64, progress: bool) -> Vec<Ev> {
    let (mut out, mut cursor) = (Vec::new(), None);
    for _ in 0..200 {
        let (page, trips) = counting(query_merged_as::<Ev>(t, qs.to_vec(), cursor)).await;
        let page = page.unwrap();
        assert!(trips <= max_trips, "{trips} round trips for one page");
        assert!(page.items.len() <= qs[0].limit.unwrap_or(usize::MAX));
        if progress && page.items.is_empty() {
            assert!(page.cursor.is_none(), "an empty page before the end");
        }
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("merged pagination did not end");
}

async fn merge_walks_shards_in_global_order(t: Arc<dyn Table>) {
    let t = t.as_ref();
    let pks = ["EVENTS", "EVENTS#01", "EVENTS#02"];
    let mut live = Vec::new();
    for i in 0..30usize {
        // Groups of three share a GSI1SK, across shards and within one; PK order runs
        // against SK order in some groups, and equal PKs leave SK to break the tie.
        let e = ev(
            &format!("dev#{}", (i * 3) % 4 % 2),
            &format!("e#{i:02}"),
            &format!("2024-{:02}", 2 + i / 3),
        );
        put(t, pks[(i * 7 / 3) % 3], &e, None).await;
        live.push(e);
    }
    // Below the range, and a neighbouring shard not asked for: neither may appear.
    for pk in pks {
        put(t, pk, &ev("dev#0", &format!("old#{pk}"), "2024-01"), None).await;
    }
    put(t, "EVENTS#03", &ev("dev#0", "other", "2024-05"), None).await;

    for forward in [true, false] {
        let want = sorted(live.clone(), forward);
        for limit in [Some(1), Some(2), Some(7), Some(100), None] {
            let got = walk(t, &shards(&pks, limit, forward), 3, true).await;
            assert_eq!(got, want, "limit {limit:?}, forward {forward}");
        }
    }
    // A page that fits everything ends the listing at once.
    let (page, trips) = counting(query_merged_as::<Ev>(
        t,
        shards(&pks, Some(100), true),
        None,
    ))
    .await;
    let page = page.unwrap();
    assert_eq!((page.items.len(), page.cursor, trips), (30, None, 3));
}

async fn merge_with_an_empty_shard(t: Arc<dyn Table>) {
    let t = t.as_ref();
    let pks = ["E", "E#01", "E#02"];
    let evs = [
        ("E", ev("a", "1", "2024-03")),
        ("E#02", ev("b", "1", "2024-02")),
        ("E", ev("a", "2", "2024-04")),
        ("E#02", ev("b", "2", "2024-04")),
        ("E#02", ev("c", "1", "2024-09")),
    ];
    for (shard, e) in &evs {
        put(t, shard, e, None).await;
    }
    let all: Vec<Ev> = evs.iter().map(|(_, e)| e.clone()).collect();
    for forward in [true, false] {
        for limit in [1, 2, 7] {
            let got = walk(t, &shards(&pks, Some(limit), forward), 3, true).await;
            assert_eq!(got, sorted(all.clone(), forward), "limit {limit}");
        }
    }
    let none = shards(&["X", "X#01", "X#02"], Some(5), true);
    let page = query_merged_as::<Ev>(t, none, None).await.unwrap();
    assert!(page.items.is_empty() && page.cursor.is_none());
}

async fn merge_skips_expired_items(t: Arc<dyn Table>) {
    let t = t.as_ref();
    let past = Some(now_epoch() - 10);
    // Live items, by shard; the last one expires, but not yet.
    let live = [
        ("T", ev("a", "01", "2024-02")),
        ("T", ev("a", "02", "2024-04")),
        ("T", ev("a", "03", "2024-07")),
        ("T#01", ev("b", "01", "2024-03")),
        ("T#01", ev("b", "02", "2024-05")),
        ("T#01", ev("b", "03", "2024-06")),
        ("T#01", ev("c", "01", "2024-08-50")),
        ("T", ev("a", "99", "2024-09")),
    ];
    for (i, (shard, e)) in live.iter().enumerate() {
        let at = (i == live.len() - 1).then(|| now_epoch() + 3600);
        put(t, shard, e, at).await;
    }
    // Runs of expired items: DynamoDB counts them against a page's limit, so shard pages come
    // back short or empty while live items of that shard still sort before the other
    // shard's. The first run is longer than the merge follows within one page.
    for i in 0..7 {
        put(
            t,
            "T",
            &ev("x", &format!("{i}"), &format!("2024-03-0{i}")),
            past,
        )
        .await;
    }
    for i in 0..3 {
        put(
            t,
            "T",
            &ev("y", &format!("{i}"), &format!("2024-08-0{i}")),
            past,
        )
        .await;
    }
    put(t, "T#01", &ev("c", "00", "2024-02"), past).await;

    let live: Vec<Ev> = live.into_iter().map(|(_, e)| e).collect();
    for forward in [true, false] {
        let want = sorted(live.clone(), forward);
        for limit in [1, 2, 3, 100] {
            // Pages of expired items cost extra round trips, and may end a page empty.
            let qs = shards(&["T", "T#01"], Some(limit), forward);
            let got = walk(t, &qs, 10, false).await;
            assert_eq!(got, want, "limit {limit}, forward {forward}");
        }
    }
}

async fn merge_rejects_bad_cursors_and_queries(t: Arc<dyn Table>) {
    let t = t.as_ref();
    let pks = ["B", "B#01", "B#02"];
    // Two items a shard, so the first page leaves the first shard mid-way (a store cursor).
    for (i, pk) in pks.iter().enumerate() {
        for j in 0..2 {
            let e = ev("p", &format!("{i}{j}"), &format!("2024-0{}", i + 2));
            put(t, pk, &e, None).await;
        }
    }
    let page = query_merged_as::<Ev>(t, shards(&pks, Some(1), true), None)
        .await
        .unwrap();
    let cursor = page.cursor.expect("more to come");

    let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let rotated = shards(&["B#01", "B#02", "B"], Some(1), true);
    let bad: Vec<(Vec<Query>, String)> = vec![
        (shards(&pks, Some(1), true), "not a cursor!".into()),
        (shards(&pks, Some(1), true), enc("[1, 2, 3]")),
        (shards(&pks, Some(1), true), enc("{\"PK\": \"p\"}")),
        (shards(&pks[..2], Some(1), true), cursor.clone()),
        (
            shards(&["B", "B#01", "B#02", "B#03"], Some(1), true),
            cursor.clone(),
        ),
        // The first shard's store cursor now lands on another shard.
        (rotated, cursor.clone()),
    ];
    for (qs, c) in bad {
        let err = query_merged_as::<Ev>(t, qs, Some(c.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::BadCursor), "{c}: {err:?}");
    }

    let mut mixed = shards(&pks[..2], Some(1), true);
    mixed.push(Query::partition("B#02").limit(1));
    let mut reversed = shards(&pks[..2], Some(1), true);
    reversed[1].forward = false;
    for qs in [mixed, reversed, Vec::new()] {
        let err = query_merged_as::<Ev>(t, qs, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
}
