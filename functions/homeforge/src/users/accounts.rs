//! The staff's user management: list, detail and update of any account they outrank.

use axum::extract::State as S;
use axum::response::Response;
use civic_core::{Json, Query, Result};

use super::change::apply;
use super::{ProfileForm, ProfileInput, UserOut, UserRecord};
use crate::{AtLeast, Base, Id, PageParams, Staff, State, not_found};

/// `GET /users/` (owners and admins): every user, by id.
#[utoipa::path(get, path = "/api/users", tag = "users", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<UserOut>, headers(("x-next-cursor" = String))), (status = 401), (status = 403)))]
pub(super) async fn list_users(
    S(s): S<State>,
    _: Staff,
    Base(base): Base,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = civic_store::Query::partition(crate::keys::USERS);
    crate::list(s.table.as_ref(), q, params, |u: UserRecord| u.out(&base)).await
}

/// `GET /users/<id>/` (owners and admins).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = UserOut), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn user_detail(
    S(s): S<State>,
    _: Staff,
    Id(id): Id,
    Base(base): Base,
) -> Result<Json<UserOut>> {
    let user = UserRecord::load(s.table.as_ref(), id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(user.out(&base)))
}

/// `PUT /users/<id>/` (owners and admins): the same fields as `PUT /me/`. An admin cannot
/// change an owner, nor grant a role above their own.
#[utoipa::path(put, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path)),
    request_body(content = ProfileForm, content_type = "multipart/form-data",
        description = "Any of the fields; also as `application/x-www-form-urlencoded` or JSON (without the avatar)"),
    responses((status = 200, body = UserOut), (status = 400), (status = 401), (status = 403), (status = 404), (status = 415)))]
pub(super) async fn update_user(
    S(s): S<State>,
    AtLeast(caller): Staff,
    Id(id): Id,
    Base(base): Base,
    input: ProfileInput,
) -> Result<Json<UserOut>> {
    let user = apply(&s, &caller, id, input).await?;
    Ok(Json(user.out(&base)))
}
