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
    flag.insert(civic_store::PK.into(), key.pk.into());
    flag.insert(civic_store::SK.into(), key.sk.into());
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

/// Why a registration was refused; each app words it in its own error.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// An elevated role was asked for, the caller is no admin, and the app has its first user.
    Elevated,
    /// The user's own key (email, username) is taken.
    Exists,
}

/// One registration under the first-user rule, the flow every app shares: opened before the
/// password is hashed, so a refused elevated request costs no hashing; stored once the user is
/// built.
pub struct Registration {
    has_first: bool,
    elevated_without_admin: bool,
}

impl Registration {
    /// `elevated_without_admin`: the request asks for more than the default role and the caller
    /// is no admin. That is refused at once when the app already has its first user.
    pub async fn open(
        table: &dyn Table,
        elevated_without_admin: bool,
    ) -> Result<std::result::Result<Self, Refused>> {
        let has_first = exists(table).await?;
        if has_first && elevated_without_admin {
            return Ok(Err(Refused::Elevated));
        }
        Ok(Ok(Self {
            has_first,
            elevated_without_admin,
        }))
    }

    /// Stores the user: as `first` (its items carrying the top role) when it wins the race to
    /// be the app's first user, otherwise as `ordinary`, each item only if absent. `Ok(true)`
    /// when it is the first user. Having lost that race, an elevated request is refused after
    /// all, since [`Registration::open`] let it through assuming nobody was first.
    pub async fn store(
        self,
        table: &dyn Table,
        first: Vec<Item>,
        ordinary: Vec<Item>,
    ) -> Result<std::result::Result<bool, Refused>> {
        if !self.has_first {
            match claim_items(table, first).await? {
                Claim::Won => return Ok(Ok(true)),
                Claim::UserExists => return Ok(Err(Refused::Exists)),
                Claim::Lost => {}
            }
        }
        if self.elevated_without_admin {
            return Ok(Err(Refused::Elevated));
        }
        let stored = match <[Item; 1]>::try_from(ordinary) {
            Ok([item]) => table.put_if_absent(item).await,
            Err(items) => {
                let puts = items.into_iter().map(|item| Write::Put {
                    item,
                    cond: Cond::NotExists,
                });
                table.transact(puts.collect()).await
            }
        };
        match stored {
            Ok(()) => Ok(Ok(false)),
            Err(StoreError::ConditionFailed | StoreError::TransactionCanceled(_)) => {
                Ok(Err(Refused::Exists))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user(name: &str, role: &str) -> Item {
        let item = json!({"PK": format!("USER#{name}"), "SK": "USER", "role": role});
        item.as_object().cloned().unwrap_or_default()
    }

    async fn register(table: &dyn Table, name: &str, elevated: bool) -> Result<bool, Refused> {
        let reg = Registration::open(table, elevated).await.unwrap()?;
        let (first, ordinary) = (user(name, "admin"), user(name, "viewer"));
        reg.store(table, vec![first], vec![ordinary]).await.unwrap()
    }

    #[tokio::test]
    async fn the_first_user_gets_the_top_role_and_later_ones_need_an_admin() {
        let dir = tempfile::tempdir().unwrap();
        let store = civic_store::Embedded::open(dir.path()).unwrap();
        let table = store.table("t");
        // An elevated request is fine while nobody is first: it becomes the first user.
        assert_eq!(register(&table, "ann", true).await, Ok(true));
        assert_eq!(register(&table, "bob", true).await, Err(Refused::Elevated));
        assert_eq!(register(&table, "bob", false).await, Ok(false));
        assert_eq!(register(&table, "bob", false).await, Err(Refused::Exists));
        let bob = table.get(&Key::new("USER#bob", "USER")).await.unwrap();
        assert_eq!(bob.unwrap()["role"], "viewer");
    }
}
