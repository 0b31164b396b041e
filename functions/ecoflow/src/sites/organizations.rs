//! Organizations: each read returns the whole nested tree; delete takes the tree with it.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::retry::won;
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Table, Write};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    LATITUDE, LONGITUDE, NAME_MAX, Org, OrgOut, PageParams, TYPE_MAX, Tree, load_tree, org_key,
    page_of_trees, set, zone_deletes,
};
use crate::fields::{Body, FromBody, Patch, Valid};
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
pub struct OrgInput {
    #[schema(value_type = String)]
    name: Option<String>,
    org_type: Option<String>,
    total_capacity: Option<i64>,
    /// -90..90, at most 6 decimals; number or string; null clears it.
    #[schema(value_type = Option<f64>)]
    latitude: Option<Option<String>>,
    /// -180..180, at most 6 decimals.
    #[schema(value_type = Option<f64>)]
    longitude: Option<Option<String>>,
}

civic_core::schema_variant!(
    /// `PUT`'s body: an organization's fields, each optional (a partial update).
    pub OrgPatch = OrgInput, []
);

impl FromBody for OrgInput {
    fn from_body(body: &mut Body) -> Self {
        Self {
            name: body.string("name", true, false, NAME_MAX),
            org_type: body.string("org_type", false, true, TYPE_MAX),
            total_capacity: body.int("total_capacity", false, 0..=MAX_CAPACITY),
            latitude: body.coordinate("latitude", LATITUDE),
            longitude: body.coordinate("longitude", LONGITUDE),
        }
    }
}

/// A request sets only the fields it carries.
impl OrgInput {
    fn apply(&self, org: &mut Org) {
        set(&mut org.name, &self.name);
        set(&mut org.org_type, &self.org_type);
        set(&mut org.total_capacity, &self.total_capacity);
        set(&mut org.latitude, &self.latitude);
        set(&mut org.longitude, &self.longitude);
    }
}

/// Every organization with its zones and cameras, by id. Pages hold whole organizations;
/// `X-Next-Cursor` names the next page.
#[utoipa::path(get, path = "/api/organizations", operation_id = "list_organizations", tag = "organizations", params(PageParams),
    security(("bearer" = [])), responses((status = 200, body = Vec<OrgOut>), (status = 401)))]
async fn list(S(s): S<State>, _: User, Query(q): Query<PageParams>) -> Result<Response> {
    let (trees, next) = page_of_trees(s.table.as_ref(), q.start()?).await?;
    let out: Vec<OrgOut> = trees.iter().map(Tree::out).collect();
    Ok(page::with_cursor(Json(out), next.map(|n| n.to_string())))
}

#[utoipa::path(post, path = "/api/organizations", operation_id = "create_organization", tag = "organizations", request_body = OrgInput,
    security(("bearer" = [])),
    responses((status = 201, body = OrgOut), (status = 400), (status = 401), (status = 403)))]
async fn create(
    S(s): S<State>,
    _: Admin,
    Valid(patch): Valid<OrgInput>,
) -> Result<(StatusCode, Json<OrgOut>)> {
    let now = civic_core::time::now_rfc3339();
    let mut org = Org {
        id: ids::next_id(s.table.as_ref(), "organization").await?,
        name: String::new(),
        org_type: String::new(),
        total_capacity: 0,
        latitude: None,
        longitude: None,
        created_at: now.clone(),
        updated_at: now,
        zone_count: 0,
    };
    patch.apply(&mut org);
    s.table.put(org.to_item(1)?, Cond::NotExists).await?;
    let tree = Tree {
        org,
        version: 1,
        zones: Vec::new(),
    };
    Ok((StatusCode::CREATED, Json(tree.out())))
}

/// One organization with its zones and cameras: one query.
#[utoipa::path(get, path = "/api/organizations/{id}", operation_id = "get_organization", tag = "organizations", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = OrgOut), (status = 401), (status = 404)))]
async fn detail(S(s): S<State>, _: User, Id(id): Id) -> Result<Json<OrgOut>> {
    let tree = load_tree(s.table.as_ref(), id)
        .await?
        .ok_or_else(|| not_found("Organization"))?;
    Ok(Json(tree.out()))
}

/// Update an organization; every field is optional.
#[utoipa::path(put, path = "/api/organizations/{id}", operation_id = "update_organization", tag = "organizations", params(("id" = i64, Path)),
    request_body = OrgPatch, security(("bearer" = [])),
    responses((status = 200, body = OrgOut), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update(
    S(s): S<State>,
    _: Admin,
    Id(id): Id,
    Patch(patch): Patch<OrgInput>,
) -> Result<Json<OrgOut>> {
    let table = s.table.as_ref();
    let tree = retry::optimistic(|| async {
        let mut tree = load_tree(table, id)
            .await?
            .ok_or_else(|| not_found("Organization"))?;
        patch.apply(&mut tree.org);
        tree.org.updated_at = civic_core::time::now_rfc3339();
        let item = tree.org.to_item(tree.version + 1)?;
        let won = won(table.put(item, Cond::Version(tree.version)).await)?;
        Ok(won.then_some(tree))
    })
    .await?;
    Ok(Json(tree.out()))
}

/// Delete an organization with its zones and cameras (their alerts stay, as history).
#[utoipa::path(delete, path = "/api/organizations/{id}", operation_id = "delete_organization", tag = "organizations", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete(S(s): S<State>, _: Admin, Id(id): Id) -> Result<StatusCode> {
    delete_org(s.table.as_ref(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the tree in transactions of at most 100 writes, the organization last at the
/// version read; if something was added meanwhile, it reads the tree again and goes on.
pub async fn delete_org(table: &dyn Table, id: i64) -> Result<()> {
    retry::optimistic(|| async {
        let tree = load_tree(table, id)
            .await?
            .ok_or_else(|| not_found("Organization"))?;
        let mut writes: Vec<Write> = tree.zones.iter().flat_map(zone_deletes).collect();
        writes.push(Write::Delete {
            key: org_key(id),
            cond: Cond::Version(tree.version),
        });
        // Chunks end-aligned, so the organization's delete is in the last one.
        let mut chunks: Vec<Vec<Write>> = writes
            .rchunks(100)
            .map(<[Write]>::to_vec)
            .collect::<Vec<_>>();
        chunks.reverse();
        for chunk in chunks {
            if !won(table.transact(chunk).await)? {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await
    .map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict("The organization is changing; retry".into()),
        e => e,
    })
}
