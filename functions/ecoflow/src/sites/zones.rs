//! Zones: each comes with its organization and cameras. A zone may move to another
//! organization (`organization_id` on `PUT`): it and its cameras move in one transaction.

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
    Camera, LATITUDE, LONGITUDE, MAX_CAMERAS, MAX_ZONES, NAME_MAX, PageParams, TYPE_MAX, Tree,
    Zone, ZoneNode, ZoneOut, count_child, load_org, load_tree, no_such, org_key, page_of_trees,
    set, zone_deletes, zone_tree,
};
use crate::fields::{Body, FromBody, Patch, Valid, int_param};
use crate::{Admin, Id, State, User, not_found};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, update, delete))
}

const MAX_CAPACITY: i64 = 10_000_000;

/// Request schema (for the docs: the body is checked field by field). On `PUT` every field
/// is optional.
#[derive(ToSchema)]
pub struct ZoneInput {
    #[schema(value_type = String)]
    name: Option<String>,
    zone_type: Option<String>,
    capacity: Option<i64>,
    #[schema(value_type = Option<f64>)]
    latitude: Option<Option<String>>,
    #[schema(value_type = Option<f64>)]
    longitude: Option<Option<String>>,
    /// The parent organization; on `PUT`, a different one moves the zone and its cameras.
    #[schema(value_type = i64)]
    organization_id: Option<i64>,
}

civic_core::schema_variant!(
    /// `PUT`'s body: a zone's fields, each optional (a partial update).
    pub ZonePatch = ZoneInput, []
);

impl FromBody for ZoneInput {
    fn from_body(body: &mut Body) -> Self {
        Self {
            name: body.string("name", true, false, NAME_MAX),
            zone_type: body.string("zone_type", false, true, TYPE_MAX),
            capacity: body.int("capacity", false, 0..=MAX_CAPACITY),
            latitude: body.coordinate("latitude", LATITUDE),
            longitude: body.coordinate("longitude", LONGITUDE),
            organization_id: body.int("organization_id", true, 1..=i64::MAX),
        }
    }
}

/// A request sets only the fields it carries.
impl ZoneInput {
    fn apply(&self, zone: &mut Zone) {
        set(&mut zone.name, &self.name);
        set(&mut zone.zone_type, &self.zone_type);
        set(&mut zone.capacity, &self.capacity);
        set(&mut zone.latitude, &self.latitude);
        set(&mut zone.longitude, &self.longitude);
        zone.updated_at = civic_core::time::now_rfc3339();
    }
}

fn full(org: i64) -> civic_core::Error {
    civic_core::Error::field(
        "organization_id",
        format!("Organization {org} already has {MAX_ZONES} zones."),
    )
}

#[derive(Deserialize, IntoParams)]
pub struct ZoneParams {
    /// Only this organization's zones.
    org_id: Option<String>,
    cursor: Option<String>,
}

/// Zones with their organization and cameras. With `org_id`: one query; otherwise pages of
/// whole organizations (`X-Next-Cursor`).
#[utoipa::path(get, path = "/api/zones", operation_id = "list_zones", tag = "zones", params(ZoneParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<ZoneOut>), (status = 400), (status = 401)))]
async fn list(S(s): S<State>, _: User, Query(q): Query<ZoneParams>) -> Result<Response> {
    let table = s.table.as_ref();
    if let Some(org) = int_param("org_id", q.org_id.as_deref())? {
        let tree = load_tree(table, org).await?;
        let zones: Vec<ZoneOut> = tree.iter().flat_map(Tree::zones_out).collect();
        return Ok(page::with_cursor(Json(zones), None));
    }
    let start = PageParams { cursor: q.cursor }.start()?;
    let (trees, next) = page_of_trees(table, start).await?;
    let zones: Vec<ZoneOut> = trees.iter().flat_map(Tree::zones_out).collect();
    Ok(page::with_cursor(Json(zones), next.map(|n| n.to_string())))
}

#[utoipa::path(post, path = "/api/zones", operation_id = "create_zone", tag = "zones", request_body = ZoneInput, security(("bearer" = [])),
    responses((status = 201, body = ZoneOut), (status = 400), (status = 401), (status = 403)))]
async fn create(
    S(s): S<State>,
    _: Admin,
    Valid(patch): Valid<ZoneInput>,
) -> Result<(StatusCode, Json<ZoneOut>)> {
    let org_id = patch.organization_id.unwrap_or_default();
    let table = s.table.as_ref();
    let id = ids::next_id(table, "zone").await?;
    let now = civic_core::time::now_rfc3339();
    let tree = retry::optimistic(|| async {
        let (org, version) = load_org(table, org_id)
            .await?
            .ok_or_else(|| no_such("organization_id", org_id))?;
        if org.zone_count >= MAX_ZONES {
            return Err(full(org_id));
        }
        let mut zone = Zone {
            id,
            organization_id: org_id,
            name: String::new(),
            zone_type: String::new(),
            capacity: 0,
            latitude: None,
            longitude: None,
            created_at: now.clone(),
            updated_at: now.clone(),
            camera_count: 0,
        };
        patch.apply(&mut zone);
        let writes = vec![
            count_child(org_key(org_id), "zone_count", 1, version),
            Write::Put {
                item: zone.to_item(1)?,
                cond: Cond::NotExists,
            },
            Write::Put {
                item: zone.pointer(),
                cond: Cond::NotExists,
            },
        ];
        let won = won(table.transact(writes).await)?;
        Ok(won.then(|| Tree {
            org,
            version: version + 1,
            zones: vec![ZoneNode {
                zone,
                version: 1,
                cameras: Vec::new(),
            }],
        }))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(tree.zone_out(&tree.zones[0]))))
}

/// A zone with its organization and cameras: two round trips (pointer, tree).
#[utoipa::path(get, path = "/api/zones/{id}", operation_id = "get_zone", tag = "zones", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = ZoneOut), (status = 401), (status = 404)))]
async fn detail(S(s): S<State>, _: User, Id(id): Id) -> Result<Json<ZoneOut>> {
    let tree = zone_tree(s.table.as_ref(), id)
        .await?
        .ok_or_else(|| not_found("Zone"))?;
    let node = tree.zone(id).ok_or_else(|| not_found("Zone"))?;
    Ok(Json(tree.zone_out(node)))
}

/// Update a zone; every field is optional. A new `organization_id` moves it with its cameras.
#[utoipa::path(put, path = "/api/zones/{id}", operation_id = "update_zone", tag = "zones", params(("id" = i64, Path)),
    request_body = ZonePatch, security(("bearer" = [])),
    responses((status = 200, body = ZoneOut), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update(
    S(s): S<State>,
    _: Admin,
    Id(id): Id,
    Patch(patch): Patch<ZoneInput>,
) -> Result<Json<ZoneOut>> {
    let table = s.table.as_ref();
    let (tree, node) = retry::optimistic(|| async {
        let tree = zone_tree(table, id)
            .await?
            .ok_or_else(|| not_found("Zone"))?;
        let mut node = tree.zone(id).cloned().ok_or_else(|| not_found("Zone"))?;
        patch.apply(&mut node.zone);
        match patch.organization_id {
            Some(to) if to != tree.org.id => move_zone(table, &tree, node, to).await,
            _ => {
                let item = node.zone.to_item(node.version + 1)?;
                let won = won(table.put(item, Cond::Version(node.version)).await)?;
                node.version += 1;
                Ok(won.then_some((tree, node)))
            }
        }
    })
    .await?;
    Ok(Json(tree.zone_out(&node)))
}

/// Moves a zone (already patched) and its cameras to organization `to`: one transaction of at
/// most 5 + 3 × [`MAX_CAMERAS`] writes, conditional on both organizations' versions.
async fn move_zone(
    table: &dyn Table,
    from: &Tree,
    mut node: ZoneNode,
    to: i64,
) -> Result<Option<(Tree, ZoneNode)>> {
    let (org, version) = load_org(table, to)
        .await?
        .ok_or_else(|| no_such("organization_id", to))?;
    if org.zone_count >= MAX_ZONES {
        return Err(full(to));
    }
    let old = node.clone();
    node.zone.organization_id = to;
    let cameras: Vec<Camera> = node
        .cameras
        .iter()
        .map(|c| Camera {
            organization_id: to,
            ..c.clone()
        })
        .collect();
    let mut writes = vec![
        count_child(org_key(from.org.id), "zone_count", -1, from.version),
        count_child(org_key(to), "zone_count", 1, version),
        Write::Delete {
            key: old.zone.key(),
            cond: Cond::Version(old.version),
        },
        Write::Put {
            item: node.zone.to_item(old.version + 1)?,
            cond: Cond::NotExists,
        },
        // Pointers are overwritten in place (a transaction touches each item once).
        Write::Put {
            item: node.zone.pointer(),
            cond: Cond::Always,
        },
    ];
    for (was, now) in old.cameras.iter().zip(&cameras) {
        writes.push(Write::Delete {
            key: was.key(),
            cond: Cond::Always,
        });
        writes.push(Write::Put {
            item: now.to_item()?,
            cond: Cond::NotExists,
        });
        writes.push(Write::Put {
            item: now.pointer(),
            cond: Cond::Always,
        });
    }
    debug_assert!(old.cameras.len() as i64 <= MAX_CAMERAS);
    if !won(table.transact(writes).await)? {
        return Ok(None);
    }
    node.cameras = cameras;
    node.version = old.version + 1;
    let tree = Tree {
        org,
        version: version + 1,
        zones: Vec::new(),
    };
    Ok(Some((tree, node)))
}

/// Delete a zone with its cameras (their alerts stay, as history).
#[utoipa::path(delete, path = "/api/zones/{id}", operation_id = "delete_zone", tag = "zones", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete(S(s): S<State>, _: Admin, Id(id): Id) -> Result<StatusCode> {
    let table = s.table.as_ref();
    retry::optimistic(|| async {
        let tree = zone_tree(table, id)
            .await?
            .ok_or_else(|| not_found("Zone"))?;
        let node = tree.zone(id).ok_or_else(|| not_found("Zone"))?;
        let mut writes = zone_deletes(node);
        writes.push(count_child(
            org_key(tree.org.id),
            "zone_count",
            -1,
            tree.version,
        ));
        won(table.transact(writes).await).map(|won| won.then_some(()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
