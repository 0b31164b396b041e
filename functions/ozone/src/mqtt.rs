//! Ozone devices on civic-local's MQTT device port: user name (and client id) `ozone-{device_id}`,
//! the thing name on AWS; password the device's bearer token, the one its handshake or a staff
//! rotation issued. A device publishes only its own events.

use civic_core::Result;
use civic_core::iot::{DeviceClass, DeviceTopics};

use crate::State;
use crate::gateway::DeviceRecord;

pub const DEVICES: DeviceClass = DeviceClass {
    topics: DeviceTopics {
        app: crate::APP.name,
        prefix: "ozone/devices",
        inbound: &["events"],
        commands: &[],
    },
    verifier: |p| civic_core::iot::verifier(State::new(p), verify_device),
};

/// Whether `token` is device `device_id`'s current bearer token.
async fn verify_device(s: State, device_id: String, token: String) -> Result<bool> {
    let record = DeviceRecord::load(s.table.as_ref(), &device_id).await?;
    Ok(record
        .and_then(|r| r.token_digest)
        .is_some_and(|digest| s.tokens.matches(&token, &digest)))
}
