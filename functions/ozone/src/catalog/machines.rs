//! Machines: CRUD, each with the device bound to it and its binding history.

use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::fields::{Body, FromBody, Patch, Valid};
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Item, SK, Table, Typed, Update, VERSION, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{IdPath, ListParams, Outlet, name, not_found, path_id, version_of};
use crate::gateway::DeviceRecord;
use crate::keys::{
    MACHINES, attributes, binding_key, device_key, indexed, machine_index_sk, machine_key,
    machines_of_outlet,
};
use crate::{Staff, State, User, iso, now, parse_bool, parse_id, valid_device_id};

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Machine {
    pub id: i64,
    /// The outlet's id.
    pub outlet: i64,
    pub name: String,
    pub is_active: bool,
    /// The device bound to it now, if any.
    pub device_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A device's binding to a machine (history is kept).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MachineDevice {
    pub machine: i64,
    pub device_id: String,
    pub is_active: bool,
    pub assigned_date: String,
    pub deactivated_date: Option<String>,
}

impl Machine {
    pub(super) fn to_item(&self, version: i64) -> Result<Item> {
        let index_sk = machine_index_sk(self.outlet, self.id);
        let mut item = to_item(self, &indexed(machine_key(self.id), MACHINES, index_sk))?;
        item.insert(VERSION.into(), version.into());
        Ok(item)
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Option<(Self, i64)>> {
        match table.get(&machine_key(id)).await? {
            Some(item) => {
                let v = version_of(&item);
                Ok(Some((from_item(item)?, v)))
            }
            None => Ok(None),
        }
    }
}

pub(super) fn binding_item(b: &MachineDevice) -> Result<Item> {
    to_item(b, &attributes(binding_key(b.machine, &b.device_id)))
}

/// The outlet a machine names must exist (DRF's message for a dangling key).
pub(super) async fn existing_outlet(table: &dyn Table, field: &str, id: i64) -> Result<()> {
    match Outlet::load(table, id).await? {
        Some(_) => Ok(()),
        None => Err(Error::field(
            field,
            format!("Invalid pk \"{id}\" - object does not exist."),
        )),
    }
}

#[derive(Clone, ToSchema)]
pub struct MachineInput {
    /// The outlet's id.
    outlet: Option<i64>,
    name: Option<String>,
    /// Default `true`.
    is_active: Option<bool>,
}

impl FromBody for MachineInput {
    fn from_body(b: &mut Body) -> Self {
        Self {
            name: name(b, "name"),
            outlet: b.typed("outlet", true),
            is_active: b.typed("is_active", false),
        }
    }
}

civic_core::schema_variant!(
    /// `POST /api/machines`' body: a [`MachineInput`] with its `outlet` and `name`.
    pub NewMachine = MachineInput, ["outlet", "name"]
);

/// Machines by outlet, optionally filtered by outlet, activity or current device.
#[utoipa::path(get, path = "/api/machines", tag = "machines", params(ListParams), security(("session" = [])),
    responses((status = 200, body = Vec<Machine>), (status = 400), (status = 401)))]
pub(super) async fn list_machines(
    S(s): S<State>,
    _user: User,
    Query(q): Query<ListParams>,
) -> Result<Response> {
    let active = parse_bool("is_active", q.is_active.as_deref())?;
    let outlet = parse_id("outlet_id", q.outlet_id.as_deref())?;
    let keep = |m: &Machine| {
        active.is_none_or(|a| m.is_active == a) && outlet.is_none_or(|o| m.outlet == o)
    };
    // By device: the device record names its machine, so this is two reads, not a filter.
    if let Some(device_id) = q
        .device_id
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        valid_device_id("device_id", device_id)?;
        let machine = match DeviceRecord::load(s.table.as_ref(), device_id)
            .await?
            .and_then(|d| d.device.machine_id)
        {
            Some(id) => Machine::load(s.table.as_ref(), id).await?.map(|(m, _)| m),
            None => None,
        };
        return Ok(page::with_cursor(
            Json(machine.into_iter().filter(keep).collect::<Vec<_>>()),
            None,
        ));
    }
    let limit = page::limit(q.limit, 1000, 1000)?;
    let mut query = civic_store::Query::index(MACHINES)
        .limit(limit)
        .cursor(q.cursor);
    if let Some(o) = outlet {
        query = query.prefix(machines_of_outlet(o));
    }
    let mut res = s.table.query_as::<Machine>(query).await?;
    res.items.retain(keep);
    Ok(page::with_cursor(Json(res.items), res.cursor))
}

/// Create a machine without a device (staff); bind one with `register`.
#[utoipa::path(post, path = "/api/machines", tag = "machines", request_body = NewMachine, security(("session" = [])),
    responses((status = 201, body = Machine), (status = 400), (status = 401), (status = 403)))]
pub(super) async fn create_machine(
    S(s): S<State>,
    _staff: Staff,
    Valid(input): Valid<MachineInput>,
) -> Result<(StatusCode, Json<Machine>)> {
    // A whole body names both (`Valid`): only a partial update may leave them out.
    let (name, outlet) = (
        input.name.unwrap_or_default(),
        input.outlet.unwrap_or_default(),
    );
    existing_outlet(s.table.as_ref(), "outlet", outlet).await?;
    let at = iso(now());
    let machine = Machine {
        id: ids::next_id(s.table.as_ref(), "machine").await?,
        outlet,
        name,
        is_active: input.is_active.unwrap_or(true),
        device_id: None,
        created_at: at.clone(),
        updated_at: at,
    };
    s.table.put(machine.to_item(1)?, Cond::NotExists).await?;
    Ok((StatusCode::CREATED, Json(machine)))
}

#[derive(Serialize, ToSchema)]
pub struct MachineDetail {
    #[serde(flatten)]
    machine: Machine,
    /// Every device bound to it, current and past.
    devices: Vec<MachineDevice>,
}

/// A machine and its device bindings (one query: they share its partition).
#[utoipa::path(get, path = "/api/machines/{id}", tag = "machines", params(("id" = i64, Path)), security(("session" = [])),
    responses((status = 200, body = MachineDetail), (status = 401), (status = 404)))]
pub(super) async fn get_machine(
    S(s): S<State>,
    _user: User,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<MachineDetail>> {
    let key = machine_key(path_id(&id)?);
    let items = s
        .table
        .query(civic_store::Query::partition(key.pk.as_str()).limit(101))
        .await?
        .items;
    let (mut machine, mut devices) = (None, Vec::new());
    for item in items {
        if item.get(SK).and_then(Value::as_str) == Some(key.sk.as_str()) {
            machine = Some(from_item::<Machine>(item)?);
        } else {
            devices.push(from_item::<MachineDevice>(item)?);
        }
    }
    let machine = machine.ok_or_else(not_found)?;
    Ok(Json(MachineDetail { machine, devices }))
}

/// The writes that move a machine's device to `outlet` (or unbind it), guarded by the
/// device's version; `None` when the machine has no device.
async fn device_follows(
    table: &dyn Table,
    machine: &Machine,
    change: impl FnOnce(Update) -> Update,
) -> Result<Option<Write>> {
    let Some(device_id) = &machine.device_id else {
        return Ok(None);
    };
    let Some(record) = DeviceRecord::load(table, device_id).await? else {
        return Ok(None);
    };
    let u = change(Update::new(device_key(device_id)))
        .set(VERSION, record.version + 1)
        .cond(Cond::Version(record.version));
    Ok(Some(Write::Update(u)))
}

/// Update a machine (staff). Moving it to another outlet moves its device's future usage too.
#[utoipa::path(put, path = "/api/machines/{id}", tag = "machines", params(("id" = i64, Path)), request_body = MachineInput, security(("session" = [])),
    responses((status = 200, body = Machine), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn update_machine(
    S(s): S<State>,
    _staff: Staff,
    Path(IdPath { id }): Path<IdPath>,
    Patch(input): Patch<MachineInput>,
) -> Result<Json<Machine>> {
    let (id, table, input) = (path_id(&id)?, s.table.as_ref(), &input);
    if let Some(o) = input.outlet {
        existing_outlet(table, "outlet", o).await?;
    }
    let machine = retry::optimistic(move || async move {
        let (mut m, v) = Machine::load(table, id).await?.ok_or_else(not_found)?;
        m.name = input.name.clone().unwrap_or(m.name);
        m.is_active = input.is_active.unwrap_or(m.is_active);
        let moved = input.outlet.is_some_and(|o| o != m.outlet);
        m.outlet = input.outlet.unwrap_or(m.outlet);
        m.updated_at = iso(now());
        let mut writes = vec![Write::Put {
            item: m.to_item(v + 1)?,
            cond: Cond::Version(v),
        }];
        if moved {
            writes.extend(device_follows(table, &m, |u| u.set("outlet_id", m.outlet)).await?);
        }
        retry::won(table.transact(writes).await).map(|won| won.then_some(m))
    })
    .await?;
    Ok(Json(machine))
}

/// Delete a machine (staff): its device is unbound; the binding history and rollups stay.
#[utoipa::path(delete, path = "/api/machines/{id}", tag = "machines", params(("id" = i64, Path)), security(("session" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn delete_machine(
    S(s): S<State>,
    _staff: Staff,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<StatusCode> {
    let (id, table) = (path_id(&id)?, s.table.as_ref());
    retry::optimistic(move || async move {
        let (m, v) = Machine::load(table, id).await?.ok_or_else(not_found)?;
        let mut writes = vec![Write::Delete {
            key: machine_key(id),
            cond: Cond::Version(v),
        }];
        writes.extend(
            device_follows(table, &m, |u| u.remove("machine_id").remove("outlet_id")).await?,
        );
        if let Some(device_id) = &m.device_id {
            let closed = Update::new(binding_key(id, device_id))
                .set("is_active", false)
                .set("deactivated_date", iso(now()))
                .cond(Cond::Exists);
            writes.push(Write::Update(closed));
        }
        retry::won(table.transact(writes).await).map(|won| won.then_some(()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
