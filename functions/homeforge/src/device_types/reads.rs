//! Reading device types: the list a caller may see, the caller's own proposals, one type.

use axum::extract::State as S;
use axum::response::Response;
use civic_core::{Json, Query, Result};

use super::model::Record;
use super::{DeviceType, Status, load_type};
use crate::keys::{PROPOSAL, TYPES, proposals_pk, types_with_status};
use crate::{Caller, Id, PageParams, State, not_found};

/// `GET /device-types/`: owners and admins see every type, others the approved ones.
#[utoipa::path(get, path = "/api/device-types", tag = "device-types", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceType>, headers(("x-next-cursor" = String))), (status = 401)))]
pub(super) async fn list_types(
    S(s): S<State>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = match caller.is_staff() {
        true => civic_store::Query::partition(TYPES),
        false => civic_store::Query::index(types_with_status(Status::Approved)),
    };
    crate::list(s.table.as_ref(), q, params, |r: Record| r.t).await
}

/// Extension: the caller's own proposals in every state, with the reason of a denial.
#[utoipa::path(get, path = "/api/device-types/mine", tag = "device-types", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceType>, headers(("x-next-cursor" = String))), (status = 401)))]
pub(super) async fn my_proposals(
    S(s): S<State>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = civic_store::Query::partition(proposals_pk(caller.id())).prefix(PROPOSAL);
    crate::list(s.table.as_ref(), q, params, |r: Record| r.t).await
}

/// Extension: one type. Approved types are visible to everyone; a pending or denied one to its
/// proposer and to owners and admins.
#[utoipa::path(get, path = "/api/device-types/{id}", tag = "device-types", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = DeviceType), (status = 401), (status = 404)))]
pub(super) async fn type_detail(
    S(s): S<State>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<DeviceType>> {
    load_type(s.table.as_ref(), id)
        .await?
        .filter(|t| t.approved || caller.can_see(t.proposed_by))
        .map(Json)
        .ok_or_else(not_found)
}
