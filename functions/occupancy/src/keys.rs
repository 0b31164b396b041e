//! Every key of the `civic-occupancy` table this crate spells, one helper per kind (the layout
//! is the table in the crate's docs; bucket sort keys are [`crate::buckets::Bucket::sk`]).
//! Stored keys outlive the code: a string changed here orphans every item written before.

use chrono::{DateTime, Utc};
use civic_store::Key;

use crate::timeline::Crossing;

pub use civic_core::item::{attributes, indexed};

/// The partition of a camera: its item, buckets, calibrations, baseline and video state.
pub fn camera_pk(id: i64) -> String {
    format!("CAMERA#{id}")
}

pub fn camera_key(id: i64) -> Key {
    Key::new(camera_pk(id), "CAMERA")
}

/// The index listing active cameras (inactive ones are kept apart, under their own).
pub fn cameras_index(active: bool) -> &'static str {
    if active {
        "CAMERAS"
    } else {
        "CAMERAS#inactive"
    }
}

/// Cameras and lines sort by id in their index.
pub fn by_id(id: i64) -> String {
    format!("{id:010}")
}

/// The marker that makes a camera's external `camera_id` unique.
pub fn camera_id_key(camera_id: &str) -> Key {
    Key::new(format!("CAMERAID#{camera_id}"), "CAMERAID")
}

pub const FACILITY: &str = "FACILITY";

pub fn facility_key() -> Key {
    Key::new(FACILITY, FACILITY)
}

/// How far the facility aggregator got in one shard of the change feed.
pub fn checkpoint_key(shard: &str) -> Key {
    Key::new(format!("AGG#{shard}"), "CHECKPOINT")
}

pub fn line_key(id: i64) -> Key {
    Key::new(format!("LINE#{id}"), "LINE")
}

/// The index listing a camera's lines.
pub fn lines_index(camera: i64) -> String {
    format!("LINES#{camera}")
}

/// A manual calibration's log entry, beside the camera's 5-minute logs.
pub fn calibration_key(camera: i64, at: DateTime<Utc>) -> Key {
    Key::new(
        camera_pk(camera),
        format!("LOG#{}#CAL", at.format("%Y-%m-%dT%H:%M:%SZ")),
    )
}

/// A camera's frame tracker state, kept between uploaded batches.
pub fn video_key(camera: i64) -> Key {
    Key::new(camera_pk(camera), "VIDEO")
}

/// The partition listing a camera's counted frame batches.
pub fn frame_batches_pk(camera: i64) -> String {
    format!("FRAMEBATCH#{camera}")
}

/// The report of one uploaded batch, by its object key: its presence makes a repeat a duplicate.
pub fn frame_batch_key(camera: i64, object_key: &str) -> Key {
    Key::new(frame_batches_pk(camera), object_key)
}

/// The index listing open alerts, by camera then id.
pub const OPEN_ALERTS: &str = "OPENALERTS";

pub fn alert_key(id: i64) -> Key {
    Key::new(format!("ALERT#{id}"), "ALERT")
}

/// An open alert's place in [`OPEN_ALERTS`]: its camera's ([`open_alerts_of`]), then its id.
pub fn open_alert_sk(camera: i64, id: i64) -> String {
    format!("{}{id:010}", open_alerts_of(camera))
}

/// The prefix of a camera's open alerts in [`OPEN_ALERTS`].
pub fn open_alerts_of(camera: i64) -> String {
    format!("{camera:010}#")
}

/// How long a crossing is remembered: longer than IoT Core keeps a device's persistent session
/// (up to 7 days) and than any client's retries.
pub(crate) const CROSSED_TTL_SECS: i64 = 8 * 86_400;

/// A tracked crossing, once: a camera's line, time, direction and track. The same crossing
/// again (an MQTT redelivery of a message whose PUBACK was lost, an HTTP retry, a frame batch
/// counted again after a crash) finds its marker and counts nothing.
pub(crate) fn crossed_marker(
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

pub(crate) fn baseline_key(camera: i64) -> Key {
    Key::new(camera_pk(camera), "BASELINE")
}

/// A tracked person in a bucket, once: the bucket's unique persons count it the first time.
pub(crate) fn seen_marker(camera: i64, bucket_sk: &str, track: &str) -> Key {
    Key::new(format!("SEEN#{camera}#{bucket_sk}"), track)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_stored_layout() {
        let at = DateTime::from_timestamp(1_732_269_600, 0).unwrap();
        let key = |k: Key| (k.pk, k.sk);
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(key(camera_key(7)), s("CAMERA#7", "CAMERA"));
        assert_eq!(
            (cameras_index(true), cameras_index(false)),
            ("CAMERAS", "CAMERAS#inactive")
        );
        assert_eq!(by_id(42), "0000000042");
        assert_eq!(
            key(camera_id_key("GATE_A")),
            s("CAMERAID#GATE_A", "CAMERAID")
        );
        assert_eq!(key(facility_key()), s("FACILITY", "FACILITY"));
        assert_eq!(key(checkpoint_key("s1")), s("AGG#s1", "CHECKPOINT"));
        assert_eq!(key(line_key(3)), s("LINE#3", "LINE"));
        assert_eq!(lines_index(7), "LINES#7");
        assert_eq!(
            key(calibration_key(7, at)),
            s("CAMERA#7", "LOG#2024-11-22T10:00:00Z#CAL")
        );
        assert_eq!(key(video_key(7)), s("CAMERA#7", "VIDEO"));
        assert_eq!(key(frame_batch_key(7, "a.tar")), s("FRAMEBATCH#7", "a.tar"));
        assert_eq!(key(alert_key(5)), s("ALERT#5", "ALERT"));
        assert_eq!(open_alert_sk(7, 5), "0000000007#0000000005");
        assert_eq!(key(baseline_key(7)), s("CAMERA#7", "BASELINE"));
        assert_eq!(
            key(crossed_marker(7, 3, at, Crossing::Exit, "t1")),
            s("CROSSED#7", "1732269600000#3#exit#t1")
        );
        assert_eq!(
            key(seen_marker(7, "HOUR#x", "t1")),
            s("SEEN#7#HOUR#x", "t1")
        );
    }
}
