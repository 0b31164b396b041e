//! Users: the stored record and the admin endpoints (list, change role).

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Query, Result, page};
use civic_store::Typed;
use civic_store::{Cond, GSI1PK, GSI1SK, Item, PK, SK, StoreError, Table, Update};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::normalize_email;
pub use crate::keys::user_key;
use crate::keys::{USERS, user_index_sk};
use crate::{Admin, AtLeast, Role, State, User, reply, required_string};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(set_role))
}

#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub city: String,
    pub password_hash: String,
    pub created_at: String,
    /// Bumped by a password change: every token issued before it stops working.
    #[serde(default)]
    pub token_version: i64,
    /// The app's first user (its superuser): only they may change another admin, and nobody
    /// may change them.
    #[serde(default)]
    pub first_admin: bool,
}

/// A user as the API shows it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub city: String,
}

impl UserRecord {
    pub fn to_item(&self) -> Result<Item> {
        let key = user_key(&self.email);
        let id: u64 = self.id.parse().unwrap_or_default();
        to_item(
            self,
            &[
                (PK, key.pk),
                (SK, key.sk),
                (GSI1PK, USERS.into()),
                (GSI1SK, user_index_sk(id)),
            ],
        )
    }

    pub async fn load(table: &dyn Table, email: &str) -> Result<Option<Self>> {
        Ok(table.get_as(&user_key(email)).await?)
    }

    pub fn out(&self) -> UserOut {
        UserOut {
            id: self.id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            role: self.role,
            city: self.city.clone(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct PageParams {
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// Opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Extension (admin): list users, oldest first, one page at a time.
#[utoipa::path(get, path = "/api/users", tag = "users", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Vec<UserOut>>)), (status = 401), (status = 403)))]
async fn list_users(S(s): S<State>, _: Admin, Query(q): Query<PageParams>) -> Result<Response> {
    let limit = page::limit(q.limit, 100, 1000)?;
    let res = s
        .table
        .query_as::<UserRecord>(
            civic_store::Query::index(USERS)
                .limit(limit)
                .cursor(q.cursor),
        )
        .await?;
    let users: Vec<_> = res.items.iter().map(UserRecord::out).collect();
    Ok(page::with_cursor(
        reply(StatusCode::OK, "Users retrieved successfully", users),
        res.cursor,
    ))
}

/// Whether `actor` ranks strictly above `target`: by role, and the first admin above the
/// other admins.
pub(crate) fn outranks(actor: &User, target: &UserRecord) -> bool {
    (actor.role, actor.first_admin) > (target.role, target.first_admin)
}

#[derive(ToSchema)]
pub struct RoleRequest {
    email: String,
    #[schema(required, nullable = false)]
    role: Option<Role>,
}

impl FromBody for RoleRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            email: required_string(b, "email"),
            // Required too, but named only once `email` is there, as the seed's handler does.
            role: b.typed("role", false),
        }
    }
}

/// Extension (admin): change a user's role. It applies from the user's next request. Only a
/// strictly higher rank may change an account: admins change operators and viewers; another
/// admin only the first admin (the app's first user), whom nobody else can change.
#[utoipa::path(post, path = "/api/users/role", tag = "users", request_body = RoleRequest, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<UserOut>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn set_role(
    S(s): S<State>,
    AtLeast(user): Admin,
    Valid(req): Valid<RoleRequest>,
) -> Result<crate::Reply<UserOut>> {
    let role = req
        .role
        .ok_or_else(|| Error::bad_request("Missing required fields: role"))?;
    let email = normalize_email(&req.email)?;
    if email == user.email {
        return Err(Error::bad_request("Admins cannot change their own role"));
    }
    let target = UserRecord::load(s.table.as_ref(), &email)
        .await?
        .ok_or_else(|| Error::NotFound("User not found".into()))?;
    if !outranks(&user, &target) {
        return Err(Error::Forbidden(
            "Only the first admin can change another admin's account".into(),
        ));
    }
    let update = Update::new(user_key(&email))
        .set("role", role.as_str())
        .cond(Cond::Exists);
    let item = match s.table.update(update).await {
        Err(StoreError::ConditionFailed) => return Err(Error::NotFound("User not found".into())),
        other => other?,
    };
    let updated: UserRecord = from_item(item)?;
    Ok(reply(StatusCode::OK, "User role updated", updated.out()))
}
