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
//!
//! | module | holds |
//! |---|---|
//! | `model` | the stored device, the device as the API shows it, which devices a caller sees |
//! | `crud` | register, list, detail, update, delete |
//! | `credential` | the devices' MQTT logins |
//! | `state` | state patches and the devices' reports over MQTT |

mod credential;
mod crud;
mod model;
mod state;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;

pub use credential::DEVICES;
pub use crud::{DeviceInput, NewDevice, Registered};
pub use model::{DEFAULT_ICON, Device, DeviceOut, Record, device_key, visible_devices};
pub use state::{
    MAX_UNDECLARED_BYTES, MAX_UNDECLARED_DEPTH, MAX_UNDECLARED_KEYS, StateReply, TOPIC_ID,
    device_message, merge_state,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(crud::list_devices, crud::create_device))
        .routes(routes!(
            crud::device_detail,
            crud::update_device,
            crud::delete_device
        ))
        .routes(routes!(state::patch_state))
        .routes(routes!(credential::rotate_credential))
}
