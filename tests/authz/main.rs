//! The authorization matrix: every operation of each app's OpenAPI document (as civic-local
//! serves it) × every kind of caller: anonymous, each of the app's roles, a valid token of
//! another app, and a device credential (Ozone's device token). Each app's expected outcomes
//! are stated once, in the table of its module (`streetlight.rs`, `ozone.rs`, `occupancy.rs`,
//! `homeforge.rs`, `ecoflow.rs`); an operation without a row, or a row without an operation,
//! fails. `readme_role_tables_agree_with_the_matrix` checks the README's "who"
//! columns against the same tables. `CIVIC_AUTHZ_PRINT=1` prints what the server answered,
//! as rows, instead of failing (to review a new endpoint's row).

use std::cell::Cell;

use civic_testkit::api::{self, App, Auth};
use civic_testkit::authz::Outcome;
use civic_testkit::http;
use civic_testkit::local::LocalServer;
use civic_testkit::signin::{self, FirstUsers};
use reqwest::Method;
use serde_json::Value;

mod ecoflow;
mod homeforge;
mod occupancy;
mod ozone;
mod readme;
mod streetlight;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

pub(crate) const O: Outcome = Outcome::Ok;
pub(crate) const U: Outcome = Outcome::E401;
pub(crate) const F: Outcome = Outcome::E403;
pub(crate) const H: Outcome = Outcome::E404;

/// The first user of each app (a token of another app is one of these) and a device credential.
/// Apps whose devices have MQTT logins of their own (Streetlight, Occupancy, HomeForge) also
/// try one ("own device", its password sent as a bearer token): a device login is no HTTP
/// credential.
pub(crate) struct Outsiders {
    /// Streetlight's admin token (for the other apps) and HomeForge's owner token (for
    /// Streetlight).
    pub(crate) streetlight: String,
    pub(crate) homeforge: String,
    /// The first users of Ozone (a staff session) and EcoFlow (an admin token).
    pub(crate) ozone_staff: String,
    pub(crate) ecoflow: String,
    /// Ozone device `dev-a`'s bearer token, whose MAC is [`DEVICE_MAC`].
    pub(crate) device: String,
}

pub(crate) const DEVICE_MAC: &str = "EC:E3:34:46:2B:C0";
/// A second Ozone device, the object of device-management rows (so that rotating its token
/// does not disturb the device caller).
pub(crate) const VICTIM_MAC: &str = "EC:E3:34:46:2B:C1";

/// A counter for unique names (registrations, creations).
pub(crate) fn next(n: &Cell<u32>) -> u32 {
    n.set(n.get() + 1);
    n.get()
}

/// `method path` (from the server's root) with a JSON body as `auth`; the JSON answer.
pub(crate) async fn call(
    api: &api::Api,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Value,
) -> Value {
    signin::call(&api.http, &api.server, method, path, auth, body).await
}

/// civic-local (Occupancy's bearer tokens required) with the outsiders created.
pub(crate) async fn start(app: App) -> (api::Api, Outsiders) {
    let server = LocalServer::start_env(BIN, &[], &[("OCCUPANCY_REQUIRE_AUTH", "true")]).await;
    let api = api::Api::new(server, app);
    let first = FirstUsers::register(&api.http, &api.server).await;
    let device =
        signin::ozone_device(&api.http, &api.server, &first.ozone, DEVICE_MAC, "dev-a").await;
    let outsiders = Outsiders {
        streetlight: first.streetlight,
        homeforge: first.homeforge,
        ozone_staff: first.ozone,
        ecoflow: first.ecoflow,
        device,
    };
    (api, outsiders)
}

/// The app's OpenAPI document as civic-local serves it.
pub(crate) async fn document(api: &api::Api) -> Value {
    let url = api.server.url(&format!("{}/openapi.json", api.app.root));
    http::send(api.http.get(url)).await.ok().clone()
}
