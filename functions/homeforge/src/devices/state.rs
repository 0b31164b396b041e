//! A device's state: the HTTP patch and the devices' reports over MQTT, both merged by
//! [`merge_state`] within the bounds on undeclared keys.

use axum::extract::State as S;
use civic_core::{Error, Json, Result, retry};
use civic_store::{Cond, StoreError, Table, Update, VERSION};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::model::STATE;
use super::{Device, device_key};
use crate::{AtLeast, Id, State, Writer, not_found};

/// At most this many state keys that the device's type does not declare, per device (declared
/// keys are bounded by the type: at most 100 components).
pub const MAX_UNDECLARED_KEYS: usize = 64;
/// An undeclared key's value, serialized as JSON, is at most this many bytes.
pub const MAX_UNDECLARED_BYTES: usize = 1024;
/// An undeclared key's value nests at most this many arrays/objects deep (DynamoDB allows 32).
pub const MAX_UNDECLARED_DEPTH: usize = 16;

/// How deep `v` nests arrays and objects (a scalar is 0).
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Why a state key and its value cannot be merged: declared keys take scalars; undeclared keys
/// are plain names (like component ids) with values of bounded size, and not `device_id`.
fn state_errors(device: &Device, changed: &Map<String, Value>) -> Result<()> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut add = |key: &str, msg: String| errors.push((key.to_owned(), msg));
    if changed.is_empty() {
        add("non_field_errors", "Give at least one state key.".into());
    }
    for (k, v) in changed {
        if device.record.variables.contains(k) {
            if v.is_array() || v.is_object() {
                add(
                    k,
                    "State values must be booleans, numbers, strings or null.".into(),
                );
            }
            continue;
        }
        if !crate::device_types::is_plain_id(k) {
            let shown: String = k.chars().take(64).collect();
            add(
                "non_field_errors",
                format!("State keys are 1 to 64 letters, digits, '_' or '-' (not \"{shown}\")."),
            );
        } else if k == TOPIC_ID {
            add(k, "This state key is reserved for the device's id.".into());
        } else if serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()) > MAX_UNDECLARED_BYTES {
            add(
                k,
                format!("Ensure this value has no more than {MAX_UNDECLARED_BYTES} bytes as JSON."),
            );
        } else if depth(v) > MAX_UNDECLARED_DEPTH {
            add(
                k,
                format!("Ensure this value nests no more than {MAX_UNDECLARED_DEPTH} levels."),
            );
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::Fields(errors)),
    }
}

/// Merges `changed` into a device's state and marks it online: one `UpdateItem` that sets
/// only these keys. Declared keys (component ids of its type) take scalars or null; other keys
/// are merged as given, within bounds (see the module's docs). The HTTP patch and the devices'
/// reports over MQTT both come here.
pub async fn merge_state(
    table: &dyn Table,
    device: &Device,
    changed: &Map<String, Value>,
) -> Result<Device> {
    state_errors(device, changed)?;
    let mut known = Some(device.clone());
    retry::optimistic(|| merge_once(table, device.id, known.take(), changed)).await
}

/// One try of [`merge_state`]; `None` when a concurrent patch added undeclared keys first.
async fn merge_once(
    table: &dyn Table,
    id: i64,
    known: Option<Device>,
    changed: &Map<String, Value>,
) -> Result<Option<Device>> {
    let mut device = match known {
        Some(d) => d,
        None => Device::load(table, id).await?.ok_or_else(not_found)?,
    };
    let adds = |d: &Device| {
        changed
            .keys()
            .filter(|k| !d.record.variables.contains(k) && !d.current_state.contains_key(*k))
            .count()
    };
    if adds(&device) > 0 && device.version.is_none() {
        // Registered before the guard existed: give it a version first (once per device).
        let init = Update::new(device_key(id))
            .set_if_absent(VERSION, 0)
            .cond(Cond::Exists);
        device = match table.update(init).await {
            Err(StoreError::ConditionFailed) => return Err(not_found()),
            other => Device::from_item(other?)?,
        };
    }
    let added = adds(&device);
    if added > 0 && device.undeclared().count() + added > MAX_UNDECLARED_KEYS {
        return Err(Error::field(
            "non_field_errors",
            format!(
                "A device holds at most {MAX_UNDECLARED_KEYS} state keys that its type does not declare."
            ),
        ));
    }
    let mut update = Update::new(device_key(id))
        .set("status", "online")
        .set("last_seen", civic_core::time::now_rfc3339())
        // Every change, guarded or not, is one more live message of this device.
        .add(crate::live::SEQ, 1)
        .cond(Cond::Exists);
    for (k, v) in changed {
        update = update.set(&format!("{STATE}{k}"), v.clone());
    }
    let guarded = added > 0;
    if guarded {
        let version = device.version.unwrap_or_default();
        update = update.add(VERSION, 1).cond(Cond::Version(version));
    }
    match table.update(update).await {
        // Deleted, or (guarded) another patch added keys first: the next try reloads and sees.
        Err(StoreError::ConditionFailed) if guarded => Ok(None),
        Err(StoreError::ConditionFailed) => Err(not_found()),
        other => Device::from_item(other?).map(Some),
    }
}

/// The key the topic rule puts the device id under (`topic(3) AS device_id`); a device type
/// cannot report a component of that name over MQTT.
pub const TOPIC_ID: &str = "device_id";

/// The topic rule's message: the device's reported state keys, with its id from the topic
/// `homeforge/devices/{id}/state`. Stored like a state patch, without a command back.
pub async fn device_message(s: State, msg: Value) -> Result<Value> {
    let id = civic_core::iot::int_id(&msg, TOPIC_ID)?;
    let Value::Object(mut reported) = msg else {
        return Err(Error::bad_request("The state must be a JSON object"));
    };
    reported.remove(TOPIC_ID);
    let table = s.table.as_ref();
    let device = Device::load(table, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Unknown device {id}")))?;
    let device = merge_state(table, &device, &reported).await?;
    crate::live::device(&s.live(), &device).await;
    civic_core::iot::report(serde_json::json!({
        "device": id,
        "status": device.record.status,
        "current_state": device.current_state,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct StateReply {
    /// `State updated`.
    status: String,
    /// `online`.
    device_status: String,
    /// Every key, the patched ones merged in.
    #[schema(value_type = Object)]
    current_state: Map<String, Value>,
}

/// `PATCH /devices/<id>/state/`: merges the body's keys into `current_state`: the type's
/// component ids take booleans, numbers, strings or null; other keys (1–64 letters, digits,
/// `_`, `-`; not `device_id`) take any JSON value of at most 1 KiB, at most 64 of them per
/// device. Marks the device online and hands the changed keys to the device-sync hook.
#[utoipa::path(patch, path = "/api/devices/{id}/state", tag = "devices", params(("id" = i64, Path)),
    request_body(content = Object, example = json!({"relay_1": true, "pwm_1": 75, "other_key": "stays_same"})), security(("bearer" = [])),
    responses((status = 200, body = StateReply), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn patch_state(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Id(id): Id,
    Json(body): Json<Value>,
) -> Result<Json<StateReply>> {
    let Value::Object(changed) = body else {
        return Err(Error::field(
            "non_field_errors",
            "Expected an object of state keys and values.",
        ));
    };
    let device = Device::visible(s.table.as_ref(), &caller, id).await?;
    let device = merge_state(s.table.as_ref(), &device, &changed).await?;
    crate::live::device(&s.live(), &device).await;
    if let Err(e) = s.sync().desired_state(&device, &changed).await {
        tracing::warn!(device = id, error = %e, "device sync failed; the state is stored");
    }
    Ok(Json(StateReply {
        status: "State updated".into(),
        device_status: device.record.status,
        current_state: device.current_state,
    }))
}
