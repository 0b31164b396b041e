//! Users: the stored record, the caller's profile (`/me/`, with avatar uploads), the staff's
//! user management, and the avatar files themselves.
//!
//! | module | holds |
//! |---|---|
//! | `record` | the stored user, its keys, and the user as the API shows it |
//! | `rules` | the field rules (username, email, role, password policy, accent color) |
//! | `profile` | `/me/` and the profile-update body (multipart, form or JSON) |
//! | `accounts` | the staff's list, detail and update of users |
//! | `change` | validating and writing a profile change; who may change whom |
//! | `avatar` | storing avatar uploads and serving them |

mod accounts;
mod avatar;
mod change;
mod profile;
mod record;
mod rules;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;

pub use profile::{ProfileForm, ProfileInput};
pub use record::{DEFAULT_ACCENT, Profile, UserOut, UserRecord, user_key, username_key};
pub use rules::{accent, email, new_password, password_errors, role, username, valid_accent};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(profile::me, profile::update_me))
        .routes(routes!(accounts::list_users))
        .routes(routes!(accounts::user_detail, accounts::update_user))
        .routes(routes!(avatar::avatar_file))
}
