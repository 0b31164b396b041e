//! The stored device (its record, with each state key an attribute of its own), the device as
//! the API shows it, and which devices a caller sees.

use std::collections::HashSet;

use civic_core::Result;
use civic_core::item::{from_item, to_item};
use civic_store::{GSI1PK, GSI1SK, Item, PK, SK, Table, Typed, VERSION};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub use crate::keys::device_key;
use crate::keys::{DEVICE, DEVICES, device_index_sk, owner_pk};
use crate::{Caller, not_found};

pub(super) const STATE: &str = "state.";
pub const DEFAULT_ICON: &str = "fa-cube";

/// The stored device, without its state (which lives in `state.*` attributes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: i64,
    pub name: String,
    pub ip_address: String,
    pub device_type: i64,
    /// Copied from the type at registration (types do not change after approval).
    pub device_type_name: String,
    /// The type's component ids: the state keys this device accepts.
    pub variables: Vec<String>,
    pub room: Option<i64>,
    pub icon: String,
    pub owner: i64,
    /// `online` once a state patch reached it, `offline` until then.
    pub status: String,
    pub last_seen: Option<String>,
    pub created_at: String,
}

/// A device with its current state.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: i64,
    pub record: Record,
    pub current_state: Map<String, Value>,
    /// Bumped by each patch that adds an undeclared state key; `None` for devices registered
    /// before it existed (set to 0 by their first such patch).
    pub version: Option<i64>,
    /// Its count of state changes, the `seq` of its live messages ([`crate::live::SEQ`]).
    pub live_seq: i64,
}

/// A device as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct DeviceOut {
    pub id: i64,
    pub name: String,
    pub ip_address: String,
    /// The (approved) device type's id.
    pub device_type: i64,
    pub device_type_name: String,
    /// Room id, or null (also once the room is deleted).
    pub room: Option<i64>,
    pub icon: String,
    /// `online` or `offline`.
    pub status: String,
    #[schema(value_type = Object)]
    pub current_state: Map<String, Value>,
    /// The owning user's id.
    pub owner: i64,
    pub last_seen: Option<String>,
    pub created_at: String,
    /// Its count of state changes (extension): the `seq` of its live messages, so a client
    /// that re-read this drops the live messages that are not newer.
    pub live_seq: i64,
}

impl Record {
    /// A new device's item: its keys, and the version ([`VERSION`]) that guards adding
    /// undeclared state keys.
    pub(super) fn new_item(&self) -> Result<Item> {
        let key = device_key(self.id);
        let mut item = to_item(
            self,
            &[
                (PK, key.pk),
                (SK, key.sk),
                (GSI1PK, owner_pk(self.owner)),
                (GSI1SK, device_index_sk(self.id)),
            ],
        )?;
        item.insert(VERSION.into(), 0.into());
        Ok(item)
    }
}

/// A device straight from its stored row (see [`civic_store::Typed`]): the record's fields,
/// its version, and each `state.*` attribute as a key of its current state. Same result as
/// [`Device::from_item`], without building the whole item first.
impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(flatten)]
            record: Record,
            version: Option<i64>,
            #[serde(default)]
            live_seq: i64,
            /// What the record does not name: keys, index keys and the state attributes.
            #[serde(flatten)]
            rest: Map<String, Value>,
        }
        let row = Row::deserialize(d)?;
        let current_state = row
            .rest
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(STATE)?.to_owned(), v)))
            .collect();
        Ok(Self {
            id: row.record.id,
            record: row.record,
            current_state,
            version: row.version,
            live_seq: row.live_seq,
        })
    }
}

impl Device {
    pub fn from_item(mut item: Item) -> Result<Self> {
        let keys: Vec<String> = item
            .keys()
            .filter(|k| k.starts_with(STATE))
            .cloned()
            .collect();
        let mut current_state = Map::new();
        for k in keys {
            if let Some(v) = item.remove(&k) {
                current_state.insert(k[STATE.len()..].to_owned(), v);
            }
        }
        let version = item.remove(VERSION).and_then(|v| v.as_i64());
        let live_seq = item.remove(crate::live::SEQ).and_then(|v| v.as_i64());
        let record: Record = from_item(item)?;
        Ok(Self {
            id: record.id,
            record,
            current_state,
            version,
            live_seq: live_seq.unwrap_or(0),
        })
    }

    /// The state keys its type does not declare.
    pub(super) fn undeclared(&self) -> impl Iterator<Item = &String> {
        self.current_state
            .keys()
            .filter(|k| !self.record.variables.contains(k))
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Option<Self>> {
        Ok(table.get_as(&device_key(id)).await?)
    }

    /// The device, when `caller` may see it; others' devices do not exist for them.
    pub async fn visible(table: &dyn Table, caller: &Caller, id: i64) -> Result<Self> {
        Self::load(table, id)
            .await?
            .filter(|d| caller.can_see(d.record.owner))
            .ok_or_else(not_found)
    }

    /// `rooms`: the rooms that still exist (a deleted room reads as none).
    pub fn out(self, rooms: &HashSet<i64>) -> DeviceOut {
        let r = self.record;
        DeviceOut {
            id: r.id,
            name: r.name,
            ip_address: r.ip_address,
            device_type: r.device_type,
            device_type_name: r.device_type_name,
            room: r.room.filter(|id| rooms.contains(id)),
            icon: r.icon,
            status: r.status,
            current_state: self.current_state,
            owner: r.owner,
            last_seen: r.last_seen,
            created_at: r.created_at,
            live_seq: self.live_seq,
        }
    }
}

/// The devices `caller` sees: all for owners and admins, their own for others. One query.
pub fn visible_devices(caller: &Caller) -> civic_store::Query {
    match caller.is_staff() {
        true => civic_store::Query::partition(DEVICES),
        false => civic_store::Query::index(owner_pk(caller.id())).prefix(DEVICE),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A stored device as the store holds it: keys, record, version and two state attributes.
    fn stored() -> Value {
        json!({
            "pk": "DEVICE#7", "sk": "DEVICE", "gsi1pk": "OWNER#3", "gsi1sk": "DEVICE#7",
            "id": 7, "name": "lamp", "ip_address": "10.0.0.7", "device_type": 2,
            "device_type_name": "Lamp", "variables": ["on"], "room": null, "icon": "fa-cube",
            "owner": 3, "status": "online", "last_seen": "2024-01-01T00:00:00Z",
            "created_at": "2024-01-01T00:00:00Z", "version": 4, "live_seq": 9,
            "state.on": true, "state.level": {"v": 3}
        })
    }

    /// Decoding the stored bytes directly must give what the item path gives.
    #[test]
    fn typed_decode_matches_from_item() {
        let bytes = serde_json::to_vec(&stored()).unwrap();
        let typed: Device = serde_json::from_slice(&bytes).unwrap();
        let Value::Object(item) = stored() else {
            unreachable!()
        };
        let old = Device::from_item(item).unwrap();
        assert_eq!(typed.id, 7);
        assert_eq!(typed.version, Some(4));
        assert_eq!((typed.live_seq, old.live_seq), (9, 9));
        assert_eq!(typed.current_state, old.current_state);
        assert_eq!(
            serde_json::to_value(&typed.record).unwrap(),
            serde_json::to_value(&old.record).unwrap()
        );
        assert_eq!(
            Value::Object(typed.current_state),
            json!({"on": true, "level": {"v": 3}})
        );
    }

    /// Devices registered before the version guard (or the live seq) have none.
    #[test]
    fn typed_decode_without_version_or_state() {
        let mut v = stored();
        let o = v.as_object_mut().unwrap();
        o.retain(|k, _| {
            ![VERSION, crate::live::SEQ, "room"].contains(&k.as_str()) && !k.starts_with(STATE)
        });
        let d: Device = serde_json::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(d.version, None);
        assert_eq!(d.live_seq, 0);
        assert!(d.current_state.is_empty());
        assert_eq!(d.record.room, None);
    }
}
