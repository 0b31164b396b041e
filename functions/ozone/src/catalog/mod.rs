//! Outlets and machines (DRF-style CRUD), binding devices to machines, and devices with
//! telemetry that no machine owns yet. Reads need a session; writes need staff.
//!
//! A device's record carries its machine and outlet, so ingest can count each event in the
//! machine's and outlet's rollups without another read; binding changes update it in the same
//! transaction as the machine, guarded by the device's version.

mod machines;
mod outlets;
mod register;

use civic_core::fields::Body;
use civic_core::{Error, Result};
use civic_store::{Item, VERSION};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;

pub use self::machines::{Machine, MachineDetail, MachineDevice, MachineInput, NewMachine};
pub use self::outlets::{NewOutlet, Outlet, OutletInput};
pub use self::register::{PageParams, RegisterRequest, Registered};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(outlets::list_outlets, outlets::create_outlet))
        .routes(routes!(
            outlets::get_outlet,
            outlets::update_outlet,
            outlets::delete_outlet
        ))
        .routes(routes!(machines::list_machines, machines::create_machine))
        .routes(routes!(
            machines::get_machine,
            machines::update_machine,
            machines::delete_machine
        ))
        .routes(routes!(register::register))
        .routes(routes!(register::unregistered))
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
    item.get(VERSION).and_then(Value::as_i64).unwrap_or(0)
}

/// An outlet's or machine's name: required, not blank (a partial update may leave it out),
/// at most 200 characters.
fn name(b: &mut Body, field: &str) -> Option<String> {
    let name = b.required_text(field)?;
    if name.chars().count() > 200 {
        b.error(field, "Ensure this field has no more than 200 characters.");
        return None;
    }
    Some(name)
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
