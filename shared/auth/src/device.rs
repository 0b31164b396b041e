//! Device credentials for MQTT (Streetlight, Occupancy, HomeForge): a random secret per device,
//! stored as its app-scoped digest on an item of its own, in a partition of its own: writes
//! that replace the device's item never drop it, and queries of the device's partition (its
//! logs, say) never see it. Issued at creation (shown once) and by a
//! staff rotation, which makes the previous secret worthless at once.

use civic_core::iot::{DeviceTopics, MqttLogin};
use civic_store::{Item, Key, Table};
use serde_json::Value;

use crate::DeviceTokens;

const DIGEST: &str = "token_digest";

/// The key of the credential of the device stored under `device`.
pub fn credential_key(device: &Key) -> Key {
    Key::new(format!("CREDENTIAL#{}#{}", device.pk, device.sk), "MQTT")
}

/// Device `id` of the app of `topics`, stored under `device`: its new login (user name = its
/// thing name; the password is handed over once) and the credential item to store for it (a
/// plain put replaces the previous one).
pub fn issue(topics: &DeviceTopics, id: &str, device: &Key, at: &str) -> (MqttLogin, Item) {
    let (password, digest) = DeviceTokens::new(topics.app).issue();
    let key = credential_key(device);
    let mut item = Item::new();
    item.insert(civic_store::PK.into(), key.pk.into());
    item.insert(civic_store::SK.into(), key.sk.into());
    item.insert(DIGEST.into(), digest.into());
    item.insert("issued_at".into(), at.into());
    let username = topics.thing(id);
    (MqttLogin { username, password }, item)
}

/// Whether `secret` is the current credential of the device stored under `device`.
pub async fn verify(
    table: &dyn Table,
    topics: &DeviceTopics,
    device: &Key,
    secret: &str,
) -> civic_store::Result<bool> {
    let stored = table.get(&credential_key(device)).await?;
    Ok(stored
        .as_ref()
        .and_then(|item| item.get(DIGEST))
        .and_then(Value::as_str)
        .is_some_and(|digest| DeviceTokens::new(topics.app).matches(secret, digest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_item_holds_the_digest_never_the_secret() {
        let topics = DeviceTopics {
            app: "streetlight",
            prefix: "streetlight/lights",
            inbound: &["status"],
            commands: &["command"],
        };
        let light = Key::new("LIGHT#SL1", "META");
        let (login, item) = issue(&topics, "SL1", &light, "2026-01-01T00:00:00Z");
        assert_eq!(login.username, "streetlight-SL1");
        let secret = login.password;
        let tokens = DeviceTokens::new("streetlight");
        assert_eq!(Key::of(&item).unwrap(), credential_key(&light));
        assert_ne!(
            credential_key(&light),
            credential_key(&Key::new("LIGHT#SL1", "X"))
        );
        let digest = item[DIGEST].as_str().unwrap();
        assert!(tokens.matches(&secret, digest));
        assert!(!item.values().any(|v| v.as_str() == Some(secret.as_str())));
    }
}
