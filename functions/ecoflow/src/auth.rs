//! Users: registration (the first user becomes ADMIN), login with the seed's customized token
//! response, refresh-token rotation, and the caller's own profile.

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode, header};
use civic_auth::backoff::{self, Scope};
use civic_auth::first_user::{Refused, Registration};
use civic_auth::{Grant, TokenKind, Tokens, hash_password, verify_password};
use civic_core::item::{from_item, to_item};
use civic_core::retry::won;
use civic_core::{Error, Json, Result, ids};
use civic_store::{Cond, GSI1PK, GSI1SK, Item, Key, PK, SK, Table};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::fields::{Body, FromBody, Patch, REQUIRED, Valid};
use crate::{Role, State, User, pad, version_of, with_version};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(me, update_me, patch_me))
}

const MIN_PASSWORD: usize = 8;
const NAME_MAX: usize = 150;

#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub eco_points: i64,
    pub password_hash: String,
    pub date_joined: String,
    /// The version of the account's tokens (see `civic_auth::Claims::ver`); EcoFlow has no
    /// password change yet, so it stays 0 unless an operator bumps it to revoke every token.
    #[serde(default)]
    pub token_version: i64,
}

/// Where an account is stored, by its (normalized) email.
pub fn user_key(email: &str) -> Key {
    Key::new(format!("USER#{email}"), "USER")
}

impl UserRecord {
    fn to_item(&self, version: i64) -> Result<Item> {
        let key = user_key(&self.email);
        let item = to_item(
            self,
            &[
                (PK, key.pk),
                (SK, key.sk),
                (GSI1PK, "USERS".into()),
                (GSI1SK, pad(self.id)),
            ],
        )?;
        Ok(with_version(item, version))
    }

    pub(crate) async fn load(table: &dyn Table, email: &str) -> Result<Option<(Self, i64)>> {
        let Some(item) = table.get(&user_key(email)).await? else {
            return Ok(None);
        };
        let version = version_of(&item);
        Ok(Some((from_item(item)?, version)))
    }

    fn profile(&self) -> Profile {
        Profile {
            id: self.id,
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            full_name: format!("{} {}", self.first_name, self.last_name)
                .trim()
                .to_owned(),
            role: self.role,
            eco_points: self.eco_points,
        }
    }
}

/// Request schema of `register` (for the docs: the body is checked field by field).
#[derive(ToSchema)]
pub struct RegisterRequest {
    #[schema(value_type = String)]
    email: Option<String>,
    #[schema(value_type = String)]
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// `USER` (default) or `ADMIN`; ADMIN needs an admin's bearer token, except for the first user.
    role: Option<Role>,
}

/// Each field checked so that every error is reported at once.
impl FromBody for RegisterRequest {
    fn from_body(body: &mut Body) -> Self {
        let email = body.string("email", true, false, 254);
        let email = email.and_then(|e| match normalize_email(&e) {
            Some(e) => Some(e),
            None => {
                body.error("email", "Enter a valid email address.");
                None
            }
        });
        let password = match body.has("password") {
            true => body.string("password", true, false, 128),
            false => {
                body.error("password", REQUIRED);
                None
            }
        };
        if password
            .as_ref()
            .is_some_and(|p| p.chars().count() < MIN_PASSWORD)
        {
            body.error(
                "password",
                format!("Ensure this field has at least {MIN_PASSWORD} characters."),
            );
        }
        Self {
            email,
            password,
            first_name: body.string("first_name", false, true, NAME_MAX),
            last_name: body.string("last_name", false, true, NAME_MAX),
            role: body.choice::<Role>("role", false),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    message: &'static str,
    user: RegisteredUser,
}

#[derive(Serialize, ToSchema)]
pub struct RegisteredUser {
    email: String,
    role: Role,
}

/// Register a user. The first user of the app becomes ADMIN.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest, security((), ("bearer" = [])),
    responses((status = 201, body = Registered), (status = 400), (status = 403)))]
async fn register(
    S(s): S<State>,
    headers: HeaderMap,
    Valid(input): Valid<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>)> {
    let (email, password) = (input.email.unwrap_or_default(), input.password);
    let requested = input.role.unwrap_or(Role::User);

    // A present but bad token is an error, not anonymity.
    let caller_is_admin = match headers.contains_key(header::AUTHORIZATION) {
        true => s.auth.bearer_headers(&headers)?.role == Role::Admin.as_str(),
        false => false,
    };
    let forbidden = || Error::Forbidden("Only an admin can register an ADMIN user.".into());
    let exists = || Error::field("email", "user with this email already exists.");
    let refused = |why| match why {
        Refused::Elevated => forbidden(),
        Refused::Exists => exists(),
    };
    let table = s.table.as_ref();
    let reg = Registration::open(table, requested > Role::User && !caller_is_admin)
        .await?
        .map_err(refused)?;
    // Checked before hashing, so a taken email costs no hashing (the store re-checks it).
    if table.get(&user_key(&email)).await?.is_some() {
        return Err(exists());
    }

    let user = UserRecord {
        id: ids::next_id(table, "user").await?,
        email,
        first_name: input.first_name.unwrap_or_default(),
        last_name: input.last_name.unwrap_or_default(),
        role: requested,
        eco_points: 0,
        password_hash: hash_password(&password.unwrap_or_default()).await?,
        date_joined: civic_core::time::now_rfc3339(),
        token_version: 0,
    };
    let first = UserRecord {
        role: Role::Admin,
        ..user.clone()
    };
    let (first_item, item) = (first.to_item(1)?, user.to_item(1)?);
    let is_first = reg.store(table, vec![first_item], vec![item]).await?;
    let user = if is_first.map_err(refused)? {
        first
    } else {
        user
    };
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            message: "User registered successfully",
            user: RegisteredUser {
                email: user.email,
                role: user.role,
            },
        }),
    ))
}

#[derive(ToSchema)]
pub struct LoginRequest {
    #[schema(value_type = String)]
    email: Option<String>,
    #[schema(value_type = String)]
    password: Option<String>,
}

impl FromBody for LoginRequest {
    fn from_body(body: &mut Body) -> Self {
        Self {
            email: body.string("email", true, false, 254),
            password: body.string("password", true, false, 128),
        }
    }
}

/// The seed's customized token response.
#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    refresh: String,
    access: String,
    user_id: i64,
    email: String,
    role: Role,
    /// The first name.
    name: String,
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn login(
    S(s): S<State>,
    Valid(LoginRequest { email, password }): Valid<LoginRequest>,
) -> Result<Json<LoginResponse>> {
    let (email, password) = (email.unwrap_or_default(), password.unwrap_or_default());
    let table = s.table.as_ref();
    let (user, _) = backoff::guard(table, Scope::Login, &email, async {
        let user = match normalize_email(&email) {
            Some(email) => UserRecord::load(table, &email).await?,
            None => None,
        };
        let hash = user.as_ref().map(|(u, _)| u.password_hash.as_str());
        let denied =
            || Error::Unauthorized("No active account found with the given credentials".into());
        if !verify_password(&password, hash).await? {
            return Err(denied());
        }
        user.ok_or_else(denied)
    })
    .await?;
    let tokens = issue(&s, &user, None).await?;
    Ok(Json(LoginResponse {
        refresh: tokens.refresh,
        access: tokens.access,
        user_id: user.id,
        email: user.email,
        role: user.role,
        name: user.first_name,
    }))
}

#[derive(ToSchema)]
pub struct RefreshRequest {
    #[schema(value_type = String)]
    refresh: Option<String>,
}

impl FromBody for RefreshRequest {
    fn from_body(body: &mut Body) -> Self {
        Self {
            refresh: body.string("refresh", true, false, 4096),
        }
    }
}

/// Refresh tokens rotate: the answer carries the next one too.
#[derive(Serialize, ToSchema)]
pub struct RefreshResponse {
    access: String,
    refresh: String,
}

/// Exchange a refresh token for a new access token and the next refresh token. Each refresh
/// token works once; reusing one revokes the whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = RefreshResponse), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn refresh(
    S(s): S<State>,
    Valid(RefreshRequest { refresh }): Valid<RefreshRequest>,
) -> Result<Json<RefreshResponse>> {
    let token = refresh.unwrap_or_default();
    let signed = s.auth.verify(&token, TokenKind::Refresh)?;
    let table = s.table.as_ref();
    let (claims, user) = backoff::guard(table, Scope::Refresh, &signed.sub, async {
        let claims = s.auth.rotate(table, &token).await?;
        let email = claims.extra_str("email").unwrap_or_default();
        let (user, _) = UserRecord::load(table, email)
            .await?
            .filter(|(u, _)| u.id.to_string() == claims.sub)
            .ok_or_else(|| Error::Unauthorized("User not found".into()))?;
        claims.check_version(user.token_version)?;
        Ok((claims, user))
    })
    .await?;
    let tokens = issue(&s, &user, claims.fam).await?;
    Ok(Json(RefreshResponse {
        access: tokens.access,
        refresh: tokens.refresh,
    }))
}

async fn issue(s: &State, user: &UserRecord, family: Option<String>) -> Result<Tokens> {
    let grant = Grant::new(user.id.to_string(), user.role.as_str(), user.token_version)
        .claim("email", user.email.clone());
    s.auth.issue(s.table.as_ref(), &grant, family).await
}

#[derive(Serialize, ToSchema)]
pub struct Profile {
    id: i64,
    email: String,
    first_name: String,
    last_name: String,
    full_name: String,
    role: Role,
    eco_points: i64,
}

/// Writable profile fields; `email`, `role` and `eco_points` are read-only and ignored.
#[derive(ToSchema)]
pub struct ProfileUpdate {
    first_name: Option<String>,
    last_name: Option<String>,
}

impl FromBody for ProfileUpdate {
    fn from_body(body: &mut Body) -> Self {
        Self {
            first_name: body.string("first_name", false, true, NAME_MAX),
            last_name: body.string("last_name", false, true, NAME_MAX),
        }
    }
}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 401)))]
async fn me(S(s): S<State>, user: User) -> Result<Json<Profile>> {
    let (record, _) = UserRecord::load(s.table.as_ref(), &user.email)
        .await?
        .ok_or_else(|| Error::Unauthorized("User not found".into()))?;
    Ok(Json(record.profile()))
}

/// Update the caller's names (all fields optional, as in PATCH).
#[utoipa::path(put, path = "/api/auth/me", tag = "auth", request_body = ProfileUpdate, security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 400), (status = 401)))]
async fn update_me(
    s: S<State>,
    user: User,
    Patch(p): Patch<ProfileUpdate>,
) -> Result<Json<Profile>> {
    edit_profile(s, user, p).await
}

#[utoipa::path(patch, path = "/api/auth/me", tag = "auth", request_body = ProfileUpdate, security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 400), (status = 401)))]
async fn patch_me(
    s: S<State>,
    user: User,
    Patch(p): Patch<ProfileUpdate>,
) -> Result<Json<Profile>> {
    edit_profile(s, user, p).await
}

async fn edit_profile(S(s): S<State>, user: User, input: ProfileUpdate) -> Result<Json<Profile>> {
    let ProfileUpdate {
        first_name,
        last_name,
    } = input;
    let table = s.table.as_ref();
    let record = civic_core::retry::optimistic(|| {
        let (first_name, last_name, email) = (first_name.clone(), last_name.clone(), &user.email);
        async move {
            let (mut record, version) = UserRecord::load(table, email)
                .await?
                .ok_or_else(|| Error::Unauthorized("User not found".into()))?;
            record.first_name = first_name.unwrap_or(record.first_name);
            record.last_name = last_name.unwrap_or(record.last_name);
            let item = record.to_item(version + 1)?;
            let won = won(table.put(item, Cond::Version(version)).await)?;
            Ok(won.then_some(record))
        }
    })
    .await?;
    Ok(Json(record.profile()))
}

/// Emails are unique case-insensitively.
fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    valid.then_some(email)
}
