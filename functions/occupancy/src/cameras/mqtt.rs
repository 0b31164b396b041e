//! Cameras on MQTT: each camera's login (issued with the camera, rotated on request) and the
//! device class the broker verifies it with.

use axum::extract::State as S;
use civic_auth::device as credential;
use civic_core::iot::{DeviceClass, DeviceTopics, MqttLogin};
use civic_core::{Json, Result};
use civic_store::{Cond, Item};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Record, camera_key};
use crate::{Id, State};

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(rotate_credential))
}

/// Extension: a new MQTT login for a camera; the previous password stops working at once (an
/// open connection keeps going until it closes). Guarded as every write of this app.
#[utoipa::path(post, path = "/api/occupancy/cameras/{camera_id}/credential", tag = "cameras",
    params(("camera_id" = i64, Path)),
    responses((status = 200, body = MqttLogin), (status = 400), (status = 404)))]
async fn rotate_credential(S(s): S<State>, Id(id): Id) -> Result<Json<MqttLogin>> {
    Record::load(s.table.as_ref(), id).await?;
    let (login, item) = issue(id, &civic_core::time::now_rfc3339());
    s.table.put(item, Cond::Always).await?;
    Ok(Json(login))
}

/// Camera `id`'s new login and the credential item to store for it.
pub(super) fn issue(id: i64, at: &str) -> (MqttLogin, Item) {
    credential::issue(&TOPICS, &id.to_string(), &camera_key(id), at)
}

/// Apart from [`DEVICES`]: the verifier's future cannot name the const that holds it.
const TOPICS: DeviceTopics = DeviceTopics {
    app: crate::APP.name,
    prefix: "occupancy/cameras",
    inbound: &["crossings"],
    commands: &[],
};

/// Cameras on MQTT: each sends its counted crossings; they take no commands.
pub const DEVICES: DeviceClass = DeviceClass {
    topics: TOPICS,
    verifier: |p| civic_core::iot::verifier(State::new(p), verify_camera),
};

/// Whether `secret` is camera `id`'s MQTT credential (`id` is the integer id of the topics).
async fn verify_camera(s: State, id: String, secret: String) -> Result<bool> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(false);
    };
    let key = camera_key(id);
    Ok(credential::verify(s.table.as_ref(), &TOPICS, &key, &secret).await?)
}
