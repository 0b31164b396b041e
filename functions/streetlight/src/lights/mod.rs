//! Lights: listing and map per city, detail with recent logs, city summary counters, control,
//! device status updates, and the admin extensions (create, update, delete, import, logs).
//!
//! | module | holds |
//! |---|---|
//! | `model` | the stored light, control log and city summary, and their keys |
//! | `reads` | list, map, summary, detail and logs |
//! | `control` | manual control and device status reports (HTTP and MQTT) |
//! | `change` | the one write of a status change: light, log entry, summary delta |
//! | `log_id` | log ids from the clock, no shared counter |
//! | `admin` | create (with the MQTT credential), credential rotation, update, delete |
//! | `import` | bulk import from CSV or JSON |

mod admin;
mod change;
mod control;
mod import;
pub mod log_id;
mod model;
mod reads;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;

pub use admin::{Created, DEVICES, LightPatch, NewLight, create_light, register_light};
pub use control::{
    ControlData, ControlRequest, StatusData, StatusRequest, device_status, report_status,
};
pub use import::{ImportBody, ImportFailure, ImportResult};
pub use model::{ControlLog, Light, LightParams, Status, Summary};
pub use reads::{CityParams, Detail, Location, LogParams, MapLight, SummaryParams, city_lights};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(reads::list))
        .routes(routes!(reads::detail))
        .routes(routes!(reads::summary))
        .routes(routes!(reads::map))
        .routes(routes!(control::control))
        .routes(routes!(control::update_status))
        .routes(routes!(admin::create))
        .routes(routes!(admin::update))
        .routes(routes!(admin::delete))
        .routes(routes!(import::import))
        .routes(routes!(admin::rotate_credential))
        .routes(routes!(reads::logs))
}
