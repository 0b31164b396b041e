//! Per-account backoff for credential checks (logins, refreshes, device handshakes), kept in
//! the app's table so that it holds across Lambda instances. A few failures are free; each
//! further one locks the account for `base * 2^n` seconds, at most `max`; an attempt during
//! the lock is refused with 429 and `Retry-After` before the credential is even checked, so
//! the right password does not help either. A success clears the record.
//!
//! The lock is also a lever for anyone who knows an account's name: it is bounded by `max`
//! (15 minutes by default), and the record expires `2 * max` after the last failure.

use std::future::Future;

use civic_core::{Error, Result};
use civic_store::{Cond, Item, Key, Table, Update, now_epoch};
use serde_json::Value;

/// What is being guessed; each kind is counted apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Passwords, per account name (email or username, as the app matches it).
    Login,
    /// Refresh tokens, per account id (only tokens whose signature holds are counted).
    Refresh,
    /// Device handshakes, per MAC address.
    Handshake,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Login => "LOGIN",
            Scope::Refresh => "REFRESH",
            Scope::Handshake => "HANDSHAKE",
        }
    }
}

/// The counter's item: `BACKOFF#{scope}#{account}` / `BACKOFF` (accounts compare lowercased).
pub fn key(scope: Scope, account: &str) -> Key {
    Key::new(
        format!(
            "BACKOFF#{}#{}",
            scope.as_str(),
            account.trim().to_lowercase()
        ),
        "BACKOFF",
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Failures before the first lock (`AUTH_BACKOFF_FREE`, default 5).
    pub free: i64,
    /// The first lock, in seconds (`AUTH_BACKOFF_BASE_SECS`, default 1); it doubles with each
    /// further failure.
    pub base: i64,
    /// The longest lock, in seconds (`AUTH_BACKOFF_MAX_SECS`, default 900).
    pub max: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            free: 5,
            base: 1,
            max: 900,
        }
    }
}

impl Backoff {
    /// The process's settings ([`crate::Config`]).
    pub fn get() -> &'static Self {
        &crate::Config::checked().backoff
    }

    /// How long `failures` failures lock the account, in seconds.
    pub fn delay(&self, failures: i64) -> i64 {
        let over = failures - self.free;
        if over <= 0 {
            return 0;
        }
        let doubled = self.base.saturating_mul(1i64 << (over - 1).min(40));
        doubled.min(self.max)
    }

    /// Runs the credential check `attempt` for `account`: refused with 429 while the account
    /// is locked; a 401 or 403 from `attempt` counts as a failure; success clears the count.
    pub async fn guard<T>(
        &self,
        table: &dyn Table,
        scope: Scope,
        account: &str,
        attempt: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let key = key(scope, account);
        let record = table.get(&key).await?;
        if let Some(item) = &record {
            self.refuse_if_locked(item, now_epoch())?;
        }
        match attempt.await {
            Ok(v) => {
                if record.is_some() {
                    table.delete(&key, Cond::Always).await?;
                }
                Ok(v)
            }
            Err(e) if matches!(e, Error::Unauthorized(_) | Error::Forbidden(_)) => {
                self.fail(table, key).await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn refuse_if_locked(&self, item: &Item, now: i64) -> Result<()> {
        let field = |name| item.get(name).and_then(Value::as_i64).unwrap_or_default();
        let until = field("last_failure") + self.delay(field("failures"));
        match until > now {
            true => Err(Error::too_many(
                "Too many failed attempts; retry later",
                (until - now) as u64,
            )),
            false => Ok(()),
        }
    }

    /// One more failure (an atomic `ADD`, so concurrent instances all count).
    async fn fail(&self, table: &dyn Table, key: Key) -> Result<()> {
        let now = now_epoch();
        let update = Update::new(key)
            .add("failures", 1)
            .set("last_failure", now)
            .set(civic_store::EXPIRES_AT, now + 2 * self.max);
        table.update(update).await?;
        Ok(())
    }
}

/// A self-service change's proof: `current` must be the account's password (`hash`). A wrong
/// one is 403 with `wrong`, and counts as a failed login of `account`.
pub async fn confirm_password(
    table: &dyn Table,
    account: &str,
    current: &str,
    hash: &str,
    wrong: &str,
) -> Result<()> {
    guard(table, Scope::Login, account, async {
        match crate::verify_password(current, Some(hash)).await? {
            true => Ok(()),
            false => Err(Error::Forbidden(wrong.to_owned())),
        }
    })
    .await
}

/// [`Backoff::guard`] with the process's settings.
pub async fn guard<T>(
    table: &dyn Table,
    scope: Scope,
    account: &str,
    attempt: impl Future<Output = Result<T>>,
) -> Result<T> {
    Backoff::get().guard(table, scope, account, attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_after_the_free_failures_and_is_bounded() {
        let b = Backoff {
            free: 3,
            base: 2,
            max: 900,
        };
        let delays: Vec<i64> = (0..=8).map(|n| b.delay(n)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 2, 4, 8, 16, 32]);
        assert_eq!(b.delay(1_000_000), 900);
    }

    #[tokio::test]
    async fn failures_lock_the_account_and_a_success_clears_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = civic_store::Embedded::open(dir.path()).unwrap();
        let table = store.table("t");
        let b = Backoff {
            free: 2,
            base: 60,
            max: 900,
        };
        let denied = || async { Err::<(), _>(Error::Unauthorized("no".into())) };
        for _ in 0..3 {
            let e = b.guard(&table, Scope::Login, "Alice", denied()).await;
            assert!(matches!(e, Err(Error::Unauthorized(_))), "{e:?}");
        }
        // Locked: even a right answer is refused, with the wait.
        let e = b
            .guard(&table, Scope::Login, "alice ", async { Ok(()) })
            .await;
        match e {
            Err(Error::TooManyRequests { retry_after, .. }) => {
                assert!((59..=60).contains(&retry_after))
            }
            other => panic!("{other:?}"),
        }
        // Other accounts and scopes are not affected.
        assert!(
            b.guard(&table, Scope::Refresh, "alice", async { Ok(()) })
                .await
                .is_ok()
        );
        assert!(
            b.guard(&table, Scope::Login, "bob", async { Ok(()) })
                .await
                .is_ok()
        );
        // Below the lock, a success clears the count.
        table
            .delete(&key(Scope::Login, "alice"), Cond::Always)
            .await
            .unwrap();
        let _ = b.guard(&table, Scope::Login, "alice", denied()).await;
        assert!(
            table
                .get(&key(Scope::Login, "alice"))
                .await
                .unwrap()
                .is_some()
        );
        b.guard(&table, Scope::Login, "alice", async { Ok(()) })
            .await
            .unwrap();
        assert!(
            table
                .get(&key(Scope::Login, "alice"))
                .await
                .unwrap()
                .is_none()
        );
    }
}
