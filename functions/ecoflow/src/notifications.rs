//! Notifications: broadcasts to every user. A broadcast is one item in a shared partition,
//! so sending is one write and listing is one query, whatever the number of users.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::item::to_item;
use civic_core::{Json, Query, Result, ids, page};
use civic_store::{Cond, Key, PK, SK, Typed};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::fields::{Body, FromBody, Valid};
use crate::{Admin, Id, State, User, not_found, pad};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, broadcast))
        .routes(routes!(detail, delete))
}

const PARTITION: &str = "NOTIFICATIONS";

fn key(id: i64) -> Key {
    Key::new(PARTITION, pad(id))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Notification {
    id: i64,
    title: String,
    message: String,
    created_at: String,
}

#[derive(Deserialize, IntoParams)]
pub struct PageParams {
    /// Extension: page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Broadcasts, newest first.
#[utoipa::path(get, path = "/api/notifications", operation_id = "list_notifications", tag = "notifications", params(PageParams),
    security(("bearer" = [])), responses((status = 200, body = Vec<Notification>), (status = 400), (status = 401)))]
async fn list(S(s): S<State>, _: User, Query(q): Query<PageParams>) -> Result<Response> {
    let limit = page::limit(q.limit, 100, 1000)?;
    let newest = civic_store::Query::partition(PARTITION)
        .reverse()
        .limit(limit)
        .cursor(q.cursor);
    page::items::<Notification>(s.table.as_ref(), newest).await
}

#[derive(ToSchema)]
pub struct NewNotification {
    #[schema(value_type = String)]
    title: Option<String>,
    #[schema(value_type = String)]
    message: Option<String>,
}

impl FromBody for NewNotification {
    fn from_body(body: &mut Body) -> Self {
        Self {
            title: body.string("title", true, false, 255),
            message: body.string("message", true, false, 10_000),
        }
    }
}

/// Broadcast a message to all users.
#[utoipa::path(post, path = "/api/notifications", tag = "notifications", request_body = NewNotification,
    security(("bearer" = [])),
    responses((status = 201, body = Notification), (status = 400), (status = 401), (status = 403)))]
async fn broadcast(
    S(s): S<State>,
    _: Admin,
    Valid(NewNotification { title, message }): Valid<NewNotification>,
) -> Result<(StatusCode, Json<Notification>)> {
    let n = Notification {
        id: ids::next_id(s.table.as_ref(), "notification").await?,
        title: title.unwrap_or_default(),
        message: message.unwrap_or_default(),
        created_at: civic_core::time::now_rfc3339(),
    };
    let k = key(n.id);
    s.table
        .put(to_item(&n, &[(PK, k.pk), (SK, k.sk)])?, Cond::NotExists)
        .await?;
    crate::live::notification(&s.platform, n.id, &n).await;
    Ok((StatusCode::CREATED, Json(n)))
}

#[utoipa::path(get, path = "/api/notifications/{id}", operation_id = "get_notification", tag = "notifications", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = Notification), (status = 401), (status = 404)))]
async fn detail(S(s): S<State>, _: User, Id(id): Id) -> Result<Json<Notification>> {
    let n = s
        .table
        .get_as::<Notification>(&key(id))
        .await?
        .ok_or_else(|| not_found("Notification"))?;
    Ok(Json(n))
}

#[utoipa::path(delete, path = "/api/notifications/{id}", operation_id = "delete_notification", tag = "notifications", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
async fn delete(S(s): S<State>, _: Admin, Id(id): Id) -> Result<StatusCode> {
    match s.table.delete(&key(id), Cond::Always).await? {
        Some(_) => {
            crate::live::notification_deleted(&s.platform, id).await;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(not_found("Notification")),
    }
}
