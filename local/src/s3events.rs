//! S3 events, locally. civic-local is where local upload URLs point ([`civic_core::uploads`]):
//! `PUT /_uploads/{key}?expires=&length=&signature=` checks the signature, takes exactly the
//! signed number of bytes (as S3 does with a signed `Content-Length`), writes the blob store
//! and then, as S3 does, sends an `ObjectCreated:Put` event to every function whose template `S3`
//! event matches the key (prefix and suffix filters). Functions run in the background, as S3
//! invokes Lambda asynchronously: the upload's answer does not wait for them.
//!
//! An upload holds one of a bounded number of places from before its body is read until its
//! functions are done. The next upload waits for a place (its body stays in the socket), then
//! is refused with 503 and `Retry-After`, before anything of it was stored: what was
//! acknowledged was stored and its events run, what was refused is sent again by the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use civic_core::{Platform, S3Function, uploads};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::registry;
use crate::template::{FunctionDef, S3Trigger};

/// The largest object the local upload path takes in one `PUT` (held in memory).
const MAX_UPLOAD: usize = 64 << 20;
/// How long an upload waits for a place before it is refused: a client's request timeout is
/// usually longer, and a busy detector frees places within seconds.
const PLACE_WAIT: Duration = Duration::from_secs(10);

pub struct Dispatcher {
    platform: Platform,
    /// The bucket events name (the local program has one, as the template does).
    bucket: String,
    targets: Vec<(S3Trigger, &'static S3Function)>,
    /// S3's `sequencer`: grows with every write.
    sequence: AtomicU64,
    /// Uploads being received or with functions still running (`--max-uploads`).
    places: Arc<Semaphore>,
    place_wait: Duration,
}

impl Dispatcher {
    pub fn new(
        defs: &[FunctionDef],
        platform: Platform,
        bucket: String,
        max_uploads: usize,
    ) -> Arc<Self> {
        let targets = defs
            .iter()
            .filter_map(|d| registry::find_s3(&d.binary).map(|f| (d, f)))
            .flat_map(|(d, f)| d.s3.iter().map(move |t| (t.clone(), f)))
            .collect();
        Arc::new(Self {
            platform,
            bucket,
            targets,
            sequence: AtomicU64::new(0),
            places: Arc::new(Semaphore::new(max_uploads)),
            place_wait: PLACE_WAIT,
        })
    }

    /// A place for one upload and its functions, or `None` after waiting [`PLACE_WAIT`].
    async fn place(&self) -> Option<OwnedSemaphorePermit> {
        let place = self.places.clone().acquire_owned();
        tokio::time::timeout(self.place_wait, place)
            .await
            .ok()?
            .ok()
    }

    /// Sends one `ObjectCreated:Put` event per matching function; returns their runs, which
    /// hold the upload's `place` until the last is done.
    pub fn object_created(
        &self,
        key: &str,
        size: usize,
        etag: &str,
        place: OwnedSemaphorePermit,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let place = Arc::new(place);
        let name = "ObjectCreated:Put";
        let sequencer = format!("{:016X}", self.sequence.fetch_add(1, Ordering::Relaxed) + 1);
        let mut runs = Vec::new();
        for (_, function) in self.targets.iter().filter(|(t, _)| t.matches(name, key)) {
            let event = json!({"Records": [{
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "local",
                "eventTime": civic_core::time::now_rfc3339(),
                "eventName": name,
                "userIdentity": {"principalId": "civic-local"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": function.name,
                    "bucket": {
                        "name": self.bucket,
                        "ownerIdentity": {"principalId": "civic-local"},
                        "arn": format!("arn:aws:s3:::{}", self.bucket),
                    },
                    "object": {"key": encode_key(key), "size": size, "eTag": etag, "sequencer": sequencer},
                },
            }]});
            let event = serde_json::from_value(event).expect("an S3 event in S3's own shape");
            let run = (function.run)(&self.platform, event);
            let (name, place) = (function.name, place.clone());
            runs.push(tokio::spawn(async move {
                let _place = place;
                match run.await {
                    Ok(report) => tracing::info!(function = name, %report, "S3 event done"),
                    Err(e) => tracing::warn!(function = name, error = %e, "S3 event failed"),
                }
            }));
        }
        runs
    }
}

/// The local upload route.
pub fn router(dispatcher: Arc<Dispatcher>) -> Router {
    Router::new()
        .route(&format!("{}{{*key}}", uploads::LOCAL_PATH), put(upload))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .with_state(dispatcher)
}

#[derive(Deserialize)]
struct Signed {
    expires: i64,
    /// The signed size: the only body length this URL takes.
    length: u64,
    signature: String,
}

async fn upload(
    State(d): State<Arc<Dispatcher>>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let checked = uploads::verify_local(
        &d.platform,
        &key,
        signed.expires,
        signed.length,
        &signed.signature,
    );
    if let Err(e) = checked {
        return (StatusCode::FORBIDDEN, e.to_string()).into_response();
    }
    let Some(place) = d.place().await else {
        return crate::busy("too many uploads in progress; retry shortly");
    };
    let body = match sized_body(&headers, body, signed.length).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    // A content hash, as S3's ETag (MD5 there) identifies this version of the object.
    let etag: String = Sha256::digest(&body)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let size = body.len();
    if let Err(e) = d.platform.blob().put(&key, body, content_type).await {
        tracing::warn!(key, error = %e, "local upload failed");
        return (StatusCode::SERVICE_UNAVAILABLE, "storage is unavailable").into_response();
    }
    d.object_created(&key, size, &etag, place);
    (StatusCode::OK, [(header::ETAG, format!("\"{etag}\""))]).into_response()
}

/// Exactly the signed number of bytes, refused from the `Content-Length` header before any of
/// the body is read (S3: 411 without one, 403 for another size than the signed one).
async fn sized_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    signed: u64,
) -> Result<Bytes, (StatusCode, String)> {
    let refuse = |status: StatusCode, why: String| Err((status, why));
    let stated = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match stated {
        None => {
            return refuse(
                StatusCode::LENGTH_REQUIRED,
                "Content-Length is required".into(),
            );
        }
        Some(n) if n != signed => {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("this URL takes {signed} bytes, not {n}"),
            );
        }
        Some(_) if signed > MAX_UPLOAD as u64 => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("larger than {MAX_UPLOAD} bytes"),
            );
        }
        Some(_) => {}
    }
    match axum::body::to_bytes(body, signed as usize).await {
        Ok(b) if b.len() as u64 == signed => Ok(b),
        _ => refuse(
            StatusCode::BAD_REQUEST,
            format!("the body is not the {signed} bytes signed"),
        ),
    }
}

/// Keys in S3 events are URL-encoded, with `+` for a space.
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// With every place taken, an upload waits, then is refused with 503 and `Retry-After`
    /// and nothing of it stored; once a place is free the same upload goes through.
    #[tokio::test]
    async fn uploads_past_the_bound_are_refused_unstored() {
        let dir = tempfile::tempdir().unwrap();
        let backend = civic_store::Backend::embedded(dir.path()).unwrap();
        let platform = Platform::local(dir.path(), backend, Default::default()).unwrap();
        let mut d = Dispatcher::new(&[], platform.clone(), "b".into(), 1);
        Arc::get_mut(&mut d).unwrap().place_wait = Duration::from_millis(100);
        let ttl = Duration::from_secs(60);
        let signed = platform
            .presign_put("t/a.bin", "application/octet-stream", 3, ttl, "")
            .await
            .unwrap();
        let put = || {
            let req = Request::put(&signed.url).header(header::CONTENT_LENGTH, "3");
            req.body(Body::from("abc")).unwrap()
        };
        let taken = d.place().await.unwrap();
        let res = router(d.clone()).oneshot(put()).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        assert!(platform.blob().get("t/a.bin").await.unwrap().is_none());
        drop(taken);
        let res = router(d.clone()).oneshot(put()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(platform.blob().get("t/a.bin").await.unwrap().is_some());
        assert_eq!(
            d.places.available_permits(),
            1,
            "no function ran: the place is free"
        );
    }
}
