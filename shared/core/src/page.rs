//! Listings cost O(page): a bounded `limit` and an opaque cursor, returned in a header so the
//! seeds' response bodies (plain arrays) keep their shape.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use civic_store::{Table, Typed};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Json, Result};

pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// Checks a requested page size against `1..=max`, defaulting to `default`.
pub fn limit(requested: Option<usize>, default: usize, max: usize) -> Result<usize> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(Error::bad_request(format!(
            "limit must be between 1 and {max}"
        ))),
    }
}

/// Adds the next page's cursor, if any, to a response.
pub fn with_cursor(res: impl IntoResponse, cursor: Option<String>) -> Response {
    let mut res = res.into_response();
    if let Some(v) = cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(NEXT_CURSOR_HEADER, v);
    }
    res
}

/// One page of `query`'s items as a JSON array of `T`, the next page's cursor in the header.
pub async fn items<T: DeserializeOwned + Serialize + Send>(
    table: &dyn Table,
    query: civic_store::Query,
) -> Result<Response> {
    let res = table.query_as::<T>(query).await?;
    Ok(with_cursor(Json(res.items), res.cursor))
}
