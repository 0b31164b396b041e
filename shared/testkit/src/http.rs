//! A response as the black-box tests look at it, and the one way they send requests: any 5xx
//! fails the test on the spot, since bad input must never cause one.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The JSON body, or `Null` when the response is not JSON.
    pub body: Value,
}

impl Resp {
    /// Store round trips the request cost (the `x-store-round-trips` header).
    pub fn round_trips(&self) -> u64 {
        self.headers["x-store-round-trips"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The body of a successful response.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(self.status.is_success(), "{}: {}", self.status, self.text);
        &self.body
    }

    /// The body of a response with this `status`.
    #[track_caller]
    pub fn is(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        &self.body
    }

    /// The message of a `{"detail": "..."}` error (FastAPI's and DRF's) with this `status`.
    #[track_caller]
    pub fn detail(&self, status: u16) -> &str {
        let body = self.is(status);
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only detail: {}",
            self.text
        );
        body["detail"].as_str().expect("detail string")
    }
}

/// Sends `req`; panics on a transport error, a 5xx, a 4xx that is not JSON, or bad JSON.
pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let res = req.send().await.expect("request");
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    assert!(status.as_u16() < 500, "server error {status}: {text}");
    let json = headers.get(CONTENT_TYPE).is_some_and(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("application/json")
    });
    assert!(
        !status.is_client_error() || json,
        "{status}: errors must be JSON: {text:?}"
    );
    let body = match json {
        true => {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text:?}"))
        }
        false => Value::Null,
    };
    Resp {
        status,
        headers,
        text,
        body,
    }
}

/// Writes a raw HTTP/1.1 request to `base` (`http://host:port`) and returns all it answers.
pub async fn raw(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}
