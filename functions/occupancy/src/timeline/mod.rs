//! A camera's occupancy timeline. Crossings, calibrations and the scheduler's ticks are applied
//! in time order to the camera's live state; the result is one transaction: the camera item
//! (conditional on the version read, which serialises a camera's writers), `ADD` counters on
//! its 5-minute/hour/day/month buckets and on the facility, alerts, and unique-person markers.
//!
//! - **Occupancy** = entries − exits since the last calibration, never below 0 (an exit at 0 is
//!   a `negative_count` alert instead).
//! - **Buckets** carry `entries`, `exits` and `unique_persons` (ADD), and the timeline's
//!   `area` (occupancy × seconds since the bucket's start), `peak`, `last_level`, `last_at`
//!   (SET from the serialised live state). A bucket's time-weighted average is
//!   `(area + last_level × (end − last_at)) / (end − start)` up to now; when the timeline leaves
//!   a bucket it is *closed*: its area is completed and `avg_occupancy` stored.
//! - **Late crossings** (older than the camera's timeline) still count in their own buckets'
//!   entries, exits and unique persons, but move the level at the timeline's time.
//! - **Unique persons** of a bucket: a `SEEN` marker per track id and bucket, written with
//!   `NotExists`; when the transaction is cancelled on markers only, they are known duplicates
//!   and the plan is rebuilt without them.
//! - **A tracked crossing counts once**: a `CROSSED` marker per camera, line, time, direction
//!   and track, written the same way, makes a repeated crossing (a redelivered message, a
//!   retried request) a no-op. Crossings without a track id have no identity and always count.
//! - **Anomaly rule** (`anomaly_detected`): per camera and local hour of week (168 slots), the
//!   baseline keeps n, Σx and Σx² of closed hours' flow (entries + exits) and peak occupancy.
//!   With n ≥ 3 earlier weeks, an hour whose flow so far, or whose occupancy, exceeds
//!   μ + 3·max(σ, 1, 0.1·μ) raises the alert.

mod advance;
mod apply;
mod plan;
mod types;
mod write;

pub use crate::keys::{OPEN_ALERTS, alert_key};
pub use apply::{Applied, apply};
pub use types::{Crossing, Ctx, Current, Limits, Live, Op};

use crate::cameras::{CameraType, Direction};

/// Whether a line and a camera count a crossing of this kind.
pub fn counts(camera: CameraType, line: Direction, kind: Crossing) -> bool {
    let by_line = matches!(
        (line, kind),
        (Direction::Bidirectional, _)
            | (Direction::Entry, Crossing::Entry)
            | (Direction::Exit, Crossing::Exit)
    );
    let by_camera = matches!(
        (camera, kind),
        (CameraType::Bidirectional, _)
            | (CameraType::EntryOnly, Crossing::Entry)
            | (CameraType::ExitOnly, Crossing::Exit)
    );
    by_line && by_camera
}

pub const ALERT_TYPES: [&str; 5] = [
    "capacity_exceeded",
    "capacity_warning",
    "negative_count",
    "anomaly_detected",
    "equipment_failure",
];

#[cfg(test)]
mod tests;
