//! The DynamoDB model (`civic_store::model`) on a real embedded table: each case checks the
//! figures DynamoDB's on-demand rules give.

use std::sync::Arc;

use civic_store::model::{Metered, Params, Report, item_size, monthly_cost};
use civic_store::{
    Cond, Embedded, GSI1PK, GSI1SK, Item, Key, Query, StoreError, Table, Update, Write,
};
use serde_json::{Value, json};
use tempfile::TempDir;

fn metered_with(params: Params) -> (Metered, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded::open(dir.path()).unwrap();
    (
        Metered::with_params(Arc::new(store.table("app")), params),
        dir,
    )
}

fn metered() -> (Metered, TempDir) {
    metered_with(Params::default())
}

/// An item of exactly `bytes` bytes as DynamoDB sizes it (padding in a `data` string).
fn sized(pk: &str, sk: &str, bytes: usize, extra: Value) -> Item {
    let mut item: Item = serde_json::from_value(extra).unwrap();
    item.insert("PK".into(), pk.into());
    item.insert("SK".into(), sk.into());
    item.insert("data".into(), "".into());
    let pad = bytes - item_size(&item);
    item.insert("data".into(), "x".repeat(pad).into());
    assert_eq!(item_size(&item), bytes);
    item
}

fn item(pk: &str, sk: &str, bytes: usize) -> Item {
    sized(pk, sk, bytes, json!({}))
}

fn wcu(report: &Report, kind: &str) -> u64 {
    report.kind(kind).wcu
}

#[test]
fn item_size_follows_dynamodb_rules() {
    let size = |v: Value| item_size(&serde_json::from_value(v).unwrap());
    assert_eq!(size(json!({"PK": "ab"})), 4);
    assert_eq!(size(json!({"PK": "é"})), 4, "strings count UTF-8 bytes");
    // 5 significant digits: 3 bytes + 1.
    assert_eq!(size(json!({"n": 12345})), 1 + 4);
    // Leading and trailing zeros are trimmed: one significant digit each.
    assert_eq!(size(json!({"n": 100})), 1 + 2);
    assert_eq!(size(json!({"n": 0.5})), 1 + 2);
    assert_eq!(size(json!({"b": true, "z": null})), 2 + 2);
    // 3 + ("ab" + 1) + (number 2 bytes + 1).
    assert_eq!(size(json!({"l": ["ab", 1]})), 1 + 3 + 3 + 3);
    // 3 + (name "a" + bool 1 + 1).
    assert_eq!(size(json!({"m": {"a": true}})), 1 + 3 + 3);
    assert_eq!(size(json!({"m": {}})), 1 + 3);
}

#[tokio::test]
async fn writes_round_up_to_1kb() {
    let (m, _dir) = metered();
    m.scoped("small", m.put(item("p", "a", 900), Cond::Always))
        .await
        .unwrap();
    m.scoped("large", m.put(item("p", "b", 1100), Cond::Always))
        .await
        .unwrap();
    m.scoped("exact", m.put(item("p", "c", 1024), Cond::Always))
        .await
        .unwrap();
    let r = m.report();
    assert_eq!(
        (wcu(&r, "small"), wcu(&r, "large"), wcu(&r, "exact")),
        (1, 2, 1)
    );
    assert_eq!(r.kind("small").requests, 1);
    assert_eq!(r.total_wcu, 4);
}

#[tokio::test]
async fn overwrite_bills_the_larger_item_and_delete_the_old_one() {
    let (m, _dir) = metered();
    m.put(item("p", "a", 3000), Cond::Always).await.unwrap();
    m.scoped("shrink", m.put(item("p", "a", 500), Cond::Always))
        .await
        .unwrap();
    m.scoped("delete", m.delete(&Key::new("p", "b"), Cond::Always))
        .await
        .unwrap();
    m.put(item("p", "c", 2500), Cond::Always).await.unwrap();
    m.scoped("delete", m.delete(&Key::new("p", "c"), Cond::Always))
        .await
        .unwrap();
    let r = m.report();
    assert_eq!(wcu(&r, "shrink"), 3, "max(3000, 500) bytes");
    assert_eq!(
        wcu(&r, "delete"),
        1 + 3,
        "a missing item costs 1, then 2500 bytes"
    );
    assert_eq!(wcu(&r, "other"), 3 + 3);
}

#[tokio::test]
async fn transactions_cost_twice() {
    let (m, _dir) = metered();
    let put = |i| Write::Put {
        item: i,
        cond: Cond::Always,
    };
    m.scoped("small", m.transact(vec![put(item("p", "a", 900))]))
        .await
        .unwrap();
    m.scoped("large", m.transact(vec![put(item("p", "b", 1100))]))
        .await
        .unwrap();
    let check = Write::Check {
        key: Key::new("p", "b"),
        cond: Cond::Exists,
    };
    let update = Write::Update(Update::new(Key::new("q", "a")).add("n", 1));
    m.scoped("mixed", m.transact(vec![check, update]))
        .await
        .unwrap();
    let r = m.report();
    assert_eq!((wcu(&r, "small"), wcu(&r, "large")), (2, 4));
    // Check of a 1100-byte item: 2 × 2; a small update: 2 × 1.
    assert_eq!(wcu(&r, "mixed"), 6);
    assert_eq!(r.kind("mixed").transactions, 1);
    let q = r.hot.iter().find(|h| h.key == "q").unwrap();
    assert_eq!((q.peak_writes, q.peak_wcu), (1, 2));
    let p = r.hot.iter().find(|h| h.key == "p").unwrap();
    assert_eq!(p.peak_writes, 2, "a ConditionCheck writes nothing");
    assert_eq!(p.peak_wcu, 2 + 4 + 4);
}

#[tokio::test]
async fn gsi_key_change_costs_two_index_writes() {
    let (m, _dir) = metered();
    let indexed = sized("dev", "a", 500, json!({GSI1PK: "G", GSI1SK: "1"}));
    m.scoped("insert", m.put(indexed, Cond::Always))
        .await
        .unwrap();
    let key = Key::new("dev", "a");
    let same = Update::new(key.clone()).set("n", 1);
    m.scoped("same", m.update(same)).await.unwrap();
    let moved = Update::new(key.clone()).set(GSI1SK, "2");
    m.scoped("moved", m.update(moved)).await.unwrap();
    let out = Update::new(key.clone()).remove(GSI1PK);
    m.scoped("out", m.update(out)).await.unwrap();
    let plain = Update::new(key.clone()).set("n", 2);
    m.scoped("plain", m.update(plain)).await.unwrap();
    let r = m.report();
    let gsi = |k: &str| r.kind(k).gsi_wcu;
    assert_eq!((wcu(&r, "insert"), gsi("insert")), (2, 1));
    assert_eq!((wcu(&r, "same"), gsi("same")), (2, 1));
    assert_eq!((wcu(&r, "moved"), gsi("moved")), (3, 2));
    assert_eq!((wcu(&r, "out"), gsi("out")), (2, 1));
    assert_eq!((wcu(&r, "plain"), gsi("plain")), (1, 0));
    let hot = r.hot.iter().find(|h| h.key == "GSI1#G").unwrap();
    assert_eq!((hot.peak_writes, hot.peak_wcu), (5, 5));
    assert_eq!(r.hottest().unwrap().key, "GSI1#G");
}

#[tokio::test]
async fn gsi_writes_in_a_transaction_are_not_doubled() {
    let (m, _dir) = metered();
    let indexed = sized("dev", "a", 500, json!({GSI1PK: "G", GSI1SK: "1"}));
    let put = Write::Put {
        item: indexed,
        cond: Cond::NotExists,
    };
    m.scoped("t", m.transact(vec![put])).await.unwrap();
    let r = m.report();
    assert_eq!((wcu(&r, "t"), r.kind("t").gsi_wcu), (2 + 1, 1));
}

#[tokio::test]
async fn peak_writes_per_simulated_second() {
    let (m, _dir) = metered();
    for (t, sk) in [(10.1, "a"), (10.5, "b"), (10.9, "c"), (11.2, "d")] {
        m.set_now(t);
        m.put(item("hot", sk, 1500), Cond::Always).await.unwrap();
    }
    m.set_now(12.0);
    m.put(item("cold", "a", 100), Cond::Always).await.unwrap();
    let r = m.report();
    let hot = r.hottest().unwrap();
    assert_eq!(
        (hot.key.as_str(), hot.peak_writes, hot.peak_wcu),
        ("hot", 3, 6)
    );
    assert_eq!(r.hot.len(), 2);
    assert_eq!(r.seconds, 3.0);
    assert!((r.wcu_per_second() - 9.0 / 3.0).abs() < 1e-9);
}

#[tokio::test]
async fn peaks_stay_exact_with_few_tracked_keys() {
    let params = Params {
        tracked_keys: 2,
        top: 2,
        ..Params::default()
    };
    let (m, _dir) = metered_with(params);
    for second in 0..10 {
        m.set_now(f64::from(second));
        for cold in 0..10 {
            let pk = format!("cold{second}-{cold}");
            m.put(item(&pk, "a", 100), Cond::Always).await.unwrap();
        }
        let burst = match second {
            3 => Some(("hot", 5)),
            7 => Some(("warm", 4)),
            _ => None,
        };
        if let Some((pk, n)) = burst {
            for i in 0..n {
                m.put(item(pk, &i.to_string(), 100), Cond::Always)
                    .await
                    .unwrap();
            }
        }
    }
    let r = m.report();
    let hot: Vec<_> = r
        .hot
        .iter()
        .map(|h| (h.key.as_str(), h.peak_writes))
        .collect();
    assert_eq!(hot, [("hot", 5), ("warm", 4)]);
    assert_eq!(r.total_wcu, 100 + 9);
}

#[tokio::test]
async fn overlapping_transactions_conflict() {
    let (m, _dir) = metered();
    let bump = || {
        vec![Write::Update(
            Update::new(Key::new("fleet", "total")).add("n", 1),
        )]
    };
    for t in [100.0, 100.005, 101.0, 101.05] {
        m.set_now(t);
        m.scoped("event", m.transact(bump())).await.unwrap();
    }
    let r = m.report();
    let event = r.kind("event");
    assert_eq!((event.transactions, event.conflicts), (4, 1));
    assert!((r.conflict_rate("event") - 0.25).abs() < 1e-9);
    assert_eq!(r.conflict_rate("absent"), 0.0);
}

/// A request's transactions run one after the other, so they never meet each other; two
/// requests at the same moment do.
#[tokio::test]
async fn a_request_s_own_transactions_follow_each_other() {
    let (m, _dir) = metered();
    let bump = || {
        vec![Write::Update(
            Update::new(Key::new("camera", "1")).add("n", 1),
        )]
    };
    m.set_now(50.0);
    let sequential = async {
        for _ in 0..3 {
            m.transact(bump()).await.unwrap();
        }
    };
    m.scoped("batch", sequential).await;
    assert_eq!(m.report().kind("batch").conflicts, 0);
    m.set_now(60.0);
    let (a, b) = tokio::join!(
        m.scoped("pair", m.transact(bump())),
        m.scoped("pair", m.transact(bump()))
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(m.report().kind("pair").conflicts, 1);
}

#[tokio::test]
async fn failed_conditional_writes_still_cost() {
    let (m, _dir) = metered();
    let indexed = sized("p", "a", 1500, json!({GSI1PK: "G", GSI1SK: "1"}));
    m.put(indexed.clone(), Cond::Always).await.unwrap();
    let again = m.scoped("put", m.put_if_absent(indexed.clone())).await;
    assert!(matches!(again, Err(StoreError::ConditionFailed)));
    let txn = vec![Write::Put {
        item: indexed,
        cond: Cond::NotExists,
    }];
    let canceled = m.scoped("txn", m.transact(txn)).await;
    assert!(matches!(canceled, Err(StoreError::TransactionCanceled(_))));
    let stale = Update::new(Key::new("p", "a"))
        .set("n", 1)
        .cond(Cond::Version(9));
    let failed = m.scoped("update", m.update(stale)).await;
    assert!(matches!(failed, Err(StoreError::ConditionFailed)));
    let r = m.report();
    assert_eq!((wcu(&r, "put"), r.kind("put").gsi_wcu), (2, 0));
    assert_eq!((wcu(&r, "txn"), r.kind("txn").gsi_wcu), (4, 0));
    assert_eq!(wcu(&r, "update"), 2);
}

#[tokio::test]
async fn reads_round_up_to_4kb() {
    let (m, _dir) = metered();
    m.put(item("p", "big", 5000), Cond::Always).await.unwrap();
    for sk in ["q1", "q2", "q3"] {
        let indexed = sized("q", sk, 3000, json!({GSI1PK: "G", GSI1SK: sk}));
        m.put(indexed, Cond::Always).await.unwrap();
    }
    m.scoped("get", m.get(&Key::new("p", "big"))).await.unwrap();
    let missing = m.scoped("miss", m.get(&Key::new("p", "none"))).await;
    assert!(missing.unwrap().is_none());
    let page = m.scoped("query", m.query(Query::partition("q"))).await;
    assert_eq!(page.unwrap().items.len(), 3);
    m.scoped("empty", m.query(Query::partition("nothing")))
        .await
        .unwrap();
    m.scoped("index", m.query(Query::index("G"))).await.unwrap();
    let r = m.report();
    let rcu = |k: &str| r.kind(k).rcu;
    assert_eq!((rcu("get"), rcu("miss")), (2.0, 1.0));
    assert_eq!(
        (rcu("query"), rcu("empty")),
        (3.0, 1.0),
        "9000 bytes in one page"
    );
    assert_eq!(rcu("index"), 1.5, "GSI reads are eventually consistent");
    assert_eq!(r.rcu_per("query"), 3.0);
    assert_eq!(wcu(&r, "get"), 0);
}

#[tokio::test]
async fn kinds_are_kept_apart() {
    let (m, _dir) = metered();
    let two_puts = async {
        m.put(item("a", "1", 100), Cond::Always).await?;
        m.put(item("a", "2", 2000), Cond::Always).await
    };
    m.scoped("ingest", two_puts).await.unwrap();
    m.scoped("ingest", m.put(item("a", "3", 100), Cond::Always))
        .await
        .unwrap();
    m.scoped("read", m.get(&Key::new("a", "1"))).await.unwrap();
    m.put(item("b", "1", 100), Cond::Always).await.unwrap();
    m.get(&Key::new("b", "1")).await.unwrap();
    let r = m.report();
    let ingest = r.kind("ingest");
    assert_eq!((ingest.requests, ingest.wcu, ingest.rcu), (2, 4, 0.0));
    assert_eq!(r.wcu_per("ingest"), 2.0);
    let read = r.kind("read");
    assert_eq!((read.requests, read.wcu, read.rcu), (1, 0, 1.0));
    let other = r.kind("other");
    assert_eq!((other.requests, other.wcu, other.rcu), (2, 1, 1.0));
    assert_eq!(r.total_wcu, 5);
    assert_eq!(r.kinds.len(), 3);
}

#[tokio::test]
async fn report_prints_markdown_tables() {
    let (m, _dir) = metered();
    m.set_now(5.0);
    m.scoped("event", m.put(item("dev#1", "s", 1500), Cond::Always))
        .await
        .unwrap();
    let text = m.report().to_string();
    assert!(text.contains("| kind | requests | WCU/request | RCU/request | conflicts % |"));
    assert!(
        text.contains("| event | 1 | 2.00 | 0.00 | 0.000 |"),
        "{text}"
    );
    assert!(text.contains("| dev#1 | 1 | 2 |"), "{text}");
    assert!(
        text.starts_with("2 WCU and 0.0 RCU over 1 simulated s (2.0 WCU/s)"),
        "{text}"
    );
}

#[test]
fn monthly_cost_of_steady_writes() {
    // 1 WCU/s for 30 days is 2.592 million units.
    assert!((monthly_cost(1.0, 1.25) - 3.24).abs() < 1e-9);
    assert!((monthly_cost(1000.0, 0.625) - 1620.0).abs() < 1e-6);
    assert_eq!(monthly_cost(0.0, 1.25), 0.0);
}
