//! The timeline's own storage keys: crossing markers, alerts and the hour-of-week baseline.
//! (Cameras and buckets are keyed in `cameras` and `buckets`.)

use chrono::{DateTime, Utc};
use civic_store::Key;

use super::types::Crossing;

pub const OPEN_ALERTS: &str = "OPENALERTS";

/// How long a crossing is remembered: longer than IoT Core keeps a device's persistent session
/// (up to 7 days) and than any client's retries.
pub(super) const CROSSED_TTL_SECS: i64 = 8 * 86_400;

/// A tracked crossing, once: a camera's line, time, direction and track. The same crossing
/// again (an MQTT redelivery of a message whose PUBACK was lost, an HTTP retry, a frame batch
/// counted again after a crash) finds its marker and counts nothing.
pub(super) fn crossed_marker(
    camera: i64,
    line: i64,
    at: DateTime<Utc>,
    kind: Crossing,
    track: &str,
) -> Key {
    let dir = match kind {
        Crossing::Entry => "entry",
        Crossing::Exit => "exit",
    };
    Key::new(
        format!("CROSSED#{camera}"),
        format!("{}#{line}#{dir}#{track}", at.timestamp_millis()),
    )
}

pub fn alert_key(id: i64) -> Key {
    Key::new(format!("ALERT#{id}"), "ALERT")
}

pub(super) fn baseline_key(camera: i64) -> Key {
    Key::new(format!("CAMERA#{camera}"), "BASELINE")
}

/// A tracked person in a bucket, once: the bucket's unique persons count it the first time.
pub(super) fn seen_marker(camera: i64, bucket_sk: &str, track: &str) -> Key {
    Key::new(format!("SEEN#{camera}#{bucket_sk}"), track)
}
