//! Device types: users propose them (a component structure and a card template whose controls
//! map onto the components); owners and admins approve or deny them. Only approved types are
//! visible to everyone and usable for devices. Types do not change after review, so devices
//! may copy what they need from them.
//!
//! | module | holds |
//! |---|---|
//! | `model` | the stored type, its parts, and its keys |
//! | `reads` | the list, the caller's proposals, one type |
//! | `proposal` | proposing a type and checking the proposal |
//! | `review` | the pending queue, approve, deny |

mod model;
mod proposal;
mod reads;
mod review;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;

pub use model::{
    CardTemplate, Component, Control, Definition, DeviceType, LayoutConfig, Position, Status,
    WIDGETS, load_type, type_key,
};
pub use proposal::{Proposal, is_plain_id};
pub use review::DenyRequest;

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(reads::list_types))
        .routes(routes!(reads::my_proposals))
        .routes(routes!(reads::type_detail))
        .routes(routes!(proposal::propose))
        .routes(routes!(review::pending))
        .routes(routes!(review::approve))
        .routes(routes!(review::deny))
}
