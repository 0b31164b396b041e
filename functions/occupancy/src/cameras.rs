//! Cameras and their virtual lines: create (unique `camera_id`), list, detail, update.

use axum::extract::State as S;
use axum::http::StatusCode;
use civic_auth::device as credential;
use civic_core::iot::{DeviceClass, DeviceTopics, MqttLogin};
use civic_core::item::{from_item, to_item};
use civic_core::retry::won;
use civic_core::{Error, Json, Result, ids, retry};
use civic_store::{Cond, Item, Key, StoreError, Table, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::timeline::Live;
use crate::{Id, State, camera_not_found};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update))
        .routes(routes!(rotate_credential))
        .routes(routes!(create_line))
        .routes(routes!(camera_lines))
        .routes(routes!(line_detail, update_line))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraType {
    EntryOnly,
    ExitOnly,
    Bidirectional,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Camera {
    pub id: i64,
    pub camera_id: String,
    pub camera_name: String,
    pub location: Option<String>,
    pub camera_type: CameraType,
    pub is_active: bool,
    pub max_occupancy: Option<i64>,
    pub resolution_width: i64,
    pub resolution_height: i64,
    pub created_at: String,
}

/// The stored camera: its configuration, its live state and the version both are written at.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub camera: Camera,
    #[serde(default)]
    pub live: Live,
    #[serde(default)]
    pub version: i64,
}

pub fn camera_key(id: i64) -> Key {
    Key::new(format!("CAMERA#{id}"), "CAMERA")
}

pub const FACILITY: &str = "FACILITY";

pub fn facility_key() -> Key {
    Key::new(FACILITY, FACILITY)
}

impl Record {
    pub fn to_item(&self) -> Result<Item> {
        let key = camera_key(self.camera.id);
        let index = if self.camera.is_active {
            "CAMERAS"
        } else {
            "CAMERAS#inactive"
        };
        to_item(
            self,
            &[
                ("PK", key.pk),
                ("SK", key.sk),
                ("GSI1PK", index.into()),
                ("GSI1SK", format!("{:010}", self.camera.id)),
            ],
        )
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Self> {
        let item = table
            .get(&camera_key(id))
            .await?
            .ok_or_else(|| camera_not_found(id))?;
        from_item(item)
    }

    /// The capacity this camera adds to the facility's.
    pub fn capacity(&self) -> i64 {
        if self.camera.is_active {
            self.camera.max_occupancy.unwrap_or(0)
        } else {
            0
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewCamera {
    #[schema(required, nullable = false)]
    camera_id: Option<String>,
    #[schema(required, nullable = false)]
    camera_name: Option<String>,
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

fn text(value: Option<String>, name: &str) -> Result<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() && v.len() <= 200 => Ok(v.to_owned()),
        Some(v) if !v.is_empty() => Err(Error::bad_request(format!("{name} is too long"))),
        _ => Err(Error::bad_request(format!("{name} is required"))),
    }
}

fn valid_capacity(max: Option<i64>) -> Result<()> {
    match max {
        Some(m) if m < 1 => Err(Error::bad_request("max_occupancy must be at least 1")),
        _ => Ok(()),
    }
}

fn valid_resolution(w: i64, h: i64) -> Result<()> {
    if (1..=16384).contains(&w) && (1..=16384).contains(&h) {
        Ok(())
    } else {
        Err(Error::bad_request(
            "resolution must be between 1 and 16384 pixels",
        ))
    }
}

/// Creates a camera (see [`register_camera`]) without showing its MQTT login.
pub async fn create_camera(table: &dyn Table, new: NewCamera) -> Result<Camera> {
    register_camera(table, new).await.map(|(camera, _)| camera)
}

/// Creates a camera and issues its MQTT credential, atomically; `camera_id` is unique (a
/// conditional write on its own item).
pub async fn register_camera(table: &dyn Table, new: NewCamera) -> Result<(Camera, MqttLogin)> {
    let camera_id = text(new.camera_id, "camera_id")?;
    let camera_name = text(new.camera_name, "camera_name")?;
    valid_capacity(new.max_occupancy)?;
    let (w, h) = (
        new.resolution_width.unwrap_or(1920),
        new.resolution_height.unwrap_or(1080),
    );
    valid_resolution(w, h)?;
    let unique = Key::new(format!("CAMERAID#{camera_id}"), "CAMERAID");
    if table.get(&unique).await?.is_some() {
        return Err(duplicate(&camera_id));
    }
    let camera = Camera {
        id: ids::next_id(table, "camera").await?,
        camera_id,
        camera_name,
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
    let mut marker = Item::new();
    marker.insert("PK".into(), unique.pk.into());
    marker.insert("SK".into(), unique.sk.into());
    marker.insert("id".into(), camera.id.into());
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
async fn create(S(s): S<State>, Json(new): Json<NewCamera>) -> Result<(StatusCode, Json<Created>)> {
    let (camera, mqtt) = register_camera(s.table.as_ref(), new).await?;
    Ok((StatusCode::CREATED, Json(Created { camera, mqtt })))
}

/// Extension: a new MQTT login for a camera; the previous password stops working at once (an
/// open connection keeps going until it closes). Guarded as every write of this app.
#[utoipa::path(post, path = "/api/occupancy/cameras/{camera_id}/credential", tag = "cameras",
    params(("camera_id" = i64, Path)),
    responses((status = 200, body = MqttLogin), (status = 400), (status = 404)))]
async fn rotate_credential(S(s): S<State>, Id(id): Id) -> Result<Json<MqttLogin>> {
    Record::load(s.table.as_ref(), id).await?;
    let (login, item) = issue(id, &civic_core::time::now_rfc3339());
    s.table.put(item, Cond::Always).await?;
    Ok(Json(login))
}

/// Camera `id`'s new login and the credential item to store for it.
fn issue(id: i64, at: &str) -> (MqttLogin, Item) {
    credential::issue(&TOPICS, &id.to_string(), &camera_key(id), at)
}

/// Apart from [`DEVICES`]: the verifier's future cannot name the const that holds it.
const TOPICS: DeviceTopics = DeviceTopics {
    app: crate::APP.name,
    prefix: "occupancy/cameras",
    inbound: &["crossings"],
    commands: &[],
};

/// Cameras on MQTT: each sends its counted crossings; they take no commands.
pub const DEVICES: DeviceClass = DeviceClass {
    topics: TOPICS,
    verifier: |p| civic_core::iot::verifier(State::new(p), verify_camera),
};

/// Whether `secret` is camera `id`'s MQTT credential (`id` is the integer id of the topics).
async fn verify_camera(s: State, id: String, secret: String) -> Result<bool> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(false);
    };
    let key = camera_key(id);
    Ok(credential::verify(s.table.as_ref(), &TOPICS, &key, &secret).await?)
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
            .query(
                civic_store::Query::index("CAMERAS")
                    .limit(1000)
                    .cursor(cursor),
            )
            .await?;
        for item in page.items {
            out.push(from_item(item)?);
        }
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
    Ok(Json(Record::load(s.table.as_ref(), id).await?.camera))
}

#[derive(Deserialize, ToSchema)]
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

/// Update a camera's configuration. The facility's camera and capacity counters follow in the
/// same transaction.
#[utoipa::path(put, path = "/api/occupancy/cameras/{camera_id}", tag = "cameras", request_body = CameraPatch,
    params(("camera_id" = i64, Path)),
    responses((status = 200, body = Camera), (status = 400), (status = 404)))]
async fn update(
    S(s): S<State>,
    Id(id): Id,
    Json(patch): Json<CameraPatch>,
) -> Result<Json<Camera>> {
    valid_capacity(patch.max_occupancy)?;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Entry,
    Exit,
    Bidirectional,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Line {
    pub id: i64,
    pub camera_id: i64,
    pub line_name: String,
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
    /// What the line counts: entries only, exits only, or both.
    pub direction: Direction,
    /// Crossings detected with less confidence are ignored.
    pub confidence_threshold: f64,
    pub is_active: bool,
    pub created_at: String,
}

fn line_key(id: i64) -> Key {
    Key::new(format!("LINE#{id}"), "LINE")
}

impl Line {
    fn to_item(&self, version: i64) -> Result<Item> {
        let key = line_key(self.id);
        let mut item = to_item(
            self,
            &[
                ("PK", key.pk),
                ("SK", key.sk),
                ("GSI1PK", format!("LINES#{}", self.camera_id)),
                ("GSI1SK", format!("{:010}", self.id)),
            ],
        )?;
        item.insert("version".into(), version.into());
        Ok(item)
    }

    fn validate(&self, cam: &Camera) -> Result<()> {
        let inside = |v: i64, max: i64| (0..=max).contains(&v);
        if ![self.x1, self.x2]
            .iter()
            .all(|&x| inside(x, cam.resolution_width))
            || ![self.y1, self.y2]
                .iter()
                .all(|&y| inside(y, cam.resolution_height))
        {
            return Err(Error::bad_request(format!(
                "Line endpoints must lie within the camera's {}x{} frame",
                cam.resolution_width, cam.resolution_height
            )));
        }
        if (self.x1, self.y1) == (self.x2, self.y2) {
            return Err(Error::bad_request("A line needs two distinct endpoints"));
        }
        if !(0.0..=1.0).contains(&self.confidence_threshold) {
            return Err(Error::bad_request(
                "confidence_threshold must be between 0 and 1",
            ));
        }
        Ok(())
    }
}

fn line_not_found(id: i64) -> Error {
    Error::NotFound(format!("Line {id} not found"))
}

async fn load_line(table: &dyn Table, id: i64) -> Result<(Line, i64)> {
    let item = table
        .get(&line_key(id))
        .await?
        .ok_or_else(|| line_not_found(id))?;
    let version = item.get("version").and_then(Value::as_i64).unwrap_or(0);
    Ok((from_item(item)?, version))
}

/// The lines of a camera (a camera has a handful; one query).
pub async fn lines_of(table: &dyn Table, camera: i64) -> Result<Vec<Line>> {
    let page = table
        .query(civic_store::Query::index(format!("LINES#{camera}")).limit(MAX_LINES))
        .await?;
    page.items.into_iter().map(from_item).collect()
}

/// Lines per camera, so that a camera's lines are always one query.
const MAX_LINES: usize = 100;

#[derive(Deserialize, ToSchema)]
pub struct NewLine {
    #[schema(required, nullable = false)]
    camera_id: Option<i64>,
    #[schema(required, nullable = false)]
    line_name: Option<String>,
    #[schema(required, nullable = false)]
    x1: Option<i64>,
    #[schema(required, nullable = false)]
    y1: Option<i64>,
    #[schema(required, nullable = false)]
    x2: Option<i64>,
    #[schema(required, nullable = false)]
    y2: Option<i64>,
    /// `entry`, `exit` or `bidirectional` (default).
    direction: Option<Direction>,
    /// 0–1, default 0.5.
    confidence_threshold: Option<f64>,
}

/// Create a virtual line on a camera.
#[utoipa::path(post, path = "/api/occupancy/lines", tag = "lines", request_body = NewLine,
    responses((status = 201, body = Line), (status = 400), (status = 404)))]
async fn create_line(S(s): S<State>, Json(new): Json<NewLine>) -> Result<(StatusCode, Json<Line>)> {
    let camera_id = new
        .camera_id
        .ok_or_else(|| Error::bad_request("camera_id is required"))?;
    let (Some(x1), Some(y1), Some(x2), Some(y2)) = (new.x1, new.y1, new.x2, new.y2) else {
        return Err(Error::bad_request("x1, y1, x2 and y2 are required"));
    };
    let table = s.table.as_ref();
    let cam = Record::load(table, camera_id).await?.camera;
    let mut line = Line {
        id: 0,
        camera_id,
        line_name: text(new.line_name, "line_name")?,
        x1,
        y1,
        x2,
        y2,
        direction: new.direction.unwrap_or(Direction::Bidirectional),
        confidence_threshold: new.confidence_threshold.unwrap_or(0.5),
        is_active: true,
        created_at: civic_core::time::now_rfc3339(),
    };
    line.validate(&cam)?;
    if lines_of(table, camera_id).await?.len() >= MAX_LINES {
        return Err(Error::bad_request(format!(
            "A camera has at most {MAX_LINES} lines"
        )));
    }
    line.id = ids::next_id(table, "line").await?;
    table.put(line.to_item(1)?, Cond::NotExists).await?;
    Ok((StatusCode::CREATED, Json(line)))
}

/// The virtual lines of a camera.
#[utoipa::path(get, path = "/api/occupancy/cameras/{camera_id}/lines", tag = "lines",
    params(("camera_id" = i64, Path)),
    responses((status = 200, body = Vec<Line>), (status = 404)))]
async fn camera_lines(S(s): S<State>, Id(id): Id) -> Result<Json<Vec<Line>>> {
    let lines = lines_of(s.table.as_ref(), id).await?;
    if lines.is_empty() {
        Record::load(s.table.as_ref(), id).await?;
    }
    Ok(Json(lines))
}

/// One virtual line.
#[utoipa::path(get, path = "/api/occupancy/lines/{line_id}", tag = "lines",
    params(("line_id" = i64, Path)),
    responses((status = 200, body = Line), (status = 404)))]
async fn line_detail(S(s): S<State>, Id(id): Id) -> Result<Json<Line>> {
    Ok(Json(load_line(s.table.as_ref(), id).await?.0))
}

#[derive(Deserialize, ToSchema)]
pub struct LinePatch {
    line_name: Option<String>,
    x1: Option<i64>,
    y1: Option<i64>,
    x2: Option<i64>,
    y2: Option<i64>,
    direction: Option<Direction>,
    confidence_threshold: Option<f64>,
    is_active: Option<bool>,
}

/// Update a virtual line's configuration.
#[utoipa::path(put, path = "/api/occupancy/lines/{line_id}", tag = "lines", request_body = LinePatch,
    params(("line_id" = i64, Path)),
    responses((status = 200, body = Line), (status = 400), (status = 404)))]
async fn update_line(
    S(s): S<State>,
    Id(id): Id,
    Json(patch): Json<LinePatch>,
) -> Result<Json<Line>> {
    let (patch, table) = (&patch, s.table.as_ref());
    let line = retry::optimistic(move || async move {
        let (mut line, version) = load_line(table, id).await?;
        let cam = Record::load(table, line.camera_id).await?.camera;
        if patch.line_name.is_some() {
            line.line_name = text(patch.line_name.clone(), "line_name")?;
        }
        line.x1 = patch.x1.unwrap_or(line.x1);
        line.y1 = patch.y1.unwrap_or(line.y1);
        line.x2 = patch.x2.unwrap_or(line.x2);
        line.y2 = patch.y2.unwrap_or(line.y2);
        line.direction = patch.direction.unwrap_or(line.direction);
        line.confidence_threshold = patch
            .confidence_threshold
            .unwrap_or(line.confidence_threshold);
        line.is_active = patch.is_active.unwrap_or(line.is_active);
        line.validate(&cam)?;
        let written = table
            .put(line.to_item(version + 1)?, Cond::Version(version))
            .await;
        won(written).map(|won| won.then_some(line))
    })
    .await?;
    Ok(Json(line))
}
