//! Outlets: where machines stand.

use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::fields::{Body, FromBody, Patch, Valid};
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Item, StoreError, Table, Typed, VERSION};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{IdPath, ListParams, name, not_found, path_id, version_of};
use crate::keys::{MACHINES, OUTLETS, indexed, machines_of_outlet, outlet_index_sk, outlet_key};
use crate::{Staff, State, User, count, iso, now, parse_bool};

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

impl Outlet {
    fn to_item(&self, version: i64) -> Result<Item> {
        let keys = indexed(outlet_key(self.id), OUTLETS, outlet_index_sk(self.id));
        let mut item = to_item(self, &keys)?;
        item.insert(VERSION.into(), version.into());
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

#[derive(Clone, ToSchema)]
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

impl FromBody for OutletInput {
    fn from_body(b: &mut Body) -> Self {
        let trimmed = |b: &mut Body, field| {
            let text = b.typed::<String>(field, false);
            text.map(|t| t.trim().to_owned())
        };
        Self {
            name: name(b, "name"),
            address: trimmed(b, "address"),
            contact_person: trimmed(b, "contact_person"),
            is_active: b.typed("is_active", false),
            total_sva: count(b, "total_sva"),
            average_intage_services: b.typed("average_intage_services", false),
            number_of_machines: count(b, "number_of_machines"),
        }
    }
}

impl OutletInput {
    /// Applies the fields present (PUT replaces what it names).
    fn apply(&self, o: &mut Outlet) {
        if let Some(n) = &self.name {
            o.name = n.clone();
        }
        if let Some(a) = &self.address {
            o.address = a.clone();
        }
        if let Some(c) = &self.contact_person {
            o.contact_person = c.clone();
        }
        o.is_active = self.is_active.unwrap_or(o.is_active);
        o.total_sva = self.total_sva.or(o.total_sva);
        o.number_of_machines = self.number_of_machines.or(o.number_of_machines);
        o.average_intage_services = self.average_intage_services.or(o.average_intage_services);
        o.updated_at = iso(now());
    }
}

/// Outlets by id, optionally only active or inactive ones.
#[utoipa::path(get, path = "/api/outlets", tag = "outlets", params(ListParams), security(("session" = [])),
    responses((status = 200, body = Vec<Outlet>), (status = 400), (status = 401)))]
pub(super) async fn list_outlets(
    S(s): S<State>,
    _user: User,
    Query(q): Query<ListParams>,
) -> Result<Response> {
    let active = parse_bool("is_active", q.is_active.as_deref())?;
    let limit = page::limit(q.limit, 1000, 1000)?;
    let mut res = s
        .table
        .query_as::<Outlet>(
            civic_store::Query::index(OUTLETS)
                .limit(limit)
                .cursor(q.cursor),
        )
        .await?;
    if let Some(a) = active {
        res.items.retain(|o| o.is_active == a);
    }
    Ok(page::with_cursor(Json(res.items), res.cursor))
}

/// Create an outlet (staff).
#[utoipa::path(post, path = "/api/outlets", tag = "outlets", request_body = NewOutlet, security(("session" = [])),
    responses((status = 201, body = Outlet), (status = 400), (status = 401), (status = 403)))]
pub(super) async fn create_outlet(
    S(s): S<State>,
    _staff: Staff,
    Valid(input): Valid<OutletInput>,
) -> Result<(StatusCode, Json<Outlet>)> {
    let at = iso(now());
    let mut outlet = Outlet {
        id: 0,
        name: String::new(),
        address: String::new(),
        contact_person: String::new(),
        is_active: true,
        total_sva: None,
        average_intage_services: None,
        number_of_machines: None,
        created_at: at.clone(),
        updated_at: at,
    };
    input.apply(&mut outlet);
    outlet.id = ids::next_id(s.table.as_ref(), "outlet").await?;
    s.table.put(outlet.to_item(1)?, Cond::NotExists).await?;
    Ok((StatusCode::CREATED, Json(outlet)))
}

#[utoipa::path(get, path = "/api/outlets/{id}", tag = "outlets", params(("id" = i64, Path)), security(("session" = [])),
    responses((status = 200, body = Outlet), (status = 401), (status = 404)))]
pub(super) async fn get_outlet(
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
pub(super) async fn update_outlet(
    S(s): S<State>,
    _staff: Staff,
    Path(IdPath { id }): Path<IdPath>,
    Patch(input): Patch<OutletInput>,
) -> Result<Json<Outlet>> {
    let (id, table, input) = (path_id(&id)?, s.table.as_ref(), &input);
    let outlet = retry::optimistic(move || async move {
        let (mut outlet, v) = Outlet::load(table, id).await?.ok_or_else(not_found)?;
        input.apply(&mut outlet);
        retry::won(table.put(outlet.to_item(v + 1)?, Cond::Version(v)).await)
            .map(|won| won.then_some(outlet))
    })
    .await?;
    Ok(Json(outlet))
}

/// Delete an outlet (staff). An outlet that still has machines is kept (409).
#[utoipa::path(delete, path = "/api/outlets/{id}", tag = "outlets", params(("id" = i64, Path)), security(("session" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub(super) async fn delete_outlet(
    S(s): S<State>,
    _staff: Staff,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<StatusCode> {
    let id = path_id(&id)?;
    let machines = s
        .table
        .query(
            civic_store::Query::index(MACHINES)
                .prefix(machines_of_outlet(id))
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
