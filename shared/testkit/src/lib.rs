//! Test helpers shared by the workspace's test suites.

pub mod http;
pub mod local;
pub mod mosquitto;
pub mod moto;
