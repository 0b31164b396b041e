//! Helpers for the sample-event tests of each function crate (`functions/*/tests/events.rs`):
//! the samples in the repo's `events/` folder, and calls into a function's router as Lambda
//! makes them.
//!
//! Behind the `lambda` feature, since civic-core (which this needs) is itself built on crates
//! that test with civic-testkit.
#![cfg(feature = "lambda")]

use std::path::Path;

use axum::Router;
use axum::body::Body;
use civic_core::{Function, Limits, Platform};
use civic_store::Backend;
use http::header::{self, HeaderName};
use http::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

/// The text of the sample event `events/{name}.json`.
pub fn text(name: &str) -> String {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("sample event {path}: {e}"))
}

/// An API Gateway v2 event, as lambda_http converts it into a request for the router.
pub fn parse(event: &str) -> Request<Body> {
    lambda_http::request::from_str(event)
        .expect("valid API Gateway v2 event")
        .map(Body::new)
}

/// The sample event `name` as the request its function's router gets in Lambda.
pub fn event(name: &str) -> Request<Body> {
    parse(&text(name))
}

/// `req` with header `name` set to `value` (say, a real credential for a sample's placeholder).
pub fn with(mut req: Request<Body>, name: HeaderName, value: &str) -> Request<Body> {
    req.headers_mut().insert(name, value.parse().unwrap());
    req
}

/// `req` authorized with a bearer `token`.
pub fn bearer(req: Request<Body>, token: &str) -> Request<Body> {
    with(req, header::AUTHORIZATION, &format!("Bearer {token}"))
}

/// A request carrying `body` as JSON.
pub fn json_request(method: Method, path: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// `router`'s response to `req` as Lambda serves it (trailing slash trimmed), its body as JSON.
pub async fn respond(router: Router, req: Request<Body>) -> Response<Value> {
    let res = civic_core::layers::into_service(router)
        .oneshot(req)
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {bytes:?}", parts.status));
    Response::from_parts(parts, json)
}

/// The status and JSON body of function `f`'s response to `req` on platform `p`.
pub async fn call(f: &Function, p: &Platform, req: Request<Body>) -> (StatusCode, Value) {
    let res = respond(f.build(p).0, req).await;
    (res.status(), res.into_body())
}

/// A local platform (embedded store, default limits) that keeps its data in `dir`.
pub fn platform(dir: &Path) -> Platform {
    Platform::local(dir, Backend::embedded(dir).unwrap(), Limits::default()).unwrap()
}
