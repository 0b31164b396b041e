//! HomeForge's live updates ([`civic_core::live`]):
//! - `homeforge/live/owners/{ownerId}/devices/{deviceId}`, kind `device`: a device's
//!   `current_state`, `status` and `last_seen` after each state change (a `PATCH
//!   /devices/{id}/state/` or the device's own report over MQTT); `seq` is the device's count
//!   of state changes ([`SEQ`]), which grows with each.
//!
//! The owner is a topic level so that one IoT policy resource covers exactly a user's
//! devices: owners and admins, who see every device over REST, may subscribe to
//! `homeforge/live/#`; anyone else (users, viewers) only to `homeforge/live/owners/{me}/#`.

use civic_auth::TokenKind;
use civic_core::Result;
use civic_core::live::{self, Live, LiveAccess, LiveScope};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::devices::Device;
use crate::users::UserRecord;
use crate::{APP, Role, State};

/// The device attribute counting its state changes: the `seq` of its live messages. Its own
/// counter, since `version` moves only on the patches that add undeclared keys.
pub const SEQ: &str = "live_seq";

pub const LIVE: LiveScope = LiveScope {
    app: APP,
    authorizer: |p| live::authorizer(State::new(p), authorize),
};

/// A valid access token of a current account, not revoked by a password change since, reads
/// the live topics its role may read over REST (see the module docs), until it expires.
async fn authorize(s: State, token: String) -> Result<Option<LiveAccess>> {
    let Ok(claims) = s.auth.verify(&token, TokenKind::Access) else {
        return Ok(None);
    };
    let Ok(id) = claims.sub.parse::<i64>() else {
        return Ok(None);
    };
    let user = UserRecord::load(s.table.as_ref(), id).await?;
    let Some(user) = user.filter(|u| claims.check_version(u.token_version).is_ok()) else {
        return Ok(None);
    };
    let (id, filters) = (user.id.to_string(), vec![filter(user.id, user.role)]);
    Ok(Some(LiveAccess::new(APP.name, &id, filters, claims.exp)))
}

/// The one filter a user of `role` may subscribe within.
pub fn filter(user: i64, role: Role) -> String {
    match role.is_staff() {
        true => format!("{}/{}/#", APP.name, live::LEVEL),
        false => format!("{}/{}/owners/{user}/#", APP.name, live::LEVEL),
    }
}

/// Where device `id` of `owner` is published, after `{app}/live/`.
pub fn device_path(owner: i64, id: i64) -> String {
    format!("owners/{owner}/devices/{id}")
}

/// A device's message: what a state change moves, and whose it is.
#[derive(Serialize)]
struct LiveDevice<'a> {
    id: i64,
    owner: i64,
    status: &'a str,
    current_state: &'a Map<String, Value>,
    last_seen: Option<&'a str>,
}

/// Publishes `device` as its state change stored it (with its [`SEQ`]).
pub async fn device(live: &Live, device: &Device) {
    let r = &device.record;
    let data = LiveDevice {
        id: device.id,
        owner: r.owner,
        status: &r.status,
        current_state: &device.current_state,
        last_seen: r.last_seen.as_deref(),
    };
    let path = device_path(r.owner, device.id);
    live.send(&path, "device", device.live_seq, &data).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_read_every_device_others_their_own() {
        assert_eq!(filter(3, Role::Owner), "homeforge/live/#");
        assert_eq!(filter(3, Role::Admin), "homeforge/live/#");
        assert_eq!(filter(3, Role::User), "homeforge/live/owners/3/#");
        assert_eq!(filter(4, Role::Viewer), "homeforge/live/owners/4/#");
        let topic = format!("homeforge/live/{}", device_path(3, 9));
        assert!(civic_iot::topic::covers(&filter(3, Role::User), &topic));
        assert!(!civic_iot::topic::covers(&filter(4, Role::User), &topic));
    }
}
