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
    let key = marker();
    let mut flag = Item::new();
    flag.insert("PK".into(), key.pk.into());
    flag.insert("SK".into(), key.sk.into());
    let writes = vec![
        Write::Put {
            item: flag,
            cond: Cond::NotExists,
        },
        Write::Put {
            item: user,
            cond: Cond::NotExists,
        },
    ];
    match table.transact(writes).await {
        Ok(()) => Ok(Claim::Won),
        Err(StoreError::TransactionCanceled(failed)) if failed.contains(&1) => {
            Ok(Claim::UserExists)
        }
        Err(StoreError::TransactionCanceled(_)) => Ok(Claim::Lost),
        Err(e) => Err(e.into()),
    }
}
