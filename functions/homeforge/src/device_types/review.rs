//! The staff's review: the pending queue, and approving or denying a proposal.

use axum::extract::State as S;
use axum::response::Response;
use civic_core::{Error, Json, Query, Result, retry};
use civic_store::{Cond, Key, StoreError, Update, Write};
use serde::Deserialize;
use utoipa::ToSchema;

use super::model::{Record, name_key, proposal_key};
use super::{DeviceType, Status, type_key};
use crate::{AtLeast, Caller, Id, PageParams, Staff, State, not_found, required_text};

/// `GET /admin/device-types/pending/` (owners and admins), with the full definition and card.
#[utoipa::path(get, path = "/api/admin/device-types/pending", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceType>, headers(("x-next-cursor" = String))), (status = 401), (status = 403)))]
pub(super) async fn pending(
    S(s): S<State>,
    _: Staff,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = civic_store::Query::index("TYPES#pending");
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

#[derive(Deserialize, ToSchema)]
pub struct DenyRequest {
    #[schema(required, nullable = false)]
    reason: Option<String>,
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
    Json(req): Json<DenyRequest>,
) -> Result<Json<DeviceType>> {
    let reason =
        required_text(req.reason.as_deref(), 1000).map_err(|m| Error::field("reason", m))?;
    review(&s, &caller, id, Status::Denied, Some(reason))
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
                        .set("GSI1PK", format!("TYPES#{}", verdict.as_str()))
                        .add("version", 1)
                        .cond(Cond::Version(version)),
                ),
                Write::Update(fields(proposal_key(t.proposed_by, id)).cond(Cond::Exists)),
            ];
            if verdict == Status::Denied {
                writes.push(Write::Delete {
                    key: name_key(&t.name),
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
