//! Extension: people counted from frames a camera uploads. A camera that runs no model `PUT`s
//! batches of frames to `occupancy/cameras/{camera_id}/frames/{name}.tar`; each S3
//! `ObjectCreated` event runs this: detect people on every frame, track them across frames and
//! batches, and count their feet crossing the camera's active lines, in each line's sense.
//! The crossings go through the same ingest as devices' own ([`crate::ingest::ingest`]).
//!
//! A batch is a tar of JPEG or PNG frames named by their capture time in Unix milliseconds
//! (`1732269600000.jpg`), at most [`MAX_FRAMES`]. Tracker state is kept per camera between
//! batches (`CAMERA#{id}` / `VIDEO`). A batch is counted once: a marker per key is written with
//! the state, and frames at or before the last frame seen are skipped, so a late batch adds
//! nothing rather than counting the past twice.

use std::io::Read;

use aws_lambda_events::s3::S3Event;
use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, SecondsFormat};
use civic_core::Json;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::uploads::{PresignedPut, request_base};
use civic_core::{Error, Result, S3Function, item};
use civic_store::{Blob, Capped, Cond, Typed, Write};
use civic_vision::line::{Line, Sense};
use civic_vision::video::{CameraState, Crossed, VideoConfig};
use civic_vision::{Counter, ImageLimits};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::cameras::{Record, lines_of, load_camera};
use crate::ingest::{CrossingEvent, MAX_BATCH, ingest};
use crate::keys::{attributes, frame_batch_key, frame_batches_pk, video_key};
use crate::timeline::Crossing;
use crate::{APP, Id, State};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(presign, batches))
}

/// How long an upload URL stays valid.
const TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What a camera asks an upload URL for.
#[derive(utoipa::ToSchema)]
pub struct UploadRequest {
    /// The batch's size in bytes (1 to 64 MiB): the URL takes exactly this many.
    #[schema(required, nullable = false)]
    content_length: Option<i64>,
}

impl FromBody for UploadRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            content_length: b.typed("content_length", false),
        }
    }
}

impl UploadRequest {
    /// The size, checked once the camera is found (an unknown camera is a 404 first).
    fn length(&self) -> Result<u64> {
        match self.content_length {
            None => Err(Error::bad_request("content_length is required")),
            Some(n) if (1..=MAX_BATCH_BYTES as i64).contains(&n) => Ok(n as u64),
            Some(_) => Err(Error::bad_request(format!(
                "content_length must be between 1 and {MAX_BATCH_BYTES}"
            ))),
        }
    }
}

/// Extension: a URL the camera `PUT`s one frame batch of the stated size to (a tar of
/// `<unix millis>.jpg` frames, at most 600), valid 15 minutes. The size is signed: a body of
/// another size is refused. The upload's S3 event counts it; the crossings appear in the
/// camera's live occupancy, logs and history.
#[utoipa::path(post, path = "/api/occupancy/cameras/{camera_id}/frames", tag = "ingest",
    params(("camera_id" = i64, Path)), request_body = UploadRequest,
    responses((status = 201, body = PresignedPut), (status = 400), (status = 404)))]
async fn presign(
    S(s): S<State>,
    Id(camera): Id,
    headers: HeaderMap,
    Valid(req): Valid<UploadRequest>,
) -> Result<(StatusCode, Json<PresignedPut>)> {
    Record::load(s.table.as_ref(), camera).await?;
    let length = req.length()?;
    let key = format!(
        "{PREFIX}{camera}/frames/{}.tar",
        uuid::Uuid::new_v4().simple()
    );
    let put = s
        .platform
        .presign_put(
            &key,
            "application/x-tar",
            length,
            TTL,
            &request_base(&headers),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(put)))
}

/// Extension: the frame batches counted for a camera, oldest key first.
#[utoipa::path(get, path = "/api/occupancy/cameras/{camera_id}/frames", tag = "ingest",
    params(("camera_id" = i64, Path)),
    responses((status = 200, body = [Report]), (status = 404)))]
async fn batches(S(s): S<State>, Id(camera): Id) -> Result<Json<Vec<Report>>> {
    load_camera(s.table.as_ref(), camera).await?;
    let page = s
        .table
        .query_as(civic_store::Query::partition(frame_batches_pk(camera)).limit(MAX_LISTED))
        .await?;
    Ok(Json(page.items))
}

const MAX_LISTED: usize = 1000;

pub const FRAMES: S3Function = S3Function {
    name: "occupancy-frames",
    app: APP,
    run: |p, event| {
        let (state, blob) = (State::new(p), p.blob());
        Box::pin(async move { on_upload(&state, blob.as_ref(), event).await })
    },
};

pub const PREFIX: &str = "occupancy/cameras/";
pub const MAX_FRAMES: usize = 600;
/// The largest batch a URL is signed for, and the largest the consumer reads.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// What a batch did.
#[derive(Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Report {
    pub camera: i64,
    pub key: String,
    pub frames: usize,
    /// Frames skipped as at or before the last frame already seen.
    pub skipped: usize,
    pub crossings: usize,
    /// Crossings the ingest counted (the line's sense and confidence threshold apply).
    pub accepted: usize,
    pub duplicate: bool,
    /// Why a batch was refused (not a tar of timestamped frames, a frame not an image…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    fn new(camera: i64, key: &str) -> Self {
        Self {
            camera,
            key: key.to_owned(),
            frames: 0,
            skipped: 0,
            crossings: 0,
            accepted: 0,
            duplicate: false,
            error: None,
        }
    }
}

async fn on_upload(s: &State, blob: &dyn Blob, event: S3Event) -> Result<Value> {
    let mut reports = Vec::new();
    for record in event.records {
        let Some(key) = record.s3.object.key else {
            continue;
        };
        let report = match count_batch(s, blob, &key).await {
            // A bad batch stays bad: record why instead of failing (Lambda would retry it).
            Err(e) if e.status().is_client_error() => refuse(s, &key, e).await?,
            other => other?,
        };
        reports.push(report);
    }
    Ok(json!({ "batches": reports }))
}

/// Records a refused batch under its key, so that it is listed with the reason.
async fn refuse(s: &State, key: &str, e: Error) -> Result<Report> {
    tracing::warn!(key, error = %e, "frame batch refused");
    let camera = camera_of(key)?;
    let report = Report {
        error: Some(e.to_string()),
        ..Report::new(camera, key)
    };
    let item = item::to_item(&report, &attributes(frame_batch_key(camera, key)))?;
    s.table
        .put(item, Cond::NotExists)
        .await
        .or_else(|e| match e {
            civic_store::StoreError::ConditionFailed => Ok(()),
            e => Err(e),
        })?;
    Ok(report)
}

/// The camera id in `occupancy/cameras/{id}/frames/{name}.tar`.
fn camera_of(key: &str) -> Result<i64> {
    key.strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once("/frames/"))
        .filter(|(_, name)| name.ends_with(".tar") && !name.contains('/'))
        .and_then(|(id, _)| id.parse().ok())
        .ok_or_else(|| {
            Error::bad_request(format!(
                "{key}: not occupancy/cameras/{{id}}/frames/{{name}}.tar"
            ))
        })
}

/// One camera's video state, versioned.
#[derive(Serialize, Deserialize)]
struct Video {
    state: CameraState,
    version: i64,
}

/// Counts one uploaded batch (idempotent by key).
pub async fn count_batch(s: &State, blob: &dyn Blob, key: &str) -> Result<Report> {
    let camera = camera_of(key)?;
    let table = s.table.as_ref();
    let mut report = Report::new(camera, key);
    if table.get(&frame_batch_key(camera, key)).await?.is_some() {
        report.duplicate = true;
        return Ok(report);
    }
    Record::load(table, camera).await?;
    let frames = untar(&read_batch(blob, key).await?.body)?;
    report.frames = frames.len();

    let lines: Vec<Line> = lines_of(table, camera)
        .await?
        .into_iter()
        .filter(|l| l.is_active)
        .map(|l| Line {
            id: l.id,
            a: (l.x1 as f32, l.y1 as f32),
            b: (l.x2 as f32, l.y2 as f32),
        })
        .collect();
    let (video, version) = match table.get(&video_key(camera)).await? {
        Some(item) => {
            let v: Video = item::from_item(item)?;
            (v.state, Some(v.version))
        }
        None => (CameraState::default(), None),
    };
    let (video, crossed, skipped) =
        tokio::task::spawn_blocking(move || track(video, frames, &lines))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
    report.skipped = skipped;
    report.crossings = crossed.len();

    let events: Vec<CrossingEvent> = crossed.iter().map(event).collect();
    for chunk in events.chunks(MAX_BATCH) {
        report.accepted += ingest(s, camera, chunk.to_vec()).await?;
    }

    // The state and the marker in one transaction: from here on, the batch is a duplicate.
    // (A crash between the ingest above and this write would count the batch again on retry.)
    let next = version.unwrap_or(0) + 1;
    let state = item::to_item(
        &Video {
            state: video,
            version: next,
        },
        &attributes(video_key(camera)),
    )?;
    let marker = item::to_item(&report, &attributes(frame_batch_key(camera, key)))?;
    table
        .transact(vec![
            Write::Put {
                item: state,
                cond: version.map_or(Cond::NotExists, Cond::Version),
            },
            Write::Put {
                item: marker,
                cond: Cond::NotExists,
            },
        ])
        .await?;
    Ok(report)
}

/// The batch's bytes. The size first: a batch put straight into the bucket, past the
/// presigned URL's limit, is refused (and recorded by `refuse`) without its bytes ever
/// entering memory.
async fn read_batch(blob: &dyn Blob, key: &str) -> Result<civic_store::Object> {
    match blob.get_capped(key, MAX_BATCH_BYTES as u64).await? {
        Some(Capped::Object(object)) => Ok(object),
        Some(Capped::TooLarge { size }) => Err(Error::bad_request(format!(
            "frame batch: {size} bytes, larger than {MAX_BATCH_BYTES} bytes (not read)"
        ))),
        None => Err(Error::NotFound(format!("{key} is not in the bucket"))),
    }
}

/// A frame batch as a camera uploads it: a tar of `<unix millis>.jpg|.png` files. The inverse
/// of [`untar`], for cameras written in Rust and for tests.
pub fn tar<N: AsRef<str>, D: AsRef<[u8]>>(
    frames: impl IntoIterator<Item = (N, D)>,
) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in frames {
        let data = data.as_ref();
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name.as_ref(), data)?;
    }
    b.into_inner()
}

/// The frames of a tar, in capture order: `(Unix milliseconds, bytes)`.
fn untar(bytes: &[u8]) -> Result<Vec<(i64, Vec<u8>)>> {
    let bad = |why: String| Error::bad_request(format!("frame batch: {why}"));
    if bytes.len() > MAX_BATCH_BYTES {
        return Err(bad(format!("larger than {MAX_BATCH_BYTES} bytes")));
    }
    let mut archive = tar::Archive::new(bytes);
    let mut frames = Vec::new();
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let millis = name
            .split_once('.')
            .filter(|(_, ext)| matches!(*ext, "jpg" | "jpeg" | "png"))
            .and_then(|(stem, _)| stem.parse::<i64>().ok())
            .ok_or_else(|| bad(format!("{name:?} is not <unix millis>.jpg|.jpeg|.png")))?;
        if frames.len() == MAX_FRAMES {
            return Err(bad(format!("more than {MAX_FRAMES} frames")));
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| bad(e.to_string()))?;
        frames.push((millis, data));
    }
    if frames.is_empty() {
        return Err(bad("no frames".into()));
    }
    frames.sort_by_key(|(t, _)| *t);
    Ok(frames)
}

/// Detects, tracks and counts, frame by frame (CPU-bound: run off the async runtime).
fn track(
    mut video: CameraState,
    frames: Vec<(i64, Vec<u8>)>,
    lines: &[Line],
) -> Result<(CameraState, Vec<Crossed>, usize)> {
    let counter = Counter::global()?;
    let cfg = VideoConfig::default();
    let mut crossed = Vec::new();
    let mut skipped = 0;
    for (millis, bytes) in frames {
        let t = millis as f64 / 1000.0;
        if video.tracker.last.is_some_and(|last| t <= last) {
            skipped += 1;
            continue;
        }
        let (_, img) = civic_vision::decode::decode(&bytes, &ImageLimits::FRAME)
            .map_err(|e| Error::bad_request(format!("frame {millis}: {e}")))?;
        let people = counter
            .primary
            .detect_min(&img.to_rgb8(), cfg.tracker.low)?;
        crossed.extend(video.frame(t, &people, lines, &cfg));
    }
    Ok((video, crossed, skipped))
}

/// A crossing as the ingest takes it.
fn event(c: &Crossed) -> CrossingEvent {
    let at = DateTime::from_timestamp_millis((c.t * 1000.0).round() as i64).unwrap_or_default();
    CrossingEvent {
        line_id: c.line_id,
        direction: match c.sense {
            Sense::Entry => Crossing::Entry,
            Sense::Exit => Crossing::Exit,
        },
        timestamp: at.to_rfc3339_opts(SecondsFormat::Millis, true),
        confidence: f64::from(c.confidence),
        track_id: Some(json!(format!("video-{}", c.track))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_camera() {
        assert_eq!(
            camera_of("occupancy/cameras/12/frames/a-1.tar").unwrap(),
            12
        );
        for bad in [
            "occupancy/cameras/x/frames/a.tar",
            "occupancy/cameras/12/frames/a.zip",
            "occupancy/cameras/12/frames/sub/a.tar",
            "ecoflow/cameras/12/frames/a.tar",
        ] {
            assert!(camera_of(bad).is_err(), "{bad}");
        }
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        tar(entries.iter().copied()).unwrap()
    }

    #[test]
    fn frames_come_out_in_capture_order_and_bad_names_are_refused() {
        let t = tar_of(&[("2000.jpg", b"b"), ("1000.png", b"a")]);
        let frames = untar(&t).unwrap();
        assert_eq!(frames, vec![(1000, b"a".to_vec()), (2000, b"b".to_vec())]);
        assert!(untar(&tar_of(&[("frame.jpg", b"x")])).is_err());
        assert!(untar(&tar_of(&[])).is_err());
        assert!(untar(b"not a tar at all, just text").is_err());
    }
}
