use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use civic_store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure a handler can return. It maps to a status here, in one place; the body is
/// written by the app's [`ErrorFormat`] in [`crate::layers`], so one type serves five formats.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    /// Field-level validation errors (DRF-style apps list them per field).
    #[error("{}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    Fields(Vec<(String, String)>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 with `Retry-After: {retry_after}` (seconds): rate limits and login backoff.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After: {retry_after}` (seconds): a bound on work in hand is reached
    /// (load shedding), and the request was refused before anything of it was done.
    #[error("{message}")]
    Overloaded { message: String, retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        Self::Fields(vec![(field.to_owned(), msg.into())])
    }
    /// 429; the client may retry after `retry_after` seconds (at least 1 is announced).
    pub fn too_many(msg: impl Into<String>, retry_after: u64) -> Self {
        Self::TooManyRequests {
            message: msg.into(),
            retry_after: retry_after.max(1),
        }
    }

    /// 503; nothing of the request was done, and it may be sent again after `retry_after`
    /// seconds (at least 1 is announced).
    pub fn overloaded(msg: impl Into<String>, retry_after: u64) -> Self {
        Self::Overloaded {
            message: msg.into(),
            retry_after: retry_after.max(1),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Fields(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(e) => match e {
                StoreError::BadCursor | StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
                StoreError::ConditionFailed
                | StoreError::TransactionCanceled(_)
                | StoreError::Conflict => StatusCode::CONFLICT,
                StoreError::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
                StoreError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told. Backend and internal details stay in the logs.
    fn public_message(&self) -> String {
        match self {
            Self::Store(StoreError::Backend(_)) => "Storage is temporarily unavailable".into(),
            Self::Store(StoreError::BadCursor) => "Invalid pagination cursor".into(),
            Self::Store(StoreError::ConditionFailed | StoreError::TransactionCanceled(_)) => {
                "The resource was changed or already exists".into()
            }
            Self::Store(StoreError::Conflict) => "Concurrent update, please retry".into(),
            Self::Internal(_) | Self::Store(StoreError::Corrupt(_)) => {
                "Internal server error".into()
            }
            other => other.to_string(),
        }
    }
}

/// The neutral form of an error, carried in the response's extensions until the app's
/// [`ErrorFormat`] renders it.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub message: String,
    /// Field errors, in request order; empty for non-field errors.
    pub fields: Vec<(String, String)>,
}

/// Renders a [`Problem`] as the app's JSON error body.
pub type ErrorFormat = fn(&Problem) -> serde_json::Value;

/// Django REST framework's error body (HomeForge, EcoFlow): `{"detail": "..."}`, or field
/// errors as `{"field": ["msg", ...]}` in request order.
pub fn drf(p: &Problem) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    if p.fields.is_empty() {
        return json!({ "detail": p.message });
    }
    let mut body = Map::new();
    for (field, msg) in &p.fields {
        if let Value::Array(msgs) = body.entry(field.clone()).or_insert_with(|| json!([])) {
            msgs.push(json!(msg));
        }
    }
    Value::Object(body)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // Shedding logs itself, rate-limited (`layers::shed`): it happens under overload.
        if status.is_server_error() && !matches!(self, Self::Overloaded { .. }) {
            tracing::error!(error = %self, "request failed");
        }
        let fields = match &self {
            Self::Fields(f) => f.clone(),
            _ => Vec::new(),
        };
        let problem = Problem {
            status,
            message: self.public_message(),
            fields,
        };
        let mut res = status.into_response();
        if let Self::TooManyRequests { retry_after, .. } | Self::Overloaded { retry_after, .. } =
            self
        {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        res.extensions_mut().insert(problem);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn too_many_requests_is_429_with_retry_after() {
        let res = Error::too_many("slow down", 0).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1", "at least a second");
        let res = Error::too_many("slow down", 900).into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "900");
        assert_eq!(
            res.extensions().get::<Problem>().unwrap().message,
            "slow down"
        );
    }

    #[test]
    fn drf_renders_detail_or_field_lists_in_order() {
        let p = |fields: Vec<(&str, &str)>| Problem {
            status: StatusCode::BAD_REQUEST,
            message: "m".into(),
            fields: fields
                .into_iter()
                .map(|(f, m)| (f.into(), m.into()))
                .collect(),
        };
        assert_eq!(drf(&p(vec![])), json!({"detail": "m"}));
        assert_eq!(
            drf(&p(vec![
                ("password", "a"),
                ("password", "b"),
                ("name", "c")
            ])),
            json!({"password": ["a", "b"], "name": ["c"]})
        );
    }
}
