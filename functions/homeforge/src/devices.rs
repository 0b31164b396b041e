//! Devices: registered with an approved type, seen by their owner (and by owners and admins),
//! and their state: `PATCH /devices/<id>/state/` merges keys into `current_state`.
//!
//! Each state key is an attribute of its own (`state.{key}`) on the device item, and a patch is
//! one `UpdateItem` that sets only its keys, the status and `last_seen`. Two patches of
//! different keys therefore both survive, however they interleave, with no read-modify-write.
//!
//! Keys the device's type declares (its component ids) take scalars. Other keys are merged as
//! given, within bounds ([`MAX_UNDECLARED_KEYS`], [`MAX_UNDECLARED_BYTES`],
//! [`MAX_UNDECLARED_DEPTH`]). Keys are never removed, so only a patch that adds an undeclared
//! key can raise their number: that patch alone is conditional on the device's `version` (and
//! bumps it), so two racing patches cannot both take the last free slot.

use std::collections::HashSet;
use std::net::IpAddr;

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_auth::device as credential;
use civic_core::iot::{DeviceClass, DeviceTopics, MqttLogin};
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Item, Key, StoreError, Table, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::device_types::load_type;
use crate::rooms::{Room, all_rooms};
use crate::{
    AtLeast, Caller, Id, Invalid, PageParams, State, Writer, no_such_object, not_found, pk,
    required_text, sk,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_devices, create_device))
        .routes(routes!(device_detail, update_device, delete_device))
        .routes(routes!(patch_state))
        .routes(routes!(rotate_credential))
}

const STATE: &str = "state.";
pub const DEFAULT_ICON: &str = "fa-cube";
/// The device item's attribute that guards adding undeclared state keys.
const VERSION: &str = "version";

/// At most this many state keys that the device's type does not declare, per device (declared
/// keys are bounded by the type: at most 100 components).
pub const MAX_UNDECLARED_KEYS: usize = 64;
/// An undeclared key's value, serialized as JSON, is at most this many bytes.
pub const MAX_UNDECLARED_BYTES: usize = 1024;
/// An undeclared key's value nests at most this many arrays/objects deep (DynamoDB allows 32).
pub const MAX_UNDECLARED_DEPTH: usize = 16;

/// The stored device, without its state (which lives in `state.*` attributes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: i64,
    pub name: String,
    pub ip_address: String,
    pub device_type: i64,
    /// Copied from the type at registration (types do not change after approval).
    pub device_type_name: String,
    /// The type's component ids: the state keys this device accepts.
    pub variables: Vec<String>,
    pub room: Option<i64>,
    pub icon: String,
    pub owner: i64,
    /// `online` once a state patch reached it, `offline` until then.
    pub status: String,
    pub last_seen: Option<String>,
    pub created_at: String,
}

/// A device with its current state.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: i64,
    pub record: Record,
    pub current_state: Map<String, Value>,
    /// Bumped by each patch that adds an undeclared state key; `None` for devices registered
    /// before it existed (set to 0 by their first such patch).
    pub version: Option<i64>,
}

/// A device as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct DeviceOut {
    pub id: i64,
    pub name: String,
    pub ip_address: String,
    /// The (approved) device type's id.
    pub device_type: i64,
    pub device_type_name: String,
    /// Room id, or null (also once the room is deleted).
    pub room: Option<i64>,
    pub icon: String,
    /// `online` or `offline`.
    pub status: String,
    #[schema(value_type = Object)]
    pub current_state: Map<String, Value>,
    /// The owning user's id.
    pub owner: i64,
    pub last_seen: Option<String>,
    pub created_at: String,
}

pub fn device_key(id: i64) -> Key {
    Key::new("DEVICES", sk(id))
}

impl Device {
    pub fn from_item(mut item: Item) -> Result<Self> {
        let keys: Vec<String> = item
            .keys()
            .filter(|k| k.starts_with(STATE))
            .cloned()
            .collect();
        let mut current_state = Map::new();
        for k in keys {
            if let Some(v) = item.remove(&k) {
                current_state.insert(k[STATE.len()..].to_owned(), v);
            }
        }
        let version = item.remove(VERSION).and_then(|v| v.as_i64());
        let record: Record = from_item(item)?;
        Ok(Self {
            id: record.id,
            record,
            current_state,
            version,
        })
    }

    /// The state keys its type does not declare.
    fn undeclared(&self) -> impl Iterator<Item = &String> {
        self.current_state
            .keys()
            .filter(|k| !self.record.variables.contains(k))
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Option<Self>> {
        table
            .get(&device_key(id))
            .await?
            .map(Self::from_item)
            .transpose()
    }

    /// The device, when `caller` may see it; others' devices do not exist for them.
    pub async fn visible(table: &dyn Table, caller: &Caller, id: i64) -> Result<Self> {
        Self::load(table, id)
            .await?
            .filter(|d| caller.can_see(d.record.owner))
            .ok_or_else(not_found)
    }

    /// `rooms`: the rooms that still exist (a deleted room reads as none).
    pub fn out(self, rooms: &HashSet<i64>) -> DeviceOut {
        let r = self.record;
        DeviceOut {
            id: r.id,
            name: r.name,
            ip_address: r.ip_address,
            device_type: r.device_type,
            device_type_name: r.device_type_name,
            room: r.room.filter(|id| rooms.contains(id)),
            icon: r.icon,
            status: r.status,
            current_state: self.current_state,
            owner: r.owner,
            last_seen: r.last_seen,
            created_at: r.created_at,
        }
    }
}

/// The devices `caller` sees: all for owners and admins, their own for others. One query.
pub fn visible_devices(caller: &Caller) -> civic_store::Query {
    match caller.is_staff() {
        true => civic_store::Query::partition("DEVICES"),
        false => civic_store::Query::index(format!("OWNER#{}", caller.id())).prefix("DEVICE#"),
    }
}

/// The one room a device refers to, if it still exists.
async fn existing_room(table: &dyn Table, room: Option<i64>) -> Result<HashSet<i64>> {
    Ok(match room {
        Some(id) => Room::load(table, id)
            .await?
            .map(|r| r.id)
            .into_iter()
            .collect(),
        None => HashSet::new(),
    })
}

#[derive(Deserialize, ToSchema)]
pub struct DeviceInput {
    name: Option<String>,
    /// IPv4 or IPv6.
    ip_address: Option<String>,
    /// Id of an approved device type (fixed once registered).
    #[schema(value_type = Option<i64>)]
    device_type: Option<Value>,
    /// Id of a room the caller may see, or null.
    #[schema(value_type = Option<i64>)]
    #[serde(default, deserialize_with = "crate::present")]
    room: Option<Value>,
    /// FontAwesome icon class (default `fa-cube`).
    icon: Option<String>,
}

civic_core::schema_variant!(
    /// `POST /api/devices`' body: a [`DeviceInput`] with its `name`, `ip_address` and
    /// `device_type`.
    pub NewDevice = DeviceInput, ["name", "ip_address", "device_type"]
);

fn valid_ip(v: Option<&str>) -> std::result::Result<String, String> {
    let ip = required_text(v, 45)?;
    ip.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| "Enter a valid IPv4 or IPv6 address.".into())
}

fn valid_icon(v: &str) -> std::result::Result<String, String> {
    let icon = required_text(Some(v), 50)?;
    match icon
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ' ')
    {
        true => Ok(icon),
        false => Err("Enter an icon class such as fa-lightbulb.".into()),
    }
}

/// A room id from a body: `Ok(None)` for null; an error unless `caller` may see the room.
async fn room_field(s: &State, caller: &Caller, v: &Value) -> Result<Option<i64>> {
    if v.is_null() {
        return Ok(None);
    }
    let id = pk(v).map_err(|m| Error::field("room", m))?;
    match Room::visible(s.table.as_ref(), caller, id).await? {
        Some(r) => Ok(Some(r.id)),
        None => Err(Error::field("room", no_such_object(v))),
    }
}

/// `GET /devices/`: the caller's devices (every device for owners and admins), by id.
#[utoipa::path(get, path = "/api/devices", tag = "devices", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceOut>, headers(("x-next-cursor" = String))), (status = 401)))]
async fn list_devices(
    S(s): S<State>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let limit = page::limit(params.limit, 100, 1000)?;
    let table = s.table.as_ref();
    let res = table
        .query(visible_devices(&caller).limit(limit).cursor(params.cursor))
        .await?;
    let rooms: HashSet<i64> = match res.items.is_empty() {
        true => HashSet::new(),
        false => all_rooms(table).await?.into_iter().map(|r| r.id).collect(),
    };
    let devices = res
        .items
        .into_iter()
        .map(|i| Device::from_item(i).map(|d| d.out(&rooms)))
        .collect::<Result<Vec<_>>>()?;
    Ok(page::with_cursor(Json(devices), res.cursor))
}

/// A registered device, with its IoT Core credentials on AWS (shown only here).
#[derive(Serialize, ToSchema)]
pub struct Registered {
    #[serde(flatten)]
    device: DeviceOut,
    /// The thing, certificate and private key for MQTT to IoT Core; absent locally.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    iot: Option<civic_iot::DeviceCredentials>,
    /// Extension: the login for civic-local's MQTT device port (user name `homeforge-{id}`).
    mqtt: MqttLogin,
}

/// `POST /devices/`: register a device of an approved type; the caller owns it.
#[utoipa::path(post, path = "/api/devices", tag = "devices", request_body = NewDevice, security(("bearer" = [])),
    responses((status = 201, body = Registered), (status = 400), (status = 401), (status = 403), (status = 503)))]
async fn create_device(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Json(req): Json<DeviceInput>,
) -> Result<(StatusCode, Json<Registered>)> {
    let mut invalid = Invalid::default();
    let name = invalid.take("name", required_text(req.name.as_deref(), 100));
    let ip = invalid.take("ip_address", valid_ip(req.ip_address.as_deref()));
    let icon = match req.icon.as_deref() {
        None | Some("") => Some(DEFAULT_ICON.to_owned()),
        Some(i) => invalid.take("icon", valid_icon(i)),
    };
    let type_id = match &req.device_type {
        None | Some(Value::Null) => {
            invalid.add("device_type", crate::REQUIRED);
            None
        }
        Some(v) => invalid.take("device_type", pk(v)),
    };
    invalid.check()?;
    let table = s.table.as_ref();
    let given = req.device_type.unwrap_or_default();
    let kind = load_type(table, type_id.unwrap_or_default())
        .await?
        .filter(|t| t.approved || caller.can_see(t.proposed_by))
        .ok_or_else(|| Error::field("device_type", no_such_object(&given)))?;
    if !kind.approved {
        return Err(Error::field("device_type", "Device type must be approved."));
    }
    let room = room_field(&s, &caller, req.room.as_ref().unwrap_or(&Value::Null)).await?;
    let record = Record {
        id: ids::next_id(table, "device").await?,
        name: name.unwrap_or_default(),
        ip_address: ip.unwrap_or_default(),
        device_type: kind.id,
        device_type_name: kind.name.clone(),
        variables: kind.variables(),
        room,
        icon: icon.unwrap_or_default(),
        owner: caller.id(),
        status: "offline".into(),
        last_seen: None,
        created_at: civic_core::time::now_rfc3339(),
    };
    // Before the device is stored: a failure registers nothing.
    let iot = match &s.provisioner {
        Some(p) => {
            let (thing, id) = (format!("homeforge-{}", record.id), record.id.to_string());
            let attributes = [("app", "homeforge"), ("device_id", id.as_str())];
            let creds = p.provision(&thing, &attributes).await;
            Some(creds.map_err(|e| Error::Unavailable(e.to_string()))?)
        }
        None => None,
    };
    let key = device_key(record.id);
    let item = to_item(
        &record,
        &[
            ("PK", key.pk),
            ("SK", key.sk),
            ("GSI1PK", format!("OWNER#{}", record.owner)),
            ("GSI1SK", format!("DEVICE#{}", sk(record.id))),
        ],
    )?;
    let mut item = item;
    item.insert(VERSION.into(), 0.into());
    let (mqtt, credential) = issue(record.id, &record.created_at);
    // The credential first: a device that fails to register leaves only an unusable secret.
    table.put(credential, Cond::Always).await?;
    table.put_if_absent(item).await?;
    let device = Device {
        id: record.id,
        record,
        current_state: Map::new(),
        version: Some(0),
    };
    let rooms = room.into_iter().collect();
    let device = device.out(&rooms);
    Ok((StatusCode::CREATED, Json(Registered { device, iot, mqtt })))
}

/// `GET /devices/<id>/`, with its current state.
#[utoipa::path(get, path = "/api/devices/{id}", tag = "devices", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = DeviceOut), (status = 401), (status = 404)))]
async fn device_detail(S(s): S<State>, caller: Caller, Id(id): Id) -> Result<Json<DeviceOut>> {
    let table = s.table.as_ref();
    let device = Device::visible(table, &caller, id).await?;
    let rooms = existing_room(table, device.record.room).await?;
    Ok(Json(device.out(&rooms)))
}

/// `PUT /devices/<id>/`: any of name, ip_address, room, icon. Only the named attributes are
/// written, so a concurrent state patch is never overwritten.
#[utoipa::path(put, path = "/api/devices/{id}", tag = "devices", params(("id" = i64, Path)),
    request_body = DeviceInput, security(("bearer" = [])),
    responses((status = 200, body = DeviceOut), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update_device(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Id(id): Id,
    Json(req): Json<DeviceInput>,
) -> Result<Json<DeviceOut>> {
    let table = s.table.as_ref();
    let device = Device::visible(table, &caller, id).await?;
    let mut invalid = Invalid::default();
    let mut update = Update::new(device_key(id)).cond(Cond::Exists);
    if req.name.is_some()
        && let Some(v) = invalid.take("name", required_text(req.name.as_deref(), 100))
    {
        update = update.set("name", v);
    }
    if req.ip_address.is_some()
        && let Some(v) = invalid.take("ip_address", valid_ip(req.ip_address.as_deref()))
    {
        update = update.set("ip_address", v);
    }
    if let Some(i) = req.icon.as_deref()
        && let Some(v) = invalid.take("icon", valid_icon(i))
    {
        update = update.set("icon", v);
    }
    if let Some(v) = &req.device_type
        && pk(v).ok() != Some(device.record.device_type)
    {
        invalid.add(
            "device_type",
            "The device type of a registered device cannot be changed.",
        );
    }
    invalid.check()?;
    let mut room = device.record.room;
    if let Some(v) = &req.room {
        room = room_field(&s, &caller, v).await?;
        update = update.set("room", room);
    }
    let device = match update.set.is_empty() {
        true => device,
        false => match table.update(update).await {
            Err(StoreError::ConditionFailed) => return Err(not_found()),
            other => Device::from_item(other?)?,
        },
    };
    let rooms = existing_room(table, room).await?;
    Ok(Json(device.out(&rooms)))
}

/// `DELETE /devices/<id>/`.
#[utoipa::path(delete, path = "/api/devices/{id}", tag = "devices", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete_device(S(s): S<State>, AtLeast(caller): Writer, Id(id): Id) -> Result<StatusCode> {
    let table = s.table.as_ref();
    Device::visible(table, &caller, id).await?;
    match table.delete(&device_key(id), Cond::Exists).await {
        Err(StoreError::ConditionFailed) => Err(not_found()),
        Err(e) => Err(e.into()),
        // A deleted device can no longer connect.
        Ok(_) => {
            let login = credential::credential_key(&device_key(id));
            table.delete(&login, Cond::Always).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// Extension: `POST /devices/<id>/credential/`, a new MQTT login for a device its caller may
/// change (its owner, or staff); the previous password stops working at once (an open
/// connection keeps going until it closes).
#[utoipa::path(post, path = "/api/devices/{id}/credential", tag = "devices", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = MqttLogin), (status = 401), (status = 403), (status = 404)))]
async fn rotate_credential(
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
fn issue(id: i64, at: &str) -> (MqttLogin, Item) {
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
    let mut invalid = Invalid::default();
    if changed.is_empty() {
        invalid.add("non_field_errors", "Give at least one state key.");
    }
    for (k, v) in changed {
        if device.record.variables.contains(k) {
            if v.is_array() || v.is_object() {
                invalid.add(
                    k,
                    "State values must be booleans, numbers, strings or null.",
                );
            }
            continue;
        }
        if !crate::device_types::is_plain_id(k) {
            let shown: String = k.chars().take(64).collect();
            invalid.add(
                "non_field_errors",
                format!("State keys are 1 to 64 letters, digits, '_' or '-' (not \"{shown}\")."),
            );
        } else if k == TOPIC_ID {
            invalid.add(k, "This state key is reserved for the device's id.");
        } else if serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()) > MAX_UNDECLARED_BYTES {
            invalid.add(
                k,
                format!("Ensure this value has no more than {MAX_UNDECLARED_BYTES} bytes as JSON."),
            );
        } else if depth(v) > MAX_UNDECLARED_DEPTH {
            invalid.add(
                k,
                format!("Ensure this value nests no more than {MAX_UNDECLARED_DEPTH} levels."),
            );
        }
    }
    invalid.check()
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
async fn patch_state(
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
    if let Err(e) = s.sync.desired_state(&device, &changed).await {
        tracing::warn!(device = id, error = %e, "device sync failed; the state is stored");
    }
    Ok(Json(StateReply {
        status: "State updated".into(),
        device_status: device.record.status,
        current_state: device.current_state,
    }))
}
