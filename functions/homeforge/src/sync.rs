//! The device-sync hook: after a state patch is stored, the changed keys go to the device as
//! its desired state on `homeforge/devices/{id}/set`, through the platform's publisher (IoT
//! Core's data plane in Lambda, the MQTT broker in civic-local). It is a trait object in
//! [`crate::State`], so a test double slots in without touching the handlers.

use std::sync::Arc;

use async_trait::async_trait;
use civic_core::{Error, Result};
use civic_iot::Publisher;
use serde_json::{Map, Value};

use crate::devices::Device;

#[async_trait]
pub trait DeviceSync: Send + Sync {
    /// `changed` holds only the keys of this patch, with their new values. The state is already
    /// stored (and acknowledged) when this runs; a failure here is logged, not returned.
    async fn desired_state(&self, device: &Device, changed: &Map<String, Value>) -> Result<()>;
}

pub fn set_topic(device: i64) -> String {
    format!("homeforge/devices/{device}/set")
}

/// Publishes the desired state to the device's `set` topic.
pub struct PublishSync(pub Arc<dyn Publisher>);

#[async_trait]
impl DeviceSync for PublishSync {
    async fn desired_state(&self, device: &Device, changed: &Map<String, Value>) -> Result<()> {
        self.0
            .publish(&set_topic(device.id), &Value::Object(changed.clone()))
            .await
            .map_err(|e| Error::Internal(e.to_string()))
    }
}
