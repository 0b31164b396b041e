//! Cameras: each comes with its zone and the zone's organization. A camera may move to
//! another zone (`zone_id` on `PUT`), in one transaction with both zones' counters.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::retry::won;
use civic_core::{Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Table, Write};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    Camera, CameraOut, MAX_CAMERAS, NAME_MAX, PageParams, Tree, ZoneNode, camera_pointer,
    camera_tree, count_child, no_such, page_of_trees, set, zone_tree,
};
use crate::fields::{Body, FromBody, Patch, Valid, int_param};
use crate::{Admin, Id, State, User, not_found};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, update, delete))
}

/// Request schema (for the docs: the body is checked field by field). On `PUT` every field
/// is optional.
#[derive(ToSchema)]
pub struct CameraInput {
    #[schema(value_type = String)]
    name: Option<String>,
    /// Default true.
    is_active: Option<bool>,
    /// The parent zone; on `PUT`, a different one moves the camera.
    #[schema(value_type = i64)]
    zone_id: Option<i64>,
}

civic_core::schema_variant!(
    /// `PUT`'s body: a camera's fields, each optional (a partial update).
    pub CameraPatch = CameraInput, []
);

impl FromBody for CameraInput {
    fn from_body(body: &mut Body) -> Self {
        Self {
            name: body.string("name", true, false, NAME_MAX),
            is_active: body.bool("is_active", false),
            zone_id: body.int("zone_id", true, 1..=i64::MAX),
        }
    }
}

/// A request sets only the fields it carries.
impl CameraInput {
    fn apply(&self, camera: &mut Camera) {
        set(&mut camera.name, &self.name);
        set(&mut camera.is_active, &self.is_active);
        camera.updated_at = civic_core::time::now_rfc3339();
    }
}

/// The zone a camera goes into, with room for it; a field error otherwise.
async fn target_zone(table: &dyn Table, zone: i64) -> Result<(Tree, ZoneNode)> {
    let tree = zone_tree(table, zone)
        .await?
        .ok_or_else(|| no_such("zone_id", zone))?;
    let node = tree
        .zone(zone)
        .cloned()
        .ok_or_else(|| no_such("zone_id", zone))?;
    if node.zone.camera_count >= MAX_CAMERAS {
        return Err(civic_core::Error::field(
            "zone_id",
            format!("Zone {zone} already has {MAX_CAMERAS} cameras."),
        ));
    }
    Ok((tree, node))
}

#[derive(Deserialize, IntoParams)]
pub struct CameraParams {
    /// Only this zone's cameras.
    zone_id: Option<String>,
    cursor: Option<String>,
}

/// Cameras with their zone and organization. With `zone_id`: two round trips; otherwise
/// pages of whole organizations (`X-Next-Cursor`).
#[utoipa::path(get, path = "/api/cameras", operation_id = "list_cameras", tag = "cameras", params(CameraParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<CameraOut>), (status = 400), (status = 401)))]
async fn list(S(s): S<State>, _: User, Query(q): Query<CameraParams>) -> Result<Response> {
    let table = s.table.as_ref();
    if let Some(zone) = int_param("zone_id", q.zone_id.as_deref())? {
        let tree = zone_tree(table, zone).await?;
        let cameras: Vec<CameraOut> = tree
            .iter()
            .flat_map(|t| {
                let node = t.zone(zone);
                node.into_iter()
                    .flat_map(move |n| n.cameras.iter().map(move |c| t.camera_out(&n.zone, c)))
            })
            .collect();
        return Ok(page::with_cursor(Json(cameras), None));
    }
    let start = PageParams { cursor: q.cursor }.start()?;
    let (trees, next) = page_of_trees(table, start).await?;
    let cameras: Vec<CameraOut> = trees.iter().flat_map(Tree::cameras_out).collect();
    Ok(page::with_cursor(
        Json(cameras),
        next.map(|n| n.to_string()),
    ))
}

#[utoipa::path(post, path = "/api/cameras", operation_id = "create_camera", tag = "cameras", request_body = CameraInput, security(("bearer" = [])),
    responses((status = 201, body = CameraOut), (status = 400), (status = 401), (status = 403)))]
async fn create(
    S(s): S<State>,
    _: Admin,
    Valid(patch): Valid<CameraInput>,
) -> Result<(StatusCode, Json<CameraOut>)> {
    let zone_id = patch.zone_id.unwrap_or_default();
    let table = s.table.as_ref();
    let id = ids::next_id(table, "camera").await?;
    let now = civic_core::time::now_rfc3339();
    let (tree, node, camera) = retry::optimistic(|| async {
        let (tree, node) = target_zone(table, zone_id).await?;
        let mut camera = Camera {
            id,
            organization_id: tree.org.id,
            zone_id,
            name: String::new(),
            is_active: true,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        patch.apply(&mut camera);
        let writes = vec![
            count_child(node.zone.key(), "camera_count", 1, node.version),
            Write::Put {
                item: camera.to_item()?,
                cond: Cond::NotExists,
            },
            Write::Put {
                item: camera.pointer(),
                cond: Cond::NotExists,
            },
        ];
        let won = won(table.transact(writes).await)?;
        Ok(won.then_some((tree, node, camera)))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(tree.camera_out(&node.zone, &camera)),
    ))
}

/// A camera with its zone and organization: two round trips (pointer, tree).
#[utoipa::path(get, path = "/api/cameras/{id}", operation_id = "get_camera", tag = "cameras", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = CameraOut), (status = 401), (status = 404)))]
async fn detail(S(s): S<State>, _: User, Id(id): Id) -> Result<Json<CameraOut>> {
    let tree = camera_tree(s.table.as_ref(), id)
        .await?
        .ok_or_else(|| not_found("Camera"))?;
    let (node, camera) = tree.camera(id).ok_or_else(|| not_found("Camera"))?;
    Ok(Json(tree.camera_out(&node.zone, camera)))
}

/// Update a camera; every field is optional. A new `zone_id` moves it.
#[utoipa::path(put, path = "/api/cameras/{id}", operation_id = "update_camera", tag = "cameras", params(("id" = i64, Path)),
    request_body = CameraPatch, security(("bearer" = [])),
    responses((status = 200, body = CameraOut), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update(
    S(s): S<State>,
    _: Admin,
    Id(id): Id,
    Patch(patch): Patch<CameraInput>,
) -> Result<Json<CameraOut>> {
    let table = s.table.as_ref();
    let out = retry::optimistic(|| async {
        let tree = camera_tree(table, id)
            .await?
            .ok_or_else(|| not_found("Camera"))?;
        let (node, camera) = tree.camera(id).ok_or_else(|| not_found("Camera"))?;
        let mut moved = camera.clone();
        patch.apply(&mut moved);
        let to = patch.zone_id.filter(|z| *z != node.zone.id);
        let Some(to) = to else {
            let won = won(table.put(moved.to_item()?, Cond::Exists).await)?;
            return Ok(won.then(|| tree.camera_out(&node.zone, &moved)));
        };
        let (target, target_node) = target_zone(table, to).await?;
        moved.zone_id = to;
        moved.organization_id = target.org.id;
        let writes = vec![
            count_child(node.zone.key(), "camera_count", -1, node.version),
            count_child(
                target_node.zone.key(),
                "camera_count",
                1,
                target_node.version,
            ),
            Write::Delete {
                key: camera.key(),
                cond: Cond::Exists,
            },
            Write::Put {
                item: moved.to_item()?,
                cond: Cond::NotExists,
            },
            Write::Put {
                item: moved.pointer(),
                cond: Cond::Always,
            },
        ];
        let won = won(table.transact(writes).await)?;
        Ok(won.then(|| target.camera_out(&target_node.zone, &moved)))
    })
    .await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/cameras/{id}", operation_id = "delete_camera", tag = "cameras", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete(S(s): S<State>, _: Admin, Id(id): Id) -> Result<StatusCode> {
    let table = s.table.as_ref();
    retry::optimistic(|| async {
        let tree = camera_tree(table, id)
            .await?
            .ok_or_else(|| not_found("Camera"))?;
        let (node, camera) = tree.camera(id).ok_or_else(|| not_found("Camera"))?;
        let writes = vec![
            count_child(node.zone.key(), "camera_count", -1, node.version),
            Write::Delete {
                key: camera.key(),
                cond: Cond::Always,
            },
            Write::Delete {
                key: camera_pointer(id),
                cond: Cond::Always,
            },
        ];
        won(table.transact(writes).await).map(|won| won.then_some(()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
