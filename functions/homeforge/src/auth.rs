//! Registration, login and token refresh (SimpleJWT's shapes: `{refresh, access}`).

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode};
use civic_auth::backoff::{self, Scope};
use civic_auth::first_user::{self, Claim};
use civic_auth::{Grant, TokenKind, Tokens, hash_password, verify_password};
use civic_core::{Error, Json, Result, ids};
use civic_store::{Cond, StoreError, Write};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::users::{
    DEFAULT_ACCENT, UserOut, UserRecord, password_errors, valid_email, valid_username,
};
use crate::{Base, Invalid, REQUIRED, Role, State, caller, optional_text};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(required, nullable = false)]
    username: Option<String>,
    email: Option<String>,
    /// At least 4 characters and one uppercase letter, and not one of the most common
    /// passwords (extension).
    #[schema(required, nullable = false)]
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// `owner`, `admin`, `user` (default) or `viewer`. Above `user` needs the bearer token of
    /// an owner or admin (at most their own role).
    role: Option<String>,
}

/// Register a user. The first user of the app becomes its owner, with superuser rights.
#[utoipa::path(post, path = "/api/register", tag = "auth", request_body = RegisterRequest, security((), ("bearer" = [])),
    responses((status = 201, body = UserOut), (status = 400), (status = 401), (status = 403)))]
async fn register(
    S(s): S<State>,
    headers: HeaderMap,
    Base(base): Base,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<UserOut>)> {
    let fields = validate(&req)?;
    let role = fields.role;

    // A token that comes along must be valid; an owner or admin may grant up to their own role.
    let granter = caller(&s, &headers).await?.map(|c| c.role());
    let elevated = role > Role::User && !granter.is_some_and(|g| g.is_staff() && role <= g);
    let has_first = first_user::exists(s.table.as_ref()).await?;
    if has_first && elevated {
        return Err(forbidden(role));
    }

    let mut user = UserRecord {
        id: ids::next_id(s.table.as_ref(), "user").await?,
        username: fields.username,
        email: fields.email,
        first_name: fields.first_name,
        last_name: fields.last_name,
        role,
        is_superuser: false,
        avatar: None,
        accent_color: DEFAULT_ACCENT.into(),
        password_hash: hash_password(req.password.as_deref().unwrap_or_default()).await?,
        date_joined: civic_core::time::now_rfc3339(),
        version: 1,
        token_version: 0,
    };
    store(&s, &mut user, has_first, elevated).await?;
    Ok((StatusCode::CREATED, Json(user.out(&base))))
}

/// A registration's checked fields.
struct Fields {
    username: String,
    email: String,
    first_name: String,
    last_name: String,
    role: Role,
}

/// Every field's errors together, as DRF reports them.
fn validate(req: &RegisterRequest) -> Result<Fields> {
    let mut invalid = Invalid::default();
    let username = invalid.take("username", valid_username(req.username.as_deref()));
    let email = invalid.take("email", valid_email(req.email.as_deref()));
    let first_name = invalid.take("first_name", optional_text(req.first_name.as_deref(), 150));
    let last_name = invalid.take("last_name", optional_text(req.last_name.as_deref(), 150));
    let role = match req.role.as_deref() {
        None => Some(Role::User),
        Some(r) => invalid.take("role", Role::parse(r)),
    };
    match req.password.as_deref() {
        None | Some("") => invalid.add("password", REQUIRED),
        Some(p) => password_errors(p)
            .into_iter()
            .for_each(|m| invalid.add("password", m)),
    }
    invalid.check()?;
    let (Some(username), Some(role)) = (username, role) else {
        return Err(Error::Internal("validated fields missing".into()));
    };
    Ok(Fields {
        username,
        email: email.unwrap_or_default(),
        first_name: first_name.unwrap_or_default(),
        last_name: last_name.unwrap_or_default(),
        role,
    })
}

fn forbidden(role: Role) -> Error {
    Error::Forbidden(format!(
        "Only an owner or admin can register a user with the {} role.",
        role.as_str()
    ))
}

/// Writes the new user. With no first user yet, it races to become the owner (with superuser
/// rights); having lost that race, an elevated registration is refused after all, since the
/// role check above assumed no owner existed.
async fn store(s: &State, user: &mut UserRecord, has_first: bool, elevated: bool) -> Result<()> {
    let taken = || Error::field("username", "A user with that username already exists.");
    let claim = match has_first {
        true => Claim::Lost,
        false => {
            let first = UserRecord {
                role: Role::Owner,
                is_superuser: true,
                ..user.clone()
            };
            first_user::claim_items(
                s.table.as_ref(),
                vec![first.to_item()?, first.username_item()],
            )
            .await?
        }
    };
    match claim {
        Claim::Won => {
            user.role = Role::Owner;
            user.is_superuser = true;
        }
        Claim::UserExists => return Err(taken()),
        Claim::Lost if elevated => return Err(forbidden(user.role)),
        Claim::Lost => {
            let writes = vec![
                Write::Put {
                    item: user.username_item(),
                    cond: Cond::NotExists,
                },
                Write::Put {
                    item: user.to_item()?,
                    cond: Cond::NotExists,
                },
            ];
            match s.table.transact(writes).await {
                Err(StoreError::TransactionCanceled(_)) => return Err(taken()),
                other => other?,
            }
        }
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(required, nullable = false)]
    username: Option<String>,
    #[schema(required, nullable = false)]
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    refresh: String,
    access: String,
}

/// Obtain a token pair. Usernames match without regard to case.
#[utoipa::path(post, path = "/api/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn login(S(s): S<State>, Json(req): Json<LoginRequest>) -> Result<Json<TokenPair>> {
    let mut invalid = Invalid::default();
    let username = req
        .username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let password = req.password.as_deref().filter(|p| !p.is_empty());
    if username.is_none() {
        invalid.add("username", REQUIRED);
    }
    if password.is_none() {
        invalid.add("password", REQUIRED);
    }
    invalid.check()?;
    let (Some(username), Some(password)) = (username, password) else {
        return Err(Error::Internal("validated fields missing".into()));
    };
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

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    #[schema(required, nullable = false)]
    refresh: Option<String>,
}

/// Exchange a refresh token for a new pair. Each refresh token works once; reusing one revokes
/// the whole session.
#[utoipa::path(post, path = "/api/token/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn refresh(S(s): S<State>, Json(req): Json<RefreshRequest>) -> Result<Json<TokenPair>> {
    let token = req
        .refresh
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::field("refresh", REQUIRED))?;
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
