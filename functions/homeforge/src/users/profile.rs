//! The caller's own profile (`/me/`) and the profile-update body that `PUT /me/` and
//! `PUT /users/<id>/` read: multipart (with an avatar), form-encoded or JSON.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Multipart, Request, State as S};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use civic_core::{Error, Form, Json, Result};
use serde_json::Value;
use utoipa::ToSchema;

use super::UserOut;
use super::change::apply;
use crate::{Base, Caller, Invalid, State};

/// `GET /me/`.
#[utoipa::path(get, path = "/api/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserOut), (status = 401)))]
pub(super) async fn me(Caller(user): Caller, Base(base): Base) -> Json<UserOut> {
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
    pub(super) fields: BTreeMap<String, String>,
    /// The `avatar` file's bytes.
    pub(super) avatar: Option<Bytes>,
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
pub(super) async fn update_me(
    S(s): S<State>,
    caller: Caller,
    Base(base): Base,
    input: ProfileInput,
) -> Result<Json<UserOut>> {
    let user = apply(&s, &caller, caller.id(), input).await?;
    Ok(Json(user.out(&base)))
}
