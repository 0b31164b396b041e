//! Applying a profile change: validation, the current-password check, who may change whom,
//! and the versioned write (shared by `PUT /me/` and `PUT /users/<id>/`).

use civic_auth::backoff;
use civic_auth::hash_password;
use civic_core::fields::REQUIRED;
use civic_core::{Error, Result, retry};
use civic_store::{Cond, StoreError, Write};

use super::avatar::store_avatar;
use super::{ProfileInput, UserRecord, username_key};
use crate::{Caller, Role, State, not_found};

/// A checked profile change, ready to write.
struct Change {
    username: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    role: Option<Role>,
    accent_color: Option<String>,
    password_hash: Option<String>,
    /// The stored avatar's blob key.
    avatar: Option<String>,
}

/// Stores a new avatar (the fields are checked already), then applies the change to user `id`
/// with an optimistic versioned write (a username change moves its uniqueness item in the
/// same transaction).
pub(super) async fn apply(
    s: &State,
    actor: &Caller,
    id: i64,
    input: ProfileInput,
) -> Result<UserRecord> {
    let ProfileInput(form) = input;
    let password_hash = match &form.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    if password_hash.is_some() && actor.id() == id {
        confirm_current_password(s, actor, form.current_password.as_deref()).await?;
    }
    let avatar = match form.avatar {
        Some(bytes) => Some(store_avatar(s, id, bytes).await?),
        None => None,
    };
    let change = Change {
        username: form.username,
        email: form.email,
        first_name: form.first_name,
        last_name: form.last_name,
        role: form.role,
        accent_color: form.accent_color,
        password_hash,
        avatar,
    };
    let result = retry::optimistic(|| attempt(s, actor, id, &change)).await;
    match &result {
        Ok((_, Some(old))) => {
            if let Err(e) = s.blob().delete(old).await {
                tracing::warn!(error = %e, key = old, "could not delete a replaced avatar");
            }
        }
        Err(_) => {
            if let Some(new) = &change.avatar {
                let _ = s.blob().delete(new).await;
            }
        }
        _ => {}
    }
    result.map(|(user, _)| user)
}

/// A self-service password change must prove the current password (an extension: a stolen
/// access token alone must not be enough to take the account over). A wrong one counts
/// towards the login backoff.
async fn confirm_current_password(s: &State, actor: &Caller, current: Option<&str>) -> Result<()> {
    let Some(current) = current.filter(|p| !p.is_empty()) else {
        return Err(Error::field("current_password", REQUIRED));
    };
    let (user, wrong) = (&actor.0, "Current password is incorrect.");
    backoff::confirm_password(
        s.table.as_ref(),
        &user.username,
        current,
        &user.password_hash,
        wrong,
    )
    .await
}

/// One try: `None` when another writer changed the user first. Returns the user and the avatar
/// it replaced.
async fn attempt(
    s: &State,
    actor: &Caller,
    id: i64,
    change: &Change,
) -> Result<Option<(UserRecord, Option<String>)>> {
    let table = s.table.as_ref();
    let mut user = UserRecord::load(table, id).await?.ok_or_else(not_found)?;
    authorize(actor, &user, change.role)?;
    let old_username = user.username.clone();
    let old_avatar = user.avatar.clone();
    let c = change;
    if let Some(v) = &c.username {
        user.username = v.clone();
    }
    if let Some(v) = &c.email {
        user.email = v.clone();
    }
    if let Some(v) = &c.first_name {
        user.first_name = v.clone();
    }
    if let Some(v) = &c.last_name {
        user.last_name = v.clone();
    }
    if let Some(v) = c.role {
        user.role = v;
    }
    if let Some(v) = &c.accent_color {
        user.accent_color = v.clone();
    }
    if let Some(v) = &c.password_hash {
        user.password_hash = v.clone();
        user.token_version += 1;
    }
    if let Some(v) = &c.avatar {
        user.avatar = Some(v.clone());
    }
    let expected = user.version;
    user.version += 1;
    let mut writes = vec![Write::Put {
        item: user.to_item()?,
        cond: Cond::Version(expected),
    }];
    let renamed = old_username.to_lowercase() != user.username.to_lowercase();
    if renamed {
        writes.push(Write::Put {
            item: user.username_item(),
            cond: Cond::NotExists,
        });
        writes.push(Write::Delete {
            key: username_key(&old_username),
            cond: Cond::Always,
        });
    }
    match table.transact(writes).await {
        Ok(()) => {
            let replaced = old_avatar.filter(|_| c.avatar.is_some());
            Ok(Some((user, replaced)))
        }
        Err(StoreError::TransactionCanceled(failed)) if renamed && failed.contains(&1) => Err(
            Error::field("username", "A user with that username already exists."),
        ),
        Err(StoreError::TransactionCanceled(_) | StoreError::Conflict) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Who may change whom: nobody raises their own role; staff manage accounts of a strictly
/// lower rank (so no admin changes another admin, no owner another owner), and the first
/// owner (the superuser) outranks the other owners and is changed only by themself.
fn authorize(actor: &Caller, target: &UserRecord, role: Option<Role>) -> Result<()> {
    let forbid = |msg: &str| Err(Error::Forbidden(msg.into()));
    if actor.id() == target.id {
        return match role {
            Some(r) if r > target.role => forbid("You cannot raise your own role."),
            _ => Ok(()),
        };
    }
    if !actor.is_staff() {
        return forbid("Only Admins/Owners can perform this action.");
    }
    if target.is_superuser {
        return forbid("Only the first owner can change their own account.");
    }
    let rank = |u: &UserRecord| (u.role, u.is_superuser);
    if rank(&actor.0) <= rank(target) {
        return forbid("Only a higher role can change this account.");
    }
    match role {
        Some(r) if r > actor.role() => forbid("You cannot grant a role above your own."),
        _ => Ok(()),
    }
}
