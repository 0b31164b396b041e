//! Creating, listing, reading and updating cameras; the facility's camera and capacity
//! counters follow in the same transaction.

use axum::extract::State as S;
use axum::http::StatusCode;
use civic_core::fields::{Body, FromBody, Patch, Valid};
use civic_core::iot::MqttLogin;
use civic_core::item::to_item;
use civic_core::retry::won;
use civic_core::{Error, Json, Result, ids, retry};
use civic_store::{Cond, StoreError, Table, Typed, Update, Write};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::mqtt::issue;
use super::{
    Camera, CameraType, Record, checked, load_camera, text, valid_capacity, valid_resolution,
};
use crate::keys::{attributes, camera_id_key, cameras_index, facility_key};
use crate::timeline::Live;
use crate::{Id, State};

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update))
}

#[derive(ToSchema)]
pub struct NewCamera {
    camera_id: String,
    camera_name: String,
    location: Option<String>,
    /// `entry_only`, `exit_only` or `bidirectional` (default): which crossings it counts.
    camera_type: Option<CameraType>,
    /// People allowed at once; capacity alerts need it.
    max_occupancy: Option<i64>,
    /// Default 1920.
    resolution_width: Option<i64>,
    /// Default 1080.
    resolution_height: Option<i64>,
}

impl NewCamera {
    /// Width and height, 1920×1080 unless given.
    fn resolution(&self) -> (i64, i64) {
        (
            self.resolution_width.unwrap_or(1920),
            self.resolution_height.unwrap_or(1080),
        )
    }
}

impl FromBody for NewCamera {
    fn from_body(b: &mut Body) -> Self {
        // Every field's type first: a wrong one is the answer, as it was for a typed body.
        let (camera_id, camera_name) = (b.typed("camera_id", false), b.typed("camera_name", false));
        let mut new = Self {
            camera_id: String::new(),
            camera_name: String::new(),
            location: b.typed("location", false),
            camera_type: b.typed("camera_type", false),
            max_occupancy: b.typed("max_occupancy", false),
            resolution_width: b.typed("resolution_width", false),
            resolution_height: b.typed("resolution_height", false),
        };
        new.camera_id = checked(b, text(camera_id, "camera_id"));
        new.camera_name = checked(b, text(camera_name, "camera_name"));
        checked(b, valid_capacity(new.max_occupancy));
        let (w, h) = new.resolution();
        checked(b, valid_resolution(w, h));
        new
    }
}

/// Creates a camera (see [`register_camera`]) without showing its MQTT login.
pub async fn create_camera(table: &dyn Table, new: NewCamera) -> Result<Camera> {
    register_camera(table, new).await.map(|(camera, _)| camera)
}

/// Creates a camera and issues its MQTT credential, atomically; `camera_id` is unique (a
/// conditional write on its own item).
pub async fn register_camera(table: &dyn Table, new: NewCamera) -> Result<(Camera, MqttLogin)> {
    let (w, h) = new.resolution();
    let unique = camera_id_key(&new.camera_id);
    if table.get(&unique).await?.is_some() {
        return Err(duplicate(&new.camera_id));
    }
    let camera = Camera {
        id: ids::next_id(table, "camera").await?,
        camera_id: new.camera_id,
        camera_name: new.camera_name,
        location: new
            .location
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty()),
        camera_type: new.camera_type.unwrap_or(CameraType::Bidirectional),
        is_active: true,
        max_occupancy: new.max_occupancy,
        resolution_width: w,
        resolution_height: h,
        created_at: civic_core::time::now_rfc3339(),
    };
    let record = Record {
        camera: camera.clone(),
        live: Live::default(),
        version: 1,
    };
    let marker = to_item(&json!({ "id": camera.id }), &attributes(unique))?;
    let facility = Update::new(facility_key())
        .add("total_cameras", 1)
        .add("active_cameras", 1)
        .add("capacity", record.capacity())
        .set("last_updated", camera.created_at.clone());
    let (login, credential) = issue(camera.id, &camera.created_at);
    let writes = vec![
        Write::Put {
            item: marker,
            cond: Cond::NotExists,
        },
        Write::Put {
            item: record.to_item()?,
            cond: Cond::NotExists,
        },
        Write::Update(facility),
        Write::Put {
            item: credential,
            cond: Cond::Always,
        },
    ];
    match table.transact(writes).await {
        Ok(()) => Ok((camera, login)),
        Err(StoreError::TransactionCanceled(failed)) if failed.contains(&0) => {
            Err(duplicate(&camera.camera_id))
        }
        Err(e) => Err(e.into()),
    }
}

fn duplicate(camera_id: &str) -> Error {
    Error::Conflict(format!("Camera with ID '{camera_id}' already exists"))
}

/// A new camera with its MQTT login, shown this once.
#[derive(Serialize, ToSchema)]
pub struct Created {
    #[serde(flatten)]
    camera: Camera,
    mqtt: MqttLogin,
}

/// Create a camera for occupancy tracking. Extension: the reply also holds the camera's MQTT
/// login for civic-local's device port (user name `occupancy-{id}`); only its digest is kept.
#[utoipa::path(post, path = "/api/occupancy/cameras", tag = "cameras", request_body = NewCamera,
    responses((status = 201, body = Created), (status = 400), (status = 409)))]
async fn create(
    S(s): S<State>,
    Valid(new): Valid<NewCamera>,
) -> Result<(StatusCode, Json<Created>)> {
    let (camera, mqtt) = register_camera(s.table.as_ref(), new).await?;
    Ok((StatusCode::CREATED, Json(Created { camera, mqtt })))
}

/// All active cameras, by id. Paged internally: one query per 1000 cameras.
#[utoipa::path(get, path = "/api/occupancy/cameras", operation_id = "list_cameras", tag = "cameras",
    responses((status = 200, body = Vec<Camera>)))]
async fn list(S(s): S<State>) -> Result<Json<Vec<Camera>>> {
    Ok(Json(active_cameras(s.table.as_ref()).await?))
}

/// Every active camera (admin-sized: the facility's cameras).
pub async fn active_cameras(table: &dyn Table) -> Result<Vec<Camera>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = table
            .query_as::<Camera>(
                civic_store::Query::index(cameras_index(true))
                    .limit(1000)
                    .cursor(cursor),
            )
            .await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// One camera.
#[utoipa::path(get, path = "/api/occupancy/cameras/{camera_id}", tag = "cameras",
    params(("camera_id" = i64, Path, description = "Database id of the camera")),
    responses((status = 200, body = Camera), (status = 404)))]
async fn detail(S(s): S<State>, Id(id): Id) -> Result<Json<Camera>> {
    Ok(Json(load_camera(s.table.as_ref(), id).await?))
}

#[derive(ToSchema)]
pub struct CameraPatch {
    /// Not changeable (it is the camera's unique external id).
    camera_id: Option<String>,
    camera_name: Option<String>,
    location: Option<String>,
    camera_type: Option<CameraType>,
    max_occupancy: Option<i64>,
    resolution_width: Option<i64>,
    resolution_height: Option<i64>,
    /// `false` takes the camera out of the list, the facility's capacity and failure checks.
    is_active: Option<bool>,
}

impl FromBody for CameraPatch {
    fn from_body(b: &mut Body) -> Self {
        // Every field's type first: a wrong one is the answer, as it was for a typed body.
        let patch = Self {
            camera_id: b.typed("camera_id", false),
            camera_name: b.typed("camera_name", false),
            location: b.typed("location", false),
            camera_type: b.typed("camera_type", false),
            max_occupancy: b.typed("max_occupancy", false),
            resolution_width: b.typed("resolution_width", false),
            resolution_height: b.typed("resolution_height", false),
            is_active: b.typed("is_active", false),
        };
        checked(b, valid_capacity(patch.max_occupancy));
        patch
    }
}

/// Update a camera's configuration. The facility's camera and capacity counters follow in the
/// same transaction.
#[utoipa::path(put, path = "/api/occupancy/cameras/{camera_id}", tag = "cameras", request_body = CameraPatch,
    params(("camera_id" = i64, Path)),
    responses((status = 200, body = Camera), (status = 400), (status = 404)))]
async fn update(
    S(s): S<State>,
    Id(id): Id,
    Patch(patch): Patch<CameraPatch>,
) -> Result<Json<Camera>> {
    let (patch, table) = (&patch, s.table.as_ref());
    let camera = retry::optimistic(move || async move {
        let before = Record::load(table, id).await?;
        let mut rec = before.clone();
        let c = &mut rec.camera;
        if let Some(cid) = patch.camera_id.as_deref()
            && cid.trim() != c.camera_id
        {
            return Err(Error::bad_request("camera_id cannot be changed"));
        }
        // Checked once the camera is found, as before (a missing camera is a 404 first).
        if patch.camera_name.is_some() {
            c.camera_name = text(patch.camera_name.clone(), "camera_name")?;
        }
        if let Some(l) = &patch.location {
            c.location = Some(l.trim().to_owned()).filter(|l| !l.is_empty());
        }
        c.camera_type = patch.camera_type.unwrap_or(c.camera_type);
        c.max_occupancy = patch.max_occupancy.or(c.max_occupancy);
        c.resolution_width = patch.resolution_width.unwrap_or(c.resolution_width);
        c.resolution_height = patch.resolution_height.unwrap_or(c.resolution_height);
        valid_resolution(c.resolution_width, c.resolution_height)?;
        c.is_active = patch.is_active.unwrap_or(c.is_active);
        rec.version = before.version + 1;
        let mut writes = vec![Write::Put {
            item: rec.to_item()?,
            cond: Cond::Version(before.version),
        }];
        let active = i64::from(rec.camera.is_active) - i64::from(before.camera.is_active);
        let capacity = rec.capacity() - before.capacity();
        if active != 0 || capacity != 0 {
            writes.push(Write::Update(
                Update::new(facility_key())
                    .add("active_cameras", active)
                    .add("capacity", capacity)
                    .set("last_updated", civic_core::time::now_rfc3339()),
            ));
        }
        won(table.transact(writes).await).map(|won| won.then_some(rec.camera))
    })
    .await?;
    Ok(Json(camera))
}
