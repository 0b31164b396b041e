//! Occupancy's live updates ([`civic_core::live`]):
//! - `occupancy/live/cameras/{id}`, kind `camera`: the camera's live state as
//!   `GET /cameras/{id}/live` returns it, after every counted batch (HTTP, MQTT, frames), a
//!   calibration, or a scheduler tick that wrote; `seq` is the camera item's version.
//! - `occupancy/live/facility`, kind `facility`: the facility's totals as `GET /facility/live`
//!   returns them, after the aggregator (or, inline, a camera's own transaction) moved them;
//!   `seq` is the facility item's own count of those changes ([`SEQ`]).
//! - `occupancy/live/alerts/{id}`, kind `alert`: an alert as `GET /alerts` lists it, when it
//!   opens and when it is resolved (`is_resolved: true`); `seq` is the alert item's version.
//!
//! Who may subscribe follows the REST API's own rule ([`crate::Config::require_auth`]):
//! - closed (the deployed default): an occupancy access token, whose holder reads every
//!   route, reads every topic (`occupancy/live/#`) until the token expires;
//! - open (civic-local's default, the seed's mode): any password is admitted to the same
//!   topics for [`OPEN_GRANT_SECS`], since every route already answers anyone the same data;
//!   refusing the feed would protect nothing. It is still read-only, and only these topics.

use civic_auth::TokenKind;
use civic_core::live::{self, LiveAccess, LiveScope};
use civic_core::{Platform, Result};
use civic_store::{Item, Table, VERSION};
use serde_json::Value;

use crate::aggregate::Mode;
use crate::alerts::Alert;
use crate::analytics::{Facility, FacilityLive, LiveOccupancy};
use crate::keys::{alert_key, facility_key};
use crate::timeline::Applied;
use crate::{APP, State};

/// The facility attribute counting its live changes: the `seq` of its messages.
pub const SEQ: &str = "live_seq";

/// How long an open-mode connection lasts before the page reconnects (with the same, still
/// accepted, password); a setting changed to closed then takes effect.
pub const OPEN_GRANT_SECS: i64 = 3600;

/// Who may subscribe to what: see the module docs.
pub const LIVE: LiveScope = LiveScope {
    app: APP,
    authorizer: |p| live::authorizer(State::new(p), authorize),
};

async fn authorize(s: State, password: String) -> Result<Option<LiveAccess>> {
    if !s.config.require_auth {
        let until = civic_core::time::now().unix_timestamp() + OPEN_GRANT_SECS;
        return Ok(Some(LiveAccess::everything(APP.name, "open", until)));
    }
    // The same check as every route's (`require_token`): a valid occupancy access token.
    Ok(s.auth
        .verify(&password, TokenKind::Access)
        .ok()
        .map(|claims| LiveAccess::everything(APP.name, &claims.sub, claims.exp)))
}

/// Publishes what a timeline write changed: the camera, the alerts it opened and, when the
/// facility's counters moved in the same transaction (inline mode), the facility.
pub async fn applied(s: &State, applied: &Applied) {
    if !applied.written {
        return;
    }
    let rec = &applied.record;
    let path = format!("cameras/{}", rec.camera.id);
    let state = LiveOccupancy::of(rec);
    let live = s.platform.live(APP.name);
    live.send(&path, "camera", rec.version, &state).await;
    for &id in &applied.raised {
        read_alert(s, id).await;
    }
    if s.config.facility_counters == Mode::Inline {
        read_facility(&s.platform, s.table.as_ref()).await;
    }
}

/// Publishes an alert at the version a write of it left.
pub async fn alert(p: &Platform, alert: &Alert, version: i64) {
    let path = format!("alerts/{}", alert.id);
    p.live(APP.name).send(&path, "alert", version, alert).await;
}

/// Publishes alert `id` as stored now (one `GetItem`): a timeline transaction returns nothing.
async fn read_alert(s: &State, id: i64) {
    let item = match s.table.get(&alert_key(id)).await {
        Ok(Some(item)) => item,
        Ok(None) => return,
        Err(e) => return tracing::warn!(id, error = %e, "reading an alert to publish it"),
    };
    let version = item.get(VERSION).and_then(Value::as_i64).unwrap_or(0);
    match civic_core::item::from_item::<Alert>(item) {
        Ok(a) => alert(&s.platform, &a, version).await,
        Err(e) => tracing::error!(id, error = %e, "an alert does not decode"),
    }
}

/// Publishes the facility's totals as a write of the facility item returned them.
pub async fn facility(p: &Platform, item: Item) {
    let seq = item.get(SEQ).and_then(Value::as_i64).unwrap_or(0);
    match civic_core::item::from_item::<Facility>(item) {
        Ok(f) => {
            let data = FacilityLive::from(f);
            p.live(APP.name)
                .send("facility", "facility", seq, &data)
                .await;
        }
        Err(e) => tracing::error!(error = %e, "the facility item does not decode"),
    }
}

/// Publishes the facility as stored now (one `GetItem`): after an inline change, whose
/// transaction returns nothing.
pub async fn read_facility(p: &Platform, table: &dyn Table) {
    match table.get(&facility_key()).await {
        Ok(Some(item)) => facility(p, item).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "reading the facility to publish it"),
    }
}
