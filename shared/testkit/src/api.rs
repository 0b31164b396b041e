//! One HTTP client for the black-box tests of all five apps (`tests/*.rs`).
//!
//! Each test file describes its app once (an [`App`]) and wraps [`Api`] with its own fixtures
//! (sign-up and login flows, seed payloads).

use reqwest::{Client, Method, RequestBuilder, header};
use serde_json::Value;

use crate::http::{self, Resp};
use crate::local::LocalServer;

/// Where an app is mounted and what its errors look like.
#[derive(Clone, Copy)]
pub struct App {
    /// The app's mount point, e.g. `/ozone`: its `openapi.json` and `docs/` are below it.
    pub root: &'static str,
    /// The prefix of every path the tests call, e.g. `/ozone/api`.
    pub api: &'static str,
    /// Whether a 4xx body is in the app's own error format.
    pub is_error: fn(&Value) -> bool,
    /// Paths (below `api`) whose answers lag the writes by a stream aggregator's delay, by
    /// design. Before calling one, the client waits until the local program's stream functions
    /// have applied every change made so far: what a dashboard refreshed a moment later shows.
    pub lagging: &'static [&'static str],
}

/// Who sends a request: nobody, a bearer token or a session cookie.
#[derive(Clone, Copy, Debug, Default)]
pub enum Auth<'a> {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// A whole `Cookie` header value, e.g. `ozone_sessionid=...`.
    Cookie(&'a str),
}

impl<'a> From<&'a str> for Auth<'a> {
    /// A bare token is a bearer token.
    fn from(token: &'a str) -> Self {
        Self::Bearer(token)
    }
}

impl<'a> From<&'a String> for Auth<'a> {
    /// A bare token is a bearer token.
    fn from(token: &'a String) -> Self {
        Self::Bearer(token)
    }
}

impl<'a> From<Option<&'a str>> for Auth<'a> {
    /// A bearer token, or nobody.
    fn from(token: Option<&'a str>) -> Self {
        token.map_or(Self::None, Self::Bearer)
    }
}

/// A Django REST framework error: `{"detail": "..."}`, or lists of messages by field.
pub fn drf_error(body: &Value) -> bool {
    body.as_object().is_some_and(|o| {
        !o.is_empty()
            && (body["detail"].is_string() || o.values().all(|v| v.is_array() || v.is_object()))
    })
}

/// Declares a test file's `struct Api`: the shared client, for the file's own fixture methods
/// (`impl Api { async fn login(..) }`), dereferencing to [`Api`] for everything else.
#[macro_export]
macro_rules! client {
    () => {
        struct Api($crate::api::Api);

        impl ::std::ops::Deref for Api {
            type Target = $crate::api::Api;
            fn deref(&self) -> &$crate::api::Api {
                &self.0
            }
        }
    };
}

/// A running `civic-local` and a client for one of its apps.
pub struct Api {
    pub server: LocalServer,
    pub http: Client,
    pub app: App,
}

impl Api {
    /// A client for `app` on `server`.
    pub fn new(server: LocalServer, app: App) -> Self {
        Self {
            server,
            http: Client::new(),
            app,
        }
    }

    /// The URL of `path` below the app's API prefix.
    pub fn url(&self, path: &str) -> String {
        self.server.url(&format!("{}{path}", self.app.api))
    }

    /// A request for `path` below the API prefix, sent as `auth`.
    pub fn request<'a>(
        &self,
        method: Method,
        path: &str,
        auth: impl Into<Auth<'a>>,
    ) -> RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match auth.into() {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::Cookie(cookie) => req.header(header::COOKIE, cookie),
        }
    }

    /// Sends `req` as [`http::send`] does, and asserts a 4xx is in the app's error format.
    pub async fn send(&self, req: RequestBuilder) -> Resp {
        let res = http::send(req).await;
        assert!(
            !res.status.is_client_error() || (self.app.is_error)(&res.body),
            "{}: not {}'s error format: {}",
            res.status,
            self.app.root,
            res.text
        );
        res
    }

    /// `method` on `path` as `auth`, with a JSON body if any.
    pub async fn call<'a>(
        &self,
        method: Method,
        path: &str,
        auth: impl Into<Auth<'a>>,
        body: Option<Value>,
    ) -> Resp {
        if self.app.lagging.iter().any(|p| path.starts_with(p)) {
            self.server.settled().await;
        }
        let req = self.request(method, path, auth);
        self.send(match body {
            Some(body) => req.json(&body),
            None => req,
        })
        .await
    }

    /// `GET path` as `auth`.
    pub async fn get<'a>(&self, path: &str, auth: impl Into<Auth<'a>>) -> Resp {
        self.call(Method::GET, path, auth, None).await
    }

    /// `POST path` with a JSON body as `auth`.
    pub async fn post<'a>(&self, path: &str, auth: impl Into<Auth<'a>>, body: Value) -> Resp {
        self.call(Method::POST, path, auth, Some(body)).await
    }

    /// `PUT path` with a JSON body as `auth`.
    pub async fn put<'a>(&self, path: &str, auth: impl Into<Auth<'a>>, body: Value) -> Resp {
        self.call(Method::PUT, path, auth, Some(body)).await
    }

    /// `PATCH path` with a JSON body as `auth`.
    pub async fn patch<'a>(&self, path: &str, auth: impl Into<Auth<'a>>, body: Value) -> Resp {
        self.call(Method::PATCH, path, auth, Some(body)).await
    }

    /// `DELETE path` as `auth`.
    pub async fn delete<'a>(&self, path: &str, auth: impl Into<Auth<'a>>) -> Resp {
        self.call(Method::DELETE, path, auth, None).await
    }

    /// `method` on `path` as `auth` with a raw body of content type `kind`.
    pub async fn raw<'a>(
        &self,
        method: Method,
        path: &str,
        auth: impl Into<Auth<'a>>,
        kind: &str,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        let req = self.request(method, path, auth);
        self.send(req.header(header::CONTENT_TYPE, kind).body(body))
            .await
    }

    /// Asserts the app's OpenAPI document lists `paths` (below the app's mount point) and its
    /// Swagger UI page is served; returns the document.
    pub async fn assert_documented(&self, paths: &[&str]) -> Value {
        let root = self.app.root;
        let spec = http::send(
            self.http
                .get(self.server.url(&format!("{root}/openapi.json"))),
        );
        let spec = spec.await.ok().clone();
        for path in paths {
            assert!(
                spec["paths"].get(path).is_some(),
                "{path} is not in {root}'s OpenAPI"
            );
        }
        let docs = http::send(self.http.get(self.server.url(&format!("{root}/docs/")))).await;
        assert_eq!(docs.status, 200, "{root}/docs/");
        assert!(docs.text.contains("swagger"), "{root}/docs/: {}", docs.text);
        spec
    }
}
