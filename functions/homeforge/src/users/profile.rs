//! The caller's own profile (`/me/`) and the profile-update body that `PUT /me/` and
//! `PUT /users/<id>/` read: multipart (with an avatar), form-encoded or JSON.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Multipart, Request, State as S};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use civic_core::fields::{Body, FromBody};
use civic_core::{Error, Form, Json, Result};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::change::apply;
use super::{UserOut, accent, email, new_password, role, username};
use crate::{Base, Caller, Role, State};

/// `GET /me/`.
#[utoipa::path(get, path = "/api/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserOut), (status = 401)))]
pub(super) async fn me(Caller(user): Caller, Base(base): Base) -> Json<UserOut> {
    Json(user.out(&base))
}

/// A profile update from `multipart/form-data` (the seed's way, the only one that carries an
/// avatar), `application/x-www-form-urlencoded` or JSON: its text fields, read as a
/// [`ProfileForm`] whatever the encoding, and the avatar file.
pub struct ProfileInput(pub(super) ProfileForm);

/// A profile update's fields as the docs show them (`ProfileInput` reads them).
// Every one is optional: what is absent stays as it is.
#[derive(ToSchema)]
pub struct ProfileForm {
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) username: Option<String>,
    /// A new password (a reset). It revokes every token of the account issued before.
    pub(super) password: Option<String>,
    /// Extension: required with `password` on `PUT /me/` (400 without it, 403 when wrong);
    /// ignored on `PUT /users/{id}/`.
    pub(super) current_password: Option<String>,
    /// `owner`, `admin`, `user` or `viewer`: not above your own.
    #[schema(value_type = Option<String>)]
    pub(super) role: Option<Role>,
    /// `#RRGGBB`.
    pub(super) accent_color: Option<String>,
    /// PNG, JPEG, GIF or WebP; at most 2 MiB and 4096 px a side.
    #[schema(value_type = Option<String>, format = Binary)]
    pub(super) avatar: Option<Bytes>,
}

/// The text fields (in DRF's order of errors); the avatar is a file, which
/// [`ProfileInput`] adds.
impl FromBody for ProfileForm {
    fn from_body(b: &mut Body) -> Self {
        Self {
            username: username(b),
            email: email(b),
            first_name: b.strict_string("first_name", false, true, 150),
            last_name: b.strict_string("last_name", false, true, 150),
            role: role(b),
            accent_color: accent(b),
            password: new_password(b, false),
            current_password: b.typed("current_password", false),
            avatar: None,
        }
    }
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
        let (fields, avatar) = if kind.starts_with("multipart/form-data") {
            multipart_fields(req, state).await?
        } else if kind.starts_with("application/x-www-form-urlencoded") {
            let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state).await?;
            (pairs.into_iter().collect(), None)
        } else if kind.starts_with("application/json") {
            (json_fields(req, state).await?, None)
        } else {
            return Err(Error::UnsupportedMediaType(format!(
                "Unsupported media type \"{kind}\" in request."
            )));
        };
        let text: Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        let mut form: ProfileForm = Body::of(Value::Object(text)).partial().read()?;
        form.avatar = avatar;
        Ok(Self(form))
    }
}

/// A multipart form's text fields and its `avatar` file.
async fn multipart_fields<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<(BTreeMap<String, String>, Option<Bytes>)> {
    let mut form = Multipart::from_request(req, state).await.map_err(|_| {
        Error::bad_request("Multipart form parse error - Invalid boundary in multipart: None")
    })?;
    let (mut fields, mut avatar) = (BTreeMap::new(), None);
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "avatar" {
            let is_file = field.file_name().is_some();
            let bytes = field.bytes().await.map_err(multipart_error)?;
            if !is_file && bytes.is_empty() {
                continue; // an empty form field: no new avatar
            }
            avatar = Some(bytes);
        } else {
            let text = field.text().await.map_err(multipart_error)?;
            fields.insert(name, text);
        }
    }
    Ok((fields, avatar))
}

/// A JSON body's fields as a form would send them: strings (null leaves a field as it is);
/// any other value, and an avatar (which only multipart carries), is a field error.
async fn json_fields<S: Send + Sync>(req: Request, state: &S) -> Result<BTreeMap<String, String>> {
    let Json(body) = Json::<Map<String, Value>>::from_request(req, state).await?;
    let (mut fields, mut errors) = (BTreeMap::new(), Vec::new());
    for (name, value) in body {
        match value {
            Value::String(s) if name != "avatar" => {
                fields.insert(name, s);
            }
            Value::Null => {}
            _ if name == "avatar" => errors.push((
                name,
                "The submitted data was not a file. Check the encoding type on the form.".into(),
            )),
            _ => errors.push((name, "Not a valid string.".into())),
        }
    }
    match errors.is_empty() {
        true => Ok(fields),
        false => Err(Error::Fields(errors)),
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
pub(super) async fn update_me(
    S(s): S<State>,
    caller: Caller,
    Base(base): Base,
    input: ProfileInput,
) -> Result<Json<UserOut>> {
    let user = apply(&s, &caller, caller.id(), input).await?;
    Ok(Json(user.out(&base)))
}
