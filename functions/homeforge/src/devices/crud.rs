//! Registering, listing, reading, changing and deleting devices.

use std::collections::HashSet;
use std::net::IpAddr;

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_auth::device as credential;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::iot::MqttLogin;
use civic_core::{Error, Json, Query, Result, ids, page};
use civic_store::{Cond, StoreError, Table, Typed, Update};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::credential::issue;
use super::{DEFAULT_ICON, Device, DeviceOut, Record, device_key, visible_devices};
use crate::device_types::load_type;
use crate::rooms::{Room, all_rooms};
use crate::{AtLeast, Caller, Id, PageParams, Pk, State, Writer, no_such_object, not_found, pk};

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

#[derive(ToSchema)]
pub struct DeviceInput {
    name: Option<String>,
    /// IPv4 or IPv6.
    ip_address: Option<String>,
    /// Id of an approved device type (fixed once registered).
    #[schema(value_type = Option<i64>)]
    device_type: Option<Pk>,
    /// Id of a room the caller may see, or null.
    #[schema(value_type = Option<i64>)]
    room: Option<Value>,
    /// FontAwesome icon class (default `fa-cube`).
    icon: Option<String>,
}

civic_core::schema_variant!(
    /// `POST /api/devices`' body: a [`DeviceInput`] with its `name`, `ip_address` and
    /// `device_type`.
    pub NewDevice = DeviceInput, ["name", "ip_address", "device_type"]
);

/// A new device (`Valid`) or an update (a partial body, read by [`update_device`]).
impl FromBody for DeviceInput {
    fn from_body(b: &mut Body) -> Self {
        let name = b.strict_string("name", true, false, 100);
        let ip_address = ip_address(b);
        let icon = icon(b);
        let device_type = match b.is_partial() {
            // Fixed once registered: an update only compares what was sent with it.
            true => b.typed::<Value>("device_type", false).map(|given| Pk {
                id: pk(&given).unwrap_or_default(),
                given,
            }),
            false => Pk::read(b, "device_type", true),
        };
        Self {
            name,
            ip_address,
            device_type,
            // Null (no room) differs from absent (keep it); the room is checked once the type is.
            room: b
                .has("room")
                .then(|| b.typed("room", false).unwrap_or(Value::Null)),
            icon,
        }
    }
}

fn ip_address(b: &mut Body) -> Option<String> {
    let ip = b.strict_string("ip_address", true, false, 45)?;
    match ip.parse::<IpAddr>() {
        Ok(ip) => Some(ip.to_string()),
        Err(_) => {
            b.error("ip_address", "Enter a valid IPv4 or IPv6 address.");
            None
        }
    }
}

/// A new device without an icon, or with "", gets [`DEFAULT_ICON`] (`None` here).
fn icon(b: &mut Body) -> Option<String> {
    let sent = b.typed::<String>("icon", false);
    if !b.is_partial() && sent.is_none_or(|i| i.is_empty()) {
        return None;
    }
    let icon = b.strict_string("icon", false, false, 50)?;
    match icon
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ' ')
    {
        true => Some(icon),
        false => {
            b.error("icon", "Enter an icon class such as fa-lightbulb.");
            None
        }
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
pub(super) async fn list_devices(
    S(s): S<State>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let limit = page::limit(params.limit, 100, 1000)?;
    let table = s.table.as_ref();
    let res = table
        .query_as::<Device>(visible_devices(&caller).limit(limit).cursor(params.cursor))
        .await?;
    let rooms: HashSet<i64> = match res.items.is_empty() {
        true => HashSet::new(),
        false => all_rooms(table).await?.into_iter().map(|r| r.id).collect(),
    };
    let devices: Vec<_> = res.items.into_iter().map(|d| d.out(&rooms)).collect();
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
pub(super) async fn create_device(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Valid(req): Valid<DeviceInput>,
) -> Result<(StatusCode, Json<Registered>)> {
    let table = s.table.as_ref();
    let given = req.device_type.unwrap_or_default();
    let kind = load_type(table, given.id)
        .await?
        .filter(|t| t.approved || caller.can_see(t.proposed_by))
        .ok_or_else(|| Error::field("device_type", given.no_such_object()))?;
    if !kind.approved {
        return Err(Error::field("device_type", "Device type must be approved."));
    }
    let room = room_field(&s, &caller, req.room.as_ref().unwrap_or(&Value::Null)).await?;
    let record = Record {
        id: ids::next_id(table, "device").await?,
        name: req.name.unwrap_or_default(),
        ip_address: req.ip_address.unwrap_or_default(),
        device_type: kind.id,
        device_type_name: kind.name.clone(),
        variables: kind.variables(),
        room,
        icon: req.icon.unwrap_or_else(|| DEFAULT_ICON.into()),
        owner: caller.id(),
        status: "offline".into(),
        last_seen: None,
        created_at: civic_core::time::now_rfc3339(),
    };
    // Before the device is stored: a failure registers nothing.
    let iot = provision(&s, record.id).await?;
    let item = record.new_item()?;
    let (mqtt, credential) = issue(record.id, &record.created_at);
    // The credential first: a device that fails to register leaves only an unusable secret.
    table.put(credential, Cond::Always).await?;
    table.put_if_absent(item).await?;
    let device = Device {
        id: record.id,
        record,
        current_state: Map::new(),
        version: Some(0),
        live_seq: 0,
    };
    let rooms = room.into_iter().collect();
    let device = device.out(&rooms);
    Ok((StatusCode::CREATED, Json(Registered { device, iot, mqtt })))
}

/// Device `id`'s IoT Core thing and certificate, on AWS with a device policy; `None` locally.
async fn provision(s: &State, id: i64) -> Result<Option<civic_iot::DeviceCredentials>> {
    let Some(p) = s.provisioner() else {
        return Ok(None);
    };
    let (thing, id) = (format!("homeforge-{id}"), id.to_string());
    let attributes = [("app", "homeforge"), ("device_id", id.as_str())];
    let creds = p.provision(&thing, &attributes).await;
    Ok(Some(creds.map_err(|e| Error::Unavailable(e.to_string()))?))
}

/// `GET /devices/<id>/`, with its current state.
#[utoipa::path(get, path = "/api/devices/{id}", tag = "devices", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = DeviceOut), (status = 401), (status = 404)))]
pub(super) async fn device_detail(
    S(s): S<State>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<DeviceOut>> {
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
pub(super) async fn update_device(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Id(id): Id,
    body: Body,
) -> Result<Json<DeviceOut>> {
    let table = s.table.as_ref();
    // Someone else's device does not exist for the caller, whatever they sent.
    let device = Device::visible(table, &caller, id).await?;
    let mut body = body.partial();
    let req = DeviceInput::from_body(&mut body);
    if req
        .device_type
        .as_ref()
        .is_some_and(|t| t.id != device.record.device_type)
    {
        body.error(
            "device_type",
            "The device type of a registered device cannot be changed.",
        );
    }
    body.finish()?;
    let mut update = Update::new(device_key(id)).cond(Cond::Exists);
    for (field, value) in [
        ("name", req.name),
        ("ip_address", req.ip_address),
        ("icon", req.icon),
    ] {
        if let Some(v) = value {
            update = update.set(field, v);
        }
    }
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
pub(super) async fn delete_device(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Id(id): Id,
) -> Result<StatusCode> {
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
