//! `POST sensor/detect/`: a camera frame as `multipart/form-data`, counted at once, answered in
//! the seed's Scenario A (NORMAL) or Scenario B (DANGER) shape.

use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request, State as S};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use civic_core::{Error, Json, Result};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Detection, Frame, Origin, Status, analyse};
use crate::fields::REQUIRED;
use crate::{State, User};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(detect))
}

/// The form, checked field by field as a DRF serializer would (every bad field at once).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DetectForm {
    zone_id: i64,
    camera_id: i64,
    /// A JPEG, PNG, GIF or WebP frame: at most 3840×2160 pixels (and the body limit).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

struct Upload {
    zone_id: i64,
    camera_id: i64,
    file: Bytes,
    filename: String,
}

impl<St: Send + Sync> FromRequest<St> for Upload {
    type Rejection = Error;

    async fn from_request(req: Request, state: &St) -> Result<Self> {
        let kind = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !kind.to_ascii_lowercase().starts_with("multipart/form-data") {
            return Err(Error::UnsupportedMediaType(format!(
                "Unsupported media type \"{kind}\" in request."
            )));
        }
        let mut form = Multipart::from_request(req, state).await.map_err(|_| {
            Error::bad_request("Multipart form parse error - Invalid boundary in multipart: None")
        })?;
        let (mut zone, mut camera, mut file) = (None, None, None);
        while let Some(field) = form.next_field().await.map_err(multipart_error)? {
            match field.name().unwrap_or_default() {
                "file" => {
                    let name = field.file_name().map(str::to_owned);
                    let bytes = field.bytes().await.map_err(multipart_error)?;
                    file = Some((name, bytes));
                }
                "zone_id" => zone = Some(field.text().await.map_err(multipart_error)?),
                "camera_id" => camera = Some(field.text().await.map_err(multipart_error)?),
                _ => {} // unknown fields are ignored, as DRF does
            }
        }
        let mut errors = Vec::new();
        let mut int = |field: &str, value: Option<String>| {
            let parsed = value.as_deref().map(|v| v.trim().parse::<i64>());
            match parsed {
                Some(Ok(n)) if n > 0 => return n,
                Some(Ok(n)) => errors.push((
                    field.into(),
                    format!("Invalid pk \"{n}\" - object does not exist."),
                )),
                Some(Err(_)) => errors.push((field.into(), "A valid integer is required.".into())),
                None => errors.push((field.into(), REQUIRED.into())),
            }
            0
        };
        let (zone_id, camera_id) = (int("zone_id", zone), int("camera_id", camera));
        let (filename, file) = match file {
            Some((Some(name), bytes)) if !bytes.is_empty() => (name, bytes),
            Some((Some(_), _)) => {
                errors.push(("file".into(), "The submitted file is empty.".into()));
                Default::default()
            }
            Some((None, _)) => {
                errors.push((
                    "file".into(),
                    "The submitted data was not a file. Check the encoding type on the form."
                        .into(),
                ));
                Default::default()
            }
            None => {
                errors.push(("file".into(), "No file was submitted.".into()));
                Default::default()
            }
        };
        if !errors.is_empty() {
            return Err(Error::Fields(errors));
        }
        Ok(Self {
            zone_id,
            camera_id,
            file,
            filename,
        })
    }
}

fn multipart_error(e: MultipartError) -> Error {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge("Request body is too large".into()),
        _ => Error::bad_request(format!("Multipart form parse error - {}", e.body_text())),
    }
}

/// Scenario A's `carbon_data`.
#[derive(Serialize, ToSchema)]
pub struct CarbonData {
    filename: String,
    /// Sliced NanoDet's count.
    sahi_count: i64,
    /// CenterNet's count: an independent second model (not Gemini; the name is the seed's).
    gemini_count: i64,
    /// `sahi_count / gemini_count`, two decimals (0 when `gemini_count` is 0): the carbon
    /// figure recorded.
    calculation_result: f64,
    formula: String,
    message: String,
}

/// Scenario A (NORMAL: `carbon_data`) or B (DANGER: `carbon_message`).
#[derive(Serialize, ToSchema)]
pub struct DetectOut {
    zone: String,
    capacity: i64,
    detected_people: i64,
    occupancy_percentage: String,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    carbon_data: Option<CarbonData>,
    /// Whether this frame created the zone's OVERCROWDING alert (false when one is still open).
    alert_created: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    carbon_message: Option<&'static str>,
    /// Extension: the zone's open OVERCROWDING alert (DANGER).
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_id: Option<i64>,
    /// Extension: the recorded detection (`sensor/detections/`).
    detection_id: i64,
}

impl From<Detection> for DetectOut {
    fn from(d: Detection) -> Self {
        let carbon_data = d
            .gemini_count
            .zip(d.saved)
            .map(|(second, saved)| CarbonData {
                formula: format!("{} / {second} rounded", d.detected_people),
                message: match second {
                    0 => "CenterNet saw nobody; recorded 0".into(),
                    _ => "Prediction successful via CenterNet".into(),
                },
                filename: d.filename,
                sahi_count: d.detected_people,
                gemini_count: second,
                calculation_result: saved,
            });
        Self {
            zone: d.zone,
            capacity: d.capacity,
            detected_people: d.detected_people,
            occupancy_percentage: d.occupancy_percentage,
            status: d.status,
            carbon_message: (d.status == Status::Danger)
                .then_some("Skipped Gemini calculation due to overcrowding."),
            carbon_data,
            alert_created: d.alert_created,
            alert_id: d.alert_id,
            detection_id: d.id,
        }
    }
}

/// Count the people in a frame; at ≥ 90% of the zone's capacity raise its alert, otherwise
/// record the carbon figure.
#[utoipa::path(post, path = "/api/sensor/detect", tag = "sensor", security(("bearer" = [])),
    request_body(content = DetectForm, content_type = "multipart/form-data"),
    responses((status = 200, body = DetectOut), (status = 400), (status = 401), (status = 413),
        (status = 415), (status = 503, description = "The person detector is not available")))]
async fn detect(S(s): S<State>, _: User, upload: Upload) -> Result<Json<DetectOut>> {
    let frame = Frame {
        zone_id: upload.zone_id,
        camera_id: upload.camera_id,
        bytes: upload.file,
        filename: upload.filename,
        origin: Origin::Detect,
    };
    let detection = analyse(&s, frame)
        .await?
        .ok_or_else(|| Error::Internal("a detect frame is never a duplicate".into()))?;
    Ok(Json(detection.into()))
}
