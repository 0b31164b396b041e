//! Every function the local program links, by binary name.

use civic_core::iot::DeviceClass;
use civic_core::live::LiveScope;
use civic_core::{Function, IotFunction, S3Function, Scheduled, StreamFunction};

pub const APPS: &[&[Function]] = &[
    streetlight::FUNCTIONS,
    ozone::FUNCTIONS,
    occupancy::FUNCTIONS,
    homeforge::FUNCTIONS,
    ecoflow::FUNCTIONS,
];

/// Functions driven by EventBridge schedules.
pub const JOBS: &[&[Scheduled]] = &[occupancy::JOBS, ozone::JOBS];

pub fn all() -> impl Iterator<Item = &'static Function> {
    APPS.iter().flat_map(|fs| fs.iter())
}

/// App `name`'s functions, in its `FUNCTIONS` order (the order of its document).
pub fn app_functions(name: &str) -> &'static [Function] {
    APPS.iter()
        .find(|fs| fs.first().is_some_and(|f| f.app.name == name))
        .copied()
        .unwrap_or_default()
}

pub fn find(binary: &str) -> Option<&'static Function> {
    all().find(|f| f.name == binary)
}

pub fn jobs() -> impl Iterator<Item = &'static Scheduled> {
    JOBS.iter().flat_map(|js| js.iter())
}

pub fn find_job(binary: &str) -> Option<&'static Scheduled> {
    jobs().find(|j| j.name == binary)
}

/// Functions driven by S3 events.
pub const S3_FUNCTIONS: &[&[S3Function]] = &[ecoflow::S3_FUNCTIONS, occupancy::S3_FUNCTIONS];

pub fn s3_functions() -> impl Iterator<Item = &'static S3Function> {
    S3_FUNCTIONS.iter().flat_map(|fs| fs.iter())
}

pub fn find_s3(binary: &str) -> Option<&'static S3Function> {
    s3_functions().find(|f| f.name == binary)
}

/// Functions driven by IoT topic rules.
/// Every change-feed consumer (the template's `DynamoDB` events).
pub const STREAMS: &[&[StreamFunction]] =
    &[streetlight::STREAMS, ozone::STREAMS, occupancy::STREAMS];

pub fn stream_functions() -> impl Iterator<Item = &'static StreamFunction> {
    STREAMS.iter().flat_map(|fs| fs.iter())
}

pub fn find_stream(binary: &str) -> Option<&'static StreamFunction> {
    stream_functions().find(|f| f.name == binary)
}

pub const IOT: &[&[IotFunction]] = &[streetlight::IOT, ozone::IOT, occupancy::IOT, homeforge::IOT];

pub fn iot_functions() -> impl Iterator<Item = &'static IotFunction> {
    IOT.iter().flat_map(|fs| fs.iter())
}

pub fn find_iot(binary: &str) -> Option<&'static IotFunction> {
    iot_functions().find(|f| f.name == binary)
}

/// Each app's live topics: who may subscribe to what, over `/mqtt` here and through the
/// app's IoT custom authorizer on AWS.
pub const LIVE: &[&LiveScope] = &[
    &streetlight::live::LIVE,
    &ozone::live::LIVE,
    &homeforge::live::LIVE,
    &occupancy::live::LIVE,
    &ecoflow::live::LIVE,
];

/// The binary of `scope`'s IoT Core custom authorizer (`civic_runtime::run_live_authorizer`).
pub fn live_auth_binary(scope: &LiveScope) -> String {
    format!("{}-live-auth", scope.app.name)
}

pub fn find_live_auth(binary: &str) -> Option<&'static LiveScope> {
    LIVE.iter().copied().find(|s| live_auth_binary(s) == binary)
}

/// Each app's devices on MQTT: their topics and how their credentials are checked.
pub const DEVICES: &[&DeviceClass] = &[
    &streetlight::lights::DEVICES,
    &ozone::mqtt::DEVICES,
    &occupancy::cameras::DEVICES,
    &homeforge::devices::DEVICES,
];
