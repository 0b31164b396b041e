//! Avatar files: storing an upload after decoding it, and serving a user's current one.

use axum::extract::{Path, State as S};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use civic_core::{Error, Result};
use civic_vision::decode::{ImageError, ImageLimits, decode};

use super::UserRecord;
use super::record::AVATARS;
use crate::{State, not_found};

/// Decodes the upload whole (off the async threads) within the avatar limits, then stores the
/// original bytes under a fresh name with the type the decoder found, never the client's.
pub(super) async fn store_avatar(s: &State, user: i64, bytes: Bytes) -> Result<String> {
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
    s.blob().put(&key, bytes, info.content_type()).await?;
    Ok(key)
}

/// `GET /media/avatars/<file>`: an avatar's bytes, as `profile.avatar` links them. Public, as
/// Django serves media; the names are random. Only a user's current avatar is served: the
/// name starts with the user's id, and the record must still point at it (so a replaced
/// avatar is gone at once, and S3 is asked only for keys that exist).
#[utoipa::path(get, path = "/media/avatars/{file}", tag = "users",
    params(("file" = String, Path, description = "The file name in `profile.avatar`")),
    responses((status = 200, description = "The image", content_type = "image/*"), (status = 404)))]
pub(super) async fn avatar_file(S(s): S<State>, Path(file): Path<String>) -> Result<Response> {
    let key = format!("{AVATARS}{file}");
    let owner = file.split_once('-').and_then(|(id, _)| id.parse().ok());
    let user = match owner {
        Some(id) => UserRecord::load(s.table.as_ref(), id).await?,
        None => None,
    };
    if user.and_then(|u| u.avatar) != Some(key.clone()) {
        return Err(not_found());
    }
    let object = s.blob().get(&key).await?.ok_or_else(not_found)?;
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
