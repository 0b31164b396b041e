//! `Json`, `Query` and `Form` that reject malformed input with [`Error`], so the client gets a
//! 4xx in the app's own format instead of axum's plain-text rejection.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Error;

#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Form), rejection(Error))]
pub struct Form<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Error::UnsupportedMediaType(
                "Expected a JSON body (Content-Type: application/json)".into(),
            ),
            JsonRejection::BytesRejection(b)
                if b.status() == http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Error::PayloadTooLarge("Request body is too large".into())
            }
            JsonRejection::JsonDataError(e) => Error::BadRequest(format!(
                "Invalid request body: {}",
                e.body_text().trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: "
                )
            )),
            JsonRejection::JsonSyntaxError(_) => Error::BadRequest("Malformed JSON body".into()),
            other => Error::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Error::BadRequest(format!(
            "Invalid query string: {}",
            r.body_text()
                .trim_start_matches("Failed to deserialize query string: ")
        ))
    }
}

impl From<FormRejection> for Error {
    fn from(r: FormRejection) -> Self {
        match r {
            FormRejection::BytesRejection(b)
                if b.status() == http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Error::PayloadTooLarge("Request body is too large".into())
            }
            FormRejection::InvalidFormContentType(_) => {
                Error::UnsupportedMediaType("Expected a form body".into())
            }
            other => Error::BadRequest(format!("Invalid form body: {}", other.body_text())),
        }
    }
}
