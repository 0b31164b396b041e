//! The stored shapes: a light (with the version it was read at), its control log entries, and a
//! city's summary counters; their keys.

use civic_core::item::{from_item, to_item};
use civic_core::{Error, Result};
use civic_store::{GSI1PK, GSI1SK, Item, PK, SK, Shards, Table, VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::log_id::LAST_LOG;
use crate::keys::{city_pk, light_key};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    On,
    Off,
    Error,
}

impl Status {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::On => "on",
            Status::Off => "off",
            Status::Error => "error",
        }
    }
    /// The summary counter this status is counted in.
    pub(crate) fn counter(self) -> &'static str {
        match self {
            Status::On => "lights_on",
            Status::Off => "lights_off",
            Status::Error => "lights_in_error",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Light {
    pub id: i64,
    pub light_id: String,
    pub name: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub address: Option<String>,
    pub status: Status,
    pub is_automatic: bool,
    pub brightness: i64,
    pub last_status_change: String,
    pub error_details: Option<String>,
}

/// A stored light, the version it was read at and its newest log id (0 when none was stored
/// with it: lights written before issue 18).
pub(super) struct Versioned {
    pub(super) light: Light,
    pub(super) version: i64,
    pub(super) last_log: i64,
}

impl Light {
    /// The stored item; its city listing entry in the light's shard of `shards`.
    pub(super) fn to_item(&self, version: i64, shards: Shards) -> Result<Item> {
        let key = light_key(&self.light_id);
        let mut item = to_item(
            self,
            &[
                (PK, key.pk),
                (SK, key.sk),
                (GSI1PK, shards.pk(&city_pk(&self.city), &self.light_id)),
                (GSI1SK, self.light_id.clone()),
            ],
        )?;
        item.insert(VERSION.into(), version.into());
        Ok(item)
    }
}

impl Versioned {
    fn from_item(item: Item) -> Result<Self> {
        let number = |name: &str| item.get(name).and_then(Value::as_i64).unwrap_or(0);
        let (version, last_log) = (number(VERSION), number(LAST_LOG));
        Ok(Self {
            light: from_item(item)?,
            version,
            last_log,
        })
    }

    /// The item of `light` written over this one: the next version, still holding the newest
    /// log id (the floor of the light's next one, [`super::log_id`]). A light stored before
    /// sharding moves to its shard here; it is listed once either way.
    pub(super) fn next_item(&self, light: &Light, shards: Shards) -> Result<Item> {
        let mut item = light.to_item(self.version + 1, shards)?;
        item.insert(LAST_LOG.into(), self.last_log.into());
        Ok(item)
    }

    pub(super) async fn load(table: &dyn Table, light_id: &str) -> Result<Self> {
        let item = table
            .get(&light_key(light_id))
            .await?
            .ok_or_else(not_found)?;
        Self::from_item(item)
    }
}

pub(super) fn not_found() -> Error {
    Error::NotFound("Light not found".into())
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ControlLog {
    pub id: i64,
    pub light_id: String,
    pub action: String,
    pub performed_by: String,
    /// `manual` (control) or `automatic` (device status update).
    pub control_type: String,
    pub previous_status: Status,
    pub new_status: Status,
    pub created_at: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Summary {
    pub id: i64,
    pub city: String,
    pub total_lights: i64,
    pub lights_on: i64,
    pub lights_off: i64,
    pub lights_in_error: i64,
    pub last_updated: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LightParams {
    #[serde(rename = "lightId")]
    #[param(rename = "lightId")]
    light_id: Option<String>,
}

impl LightParams {
    pub(super) fn light_id(&self) -> Result<&str> {
        given(&self.light_id).ok_or_else(|| Error::bad_request("Light ID not provided"))
    }
}

/// A query parameter's value, when given and not blank.
pub(super) fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
