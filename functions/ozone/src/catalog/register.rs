//! Registering a device as a machine, and the devices with telemetry still waiting for one.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Update, VERSION, Write};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::machines::{binding_item, existing_outlet};
use super::{Machine, MachineDevice, name};
use crate::data::DeviceOut;
use crate::gateway::{Device, DeviceRecord};
use crate::keys::{DEVICES, device_key};
use crate::{Staff, State, User, iso, now, valid_device_id};

/// Named apart from the user registration's `RegisterRequest`: one document holds both.
#[derive(ToSchema)]
#[schema(as = MachineRegisterRequest)]
pub struct RegisterRequest {
    device_id: String,
    outlet_id: i64,
    name: String,
}

impl FromBody for RegisterRequest {
    fn from_body(b: &mut Body) -> Self {
        let device_id = b.required_text("device_id");
        if let Some(id) = &device_id {
            b.check(valid_device_id("device_id", id));
        }
        Self {
            device_id: device_id.unwrap_or_default(),
            outlet_id: b.typed("outlet_id", true).unwrap_or_default(),
            name: name(b, "name").unwrap_or_default(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    #[serde(flatten)]
    machine: Machine,
    binding: MachineDevice,
}

/// Register a device as a new machine at an outlet (staff). From then on its events also
/// count in the machine's and the outlet's usage.
#[utoipa::path(post, path = "/api/machines/register", operation_id = "register_machine", tag = "machines", request_body = RegisterRequest, security(("session" = [])),
    responses((status = 201, body = Registered), (status = 400), (status = 401), (status = 403), (status = 409)))]
pub(super) async fn register(
    S(s): S<State>,
    _staff: Staff,
    Valid(req): Valid<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>)> {
    let (device_id, outlet) = (req.device_id.as_str(), req.outlet_id);
    let table = s.table.as_ref();
    existing_outlet(table, "outlet_id", outlet).await?;
    let id = ids::next_id(table, "machine").await?;
    let name = req.name.as_str();
    let registered = retry::optimistic(move || async move {
        let record = DeviceRecord::load(table, device_id).await?.ok_or_else(|| {
            Error::field(
                "device_id",
                format!("Device \"{device_id}\" does not exist."),
            )
        })?;
        if let Some(m) = record.device.machine_id {
            return Err(Error::Conflict(format!(
                "Device {device_id} is already registered to machine {m}."
            )));
        }
        let at = iso(now());
        let machine = Machine {
            id,
            outlet,
            name: name.to_owned(),
            is_active: true,
            device_id: Some(device_id.to_owned()),
            created_at: at.clone(),
            updated_at: at.clone(),
        };
        let binding = MachineDevice {
            machine: id,
            device_id: device_id.to_owned(),
            is_active: true,
            assigned_date: at,
            deactivated_date: None,
        };
        let bind = Update::new(device_key(device_id))
            .set("machine_id", id)
            .set("outlet_id", outlet)
            .set(VERSION, record.version + 1)
            .cond(Cond::Version(record.version));
        let writes = vec![
            Write::Put {
                item: machine.to_item(1)?,
                cond: Cond::NotExists,
            },
            Write::Put {
                item: binding_item(&binding)?,
                cond: Cond::Always,
            },
            Write::Update(bind),
        ];
        retry::won(table.transact(writes).await)
            .map(|won| won.then_some(Registered { machine, binding }))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

#[derive(Deserialize, IntoParams)]
pub struct PageParams {
    /// Page size of devices examined, 1–1000 (default 1000).
    limit: Option<usize>,
    /// Opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Devices that have sent telemetry but belong to no machine.
#[utoipa::path(get, path = "/api/machines/unregistered", tag = "machines", params(PageParams), security(("session" = [])),
    responses((status = 200, body = Vec<DeviceOut>), (status = 401)))]
pub(super) async fn unregistered(
    S(s): S<State>,
    User(u): User,
    Query(q): Query<PageParams>,
) -> Result<Response> {
    let limit = page::limit(q.limit, 1000, 1000)?;
    let shards = s.config.index_shards;
    let shape = |q: civic_store::Query| q.reverse().limit(limit);
    let res = shards
        .page::<Device>(s.table.as_ref(), DEVICES, shape, q.cursor)
        .await?;
    let devices = res
        .items
        .into_iter()
        .filter(|d| d.machine_id.is_none() && d.event_count > 0)
        .map(|d| DeviceOut::new(&s.config, d, &u))
        .collect::<Vec<_>>();
    Ok(page::with_cursor(Json(devices), res.cursor))
}
