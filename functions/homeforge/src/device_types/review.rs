//! The staff's review: the pending queue, and approving or denying a proposal.

use axum::extract::State as S;
use axum::response::Response;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::{Error, Json, Query, Result, retry};
use civic_store::{Cond, GSI1PK, Key, StoreError, Update, VERSION, Write};
use utoipa::ToSchema;

use super::model::Record;
use super::{DeviceType, Status, type_key};
use crate::keys::{proposal_key, type_name_key, types_with_status};
use crate::{AtLeast, Caller, Id, PageParams, Staff, State, not_found};

/// `GET /admin/device-types/pending/` (owners and admins), with the full definition and card.
#[utoipa::path(get, path = "/api/admin/device-types/pending", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceType>, headers(("x-next-cursor" = String))), (status = 401), (status = 403)))]
pub(super) async fn pending(
    S(s): S<State>,
    _: Staff,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = civic_store::Query::index(types_with_status(Status::Pending));
    crate::list(s.table.as_ref(), q, params, |r: Record| r.t).await
}

/// `POST /admin/device-types/<id>/approve/` (owners and admins).
#[utoipa::path(post, path = "/api/admin/device-types/{id}/approve", tag = "admin", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DeviceType), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn approve(
    S(s): S<State>,
    AtLeast(caller): Staff,
    Id(id): Id,
) -> Result<Json<DeviceType>> {
    review(&s, &caller, id, Status::Approved, None)
        .await
        .map(Json)
}

#[derive(ToSchema)]
pub struct DenyRequest {
    reason: String,
}

impl FromBody for DenyRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            reason: b
                .strict_string("reason", true, false, 1000)
                .unwrap_or_default(),
        }
    }
}

/// `POST /admin/device-types/<id>/deny/` (owners and admins): `reason` is required and kept
/// for the proposer. The name becomes free for a corrected proposal.
#[utoipa::path(post, path = "/api/admin/device-types/{id}/deny", tag = "admin", params(("id" = i64, Path)),
    request_body = DenyRequest, security(("bearer" = [])),
    responses((status = 200, body = DeviceType), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn deny(
    S(s): S<State>,
    AtLeast(caller): Staff,
    Id(id): Id,
    Valid(req): Valid<DenyRequest>,
) -> Result<Json<DeviceType>> {
    review(&s, &caller, id, Status::Denied, Some(req.reason))
        .await
        .map(Json)
}

/// Moves a pending type to `verdict`: the type and the proposer's copy in one transaction,
/// conditional on the version read, so two reviewers cannot both decide.
async fn review(
    s: &State,
    reviewer: &Caller,
    id: i64,
    verdict: Status,
    reason: Option<String>,
) -> Result<DeviceType> {
    let table = s.table.as_ref();
    retry::optimistic(|| {
        let reason = reason.clone();
        async move {
            let Record { mut t, version } = Record::load(table, id).await?.ok_or_else(not_found)?;
            if t.status != Status::Pending {
                return Err(Error::bad_request(format!(
                    "Only a pending device type can be reviewed; this one is {}.",
                    t.status.as_str()
                )));
            }
            t.status = verdict;
            t.approved = verdict == Status::Approved;
            t.denial_reason = reason;
            t.reviewed_by = Some(reviewer.id());
            t.reviewed_at = Some(civic_core::time::now_rfc3339());
            let fields = |key: Key| {
                Update::new(key)
                    .set("status", verdict.as_str())
                    .set("approved", t.approved)
                    .set("denial_reason", t.denial_reason.clone())
                    .set("reviewed_by", t.reviewed_by)
                    .set("reviewed_at", t.reviewed_at.clone())
            };
            let mut writes = vec![
                Write::Update(
                    fields(type_key(id))
                        .set(GSI1PK, types_with_status(verdict))
                        .add(VERSION, 1)
                        .cond(Cond::Version(version)),
                ),
                Write::Update(fields(proposal_key(t.proposed_by, id)).cond(Cond::Exists)),
            ];
            if verdict == Status::Denied {
                writes.push(Write::Delete {
                    key: type_name_key(&t.name),
                    cond: Cond::Always,
                });
            }
            match table.transact(writes).await {
                Ok(()) => Ok(Some(t)),
                Err(StoreError::TransactionCanceled(_) | StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await
}
