//! Streetlight's live updates ([`civic_core::live`]):
//! - `streetlight/live/cities/{city}/lights/{lightId}`, kind `light`: the light as the REST API
//!   returns it, after each status change; `seq` is the light's version.
//! - `streetlight/live/cities/{city}/summary`, kind `summary`: the city's summary counters,
//!   after the aggregator (or an inline change) moved them; `seq` is the summary's own count
//!   of changes.
//!
//! `{city}` is the city as the table keys it: trimmed, lower case, with `/ + # % ␠`
//! percent-encoded. Any valid access token of this app may subscribe to every city, as every
//! role may read every city over REST.

use civic_auth::TokenKind;
use civic_core::live::{self, LiveAccess, LiveScope, segment};
use civic_core::{Error, Platform, Result};
use civic_store::{Item, Table};
use serde_json::Value;

use crate::keys::summary_key;
use crate::lights::{Light, Summary};
use crate::{APP, State, User};

/// The summary attribute counting its changes: the `seq` of its live messages.
pub const SEQ: &str = "live_seq";

/// Who may subscribe to what: see the module docs.
pub const LIVE: LiveScope = LiveScope {
    app: APP,
    authorizer: |p| live::authorizer(State::new(p), authorize),
};

/// A valid access token of a current account may read every city's live topics, until it
/// expires; anything else is refused.
async fn authorize(s: State, token: String) -> Result<Option<LiveAccess>> {
    let Ok(claims) = s.auth.verify(&token, TokenKind::Access) else {
        return Ok(None);
    };
    let exp = claims.exp;
    match User::from_claims(&s, claims).await {
        Ok(user) => Ok(Some(LiveAccess::everything(APP.name, &user.id, exp))),
        Err(Error::Unauthorized(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn city_path(city: &str) -> String {
    format!("cities/{}", segment(&city.trim().to_lowercase()))
}

/// Publishes a light's new state (`version`: the one its change wrote).
pub async fn light(p: &Platform, light: &Light, version: i64) {
    let path = format!(
        "{}/lights/{}",
        city_path(&light.city),
        segment(&light.light_id)
    );
    p.live(APP.name).send(&path, "light", version, light).await;
}

/// Publishes a city's summary as a write of it returned it.
pub async fn summary(p: &Platform, city: &str, item: Item) {
    let seq = item.get(SEQ).and_then(Value::as_i64).unwrap_or(0);
    match civic_core::item::from_item::<Summary>(item) {
        Ok(summary) => {
            let path = format!("{}/summary", city_path(city));
            p.live(APP.name).send(&path, "summary", seq, &summary).await;
        }
        Err(e) => tracing::error!(city, error = %e, "a city summary does not decode"),
    }
}

/// Publishes a city's summary as stored now (one `GetItem`): after an inline change, whose
/// transaction returns nothing.
pub async fn read_summary(p: &Platform, table: &dyn Table, city: &str) {
    match table.get(&summary_key(city)).await {
        Ok(Some(item)) => summary(p, city, item).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(city, error = %e, "reading a summary to publish it"),
    }
}
