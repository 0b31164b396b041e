//! Virtual lines: where on a camera's frame crossings are counted, and which directions.

use axum::extract::State as S;
use axum::http::StatusCode;
use civic_core::fields::{Body, FromBody, Patch, Valid};
use civic_core::item::{from_item, to_item};
use civic_core::retry::won;
use civic_core::{Error, Json, Result, ids, retry};
use civic_store::{Cond, Item, Table, Typed, VERSION};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Camera, Record, load_camera, text};
use crate::keys::{by_id, indexed, line_key, lines_index};
use crate::{Id, State};

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(create_line))
        .routes(routes!(camera_lines))
        .routes(routes!(line_detail, update_line))
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

impl Line {
    fn to_item(&self, version: i64) -> Result<Item> {
        let keys = indexed(
            line_key(self.id),
            lines_index(self.camera_id),
            by_id(self.id),
        );
        let mut item = to_item(self, &keys)?;
        item.insert(VERSION.into(), version.into());
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
    let version = item.get(VERSION).and_then(Value::as_i64).unwrap_or(0);
    Ok((from_item(item)?, version))
}

/// The lines of a camera (a camera has a handful; one query).
pub async fn lines_of(table: &dyn Table, camera: i64) -> Result<Vec<Line>> {
    let page = table
        .query_as(civic_store::Query::index(lines_index(camera)).limit(MAX_LINES))
        .await?;
    Ok(page.items)
}

/// Lines per camera, so that a camera's lines are always one query.
const MAX_LINES: usize = 100;

#[derive(ToSchema)]
pub struct NewLine {
    camera_id: i64,
    // Checked once the camera is found (a missing camera is a 404 first).
    #[schema(required, nullable = false)]
    line_name: Option<String>,
    x1: i64,
    y1: i64,
    x2: i64,
    y2: i64,
    /// `entry`, `exit` or `bidirectional` (default).
    direction: Option<Direction>,
    /// 0–1, default 0.5.
    confidence_threshold: Option<f64>,
}

impl FromBody for NewLine {
    fn from_body(b: &mut Body) -> Self {
        // Every field's type first: a wrong one is the answer, as it was for a typed body.
        let camera_id = b.typed("camera_id", false);
        let line_name = b.typed("line_name", false);
        let ends = ["x1", "y1", "x2", "y2"].map(|f| b.typed::<i64>(f, false));
        let (direction, confidence_threshold) = (
            b.typed("direction", false),
            b.typed("confidence_threshold", false),
        );
        let camera_id = camera_id.or_else(|| b.refuse("camera_id is required"));
        let [x1, y1, x2, y2] = match ends {
            [Some(x1), Some(y1), Some(x2), Some(y2)] => [x1, y1, x2, y2],
            _ => b
                .refuse("x1, y1, x2 and y2 are required")
                .unwrap_or_default(),
        };
        Self {
            camera_id: camera_id.unwrap_or_default(),
            line_name,
            x1,
            y1,
            x2,
            y2,
            direction,
            confidence_threshold,
        }
    }
}

/// Create a virtual line on a camera.
#[utoipa::path(post, path = "/api/occupancy/lines", tag = "lines", request_body = NewLine,
    responses((status = 201, body = Line), (status = 400), (status = 404)))]
async fn create_line(
    S(s): S<State>,
    Valid(new): Valid<NewLine>,
) -> Result<(StatusCode, Json<Line>)> {
    let (camera_id, table) = (new.camera_id, s.table.as_ref());
    let cam = Record::load(table, camera_id).await?.camera;
    let mut line = Line {
        id: 0,
        camera_id,
        line_name: text(new.line_name, "line_name")?,
        x1: new.x1,
        y1: new.y1,
        x2: new.x2,
        y2: new.y2,
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
        load_camera(s.table.as_ref(), id).await?;
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

#[derive(ToSchema)]
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

impl FromBody for LinePatch {
    fn from_body(b: &mut Body) -> Self {
        // Every field's type first: a wrong one is the answer, as it was for a typed body.
        Self {
            line_name: b.typed("line_name", false),
            x1: b.typed("x1", false),
            y1: b.typed("y1", false),
            x2: b.typed("x2", false),
            y2: b.typed("y2", false),
            direction: b.typed("direction", false),
            confidence_threshold: b.typed("confidence_threshold", false),
            is_active: b.typed("is_active", false),
        }
    }
}

/// Update a virtual line's configuration.
#[utoipa::path(put, path = "/api/occupancy/lines/{line_id}", tag = "lines", request_body = LinePatch,
    params(("line_id" = i64, Path)),
    responses((status = 200, body = Line), (status = 400), (status = 404)))]
async fn update_line(
    S(s): S<State>,
    Id(id): Id,
    Patch(patch): Patch<LinePatch>,
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
