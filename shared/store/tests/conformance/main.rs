//! One suite of cases, run against every backend: the embedded store and DynamoDB (moto) for
//! `Table`, the filesystem and S3 (moto) for `Blob`. Each (case, backend) is its own test.

use std::sync::Arc;

use civic_store::{Backend, Blob, FsBlob, Item, Key, Page, Query, Table};
use civic_testkit::moto;
use serde_json::Value;
use tempfile::TempDir;

mod backends;
mod blob;
mod crash;
mod feed;
mod group;
mod merge;
mod query;
mod transact;
mod ttl;
mod typed;
mod writes;

// The suites below name each case unqualified (`super::$case`).
use blob::*;
use query::*;
use transact::*;
use ttl::*;
use typed::*;
use writes::*;

// ---------------------------------------------------------------------------------------------
// Backends

/// Keeps a backend's resources (a temp dir) alive for the test.
type Guard = Option<TempDir>;

async fn embedded_table() -> (Arc<dyn Table>, Guard) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    backend.ensure_table("app").await.unwrap();
    (backend.table("app"), Some(dir))
}

async fn dynamo_table() -> (Arc<dyn Table>, Guard) {
    let backend = Backend::aws_with_config(&moto::aws_config().await, moto::unique("unused"));
    let name = moto::unique("table");
    backend.ensure_table(&name).await.unwrap();
    (backend.table(&name), None)
}

pub(crate) async fn fs_blob() -> (Arc<dyn Blob>, Guard) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(FsBlob::open(dir.path()).unwrap()), Some(dir))
}

async fn s3_blob() -> (Arc<dyn Blob>, Guard) {
    let backend = Backend::aws_with_config(&moto::aws_config().await, moto::unique("bucket"));
    backend.ensure_bucket().await.unwrap();
    (backend.blob(), None)
}

/// Stamps out one test per (case, backend).
macro_rules! cases {
    ($module:ident, $make:ident, $($case:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (it, _guard) = super::$make().await;
                    super::$case(it).await;
                }
            )*
        }
    };
}

macro_rules! table_suite {
    ($($case:ident),* $(,)?) => {
        cases!(embedded, embedded_table, $($case),*);
        cases!(dynamo, dynamo_table, $($case),*);
    };
}

macro_rules! blob_suite {
    ($($case:ident),* $(,)?) => {
        cases!(fsblob, fs_blob, $($case),*);
        cases!(s3, s3_blob, $($case),*);
    };
}

table_suite!(
    get_put_overwrite,
    put_if_absent_conflicts,
    put_versioned_checks_version,
    put_conditions_on_missing_item,
    invalid_writes_rejected,
    update_actions_return_all_new,
    update_exists_on_missing_fails,
    update_version_condition,
    delete_returns_old_item,
    transact_all_or_nothing,
    transact_conflict_positions_with_every_kind,
    concurrent_adds_are_atomic,
    concurrent_put_if_absent_one_wins,
    query_sort_key_ranges,
    query_pagination_visits_each_item_once,
    query_bad_cursor,
    gsi_query_follows_writes,
    gsi_pagination,
    ttl_expired_items_are_absent,
    ttl_update_over_expired_starts_fresh,
    round_trips_are_counted,
    typed_reads_decode_live_items,
);

blob_suite!(
    blob_put_get_delete,
    blob_list_pages,
    blob_bad_cursor,
    blob_round_trips,
    blob_get_capped_refuses_oversize_objects
);

// ---------------------------------------------------------------------------------------------
// Helpers

pub(crate) fn item(v: Value) -> Item {
    v.as_object().cloned().expect("a JSON object")
}

pub(crate) fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

pub(crate) fn sks(page: &Page) -> Vec<&str> {
    page.items
        .iter()
        .map(|i| i["SK"].as_str().unwrap())
        .collect()
}

pub(crate) async fn query_sks(t: &dyn Table, q: Query) -> Vec<String> {
    let page = t.query(q).await.unwrap();
    assert!(
        page.cursor.is_none(),
        "an unlimited query returns everything at once"
    );
    sks(&page).into_iter().map(str::to_owned).collect()
}

/// Follows cursors to the end, returning every item's SK in order.
pub(crate) async fn drain(t: &dyn Table, q: Query) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = t.query(q.clone().cursor(cursor)).await.unwrap();
        assert!(page.items.len() <= q.limit.unwrap_or(usize::MAX));
        out.extend(sks(&page).into_iter().map(str::to_owned));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}
