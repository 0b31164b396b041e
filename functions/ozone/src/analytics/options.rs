//! `/api/test/stats-options`: what the stats UI offers to filter by.

use axum::extract::State as S;
use civic_core::{Json, Query, Result};
use civic_store::{Table, Typed};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::catalog::{Machine, Outlet};
use crate::gateway::Device;
use crate::keys::{BINDINGS, DEVICES, MACHINES, OUTLETS, machine_key, machines_of_outlet};
use crate::rollup::{self, Granularity};
use crate::{State, User, parse_id};

#[derive(Deserialize, IntoParams)]
pub struct OptionsParams {
    /// Machines of this outlet only.
    outlet_id: Option<String>,
    /// Devices of this machine only (current and past).
    machine_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OptionItem {
    id: Value,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    outlet_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    machine_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct StatsOptions {
    success: bool,
    outlets: Vec<OptionItem>,
    machines: Vec<OptionItem>,
    devices: Vec<OptionItem>,
    granularities: Vec<Granularity>,
}

/// At most this many of each kind of option (one page of one query each).
const MAX_OPTIONS: usize = 1000;

/// A machine's device binding; only the device is offered.
#[derive(Deserialize)]
struct Binding {
    device_id: Option<String>,
}

async fn options_page<T: DeserializeOwned + Send>(
    table: &dyn Table,
    query: civic_store::Query,
) -> Result<Vec<T>> {
    Ok(table.query_as(query.limit(MAX_OPTIONS)).await?.items)
}

/// Filter options for the stats UI: outlets, machines (of an outlet), devices (of a machine).
#[utoipa::path(get, path = "/api/test/stats-options", tag = "analytics", params(OptionsParams), security(("session" = [])),
    responses((status = 200, body = StatsOptions), (status = 400), (status = 401)))]
pub(super) async fn stats_options(
    S(s): S<State>,
    _user: User,
    Query(q): Query<OptionsParams>,
) -> Result<Json<StatsOptions>> {
    let outlet = parse_id("outlet_id", q.outlet_id.as_deref())?;
    let machine = parse_id("machine_id", q.machine_id.as_deref())?;
    let table = s.table.as_ref();

    let outlets = options_page::<Outlet>(table, civic_store::Query::index(OUTLETS))
        .await?
        .into_iter()
        .map(|o| OptionItem {
            id: o.id.into(),
            name: o.name,
            outlet_id: None,
            machine_id: None,
        })
        .collect();
    let mut machines_query = civic_store::Query::index(MACHINES);
    if let Some(o) = outlet {
        machines_query = machines_query.prefix(machines_of_outlet(o));
    }
    let machines = options_page::<Machine>(table, machines_query)
        .await?
        .into_iter()
        .map(|m| OptionItem {
            id: m.id.into(),
            name: m.name,
            outlet_id: Some(m.outlet),
            machine_id: None,
        })
        .collect();
    let devices = match machine {
        // A machine's devices, current and past, share its partition.
        Some(m) => options_page::<Binding>(
            table,
            civic_store::Query::partition(machine_key(m).pk).prefix(BINDINGS),
        )
        .await?
        .into_iter()
        .filter_map(|b| b.device_id)
        .map(|d| OptionItem {
            id: d.clone().into(),
            name: d,
            outlet_id: None,
            machine_id: Some(m),
        })
        .collect(),
        None => s
            .config
            .index_shards
            .page::<Device>(table, DEVICES, |q| q.reverse().limit(MAX_OPTIONS), None)
            .await?
            .items
            .into_iter()
            .map(|d| OptionItem {
                id: d.device_id.clone().into(),
                name: d.device_id,
                outlet_id: d.outlet_id,
                machine_id: d.machine_id,
            })
            .collect(),
    };
    Ok(Json(StatsOptions {
        success: true,
        outlets,
        machines,
        devices,
        granularities: rollup::GRANULARITIES.to_vec(),
    }))
}
