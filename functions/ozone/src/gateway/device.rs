//! The stored device: what the API shows of it, and what only the gateway reads.

use civic_core::item::from_item;
use civic_core::{Error, Result};
use civic_store::{GSI1PK, GSI1SK, Item, Shards, Table, Update, VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::keys::{DEVICES, device_index_sk, device_key};

/// A device's status, binding and counters, as stored and shown. Its token digest is stored
/// beside these fields and never shown.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Device {
    pub device_id: String,
    /// Staff only (a MAC is what a handshake presents): absent for other users.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    pub firmware: Option<String>,
    #[serde(default)]
    pub notes: String,
    pub assigned_at: String,
    pub last_seen: Option<String>,
    pub wifi_connected: Option<bool>,
    pub rtc_available: Option<bool>,
    pub sd_card_available: Option<bool>,
    pub current_count_basic: Option<i64>,
    pub current_count_standard: Option<i64>,
    pub current_count_premium: Option<i64>,
    pub uptime_seconds: Option<i64>,
    pub device_timestamp: Option<String>,
    /// The latest event's type: BASIC|STANDARD|PREMIUM|status or another event name.
    pub mode: Option<String>,
    pub machine_id: Option<i64>,
    pub outlet_id: Option<i64>,
    #[serde(default)]
    pub event_count: i64,
    pub last_event_at: Option<String>,
    /// Staff only: whether `POST /api/iot/` takes this device's reports without its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_ingest: Option<LegacyIngest>,
    /// Staff only, on AWS: the device's current IoT Core certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iot_certificate: Option<Certificate>,
}

impl Device {
    /// The device as a user who is not staff sees it: without what identifies or admits it.
    pub fn without_staff_fields(self) -> Self {
        Self {
            mac: String::new(),
            legacy_ingest: None,
            iot_certificate: None,
            ..self
        }
    }
}

/// A staff decision on the token-less legacy form ingest, recorded with who and when.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LegacyIngest {
    /// `true`: a form report naming this device's MAC is taken without a bearer token.
    pub allowed: bool,
    /// The staff member who decided.
    pub by: String,
    pub at: String,
}

/// `v` as a map attribute of a stored item.
pub(crate) fn attribute<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// The IoT Core certificate a device was issued: at its first claim, or by staff.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Certificate {
    /// `None` while it is being issued.
    pub arn: Option<String>,
    pub issued_at: String,
    /// `handshake` (the first claim) or the staff member who rotated it.
    pub issued_by: String,
}

pub const TOKEN_DIGEST: &str = "token_digest";
/// The device item's attribute holding its [`Certificate`].
pub const CERTIFICATE: &str = "iot_certificate";
/// The device item's attribute holding its [`LegacyIngest`] decision.
pub const LEGACY_INGEST: &str = "legacy_ingest";
/// The device item's attribute holding its last event's receipt stamp.
pub const LAST_RECEIPT: &str = "last_receipt";

/// A stored device with what the API never shows.
pub struct DeviceRecord {
    pub device: Device,
    pub token_digest: Option<String>,
    pub version: i64,
    /// The receipt stamp of its last stored event (see [`super::receipt_stamp`]); 0 before any.
    pub last_receipt: i64,
}

impl DeviceRecord {
    pub fn from_item(item: Item) -> Result<Self> {
        let token_digest = item
            .get(TOKEN_DIGEST)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let version = item.get(VERSION).and_then(Value::as_i64).unwrap_or(0);
        let last_receipt = item.get(LAST_RECEIPT).and_then(Value::as_i64).unwrap_or(0);
        Ok(Self {
            device: from_item(item)?,
            token_digest,
            version,
            last_receipt,
        })
    }

    pub async fn load(table: &dyn Table, device_id: &str) -> Result<Option<Self>> {
        table
            .get(&device_key(device_id))
            .await?
            .map(Self::from_item)
            .transpose()
    }
}

/// `SET last_seen` and the index key that sorts devices by it.
pub fn touch(u: Update, shards: Shards, device_id: &str, at: &str) -> Update {
    u.set("last_seen", at)
        // The partition too: a device written before sharding moves to its shard.
        .set(GSI1PK, shards.pk(DEVICES, device_id))
        .set(GSI1SK, device_index_sk(at, device_id))
}
