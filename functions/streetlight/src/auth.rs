//! Registration, login and token refresh.

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode};
use civic_auth::backoff::{self, Scope};
use civic_auth::first_user::{Refused, Registration};
use civic_auth::{Grant, TokenKind, Tokens, hash_password, verify_password};
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::item::from_item;
use civic_core::{Error, Result, ids};
use civic_store::{Cond, Update};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::users::{UserOut, UserRecord, user_key};
use crate::{Reply, Role, State, reply, required_string, secret};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(change_password))
}

const MIN_PASSWORD: usize = 8;

#[derive(ToSchema)]
pub struct RegisterRequest {
    name: String,
    email: String,
    password: String,
    city: String,
    /// Optional, default `viewer`. A higher role needs an admin's bearer token.
    role: Option<Role>,
}

impl FromBody for RegisterRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            name: required_string(b, "name"),
            email: required_string(b, "email"),
            password: secret(b, "password"),
            city: required_string(b, "city"),
            role: b.typed("role", false),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuthData {
    token: String,
    /// Extension: a single-use refresh token for `POST /api/auth/refresh`.
    #[serde(rename = "refreshToken")]
    refresh_token: String,
    user: UserOut,
}

/// Register a user. The first user of the app becomes its admin.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest, security((), ("bearer" = [])),
    responses((status = 201, body = inline(crate::Envelope<AuthData>)), (status = 400), (status = 403)))]
async fn register(
    S(s): S<State>,
    headers: HeaderMap,
    Valid(req): Valid<RegisterRequest>,
) -> Result<Reply<AuthData>> {
    let email = normalize_email(&req.email)?;
    check_password(&req.password)?;
    let requested = req.role.unwrap_or(Role::Viewer);
    // An admin may register users with any role; a present but bad token is an error, not anonymity.
    let caller_is_admin = match headers.contains_key(axum::http::header::AUTHORIZATION) {
        true => crate::User::from_headers(&s, &headers).await?.role == Role::Admin,
        false => false,
    };
    let table = s.table.as_ref();
    let elevated_without_admin = requested > Role::Viewer && !caller_is_admin;
    let refused = |r: Refused| match r {
        Refused::Elevated => Error::Forbidden(format!(
            "Only an admin can register a user with the {} role",
            requested.as_str()
        )),
        Refused::Exists => Error::bad_request("User already exists"),
    };
    let reg = Registration::open(table, elevated_without_admin)
        .await?
        .map_err(refused)?;

    let user = UserRecord {
        id: ids::next_id(table, "user").await?.to_string(),
        name: req.name,
        email,
        role: requested,
        city: req.city,
        password_hash: hash_password(&req.password).await?,
        created_at: civic_core::time::now_rfc3339(),
        token_version: 0,
        first_admin: false,
    };
    // Stored as the first admin when it is the app's first user.
    let first = UserRecord {
        role: Role::Admin,
        first_admin: true,
        ..user.clone()
    };
    let (first_items, items) = (vec![first.to_item()?], vec![user.to_item()?]);
    let user = match reg
        .store(table, first_items, items)
        .await?
        .map_err(refused)?
    {
        true => first,
        false => user,
    };
    let tokens = issue(&s, &user, None).await?;
    Ok(reply(
        StatusCode::CREATED,
        "User registered successfully",
        auth_data(tokens, &user),
    ))
}

/// The password policy of registration and password changes.
fn check_password(password: &str) -> Result<()> {
    match password.chars().count() < MIN_PASSWORD {
        true => Err(Error::bad_request(format!(
            "Password must be at least {MIN_PASSWORD} characters"
        ))),
        false => Ok(()),
    }
}

#[derive(ToSchema)]
pub struct LoginRequest {
    #[schema(required, nullable = false)]
    email: Option<String>,
    #[schema(required, nullable = false)]
    password: Option<String>,
}

/// Both are read as optional: missing credentials have login's own message.
impl FromBody for LoginRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            email: b.typed("email", false),
            password: b.typed("password", false),
        }
    }
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = inline(crate::Envelope<AuthData>)), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn login(S(s): S<State>, Valid(req): Valid<LoginRequest>) -> Result<Reply<AuthData>> {
    let (Some(email), Some(password)) = (
        req.email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty()),
        req.password.as_deref().filter(|p| !p.is_empty()),
    ) else {
        return Err(Error::bad_request(
            "Missing credentials: email and password are required",
        ));
    };
    let account = email.trim().to_lowercase();
    let user = backoff::guard(s.table.as_ref(), Scope::Login, &account, async {
        let user = match normalize_email(email) {
            Ok(email) => UserRecord::load(s.table.as_ref(), &email).await?,
            Err(_) => None,
        };
        if !verify_password(password, user.as_ref().map(|u| u.password_hash.as_str())).await? {
            return Err(Error::Unauthorized("Invalid credentials".into()));
        }
        user.ok_or_else(|| Error::Unauthorized("Invalid credentials".into()))
    })
    .await?;
    let tokens = issue(&s, &user, None).await?;
    Ok(reply(
        StatusCode::OK,
        "Login successful",
        auth_data(tokens, &user),
    ))
}

#[derive(ToSchema)]
pub struct RefreshRequest {
    #[serde(rename = "refreshToken")]
    refresh_token: String,
}

impl FromBody for RefreshRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            refresh_token: required_string(b, "refreshToken"),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenData {
    token: String,
    #[serde(rename = "refreshToken")]
    refresh_token: String,
}

/// Extension: exchange a refresh token for a new pair. Each refresh token works once; reusing
/// one revokes the whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = inline(crate::Envelope<TokenData>)), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn refresh(S(s): S<State>, Valid(req): Valid<RefreshRequest>) -> Result<Reply<TokenData>> {
    let token = req.refresh_token.as_str();
    let signed = s.auth.verify(token, TokenKind::Refresh)?;
    let table = s.table.as_ref();
    let (claims, user) = backoff::guard(table, Scope::Refresh, &signed.sub, async {
        let claims = s.auth.rotate(table, token).await?;
        // Role and city may have changed since login: the new access token says what is true now.
        let email = claims.extra_str("email").unwrap_or_default();
        let user = UserRecord::load(table, email)
            .await?
            .filter(|u| u.id == claims.sub)
            .ok_or_else(|| Error::Unauthorized("User no longer exists".into()))?;
        claims.check_version(user.token_version)?;
        Ok((claims, user))
    })
    .await?;
    let tokens = issue(&s, &user, claims.fam).await?;
    Ok(reply(
        StatusCode::OK,
        "Token refreshed",
        TokenData {
            token: tokens.access,
            refresh_token: tokens.refresh,
        },
    ))
}

/// Extension: revoke a refresh token.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = inline(crate::Envelope<Option<String>>)), (status = 400), (status = 401)))]
async fn logout(
    S(s): S<State>,
    Valid(req): Valid<RefreshRequest>,
) -> Result<Reply<Option<String>>> {
    s.auth.revoke(s.table.as_ref(), &req.refresh_token).await?;
    Ok(reply(StatusCode::OK, "Logged out", None))
}

async fn issue(s: &State, user: &UserRecord, family: Option<String>) -> Result<Tokens> {
    let grant = Grant::new(user.id.clone(), user.role.as_str(), user.token_version)
        .claim("email", user.email.clone())
        .claim("city", user.city.clone());
    s.auth.issue(s.table.as_ref(), &grant, family).await
}

#[derive(ToSchema)]
pub struct PasswordRequest {
    #[serde(rename = "currentPassword")]
    current_password: String,
    #[serde(rename = "newPassword")]
    new_password: String,
}

impl FromBody for PasswordRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            current_password: secret(b, "currentPassword"),
            new_password: secret(b, "newPassword"),
        }
    }
}

/// Extension: change the caller's password. The current password is required (a wrong one
/// counts towards the login backoff); every token issued before, on any device, stops working,
/// and the answer carries a fresh pair for this client.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordRequest, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<TokenData>)), (status = 400), (status = 401), (status = 403), (status = 429)))]
async fn change_password(
    S(s): S<State>,
    caller: crate::User,
    Valid(req): Valid<PasswordRequest>,
) -> Result<Reply<TokenData>> {
    let (current, new) = (req.current_password.as_str(), req.new_password.as_str());
    check_password(new)?;
    let table = s.table.as_ref();
    let user = UserRecord::load(table, &caller.email)
        .await?
        .ok_or_else(|| Error::Unauthorized("User no longer exists".into()))?;
    let wrong = "Current password is incorrect";
    backoff::confirm_password(table, &user.email, current, &user.password_hash, wrong).await?;
    let update = Update::new(user_key(&user.email))
        .set("password_hash", hash_password(new).await?)
        .add("token_version", 1)
        .cond(Cond::Exists);
    let user: UserRecord = from_item(table.update(update).await?)?;
    let tokens = issue(&s, &user, None).await?;
    Ok(reply(
        StatusCode::OK,
        "Password changed",
        TokenData {
            token: tokens.access,
            refresh_token: tokens.refresh,
        },
    ))
}

fn auth_data(tokens: Tokens, user: &UserRecord) -> AuthData {
    AuthData {
        token: tokens.access,
        refresh_token: tokens.refresh,
        user: user.out(),
    }
}

/// Emails are unique case-insensitively.
pub(crate) fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(Error::bad_request("Invalid email address"))
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_email;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email(" John@Example.COM ").unwrap(),
            "john@example.com"
        );
        for bad in [
            "",
            "john",
            "john@",
            "@example.com",
            "john@example",
            "jo hn@example.com",
            "john@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
