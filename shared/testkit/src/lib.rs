//! Test helpers shared by the workspace's test suites.

pub mod moto;
pub mod local;
