//! Session auth: login, logout, register, user, check. The session is a cookie
//! (`ozone_sessionid`); see `civic_auth::Sessions`.

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use civic_auth::backoff::{self, Scope};
use civic_auth::first_user::{Refused, Registration};
use civic_auth::{hash_password, verify_password};
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Result, ids};
use civic_store::{Cond, Item, Table, Typed, Update};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::keys::{USERS, indexed, user_index_sk, user_key};
use crate::{State, User};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(register))
        .routes(routes!(user))
        .routes(routes!(check))
        .routes(routes!(change_password))
        .routes(routes!(crate::live::ticket))
}

#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub password_hash: String,
    pub date_joined: String,
    /// Bumped by a password change: every session started before it ends.
    #[serde(default)]
    pub token_version: i64,
}

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_staff: bool,
    pub is_superuser: bool,
}

impl UserRecord {
    fn to_item(&self) -> Result<Item> {
        let keys = indexed(user_key(&self.username), USERS, user_index_sk(self.id));
        to_item(self, &keys)
    }

    pub(crate) async fn load(table: &dyn Table, username: &str) -> Result<Option<Self>> {
        Ok(table.get_as(&user_key(username)).await?)
    }

    pub fn out(&self) -> UserOut {
        UserOut {
            id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            is_staff: self.is_staff,
            is_superuser: self.is_superuser,
        }
    }
}

/// The user of the request's session, if it has a live one (started since the user's last
/// password change).
pub async fn session_user(s: &State, headers: &HeaderMap) -> Result<Option<UserRecord>> {
    let Some(session) = s.sessions.session(s.table.as_ref(), headers).await? else {
        return Ok(None);
    };
    let user = UserRecord::load(s.table.as_ref(), &session.subject).await?;
    Ok(user.filter(|u| session.is_current(u.token_version)))
}

#[derive(Serialize, ToSchema)]
pub struct UserReply {
    success: bool,
    user: UserOut,
}

#[derive(ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
}

impl FromBody for LoginRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            username: b.required_text("username").unwrap_or_default(),
            password: b.required_text("password").unwrap_or_default(),
        }
    }
}

/// Sign in; sets the `ozone_sessionid` cookie (HttpOnly, SameSite=Lax).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = UserReply, headers(("set-cookie" = String))), (status = 400), (status = 401), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn login(S(s): S<State>, Valid(req): Valid<LoginRequest>) -> Result<Response> {
    let (username, password) = (req.username.as_str(), req.password.as_str());
    let table = s.table.as_ref();
    let user = backoff::guard(table, Scope::Login, username, async {
        let user = UserRecord::load(table, username).await?;
        if !verify_password(password, user.as_ref().map(|u| u.password_hash.as_str())).await? {
            return Err(Error::Unauthorized("Invalid credentials".into()));
        }
        user.ok_or_else(|| Error::Unauthorized("Invalid credentials".into()))
    })
    .await?;
    signed_in(&s, &user).await
}

/// A new session for `user` at their current token version: the cookie and the user.
async fn signed_in(s: &State, user: &UserRecord) -> Result<Response> {
    let cookie = s
        .sessions
        .start(s.table.as_ref(), &user.username, user.token_version)
        .await?;
    let body = UserReply {
        success: true,
        user: user.out(),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Sign out: ends the session and clears the cookie (also when there was none).
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 200, body = serde_json::Value, example = json!({"success": true, "message": "Successfully logged out"}))))]
async fn logout(S(s): S<State>, headers: HeaderMap) -> Result<Response> {
    let cookie = s.sessions.end(s.table.as_ref(), &headers).await?;
    let body = json!({"success": true, "message": "Successfully logged out"});
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

#[derive(ToSchema)]
pub struct RegisterRequest {
    username: String,
    password: String,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// Only a superuser's session may grant this; otherwise 403.
    is_staff: Option<bool>,
    /// Only a superuser's session may grant this; otherwise 403.
    is_superuser: Option<bool>,
}

impl FromBody for RegisterRequest {
    fn from_body(b: &mut Body) -> Self {
        let username = b.required_text("username");
        if username.as_deref().is_some_and(|u| !valid_username(u)) {
            b.error(
                "username",
                "Enter a valid username: up to 150 letters, digits and @/./+/-/_ only.",
            );
        }
        let password = new_password(b, "password");
        let email = b
            .typed::<String>("email", false)
            .map(|e| e.trim().to_owned());
        if email
            .as_deref()
            .is_some_and(|e| !e.is_empty() && !valid_email(e))
        {
            b.error("email", "Enter a valid email address.");
        }
        Self {
            username: username.unwrap_or_default(),
            password,
            email,
            first_name: b.typed("first_name", false),
            last_name: b.typed("last_name", false),
            is_staff: b.typed("is_staff", false),
            is_superuser: b.typed("is_superuser", false),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RegisterReply {
    success: bool,
    message: String,
    user: UserOut,
}

const MIN_PASSWORD: usize = 8;

/// A new password (trimmed, as every required text): at least [`MIN_PASSWORD`] characters.
fn new_password(b: &mut Body, field: &str) -> String {
    let password = b.required_text(field).unwrap_or_default();
    if !password.is_empty() && password.chars().count() < MIN_PASSWORD {
        b.error(
            field,
            format!(
                "This password is too short. It must contain at least {MIN_PASSWORD} characters."
            ),
        );
    }
    password
}

/// Create a user. The app's first user becomes staff and superuser.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = RegisterReply), (status = 400), (status = 403)))]
async fn register(
    S(s): S<State>,
    headers: HeaderMap,
    Valid(req): Valid<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterReply>)> {
    let wants_privilege = req.is_staff == Some(true) || req.is_superuser == Some(true);
    let caller = session_user(&s, &headers).await?;
    if wants_privilege && caller.is_some() {
        // The caller's session grants privilege here: the same CSRF check as `User`.
        s.sessions
            .check_origin(&axum::http::Method::POST, &headers)?;
    }
    let caller_is_superuser = caller.as_ref().is_some_and(|u| u.is_superuser);
    let table = s.table.as_ref();
    let reg = Registration::open(table, wants_privilege && !caller_is_superuser)
        .await?
        .map_err(refused)?;
    let user = UserRecord {
        id: ids::next_id(table, "user").await?,
        username: req.username,
        email: req.email.unwrap_or_default().to_lowercase(),
        first_name: req.first_name.unwrap_or_default().trim().to_owned(),
        last_name: req.last_name.unwrap_or_default().trim().to_owned(),
        is_staff: req.is_staff.unwrap_or(false),
        is_superuser: req.is_superuser.unwrap_or(false),
        password_hash: hash_password(&req.password).await?,
        date_joined: crate::iso(crate::now()),
        token_version: 0,
    };
    let first = UserRecord {
        is_staff: true,
        is_superuser: true,
        ..user.clone()
    };
    let (first_item, item) = (first.to_item()?, user.to_item()?);
    let is_first = reg.store(table, vec![first_item], vec![item]).await?;
    let user = if is_first.map_err(refused)? {
        first
    } else {
        user
    };
    Ok((
        StatusCode::CREATED,
        Json(RegisterReply {
            success: true,
            message: "User created successfully".into(),
            user: user.out(),
        }),
    ))
}

/// A refused registration in this app's words.
fn refused(r: Refused) -> Error {
    match r {
        Refused::Elevated => {
            Error::Forbidden("Only a superuser can create staff or superusers.".into())
        }
        Refused::Exists => Error::field("username", "A user with that username already exists."),
    }
}

/// Django's rule: up to 150 letters, digits and `@.+-_`.
fn valid_username(u: &str) -> bool {
    u.chars().count() <= 150
        && u.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'))
}

fn valid_email(e: &str) -> bool {
    e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/user", tag = "auth", security(("session" = [])),
    responses((status = 200, body = UserReply), (status = 401)))]
async fn user(User(user): User) -> Json<UserReply> {
    Json(UserReply {
        success: true,
        user: user.out(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct CheckReply {
    authenticated: bool,
    user: Option<UserOut>,
}

/// Whether the request carries a live session (never an error for a missing one).
#[utoipa::path(get, path = "/api/auth/check", tag = "auth",
    responses((status = 200, body = CheckReply)))]
async fn check(S(s): S<State>, headers: HeaderMap) -> Result<Json<CheckReply>> {
    let user = session_user(&s, &headers).await?;
    Ok(Json(CheckReply {
        authenticated: user.is_some(),
        user: user.map(|u| u.out()),
    }))
}

#[derive(ToSchema)]
pub struct PasswordRequest {
    current_password: String,
    new_password: String,
}

impl FromBody for PasswordRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            current_password: b.required_text("current_password").unwrap_or_default(),
            new_password: new_password(b, "new_password"),
        }
    }
}

/// Extension: change the signed-in user's password. The current password is required (a
/// wrong one counts towards the login backoff); every session of the user, on any device,
/// ends, and this client gets a new session cookie.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordRequest, security(("session" = [])),
    responses((status = 200, body = UserReply, headers(("set-cookie" = String))), (status = 400), (status = 401), (status = 403), (status = 429)))]
async fn change_password(
    S(s): S<State>,
    User(user): User,
    Valid(req): Valid<PasswordRequest>,
) -> Result<Response> {
    let (current, new) = (req.current_password.as_str(), req.new_password.as_str());
    let table = s.table.as_ref();
    let wrong = "Current password is incorrect";
    backoff::confirm_password(table, &user.username, current, &user.password_hash, wrong).await?;
    let update = Update::new(user_key(&user.username))
        .set("password_hash", hash_password(new).await?)
        .add("token_version", 1)
        .cond(Cond::Exists);
    let user: UserRecord = from_item(table.update(update).await?)?;
    signed_in(&s, &user).await
}
