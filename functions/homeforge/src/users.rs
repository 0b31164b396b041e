//! Users: the stored record, the caller's profile (`/me/`, with avatar uploads), the staff's
//! user management, and the avatar files themselves.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Multipart, Path, Request, State as S};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use civic_auth::backoff;
use civic_auth::hash_password;
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Form, Json, Query, Result, retry};
use civic_store::{Cond, Item, Key, StoreError, Table, Write};
use civic_vision::decode::{ImageError, ImageLimits, decode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AtLeast, Base, Caller, Id, Invalid, PageParams, Role, Staff, State, not_found, optional_text,
    required_text, sk,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(list_users))
        .routes(routes!(user_detail, update_user))
        .routes(routes!(avatar_file))
}

pub const DEFAULT_ACCENT: &str = "#3B82F6";
const AVATARS: &str = "homeforge/avatars/";

#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    /// The first user's Django-admin rights.
    pub is_superuser: bool,
    /// Blob key of the avatar, if any.
    pub avatar: Option<String>,
    pub accent_color: String,
    pub password_hash: String,
    pub date_joined: String,
    #[serde(default)]
    pub version: i64,
    /// Bumped by a password change: every token issued before it stops working.
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
    pub is_superuser: bool,
    pub profile: Profile,
}

#[derive(Serialize, ToSchema)]
pub struct Profile {
    /// Absolute URL of the avatar (`{base}/media/avatars/{file}`), or null.
    pub avatar: Option<String>,
    pub role: Role,
    pub accent_color: String,
}

pub fn user_key(id: i64) -> Key {
    Key::new("USERS", sk(id))
}

pub fn username_key(username: &str) -> Key {
    Key::new(format!("USERNAME#{}", username.to_lowercase()), "USERNAME")
}

impl UserRecord {
    pub fn to_item(&self) -> Result<Item> {
        let key = user_key(self.id);
        to_item(self, &[("PK", key.pk), ("SK", key.sk)])
    }

    /// The item that reserves this user's username.
    pub fn username_item(&self) -> Item {
        let key = username_key(&self.username);
        let mut item = Item::new();
        item.insert("PK".into(), key.pk.into());
        item.insert("SK".into(), key.sk.into());
        item.insert("id".into(), self.id.into());
        item
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Option<Self>> {
        table.get(&user_key(id)).await?.map(from_item).transpose()
    }

    pub async fn by_username(table: &dyn Table, username: &str) -> Result<Option<Self>> {
        let id = table
            .get(&username_key(username.trim()))
            .await?
            .and_then(|m| m.get("id").and_then(Value::as_i64));
        match id {
            Some(id) => Self::load(table, id).await,
            None => Ok(None),
        }
    }

    pub fn out(&self, base: &str) -> UserOut {
        UserOut {
            id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            is_superuser: self.is_superuser,
            profile: Profile {
                avatar: self
                    .avatar
                    .as_deref()
                    .map(|key| format!("{base}/media/avatars/{}", key.trim_start_matches(AVATARS))),
                role: self.role,
                accent_color: self.accent_color.clone(),
            },
        }
    }
}

/// Django's username rule: letters, digits and `@.+-_`, at most 150 characters.
pub fn valid_username(v: Option<&str>) -> std::result::Result<String, String> {
    let name = required_text(v, 150)?;
    match name
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        true => Ok(name),
        false => Err("Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.".into()),
    }
}

/// Optional, but well-formed when given.
pub fn valid_email(v: Option<&str>) -> std::result::Result<String, String> {
    let email = optional_text(v, 254)?;
    let ok = email.is_empty()
        || (email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }) && !email.chars().any(char::is_whitespace));
    match ok {
        true => Ok(email),
        false => Err("Enter a valid email address.".into()),
    }
}

/// The seed's policy: at least 4 characters, at least one uppercase letter; and, beyond the
/// seed, not one of the most common passwords. Every failed rule is reported.
pub fn password_errors(password: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if civic_auth::is_common_password(password) {
        errors.push("This password is too common.".to_owned());
    }
    if password.chars().count() < 4 {
        errors.push("Ensure this field has at least 4 characters.".to_owned());
    }
    if !password.chars().any(char::is_uppercase) {
        errors.push("Password must contain at least one uppercase letter.".to_owned());
    }
    errors
}

/// `#RRGGBB`.
pub fn valid_accent(v: &str) -> std::result::Result<String, String> {
    let v = v.trim();
    match v.len() == 7 && v.starts_with('#') && v[1..].chars().all(|c| c.is_ascii_hexdigit()) {
        true => Ok(v.to_owned()),
        false => Err("Enter a valid hex color in the form #RRGGBB, e.g. #3B82F6.".into()),
    }
}

/// `GET /me/`.
#[utoipa::path(get, path = "/api/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserOut), (status = 401)))]
async fn me(Caller(user): Caller, Base(base): Base) -> Json<UserOut> {
    Json(user.out(&base))
}

/// The fields of a profile update, from `multipart/form-data` (the seed's way, the only one
/// that carries an avatar), `application/x-www-form-urlencoded` or JSON. Every field is
/// optional: what is absent stays as it is.
/// Its schema is [`ProfileForm`].
#[derive(Default)]
pub struct ProfileInput {
    /// Text fields by name (`first_name`, `last_name`, `email`, `username`, `password`,
    /// `current_password`, `role`, `accent_color`); others are ignored.
    fields: BTreeMap<String, String>,
    /// The `avatar` file's bytes.
    avatar: Option<Bytes>,
}

/// A profile update's fields as the docs show them (`ProfileInput` reads them).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProfileForm {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    username: Option<String>,
    /// A new password (a reset). It revokes every token of the account issued before.
    password: Option<String>,
    /// Extension: required with `password` on `PUT /me/` (400 without it, 403 when wrong);
    /// ignored on `PUT /users/{id}/`.
    current_password: Option<String>,
    /// `owner`, `admin`, `user` or `viewer`: not above your own.
    role: Option<String>,
    /// `#RRGGBB`.
    accent_color: Option<String>,
    /// PNG, JPEG, GIF or WebP; at most 2 MiB and 4096 px a side.
    #[schema(value_type = Option<String>, format = Binary)]
    avatar: Option<Bytes>,
}

impl<S: Send + Sync> FromRequest<S> for ProfileInput {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let kind = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut input = ProfileInput::default();
        if kind.starts_with("multipart/form-data") {
            let mut form = Multipart::from_request(req, state).await.map_err(|_| {
                Error::bad_request(
                    "Multipart form parse error - Invalid boundary in multipart: None",
                )
            })?;
            while let Some(field) = form.next_field().await.map_err(multipart_error)? {
                let name = field.name().unwrap_or_default().to_owned();
                if name == "avatar" {
                    let is_file = field.file_name().is_some();
                    let bytes = field.bytes().await.map_err(multipart_error)?;
                    if !is_file && bytes.is_empty() {
                        continue; // an empty form field: no new avatar
                    }
                    input.avatar = Some(bytes);
                } else {
                    let text = field.text().await.map_err(multipart_error)?;
                    input.fields.insert(name, text);
                }
            }
        } else if kind.starts_with("application/x-www-form-urlencoded") {
            let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state).await?;
            input.fields.extend(pairs);
        } else if kind.starts_with("application/json") {
            let Json(body) =
                Json::<serde_json::Map<String, Value>>::from_request(req, state).await?;
            let mut invalid = Invalid::default();
            for (name, value) in body {
                match value {
                    Value::String(s) if name != "avatar" => {
                        input.fields.insert(name, s);
                    }
                    Value::Null => {}
                    _ if name == "avatar" => invalid.add(
                        "avatar",
                        "The submitted data was not a file. Check the encoding type on the form.",
                    ),
                    _ => invalid.add(&name, "Not a valid string."),
                }
            }
            invalid.check()?;
        } else {
            return Err(Error::UnsupportedMediaType(format!(
                "Unsupported media type \"{kind}\" in request."
            )));
        }
        Ok(input)
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> Error {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge("Request body is too large".into()),
        _ => Error::bad_request(format!("Multipart form parse error - {}", e.body_text())),
    }
}

/// `PUT /me/`: the caller's own profile. A role above the caller's own is refused.
#[utoipa::path(put, path = "/api/me", tag = "users", security(("bearer" = [])),
    request_body(content = ProfileForm, content_type = "multipart/form-data",
        description = "Any of the fields; also as `application/x-www-form-urlencoded` or JSON (without the avatar)"),
    responses((status = 200, body = UserOut), (status = 400), (status = 401), (status = 403), (status = 413), (status = 415), (status = 429, description = "Too many failed attempts on this account: `Retry-After` gives the seconds to wait")))]
async fn update_me(
    S(s): S<State>,
    caller: Caller,
    Base(base): Base,
    input: ProfileInput,
) -> Result<Json<UserOut>> {
    let user = apply(&s, &caller, caller.id(), input).await?;
    Ok(Json(user.out(&base)))
}

/// `GET /users/` (owners and admins): every user, by id.
#[utoipa::path(get, path = "/api/users", tag = "users", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<UserOut>, headers(("x-next-cursor" = String))), (status = 401), (status = 403)))]
async fn list_users(
    S(s): S<State>,
    _: Staff,
    Base(base): Base,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = civic_store::Query::partition("USERS");
    crate::list(s.table.as_ref(), q, params, |u: UserRecord| u.out(&base)).await
}

/// `GET /users/<id>/` (owners and admins).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = UserOut), (status = 401), (status = 403), (status = 404)))]
async fn user_detail(
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
async fn update_user(
    S(s): S<State>,
    AtLeast(caller): Staff,
    Id(id): Id,
    Base(base): Base,
    input: ProfileInput,
) -> Result<Json<UserOut>> {
    let user = apply(&s, &caller, id, input).await?;
    Ok(Json(user.out(&base)))
}

/// A validated profile change.
#[derive(Default)]
struct Change {
    username: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    role: Option<Role>,
    accent_color: Option<String>,
    password_hash: Option<String>,
    /// The stored avatar's blob key.
    avatar: Option<String>,
}

/// Validates `input`, stores a new avatar, then applies the change to user `id` with an
/// optimistic versioned write (a username change moves its uniqueness item in the same
/// transaction).
async fn apply(s: &State, actor: &Caller, id: i64, input: ProfileInput) -> Result<UserRecord> {
    let mut change = validate(&input).await?;
    if change.password_hash.is_some() && actor.id() == id {
        confirm_current_password(s, actor, &input).await?;
    }
    if let Some(bytes) = input.avatar {
        change.avatar = Some(store_avatar(s, id, bytes).await?);
    }
    let result = retry::optimistic(|| attempt(s, actor, id, &change)).await;
    match &result {
        Ok((_, Some(old))) => {
            if let Err(e) = s.blob.delete(old).await {
                tracing::warn!(error = %e, key = old, "could not delete a replaced avatar");
            }
        }
        Err(_) => {
            if let Some(new) = &change.avatar {
                let _ = s.blob.delete(new).await;
            }
        }
        _ => {}
    }
    result.map(|(user, _)| user)
}

async fn validate(input: &ProfileInput) -> Result<Change> {
    let mut invalid = Invalid::default();
    let f = |name: &str| input.fields.get(name).map(String::as_str);
    let mut change = Change {
        username: f("username").and_then(|v| invalid.take("username", valid_username(Some(v)))),
        email: f("email").and_then(|v| invalid.take("email", valid_email(Some(v)))),
        first_name: f("first_name")
            .and_then(|v| invalid.take("first_name", optional_text(Some(v), 150))),
        last_name: f("last_name")
            .and_then(|v| invalid.take("last_name", optional_text(Some(v), 150))),
        role: f("role").and_then(|v| invalid.take("role", Role::parse(v))),
        accent_color: f("accent_color").and_then(|v| invalid.take("accent_color", valid_accent(v))),
        ..Change::default()
    };
    // An empty password field (a form that always sends it) leaves the password as it is.
    let password = f("password").filter(|p| !p.is_empty());
    for msg in password.map(password_errors).unwrap_or_default() {
        invalid.add("password", msg);
    }
    invalid.check()?;
    if let Some(p) = password {
        change.password_hash = Some(hash_password(p).await?);
    }
    Ok(change)
}

/// A self-service password change must prove the current password (an extension: a stolen
/// access token alone must not be enough to take the account over). A wrong one counts
/// towards the login backoff.
async fn confirm_current_password(s: &State, actor: &Caller, input: &ProfileInput) -> Result<()> {
    let Some(current) = input
        .fields
        .get("current_password")
        .filter(|p| !p.is_empty())
    else {
        return Err(Error::field("current_password", crate::REQUIRED));
    };
    let (user, wrong) = (&actor.0, "Current password is incorrect.");
    backoff::confirm_password(
        s.table.as_ref(),
        &user.username,
        current,
        &user.password_hash,
        wrong,
    )
    .await
}

/// Decodes the upload whole (off the async threads) within the avatar limits, then stores the
/// original bytes under a fresh name with the type the decoder found, never the client's.
async fn store_avatar(s: &State, user: i64, bytes: Bytes) -> Result<String> {
    let checked = bytes.clone();
    let info = tokio::task::spawn_blocking(move || {
        decode(&checked, &ImageLimits::AVATAR).map(|(info, _)| info)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| match e {
        ImageError::TooLarge { .. } => Error::from(e),
        other => Error::field("avatar", other.to_string()),
    })?;
    let key = format!(
        "{AVATARS}{user}-{}.{}",
        uuid::Uuid::new_v4().simple(),
        info.extension()
    );
    s.blob.put(&key, bytes, info.content_type()).await?;
    Ok(key)
}

/// One try: `None` when another writer changed the user first. Returns the user and the avatar
/// it replaced.
async fn attempt(
    s: &State,
    actor: &Caller,
    id: i64,
    change: &Change,
) -> Result<Option<(UserRecord, Option<String>)>> {
    let table = s.table.as_ref();
    let mut user = UserRecord::load(table, id).await?.ok_or_else(not_found)?;
    authorize(actor, &user, change.role)?;
    let old_username = user.username.clone();
    let old_avatar = user.avatar.clone();
    let c = change;
    if let Some(v) = &c.username {
        user.username = v.clone();
    }
    if let Some(v) = &c.email {
        user.email = v.clone();
    }
    if let Some(v) = &c.first_name {
        user.first_name = v.clone();
    }
    if let Some(v) = &c.last_name {
        user.last_name = v.clone();
    }
    if let Some(v) = c.role {
        user.role = v;
    }
    if let Some(v) = &c.accent_color {
        user.accent_color = v.clone();
    }
    if let Some(v) = &c.password_hash {
        user.password_hash = v.clone();
        user.token_version += 1;
    }
    if let Some(v) = &c.avatar {
        user.avatar = Some(v.clone());
    }
    let expected = user.version;
    user.version += 1;
    let mut writes = vec![Write::Put {
        item: user.to_item()?,
        cond: Cond::Version(expected),
    }];
    let renamed = old_username.to_lowercase() != user.username.to_lowercase();
    if renamed {
        writes.push(Write::Put {
            item: user.username_item(),
            cond: Cond::NotExists,
        });
        writes.push(Write::Delete {
            key: username_key(&old_username),
            cond: Cond::Always,
        });
    }
    match table.transact(writes).await {
        Ok(()) => {
            let replaced = old_avatar.filter(|_| c.avatar.is_some());
            Ok(Some((user, replaced)))
        }
        Err(StoreError::TransactionCanceled(failed)) if renamed && failed.contains(&1) => Err(
            Error::field("username", "A user with that username already exists."),
        ),
        Err(StoreError::TransactionCanceled(_) | StoreError::Conflict) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Who may change whom: nobody raises their own role; staff manage accounts of a strictly
/// lower rank (so no admin changes another admin, no owner another owner), and the first
/// owner (the superuser) outranks the other owners and is changed only by themself.
fn authorize(actor: &Caller, target: &UserRecord, role: Option<Role>) -> Result<()> {
    let forbid = |msg: &str| Err(Error::Forbidden(msg.into()));
    if actor.id() == target.id {
        return match role {
            Some(r) if r > target.role => forbid("You cannot raise your own role."),
            _ => Ok(()),
        };
    }
    if !actor.is_staff() {
        return forbid("Only Admins/Owners can perform this action.");
    }
    if target.is_superuser {
        return forbid("Only the first owner can change their own account.");
    }
    let rank = |u: &UserRecord| (u.role, u.is_superuser);
    if rank(&actor.0) <= rank(target) {
        return forbid("Only a higher role can change this account.");
    }
    match role {
        Some(r) if r > actor.role() => forbid("You cannot grant a role above your own."),
        _ => Ok(()),
    }
}

/// `GET /media/avatars/<file>`: an avatar's bytes, as `profile.avatar` links them. Public, as
/// Django serves media; the names are random. Only a user's current avatar is served: the
/// name starts with the user's id, and the record must still point at it (so a replaced
/// avatar is gone at once, and S3 is asked only for keys that exist).
#[utoipa::path(get, path = "/media/avatars/{file}", tag = "users",
    params(("file" = String, Path, description = "The file name in `profile.avatar`")),
    responses((status = 200, description = "The image", content_type = "image/*"), (status = 404)))]
async fn avatar_file(S(s): S<State>, Path(file): Path<String>) -> Result<Response> {
    let key = format!("{AVATARS}{file}");
    let owner = file.split_once('-').and_then(|(id, _)| id.parse().ok());
    let user = match owner {
        Some(id) => UserRecord::load(s.table.as_ref(), id).await?,
        None => None,
    };
    if user.and_then(|u| u.avatar) != Some(key.clone()) {
        return Err(not_found());
    }
    let object = s.blob.get(&key).await?.ok_or_else(not_found)?;
    let content_type = HeaderValue::from_str(&object.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        object.body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy_reports_every_rule() {
        assert!(password_errors("Abcd").is_empty());
        assert_eq!(password_errors("abc").len(), 2);
        assert_eq!(
            password_errors("abcdef"),
            ["Password must contain at least one uppercase letter."]
        );
        assert_eq!(password_errors("ABC").len(), 1);
    }

    #[test]
    fn accent_colors_are_six_hex_digits() {
        assert_eq!(valid_accent("#ff5733"), Ok("#ff5733".into()));
        for bad in ["ff5733", "#ff573", "#ff57333", "#gg5733", "", "#FF573Z"] {
            assert!(valid_accent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_and_emails() {
        assert_eq!(
            valid_username(Some(" john.doe+1 ")),
            Ok("john.doe+1".into())
        );
        assert!(valid_username(Some("john doe")).is_err());
        assert!(valid_username(Some("")).is_err());
        assert_eq!(valid_email(Some("")), Ok(String::new()));
        assert!(valid_email(Some("john@example.com")).is_ok());
        assert!(valid_email(Some("john@example")).is_err());
    }
}
