//! Devices over MQTT: topic filters, the subset of AWS IoT SQL that civic-local evaluates for
//! the template's topic rules, and the ways commands reach devices ([`Publisher`]): IoT Core's
//! data plane in Lambda, an MQTT broker locally.

pub mod device;
pub mod provision;
pub mod publish;
pub mod sql;
pub mod topic;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "mqtt")]
pub mod mqtt;

pub use provision::{DeviceCredentials, Provision, ProvisionError};
pub use publish::{Later, PublishError, Publisher, Unconnected};
pub use sql::{Context, Rule, SqlError};
