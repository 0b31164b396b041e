//! The platform rule that the first user who registers in an app gets its top role. A marker
//! item decides it: exactly one registration can create it, in the same transaction as its user.

use civic_core::Result;
use civic_store::{Cond, Item, Key, StoreError, Table, Write};

fn marker() -> Key {
    Key::new("META", "FIRST_USER")
}

/// Whether the app has had its first user (from then on, elevated roles need an admin).
pub async fn exists(table: &dyn Table) -> Result<bool> {
    Ok(table.get(&marker()).await?.is_some())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// `user` is stored and is the first user.
    Won,
    /// Someone else was first; nothing was written.
    Lost,
    /// `user`'s own key (email, username) is taken; nothing was written.
    UserExists,
}

/// Stores `user` (already carrying the top role) as the first user, if nobody was first yet.
pub async fn claim(table: &dyn Table, user: Item) -> Result<Claim> {
    claim_items(table, vec![user]).await
}

/// As [`claim`], for a user stored as several items (its record plus uniqueness markers, such
/// as a username keyed apart from the record): all are written, each only if absent, in the
/// marker's transaction; `UserExists` when any of them is taken.
pub async fn claim_items(table: &dyn Table, items: Vec<Item>) -> Result<Claim> {
    let key = marker();
    let mut flag = Item::new();
    flag.insert("PK".into(), key.pk.into());
    flag.insert("SK".into(), key.sk.into());
    let mut writes = vec![Write::Put {
        item: flag,
        cond: Cond::NotExists,
    }];
    writes.extend(items.into_iter().map(|item| Write::Put {
        item,
        cond: Cond::NotExists,
    }));
    match table.transact(writes).await {
        Ok(()) => Ok(Claim::Won),
        Err(StoreError::TransactionCanceled(failed)) if failed.iter().any(|&i| i > 0) => {
            Ok(Claim::UserExists)
        }
        Err(StoreError::TransactionCanceled(_)) => Ok(Claim::Lost),
        Err(e) => Err(e.into()),
    }
}
