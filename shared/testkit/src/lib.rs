//! Test helpers shared by the workspace's test suites.

pub mod api;
pub mod authz;
pub mod chromium;
#[cfg(feature = "streams")]
pub mod flaky;
pub mod http;
pub mod lambda;
pub mod local;
pub mod mosquitto;
pub mod moto;
#[cfg(feature = "runtime-api")]
pub mod runtime_api;
pub mod signin;
#[cfg(feature = "streams")]
pub mod streams;
