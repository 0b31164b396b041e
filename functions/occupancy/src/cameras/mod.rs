//! Cameras and their virtual lines: create (unique `camera_id`), list, detail, update
//! ([`setup`]), MQTT logins ([`mqtt`]) and lines ([`lines`]). Here: the stored camera.

mod lines;
mod mqtt;
mod setup;

use civic_core::fields::Body;
use civic_core::item::to_item;
use civic_core::{Error, Result};
use civic_store::{Item, Table, Typed};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

pub use crate::keys::{FACILITY, camera_key, facility_key};
pub use lines::{Direction, Line, LinePatch, NewLine, lines_of};
pub use mqtt::DEVICES;
pub use setup::{CameraPatch, Created, NewCamera, active_cameras, create_camera, register_camera};

use crate::keys::{by_id, cameras_index, indexed};
use crate::timeline::Live;
use crate::{State, camera_not_found};

pub fn routes() -> OpenApiRouter<State> {
    setup::routes().merge(mqtt::routes()).merge(lines::routes())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraType {
    EntryOnly,
    ExitOnly,
    Bidirectional,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Camera {
    pub id: i64,
    pub camera_id: String,
    pub camera_name: String,
    pub location: Option<String>,
    pub camera_type: CameraType,
    pub is_active: bool,
    pub max_occupancy: Option<i64>,
    pub resolution_width: i64,
    pub resolution_height: i64,
    pub created_at: String,
}

/// The stored camera: its configuration, its live state and the version both are written at.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub camera: Camera,
    #[serde(default)]
    pub live: Live,
    #[serde(default)]
    pub version: i64,
}

impl Record {
    pub fn to_item(&self) -> Result<Item> {
        let id = self.camera.id;
        let index = cameras_index(self.camera.is_active).to_owned();
        to_item(self, &indexed(camera_key(id), index, by_id(id)))
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Self> {
        table
            .get_as(&camera_key(id))
            .await?
            .ok_or_else(|| camera_not_found(id))
    }

    /// The capacity this camera adds to the facility's.
    pub fn capacity(&self) -> i64 {
        if self.camera.is_active {
            self.camera.max_occupancy.unwrap_or(0)
        } else {
            0
        }
    }
}

/// Camera `id`'s configuration, without decoding its live state (404 if there is none).
pub async fn load_camera(table: &dyn Table, id: i64) -> Result<Camera> {
    table
        .get_as(&camera_key(id))
        .await?
        .ok_or_else(|| camera_not_found(id))
}

/// A check's value, or its message as the body's refusal. The checks below are the seed's
/// rules in its words; an update runs some of them on stored values, or only once the
/// camera or line is found, so they are not body readers themselves.
fn checked<T: Default>(b: &mut Body, check: Result<T>) -> T {
    check.unwrap_or_else(|e| {
        b.refuse::<()>(e.to_string());
        T::default()
    })
}

/// A name (`camera_id`, `camera_name`, `line_name`): trimmed, 1 to 200 bytes.
fn text(value: Option<String>, name: &str) -> Result<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() && v.len() <= 200 => Ok(v.to_owned()),
        Some(v) if !v.is_empty() => Err(Error::bad_request(format!("{name} is too long"))),
        _ => Err(Error::bad_request(format!("{name} is required"))),
    }
}

fn valid_capacity(max: Option<i64>) -> Result<()> {
    match max {
        Some(m) if m < 1 => Err(Error::bad_request("max_occupancy must be at least 1")),
        _ => Ok(()),
    }
}

fn valid_resolution(w: i64, h: i64) -> Result<()> {
    if (1..=16384).contains(&w) && (1..=16384).contains(&h) {
        Ok(())
    } else {
        Err(Error::bad_request(
            "resolution must be between 1 and 16384 pixels",
        ))
    }
}
