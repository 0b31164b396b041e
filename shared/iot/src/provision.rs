//! Device provisioning on AWS: what a device needs to connect to IoT Core with its own
//! certificate. Locally there is no such step; a device token does the same job.

use async_trait::async_trait;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("provisioning the device: {0}")]
pub struct ProvisionError(pub String);

/// Shown once, at registration: the private key is not kept anywhere.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceCredentials {
    pub thing_name: String,
    pub certificate_arn: String,
    pub certificate_pem: String,
    pub private_key: String,
    /// The MQTT endpoint (`…-ats.iot.{region}.amazonaws.com`, port 8883).
    pub endpoint: String,
}

#[async_trait]
pub trait Provision: Send + Sync {
    /// Creates (or refreshes) the thing `thing` with `attributes` and issues it a certificate
    /// bound to the app's device policy.
    async fn provision(
        &self,
        thing: &str,
        attributes: &[(&str, &str)],
    ) -> Result<DeviceCredentials, ProvisionError>;
}
