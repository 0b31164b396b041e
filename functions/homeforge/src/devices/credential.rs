//! Devices' MQTT logins: issuing and rotating them, and verifying a device that connects.

use axum::extract::State as S;
use civic_auth::device as credential;
use civic_core::iot::{DeviceClass, DeviceTopics, MqttLogin};
use civic_core::{Json, Result};
use civic_store::{Cond, Item};

use super::{Device, device_key};
use crate::{AtLeast, Id, State, Writer};

/// Extension: `POST /devices/<id>/credential/`, a new MQTT login for a device its caller may
/// change (its owner, or staff); the previous password stops working at once (an open
/// connection keeps going until it closes).
#[utoipa::path(post, path = "/api/devices/{id}/credential", tag = "devices", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = MqttLogin), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn rotate_credential(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Id(id): Id,
) -> Result<Json<MqttLogin>> {
    let table = s.table.as_ref();
    Device::visible(table, &caller, id).await?;
    let (login, item) = issue(id, &civic_core::time::now_rfc3339());
    table.put(item, Cond::Always).await?;
    Ok(Json(login))
}

/// Device `id`'s new login and the credential item to store for it.
pub(super) fn issue(id: i64, at: &str) -> (MqttLogin, Item) {
    credential::issue(&TOPICS, &id.to_string(), &device_key(id), at)
}

/// Apart from [`DEVICES`]: the verifier's future cannot name the const that holds it.
const TOPICS: DeviceTopics = DeviceTopics {
    app: crate::APP.name,
    prefix: "homeforge/devices",
    inbound: &["state"],
    commands: &["set"],
};

/// Devices on MQTT: each reports its state and takes desired state on `set`.
pub const DEVICES: DeviceClass = DeviceClass {
    topics: TOPICS,
    verifier: |p| civic_core::iot::verifier(State::new(p), verify_device),
};

/// Whether `secret` is device `id`'s MQTT credential.
async fn verify_device(s: State, id: String, secret: String) -> Result<bool> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(false);
    };
    let key = device_key(id);
    Ok(credential::verify(s.table.as_ref(), &TOPICS, &key, &secret).await?)
}
