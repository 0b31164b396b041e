//! What every Civic app shares: one error type rendered in each app's own format, extractors
//! that turn malformed input into that format's 4xx, the standard layer stack (body limits,
//! rate limits, trailing slashes, round-trip accounting), integer ids, platform configuration
//! and OpenAPI serving.

pub mod calendar;
pub mod config;
pub mod csv_export;
pub mod error;
pub mod extract;
pub mod feed;
pub mod fields;
pub mod function;
pub mod ids;
pub mod iot;
pub mod item;
pub mod keys;
pub mod layers;
pub mod live;
pub mod openapi;
pub mod page;
pub mod platform;
pub mod retry;
pub mod time;
pub mod uploads;

pub use error::{Error, ErrorFormat, Problem, Result};
pub use extract::{Form, Json, Query};
pub use function::{Function, S3Function, Scheduled, StreamFunction};
pub use iot::IotFunction;
pub use keys::KeySet;
pub use layers::{App, ClientIp, Limits, RatePlan};
pub use platform::Platform;
