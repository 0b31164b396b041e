//! People counted in camera frames. Two entrances share [`analyse`]: `POST sensor/detect/` (a
//! multipart upload, answered with the result) and the `ecoflow-counter` S3 consumer (frames a
//! camera `PUT`s to a URL from `POST sensor/uploads/`). Every result is a [`Detection`], listed
//! newest first by `GET sensor/detections/`.
//!
//! A count at or above 90% of the zone's capacity is DANGER: it raises (or finds open) the
//! zone's automatic OVERCROWDING alert and records no carbon figure. Otherwise it is NORMAL and
//! records the seed's figure, `sahi_count / gemini_count` rounded to two places, into the
//! carbon totals ([`crate::carbon`]). The detection, its zone copy, the totals and, for an
//! upload, the upload's marker are one transaction: an S3 event delivered twice counts once.
//!
//! Frames live in the blob store under `ecoflow/zones/{zone}/cameras/{camera}/`: `uploads/` for
//! presigned uploads (what the S3 trigger counts) and `frames/` for `sensor/detect/`'s (already
//! counted; the trigger leaves them alone).

pub mod counter;
pub mod detect;
pub mod detections;
pub mod uploads;

use bytes::Bytes;
use civic_core::item::to_item;
use civic_core::{Error, Result, ids};
use civic_store::{Cond, GSI1PK, GSI1SK, Key, PK, SK, StoreError, Table, Write};
use civic_vision::{ImageLimits, VisionError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::alerts::{Raised, raise_auto};
use crate::sites::{Camera, Zone, camera_tree, no_such, zone_tree};
use crate::{State, carbon, pad};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .merge(detect::routes())
        .merge(uploads::routes())
        .merge(detections::routes())
}

/// The automatic alert type of a crowded zone.
pub const OVERCROWDING: &str = "OVERCROWDING";

/// A frame to count, from either entrance.
pub struct Frame {
    pub zone_id: i64,
    pub camera_id: i64,
    pub bytes: Bytes,
    pub filename: String,
    pub origin: Origin,
}

pub enum Origin {
    /// `sensor/detect/`: the frame is stored under `frames/` once it has decoded.
    Detect,
    /// An object in the bucket, counted once per `(bucket, key, etag)`.
    Upload {
        bucket: String,
        key: String,
        etag: String,
    },
}

/// Named apart from `GET /api/status`'s `Status`: one document holds both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[schema(as = DetectionStatus)]
pub enum Status {
    Normal,
    Danger,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Source {
    /// `POST sensor/detect/`.
    Detect,
    /// A presigned upload, counted by the S3 trigger.
    Upload,
}

/// One counted frame.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Detection {
    pub id: i64,
    pub zone_id: i64,
    /// The zone's name when the frame was counted.
    pub zone: String,
    pub camera_id: i64,
    pub source: Source,
    pub filename: String,
    /// The frame's key in the blob store.
    pub image_key: String,
    /// The zone's capacity when the frame was counted.
    pub capacity: i64,
    /// Sliced NanoDet's count (`sahi_count`).
    pub detected_people: i64,
    /// `detected_people / capacity`, one decimal (`0.0%` for a zone without a capacity).
    pub occupancy_percentage: String,
    pub status: Status,
    /// CenterNet's count; null when DANGER skipped the carbon figure.
    pub gemini_count: Option<i64>,
    /// The carbon figure recorded (NORMAL only).
    pub saved: Option<f64>,
    /// The zone's open OVERCROWDING alert (DANGER only).
    pub alert_id: Option<i64>,
    /// Whether this frame created that alert (false when it was already open).
    pub alert_created: bool,
    pub created_at: String,
}

/// `ecoflow/zones/{zone}/cameras/{camera}/{kind}/{name}`: where frames are kept.
pub fn frame_key(zone: i64, camera: i64, kind: &str, name: &str) -> String {
    format!("ecoflow/zones/{zone}/cameras/{camera}/{kind}/{name}")
}

/// The zone and the camera, which must be in it and active (400 on the field otherwise).
pub async fn locate(table: &dyn Table, zone_id: i64, camera_id: i64) -> Result<(Zone, Camera)> {
    let tree = zone_tree(table, zone_id)
        .await?
        .ok_or_else(|| no_such("zone_id", zone_id))?;
    let node = tree
        .zone(zone_id)
        .ok_or_else(|| no_such("zone_id", zone_id))?;
    match node.cameras.iter().find(|c| c.id == camera_id) {
        Some(c) if !c.is_active => Err(Error::field("camera_id", "This camera is not active.")),
        Some(c) => Ok((node.zone.clone(), c.clone())),
        None if camera_tree(table, camera_id).await?.is_some() => Err(Error::field(
            "camera_id",
            format!("Camera {camera_id} is not in zone {zone_id}."),
        )),
        None => Err(no_such("camera_id", camera_id)),
    }
}

/// An image the detector refuses is the `file` field's fault (DRF's `ImageField` errors),
/// except one too large to read (413).
fn file_error(e: VisionError) -> Error {
    match Error::from(e) {
        Error::BadRequest(msg) => Error::field("file", msg),
        other => other,
    }
}

/// `sahi / second` rounded to two places; 0 when the second model saw nobody.
pub fn ratio(sahi: i64, second: i64) -> f64 {
    match second {
        0 => 0.0,
        _ => (sahi as f64 / second as f64 * 100.0).round() / 100.0,
    }
}

/// Counts one frame and records the result. `None`: this upload was already counted.
pub async fn analyse(s: &State, frame: Frame) -> Result<Option<Detection>> {
    let table = s.table.as_ref();
    let (zone, camera) = locate(table, frame.zone_id, frame.camera_id).await?;
    let count = civic_vision::count(frame.bytes.clone(), ImageLimits::FRAME)
        .await
        .map_err(file_error)?;
    let id = ids::next_id(table, "detection").await?;
    let (source, image_key) = match &frame.origin {
        Origin::Detect => {
            let name = format!("{}.{}", pad(id), count.info.extension());
            let key = frame_key(zone.id, camera.id, "frames", &name);
            s.blob()
                .put(&key, frame.bytes, count.info.content_type())
                .await?;
            (Source::Detect, key)
        }
        Origin::Upload { key, .. } => (Source::Upload, key.clone()),
    };
    let people = count.people.len() as i64;
    let danger = zone.capacity > 0 && people * 10 >= zone.capacity * 9;
    let (alert_id, alert_created) = match danger {
        false => (None, false),
        // One open alert per zone, whichever camera sees the crowd.
        true => match raise_auto(
            s,
            &zone,
            None,
            OVERCROWDING,
            &format!("Overcrowding in {}", zone.name),
            &format!(
                "Detected {people}/{} people. (Cam: {})",
                zone.capacity, camera.id
            ),
        )
        .await?
        {
            Raised::Created(a) => (Some(a.id), true),
            Raised::AlreadyOpen(a) => (Some(a.id), false),
        },
    };
    let second = (!danger).then_some(count.second as i64);
    let occupancy = match zone.capacity {
        0 => 0.0,
        c => people as f64 * 100.0 / c as f64,
    };
    let detection = Detection {
        id,
        zone_id: zone.id,
        zone: zone.name,
        camera_id: camera.id,
        source,
        filename: frame.filename,
        image_key,
        capacity: zone.capacity,
        detected_people: people,
        occupancy_percentage: format!("{occupancy:.1}%"),
        status: if danger {
            Status::Danger
        } else {
            Status::Normal
        },
        gemini_count: second,
        saved: second.map(|g| ratio(people, g)),
        alert_id,
        alert_created,
        created_at: civic_core::time::now_rfc3339(),
    };
    let recorded = record(table, &detection, &frame.origin).await?;
    Ok(recorded.then_some(detection))
}

/// The list partitions of detections: all, and one zone's.
pub fn partition(zone: Option<i64>) -> String {
    zone.map_or("DETECTIONS".into(), |z| format!("DETECTIONS#ZONE#{z}"))
}

/// Marks an uploaded object as counted, keyed by what identifies one version of it.
pub fn upload_marker(bucket: &str, key: &str, etag: &str) -> Key {
    Key::new(format!("UPLOAD#{bucket}/{key}"), etag)
}

/// One transaction: the upload's marker (if any), the detection in both lists and the carbon
/// totals. `false` when the marker was already there (a duplicate event).
async fn record(table: &dyn Table, d: &Detection, origin: &Origin) -> Result<bool> {
    let mut writes = Vec::new();
    if let Origin::Upload { bucket, key, etag } = origin {
        let marker = upload_marker(bucket, key, etag);
        let mut item = civic_store::Item::new();
        item.insert(PK.into(), marker.pk.into());
        item.insert(SK.into(), marker.sk.into());
        item.insert("detection_id".into(), d.id.into());
        writes.push(Write::Put {
            item,
            cond: Cond::NotExists,
        });
    }
    for zone in [None, Some(d.zone_id)] {
        let mut keys = vec![(PK, partition(zone)), (SK, pad(d.id))];
        if d.saved.is_some() {
            // The sparse carbon history index (see `carbon`).
            keys.extend([
                (GSI1PK, carbon::history_partition(zone)),
                (GSI1SK, pad(d.id)),
            ]);
        }
        writes.push(Write::Put {
            item: to_item(d, &keys)?,
            cond: Cond::Always,
        });
    }
    if let Some(saved) = d.saved {
        writes.extend(carbon::tally(d.zone_id, saved));
    }
    let marked = matches!(origin, Origin::Upload { .. });
    match table.transact(writes).await {
        Ok(()) => Ok(true),
        Err(StoreError::TransactionCanceled(at)) if marked && at == [0] => Ok(false),
        Err(e) => Err(e.into()),
    }
}
