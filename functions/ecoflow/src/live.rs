//! EcoFlow's live updates ([`civic_core::live`]):
//! - `ecoflow/live/alerts/{id}`, kind `alert`: the alert as the REST API returns it, once it is
//!   created (by hand, or by a crowded frame) and after each change; `seq` is the alert's
//!   version (1 when created). Kind `alert_deleted` (`data`: `{"id"}`, `seq`: the version
//!   after the last) when it is deleted.
//! - `ecoflow/live/notifications/{id}`, kind `notification`: a new broadcast, `seq` 1; kind
//!   `notification_deleted`, `seq` 2, when it is deleted (it never changes otherwise).
//!
//! Deletions have kinds of their own, so a client that handles envelopes without their topic
//! still knows what went.
//!
//! Over REST every role reads every alert, and notifications are broadcasts that every user
//! reads (there is no per-user inbox), so a valid access token of a current account may
//! subscribe to all of `ecoflow/live/#`. The one narrowing that matters is the app: the gate
//! admits only EcoFlow's tokens, and only to EcoFlow's topics.

use civic_auth::TokenKind;
use civic_core::live::{self, LiveAccess, LiveScope};
use civic_core::{Error, Platform, Result};
use serde::Serialize;
use serde_json::json;

use crate::alerts::Alert;
use crate::auth::UserRecord;
use crate::{APP, State, User};

/// Who may subscribe to what: see the module docs.
pub const LIVE: LiveScope = LiveScope {
    app: APP,
    authorizer: |p| live::authorizer(State::new(p), authorize),
};

/// A valid access token whose account still exists at the token's version reads every live
/// topic of the app until it expires. The account is looked up (one `GetItem`) because a live
/// connection outlasts a request: on AWS it is asked again every 5 minutes, so an account
/// removed or revoked meanwhile is cut off then.
async fn authorize(s: State, token: String) -> Result<Option<LiveAccess>> {
    let Ok(claims) = s.auth.verify(&token, TokenKind::Access) else {
        return Ok(None);
    };
    let (exp, ver) = (claims.exp, claims.ver);
    let user = match User::from_claims(claims) {
        Ok(user) => user,
        Err(Error::Unauthorized(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let current = UserRecord::load(s.table.as_ref(), &user.email).await?;
    if !current.is_some_and(|(u, _)| u.id == user.id && u.token_version == ver) {
        return Ok(None);
    }
    let id = user.id.to_string();
    Ok(Some(LiveAccess::everything(APP.name, &id, exp)))
}

/// Publishes an alert as written at `version`.
pub async fn alert(p: &Platform, alert: &Alert, version: i64) {
    let path = format!("alerts/{}", alert.id);
    p.live(APP.name).send(&path, "alert", version, alert).await;
}

/// Publishes that alert `id` (last at `version`) is gone.
pub async fn alert_deleted(p: &Platform, id: i64, version: i64) {
    let path = format!("alerts/{id}");
    let data = json!({ "id": id });
    p.live(APP.name)
        .send(&path, "alert_deleted", version + 1, &data)
        .await;
}

/// Publishes a new broadcast (`data`: the notification as REST returns it).
pub async fn notification<T: Serialize>(p: &Platform, id: i64, data: &T) {
    let path = format!("notifications/{id}");
    p.live(APP.name).send(&path, "notification", 1, data).await;
}

/// Publishes that broadcast `id` is gone.
pub async fn notification_deleted(p: &Platform, id: i64) {
    let path = format!("notifications/{id}");
    let data = json!({ "id": id });
    p.live(APP.name)
        .send(&path, "notification_deleted", 2, &data)
        .await;
}
