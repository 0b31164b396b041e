//! Commands to devices: a JSON payload published on a topic. Lambda publishes through IoT
//! Core's data plane ([`crate::aws::IotData`]), civic-local to its MQTT broker
//! ([`crate::mqtt::MqttPublisher`]); the apps see only this trait.

use async_trait::async_trait;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no device transport is configured")]
    Unconnected,
    #[error("publishing to {topic}: {msg}")]
    Transport { topic: String, msg: String },
}

#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes `payload` on `topic` (QoS 1: delivered at least once).
    async fn publish(&self, topic: &str, payload: &Value) -> Result<(), PublishError>;
}

/// Where no transport is set up (unit tests, a platform built by hand): every publish fails
/// with [`PublishError::Unconnected`], which callers log.
pub struct Unconnected;

#[async_trait]
impl Publisher for Unconnected {
    async fn publish(&self, _topic: &str, _payload: &Value) -> Result<(), PublishError> {
        Err(PublishError::Unconnected)
    }
}

/// A publisher named before it exists: civic-local starts its change-feed followers before the
/// broker, and they must publish through the broker once it is up. Until [`Later::set`],
/// publishing fails as [`Unconnected`] does.
#[derive(Default)]
pub struct Later(std::sync::OnceLock<std::sync::Arc<dyn Publisher>>);

impl Later {
    /// Points every holder at `publisher`; a second call is ignored.
    pub fn set(&self, publisher: std::sync::Arc<dyn Publisher>) {
        let _ = self.0.set(publisher);
    }
}

#[async_trait]
impl Publisher for Later {
    async fn publish(&self, topic: &str, payload: &Value) -> Result<(), PublishError> {
        match self.0.get() {
            Some(p) => p.publish(topic, payload).await,
            None => Err(PublishError::Unconnected),
        }
    }
}
