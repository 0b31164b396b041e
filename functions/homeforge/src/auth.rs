//! Registration, login and token refresh (SimpleJWT's shapes: `{refresh, access}`).

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode};
use civic_auth::backoff::{self, Scope};
use civic_auth::first_user::{Refused, Registration};
use civic_auth::{Grant, TokenKind, Tokens, hash_password, verify_password};
use civic_core::fields::{Body, FromBody, REQUIRED, Valid};
use civic_core::{Error, Json, Result, ids};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::users::{DEFAULT_ACCENT, UserOut, UserRecord, email, new_password, role, username};
use crate::{Base, Role, State, caller};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
}

#[derive(ToSchema)]
pub struct RegisterRequest {
    username: String,
    #[schema(value_type = Option<String>)]
    email: String,
    /// At least 4 characters and one uppercase letter, and not one of the most common
    /// passwords (extension).
    password: String,
    #[schema(value_type = Option<String>)]
    first_name: String,
    #[schema(value_type = Option<String>)]
    last_name: String,
    /// `owner`, `admin`, `user` (default) or `viewer`. Above `user` needs the bearer token of
    /// an owner or admin (at most their own role).
    #[schema(value_type = Option<String>)]
    role: Role,
}

/// Every field's errors together, in DRF's order.
impl FromBody for RegisterRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            username: username(b).unwrap_or_default(),
            email: email(b).unwrap_or_default(),
            first_name: b
                .strict_string("first_name", false, true, 150)
                .unwrap_or_default(),
            last_name: b
                .strict_string("last_name", false, true, 150)
                .unwrap_or_default(),
            role: role(b).unwrap_or(Role::User),
            password: new_password(b, true).unwrap_or_default(),
        }
    }
}

/// Register a user. The first user of the app becomes its owner, with superuser rights.
#[utoipa::path(post, path = "/api/register", tag = "auth", request_body = RegisterRequest, security((), ("bearer" = [])),
    responses((status = 201, body = UserOut), (status = 400), (status = 401), (status = 403)))]
async fn register(
    S(s): S<State>,
    headers: HeaderMap,
    Base(base): Base,
    Valid(req): Valid<RegisterRequest>,
) -> Result<(StatusCode, Json<UserOut>)> {
    let role = req.role;
    // A token that comes along must be valid; an owner or admin may grant up to their own role.
    let granter = caller(&s, &headers).await?.map(|c| c.role());
    let elevated = role > Role::User && !granter.is_some_and(|g| g.is_staff() && role <= g);
    let table = s.table.as_ref();
    let refused = |r: Refused| match r {
        Refused::Elevated => Error::Forbidden(format!(
            "Only an owner or admin can register a user with the {} role.",
            role.as_str()
        )),
        Refused::Exists => Error::field("username", "A user with that username already exists."),
    };
    let reg = Registration::open(table, elevated)
        .await?
        .map_err(refused)?;

    let user = UserRecord {
        id: ids::next_id(table, "user").await?,
        username: req.username,
        email: req.email,
        first_name: req.first_name,
        last_name: req.last_name,
        role,
        is_superuser: false,
        avatar: None,
        accent_color: DEFAULT_ACCENT.into(),
        password_hash: hash_password(&req.password).await?,
        date_joined: civic_core::time::now_rfc3339(),
        version: 1,
        token_version: 0,
    };
    // The first user is the owner, with superuser rights.
    let first = UserRecord {
        role: Role::Owner,
        is_superuser: true,
        ..user.clone()
    };
    let items = |u: &UserRecord| Ok::<_, Error>(vec![u.to_item()?, u.username_item()]);
    let user = match reg.store(table, items(&first)?, items(&user)?).await? {
        Ok(true) => first,
        Ok(false) => user,
        Err(r) => return Err(refused(r)),
    };
    Ok((StatusCode::CREATED, Json(user.out(&base))))
}

#[derive(ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
}

impl FromBody for LoginRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            username: given(b, "username", true),
            password: given(b, "password", false),
        }
    }
}

/// SimpleJWT's fields: absent, null or blank (`trim`: after trimming) is [`REQUIRED`].
fn given(b: &mut Body, field: &str, trim: bool) -> String {
    let value = b.typed::<String>(field, false).unwrap_or_default();
    let value = match trim {
        true => value.trim().to_owned(),
        false => value,
    };
    if value.is_empty() {
        b.error(field, REQUIRED);
    }
    value
}

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    refresh: String,
    access: String,
}

/// Obtain a token pair. Usernames match without regard to case.
#[utoipa::path(post, path = "/api/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn login(S(s): S<State>, Valid(req): Valid<LoginRequest>) -> Result<Json<TokenPair>> {
    let (username, password) = (req.username.as_str(), req.password.as_str());
    let table = s.table.as_ref();
    let user = backoff::guard(table, Scope::Login, username, async {
        let user = UserRecord::by_username(table, username).await?;
        let denied =
            || Error::Unauthorized("No active account found with the given credentials".into());
        if !verify_password(password, user.as_ref().map(|u| u.password_hash.as_str())).await? {
            return Err(denied());
        }
        user.ok_or_else(denied)
    })
    .await?;
    Ok(Json(issue(&s, &user, None).await?.into()))
}

#[derive(ToSchema)]
pub struct RefreshRequest {
    refresh: String,
}

impl FromBody for RefreshRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            refresh: given(b, "refresh", true),
        }
    }
}

/// Exchange a refresh token for a new pair. Each refresh token works once; reusing one revokes
/// the whole session.
#[utoipa::path(post, path = "/api/token/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn refresh(S(s): S<State>, Valid(req): Valid<RefreshRequest>) -> Result<Json<TokenPair>> {
    let token = req.refresh.as_str();
    let signed = s.auth.verify(token, TokenKind::Refresh)?;
    let table = s.table.as_ref();
    let (claims, user) = backoff::guard(table, Scope::Refresh, &signed.sub, async {
        let claims = s.auth.rotate(table, token).await?;
        let id = claims.sub.parse().unwrap_or_default();
        let user = UserRecord::load(table, id)
            .await?
            .ok_or_else(|| Error::Unauthorized("User not found".into()))?;
        claims.check_version(user.token_version)?;
        Ok((claims, user))
    })
    .await?;
    Ok(Json(issue(&s, &user, claims.fam).await?.into()))
}

async fn issue(s: &State, user: &UserRecord, family: Option<String>) -> Result<Tokens> {
    let grant = Grant::new(user.id.to_string(), user.role.as_str(), user.token_version)
        .claim("username", user.username.clone());
    s.auth.issue(s.table.as_ref(), &grant, family).await
}

impl From<Tokens> for TokenPair {
    fn from(t: Tokens) -> Self {
        Self {
            refresh: t.refresh,
            access: t.access,
        }
    }
}
