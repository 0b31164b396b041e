//! A crash (SIGKILL) in the middle of group commits loses no acknowledged write and leaves no
//! half transaction. The writer is this test binary run again as a child process
//! ([`child_writes_until_killed`]), which prints each write once the store acknowledged it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use civic_store::{Cond, Embedded, Query, Table, Update, Write};
use serde_json::json;

use super::{drain, item, key};

const DIR_VAR: &str = "CIVIC_CRASH_TEST_DIR";
const WRITERS: usize = 32;
const PER_WRITER: usize = 400;

/// Run by the parent test only: 32 writers, each committing pairs of items in one transaction
/// and bumping its own counter, printing what was acknowledged.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "the child process of a_crash_mid_group_loses_no_acknowledged_write"]
async fn child_writes_until_killed() {
    let dir = std::env::var(DIR_VAR).expect("run by the crash test");
    let store = Embedded::open(std::path::Path::new(&dir)).unwrap();
    let t = Arc::new(store.table("app"));
    let writers = (0..WRITERS).map(|w| {
        let t = t.clone();
        tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let sk = format!("w{w:02}-{i:04}");
                let pair = |pk: &str| Write::Put {
                    item: item(json!({"PK": pk, "SK": sk})),
                    cond: Cond::NotExists,
                };
                t.transact(vec![pair("A"), pair("B")]).await.unwrap();
                println!("acked {sk}");
                let n = t
                    .update(Update::new(key("C", &format!("w{w:02}"))).add("n", 1))
                    .await
                    .unwrap()["n"]
                    .as_u64()
                    .unwrap();
                println!("counted w{w:02} {n}");
            }
        })
    });
    futures::future::join_all(writers).await;
}

/// What the child reported before it died: the acknowledged pairs and each counter's
/// highest acknowledged value.
#[derive(Default)]
struct Acked {
    pairs: BTreeSet<String>,
    counts: BTreeMap<String, u64>,
}

impl Acked {
    fn record(&mut self, line: &str) {
        if let Some(sk) = line.strip_prefix("acked ") {
            self.pairs.insert(sk.to_owned());
        } else if let Some((w, n)) = line
            .strip_prefix("counted ")
            .and_then(|r| r.split_once(' '))
        {
            let n = n.parse().unwrap();
            let at = self.counts.entry(w.to_owned()).or_default();
            *at = (*at).max(n);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_group_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::child_writes_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Acked::default();
    while acked.pairs.len() < 1_000 {
        let line = lines.next().expect("the child writes").unwrap();
        acked.record(&line);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines already in the pipe were acknowledged before the process died.
    for line in lines {
        acked.record(&line.unwrap());
    }

    let store = Embedded::open(dir.path()).unwrap();
    let t = store.table("app");
    let a: BTreeSet<String> = drain(&t, Query::partition("A")).await.into_iter().collect();
    let b: BTreeSet<String> = drain(&t, Query::partition("B")).await.into_iter().collect();
    let lost: Vec<_> = acked.pairs.difference(&a).collect();
    assert!(lost.is_empty(), "acknowledged pairs lost: {lost:?}");
    assert_eq!(a, b, "a transaction landed in half");
    assert!(
        a.len() < WRITERS * PER_WRITER,
        "the crash came mid-stream ({} stored)",
        a.len()
    );
    for (w, n) in &acked.counts {
        let stored = t.get(&key("C", w)).await.unwrap().unwrap()["n"]
            .as_u64()
            .unwrap();
        assert!(stored >= *n, "{w}: acknowledged {n}, stored {stored}");
    }
}
