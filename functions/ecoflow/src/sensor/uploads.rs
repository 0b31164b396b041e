//! `POST sensor/uploads/` (extension): a URL a camera `PUT`s one frame to, straight into the
//! bucket under `ecoflow/zones/{zone}/cameras/{camera}/uploads/`. The S3 event that follows runs
//! `ecoflow-counter` ([`super::counter`]); the result appears in `sensor/detections/`.
//! The camera states the frame's size first: the URL's signature covers it, so S3 (or
//! civic-local) refuses a body of any other size, and no size above [`MAX_BYTES`] is signed.

use std::time::Duration;

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode};
use civic_core::uploads::{PresignedPut, request_base};
use civic_core::{Json, Result};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{frame_key, locate};
use crate::fields::Body;
use crate::{State, User};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(presign))
}

/// How long an upload URL stays valid.
const TTL: Duration = Duration::from_secs(15 * 60);

/// The largest frame a URL is signed for: the detector's own limit, which the counter
/// checks again before reading an object.
pub const MAX_BYTES: usize = civic_vision::ImageLimits::FRAME.max_bytes;

/// The image types a camera may upload, and their file extensions.
const TYPES: [(&str, &str); 3] = [
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
];

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct UploadRequest {
    zone_id: i64,
    camera_id: i64,
    /// `image/jpeg` (default), `image/png` or `image/webp`; the upload must send it.
    content_type: Option<String>,
    /// The frame's size in bytes (1 to 20 MiB); the upload must send exactly this many.
    content_length: i64,
}

/// A presigned `PUT` for one frame of a camera, of the size stated (valid 15 minutes).
#[utoipa::path(post, path = "/api/sensor/uploads", tag = "sensor", request_body = UploadRequest,
    security(("bearer" = [])),
    responses((status = 201, body = PresignedPut), (status = 400), (status = 401)))]
async fn presign(
    S(s): S<State>,
    _: User,
    headers: HeaderMap,
    mut body: Body,
) -> Result<(StatusCode, Json<PresignedPut>)> {
    let zone = body.int("zone_id", true, 1..=i64::MAX);
    let camera = body.int("camera_id", true, 1..=i64::MAX);
    let kind = body.string("content_type", false, false, 100);
    let length = body.int("content_length", true, 1..=MAX_BYTES as i64);
    let kind = kind.as_deref().unwrap_or("image/jpeg");
    let ext = TYPES.iter().find(|(t, _)| *t == kind).map(|(_, e)| *e);
    if ext.is_none() {
        body.error("content_type", format!("\"{kind}\" is not a valid choice."));
    }
    body.finish()?;
    let (Some(zone), Some(camera), Some(ext), Some(length)) = (zone, camera, ext, length) else {
        unreachable!("finish() reports every missing field");
    };
    locate(s.table.as_ref(), zone, camera).await?;
    let name = format!("{}.{ext}", uuid::Uuid::new_v4().simple());
    let key = frame_key(zone, camera, "uploads", &name);
    let put = s
        .platform
        .presign_put(&key, kind, length as u64, TTL, &request_base(&headers))
        .await?;
    Ok((StatusCode::CREATED, Json(put)))
}
