//! Outlets and machines (DRF-style CRUD), binding devices to machines, and devices with
//! telemetry that no machine owns yet. Reads need a session; writes need staff.
//!
//! A device's record carries its machine and outlet, so ingest can count each event in the
//! machine's and outlet's rollups without another read; binding changes update it in the same
//! transaction as the machine, guarded by the device's version.

use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Item, Key, StoreError, Table, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::data::DeviceOut;
use crate::gateway::{DeviceRecord, device_key};
use crate::{Staff, State, User, iso, now, parse_bool, parse_id, required, valid_device_id};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_outlets, create_outlet))
        .routes(routes!(get_outlet, update_outlet, delete_outlet))
        .routes(routes!(list_machines, create_machine))
        .routes(routes!(get_machine, update_machine, delete_machine))
        .routes(routes!(register))
        .routes(routes!(unregistered))
}

/// The `{id}` of a path, by name: behind civic-local's greedy routes the request also carries
/// the outer route's `proxy` parameter, which a positional `Path<String>` would trip over.
#[derive(Deserialize)]
pub struct IdPath {
    id: String,
}

/// `{id}` of a path: anything but a positive integer names nothing.
fn path_id(id: &str) -> Result<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(not_found)
}

fn not_found() -> Error {
    Error::NotFound("Not found.".into())
}

fn version_of(item: &Item) -> i64 {
    item.get("version").and_then(Value::as_i64).unwrap_or(0)
}

fn name(field: &str, v: &Option<String>) -> Result<String> {
    let n = required(field, v)?;
    if n.chars().count() > 200 {
        return Err(Error::field(
            field,
            "Ensure this field has no more than 200 characters.",
        ));
    }
    Ok(n.to_owned())
}

#[derive(Deserialize, IntoParams)]
pub struct ListParams {
    /// `true`/`false`: only active or inactive ones.
    is_active: Option<String>,
    outlet_id: Option<String>,
    device_id: Option<String>,
    /// Extension: page size, 1–1000 (default 1000).
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

// ------------------------------------------------------------------------------- outlets

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Outlet {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub contact_person: String,
    pub is_active: bool,
    pub total_sva: Option<i64>,
    pub average_intage_services: Option<f64>,
    pub number_of_machines: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

fn outlet_key(id: i64) -> Key {
    Key::new(format!("OUTLET#{id:010}"), "OUTLET")
}

impl Outlet {
    fn to_item(&self, version: i64) -> Result<Item> {
        let k = outlet_key(self.id);
        let mut item = to_item(
            self,
            &[
                ("PK", k.pk),
                ("SK", k.sk),
                ("GSI1PK", "OUTLETS".into()),
                ("GSI1SK", format!("{:010}", self.id)),
            ],
        )?;
        item.insert("version".into(), version.into());
        Ok(item)
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Option<(Self, i64)>> {
        match table.get(&outlet_key(id)).await? {
            Some(item) => {
                let v = version_of(&item);
                Ok(Some((from_item(item)?, v)))
            }
            None => Ok(None),
        }
    }
}

#[derive(Clone, Deserialize, ToSchema)]
pub struct OutletInput {
    name: Option<String>,
    address: Option<String>,
    contact_person: Option<String>,
    /// Default `true`.
    is_active: Option<bool>,
    total_sva: Option<i64>,
    average_intage_services: Option<f64>,
    number_of_machines: Option<i64>,
}

civic_core::schema_variant!(
    /// `POST /api/outlets`' body: an [`OutletInput`] with its `name`.
    pub NewOutlet = OutletInput, ["name"]
);

impl OutletInput {
    /// Applies the fields present (PUT replaces what it names; `name` may not be blanked).
    fn apply(&self, o: &mut Outlet) -> Result<()> {
        if self.name.is_some() {
            o.name = name("name", &self.name)?;
        }
        if let Some(a) = &self.address {
            o.address = a.trim().to_owned();
        }
        if let Some(c) = &self.contact_person {
            o.contact_person = c.trim().to_owned();
        }
        o.is_active = self.is_active.unwrap_or(o.is_active);
        for (field, v) in [
            ("total_sva", self.total_sva),
            ("number_of_machines", self.number_of_machines),
        ] {
            if v.is_some_and(|n| n < 0) {
                return Err(Error::field(
                    field,
                    "Ensure this value is greater than or equal to 0.",
                ));
            }
        }
        o.total_sva = self.total_sva.or(o.total_sva);
        o.number_of_machines = self.number_of_machines.or(o.number_of_machines);
        o.average_intage_services = self.average_intage_services.or(o.average_intage_services);
        o.updated_at = iso(now());
        Ok(())
    }
}

/// Outlets by id, optionally only active or inactive ones.
#[utoipa::path(get, path = "/api/outlets", tag = "outlets", params(ListParams), security(("session" = [])),
    responses((status = 200, body = Vec<Outlet>), (status = 400), (status = 401)))]
async fn list_outlets(
    S(s): S<State>,
    _user: User,
    Query(q): Query<ListParams>,
) -> Result<Response> {
    let active = parse_bool("is_active", q.is_active.as_deref())?;
    let limit = page::limit(q.limit, 1000, 1000)?;
    let res = s
        .table
        .query(
            civic_store::Query::index("OUTLETS")
                .limit(limit)
                .cursor(q.cursor),
        )
        .await?;
    let outlets = res
        .items
        .into_iter()
        .map(from_item::<Outlet>)
        .filter(|o| {
            o.as_ref()
                .map_or(true, |o| active.is_none_or(|a| o.is_active == a))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(page::with_cursor(Json(outlets), res.cursor))
}

/// Create an outlet (staff).
#[utoipa::path(post, path = "/api/outlets", tag = "outlets", request_body = NewOutlet, security(("session" = [])),
    responses((status = 201, body = Outlet), (status = 400), (status = 401), (status = 403)))]
async fn create_outlet(
    S(s): S<State>,
    _staff: Staff,
    Json(input): Json<OutletInput>,
) -> Result<(StatusCode, Json<Outlet>)> {
    let name = name("name", &input.name)?;
    let at = iso(now());
    let mut outlet = Outlet {
        id: 0,
        name,
        address: String::new(),
        contact_person: String::new(),
        is_active: true,
        total_sva: None,
        average_intage_services: None,
        number_of_machines: None,
        created_at: at.clone(),
        updated_at: at,
    };
    input.apply(&mut outlet)?;
    outlet.id = ids::next_id(s.table.as_ref(), "outlet").await?;
    s.table.put(outlet.to_item(1)?, Cond::NotExists).await?;
    Ok((StatusCode::CREATED, Json(outlet)))
}

#[utoipa::path(get, path = "/api/outlets/{id}", tag = "outlets", params(("id" = i64, Path)), security(("session" = [])),
    responses((status = 200, body = Outlet), (status = 401), (status = 404)))]
async fn get_outlet(
    S(s): S<State>,
    _user: User,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<Outlet>> {
    let (outlet, _) = Outlet::load(s.table.as_ref(), path_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(outlet))
}

/// Update an outlet (staff): the fields sent replace the stored ones.
#[utoipa::path(put, path = "/api/outlets/{id}", tag = "outlets", params(("id" = i64, Path)), request_body = OutletInput, security(("session" = [])),
    responses((status = 200, body = Outlet), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update_outlet(
    S(s): S<State>,
    _staff: Staff,
    Path(IdPath { id }): Path<IdPath>,
    Json(input): Json<OutletInput>,
) -> Result<Json<Outlet>> {
    let (id, table, input) = (path_id(&id)?, s.table.as_ref(), &input);
    let outlet = retry::optimistic(move || async move {
        let (mut outlet, v) = Outlet::load(table, id).await?.ok_or_else(not_found)?;
        input.apply(&mut outlet)?;
        retry::won(table.put(outlet.to_item(v + 1)?, Cond::Version(v)).await)
            .map(|won| won.then_some(outlet))
    })
    .await?;
    Ok(Json(outlet))
}

/// Delete an outlet (staff). An outlet that still has machines is kept (409).
#[utoipa::path(delete, path = "/api/outlets/{id}", tag = "outlets", params(("id" = i64, Path)), security(("session" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn delete_outlet(
    S(s): S<State>,
    _staff: Staff,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<StatusCode> {
    let id = path_id(&id)?;
    let machines = s
        .table
        .query(
            civic_store::Query::index("MACHINES")
                .prefix(format!("{id:010}#"))
                .limit(1),
        )
        .await?;
    if !machines.items.is_empty() {
        return Err(Error::Conflict(
            "This outlet still has machines; delete or move them first.".into(),
        ));
    }
    match s.table.delete(&outlet_key(id), Cond::Exists).await {
        Err(StoreError::ConditionFailed) => Err(not_found()),
        other => other.map(|_| StatusCode::NO_CONTENT).map_err(Error::from),
    }
}

// ------------------------------------------------------------------------------ machines

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

fn machine_key(id: i64) -> Key {
    Key::new(format!("MACHINE#{id:010}"), "MACHINE")
}

fn binding_key(machine: i64, device_id: &str) -> Key {
    Key::new(
        format!("MACHINE#{machine:010}"),
        format!("BIND#{device_id}"),
    )
}

impl Machine {
    fn to_item(&self, version: i64) -> Result<Item> {
        let k = machine_key(self.id);
        let mut item = to_item(
            self,
            &[
                ("PK", k.pk),
                ("SK", k.sk),
                ("GSI1PK", "MACHINES".into()),
                ("GSI1SK", format!("{:010}#{:010}", self.outlet, self.id)),
            ],
        )?;
        item.insert("version".into(), version.into());
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

fn binding_item(b: &MachineDevice) -> Result<Item> {
    let k = binding_key(b.machine, &b.device_id);
    to_item(b, &[("PK", k.pk), ("SK", k.sk)])
}

/// The outlet a machine names must exist (DRF's message for a dangling key).
async fn existing_outlet(table: &dyn Table, field: &str, id: i64) -> Result<()> {
    match Outlet::load(table, id).await? {
        Some(_) => Ok(()),
        None => Err(Error::field(
            field,
            format!("Invalid pk \"{id}\" - object does not exist."),
        )),
    }
}

#[derive(Clone, Deserialize, ToSchema)]
pub struct MachineInput {
    /// The outlet's id.
    outlet: Option<i64>,
    name: Option<String>,
    /// Default `true`.
    is_active: Option<bool>,
}

civic_core::schema_variant!(
    /// `POST /api/machines`' body: a [`MachineInput`] with its `outlet` and `name`.
    pub NewMachine = MachineInput, ["outlet", "name"]
);

/// Machines by outlet, optionally filtered by outlet, activity or current device.
#[utoipa::path(get, path = "/api/machines", tag = "machines", params(ListParams), security(("session" = [])),
    responses((status = 200, body = Vec<Machine>), (status = 400), (status = 401)))]
async fn list_machines(
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
    let mut query = civic_store::Query::index("MACHINES")
        .limit(limit)
        .cursor(q.cursor);
    if let Some(o) = outlet {
        query = query.prefix(format!("{o:010}#"));
    }
    let res = s.table.query(query).await?;
    let machines = res
        .items
        .into_iter()
        .map(from_item::<Machine>)
        .filter(|m| m.as_ref().map_or(true, keep))
        .collect::<Result<Vec<_>>>()?;
    Ok(page::with_cursor(Json(machines), res.cursor))
}

/// Create a machine without a device (staff); bind one with `register`.
#[utoipa::path(post, path = "/api/machines", tag = "machines", request_body = NewMachine, security(("session" = [])),
    responses((status = 201, body = Machine), (status = 400), (status = 401), (status = 403)))]
async fn create_machine(
    S(s): S<State>,
    _staff: Staff,
    Json(input): Json<MachineInput>,
) -> Result<(StatusCode, Json<Machine>)> {
    let name = name("name", &input.name)?;
    let outlet = input
        .outlet
        .ok_or_else(|| Error::field("outlet", "This field is required."))?;
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
async fn get_machine(
    S(s): S<State>,
    _user: User,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<MachineDetail>> {
    let key = machine_key(path_id(&id)?);
    let items = s
        .table
        .query(civic_store::Query::partition(key.pk).limit(101))
        .await?
        .items;
    let (mut machine, mut devices) = (None, Vec::new());
    for item in items {
        if item.get("SK").and_then(Value::as_str) == Some("MACHINE") {
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
        .set("version", record.version + 1)
        .cond(Cond::Version(record.version));
    Ok(Some(Write::Update(u)))
}

/// Update a machine (staff). Moving it to another outlet moves its device's future usage too.
#[utoipa::path(put, path = "/api/machines/{id}", tag = "machines", params(("id" = i64, Path)), request_body = MachineInput, security(("session" = [])),
    responses((status = 200, body = Machine), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update_machine(
    S(s): S<State>,
    _staff: Staff,
    Path(IdPath { id }): Path<IdPath>,
    Json(input): Json<MachineInput>,
) -> Result<Json<Machine>> {
    let (id, table, input) = (path_id(&id)?, s.table.as_ref(), &input);
    if let Some(o) = input.outlet {
        existing_outlet(table, "outlet", o).await?;
    }
    let machine = retry::optimistic(move || async move {
        let (mut m, v) = Machine::load(table, id).await?.ok_or_else(not_found)?;
        if input.name.is_some() {
            m.name = name("name", &input.name)?;
        }
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
async fn delete_machine(
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

/// Named apart from the user registration's `RegisterRequest`: one document holds both.
#[derive(Deserialize, ToSchema)]
#[schema(as = MachineRegisterRequest)]
pub struct RegisterRequest {
    #[schema(required, nullable = false)]
    device_id: Option<String>,
    #[schema(required, nullable = false)]
    outlet_id: Option<i64>,
    #[schema(required, nullable = false)]
    name: Option<String>,
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
async fn register(
    S(s): S<State>,
    _staff: Staff,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>)> {
    let device_id = required("device_id", &req.device_id)?;
    valid_device_id("device_id", device_id)?;
    let outlet = req
        .outlet_id
        .ok_or_else(|| Error::field("outlet_id", "This field is required."))?;
    let name = name("name", &req.name)?;
    let table = s.table.as_ref();
    existing_outlet(table, "outlet_id", outlet).await?;
    let id = ids::next_id(table, "machine").await?;
    let name = name.as_str();
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
            .set("version", record.version + 1)
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
async fn unregistered(
    S(s): S<State>,
    User(u): User,
    Query(q): Query<PageParams>,
) -> Result<Response> {
    let limit = page::limit(q.limit, 1000, 1000)?;
    let res = s
        .table
        .query(
            civic_store::Query::index("DEVICES")
                .reverse()
                .limit(limit)
                .cursor(q.cursor),
        )
        .await?;
    let devices = res
        .items
        .into_iter()
        .map(from_item::<crate::gateway::Device>)
        .filter(|d| {
            d.as_ref()
                .map_or(true, |d| d.machine_id.is_none() && d.event_count > 0)
        })
        .map(|d| d.map(|d| DeviceOut::new(&s.config, d, &u)))
        .collect::<Result<Vec<_>>>()?;
    Ok(page::with_cursor(Json(devices), res.cursor))
}
