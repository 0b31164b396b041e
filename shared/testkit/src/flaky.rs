//! A table that fails chosen `transact` calls, to test what a crash leaves behind, and keeps
//! the key of every item written, to test what a path never writes.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use civic_store::{Cond, Item, Key, PK, Page, Query, Row, SK, StoreError, Table, Update, Write};

/// Passes every call on to `inner`, except the `transact` calls the plan names: each fails
/// either before passing the call on (a crash before the commit) or after it (a crash after
/// the commit, whose answer never arrives).
pub struct Flaky {
    inner: Arc<dyn Table>,
    /// (call number from 1, commit first) of each failure to inject.
    plan: Vec<(usize, bool)>,
    calls: Mutex<usize>,
    written: Mutex<Vec<Key>>,
}

impl Flaky {
    pub fn new(inner: Arc<dyn Table>, plan: Vec<(usize, bool)>) -> Self {
        let (calls, written) = (Mutex::new(0), Mutex::new(Vec::new()));
        Self {
            inner,
            plan,
            calls,
            written,
        }
    }

    /// The key of every item written so far (put, updated, deleted or in a transaction).
    pub fn written(&self) -> Vec<Key> {
        self.written.lock().unwrap().clone()
    }

    fn wrote(&self, key: Key) {
        self.written.lock().unwrap().push(key);
    }
}

fn key_of(item: &Item) -> Key {
    let s = |name: &str| item[name].as_str().unwrap_or_default().to_owned();
    Key::new(s(PK), s(SK))
}

#[async_trait]
impl Table for Flaky {
    async fn get_row(&self, key: &Key) -> civic_store::Result<Option<Row>> {
        self.inner.get_row(key).await
    }
    async fn query_rows(&self, q: Query) -> civic_store::Result<Page<Row>> {
        self.inner.query_rows(q).await
    }
    async fn put(&self, item: Item, cond: Cond) -> civic_store::Result<()> {
        self.wrote(key_of(&item));
        self.inner.put(item, cond).await
    }
    async fn update(&self, u: Update) -> civic_store::Result<Item> {
        self.wrote(u.key.clone());
        self.inner.update(u).await
    }
    async fn delete(&self, key: &Key, cond: Cond) -> civic_store::Result<Option<Item>> {
        self.wrote(key.clone());
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, writes: Vec<Write>) -> civic_store::Result<()> {
        for w in &writes {
            self.wrote(match w {
                Write::Put { item, .. } => key_of(item),
                Write::Update(u) => u.key.clone(),
                Write::Delete { key, .. } | Write::Check { key, .. } => key.clone(),
            });
        }
        let n = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        match self.plan.iter().find(|(at, _)| *at == n) {
            None => self.inner.transact(writes).await,
            Some((_, false)) => Err(StoreError::Backend("crashed before the commit".into())),
            Some((_, true)) => {
                self.inner.transact(writes).await?;
                Err(StoreError::Backend("crashed after the commit".into()))
            }
        }
    }
    async fn ping(&self) -> civic_store::Result<()> {
        self.inner.ping().await
    }
}
