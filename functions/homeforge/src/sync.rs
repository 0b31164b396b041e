//! The device-sync hook: after a state patch is stored, the changed keys go to the device as
//! its desired state. For now that is a log line; a later issue publishes to
//! `homeforge/devices/{id}/set` over MQTT / IoT Core. It is a trait object in [`crate::State`],
//! so that implementation (or a test double) slots in without touching the handlers.

use async_trait::async_trait;
use civic_core::Result;
use serde_json::{Map, Value};

use crate::devices::Device;

#[async_trait]
pub trait DeviceSync: Send + Sync {
    /// `changed` holds only the keys of this patch, with their new values. The state is already
    /// stored (and acknowledged) when this runs; a failure here is logged, not returned.
    async fn desired_state(&self, device: &Device, changed: &Map<String, Value>) -> Result<()>;
}

/// Logs what would be published.
pub struct LogSync;

#[async_trait]
impl DeviceSync for LogSync {
    async fn desired_state(&self, device: &Device, changed: &Map<String, Value>) -> Result<()> {
        let state = Value::Object(changed.clone()).to_string();
        tracing::info!(
            device = device.id,
            topic = %format!("homeforge/devices/{}/set", device.id),
            %state,
            "desired state (no device transport configured)"
        );
        Ok(())
    }
}
