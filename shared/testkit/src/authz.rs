//! The authorization matrix (`tests/authz/`): every operation of an app's OpenAPI document
//! against every kind of caller, each cell's outcome stated once in a table per app.
//!
//! A cell is *allowed* (anything but 401/403, and never a 5xx) or refused with exactly one
//! status, in the app's error format: 401, 403, or 404 for a resource hidden from the caller.

use std::collections::BTreeSet;

use reqwest::{Method, header};
use serde_json::Value;

use crate::api::{Api, Auth};
use crate::http::Resp;

/// What one caller gets from one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not 401 or 403 (the request may still be a 4xx for its data).
    Ok,
    /// 401: no credential of this app.
    E401,
    /// 403: a credential of this app without the right.
    E403,
    /// 404: the resource exists but is hidden from this caller.
    E404,
}

/// One operation's row: method, path template as in the document, one outcome per caller.
pub type Row<const N: usize> = (&'static str, &'static str, [Outcome; N]);

/// A request body, minimal and valid, for an operation.
pub enum Body {
    None,
    Json(Value),
    /// A raw body with its content type (forms, CSV, multipart).
    Raw(String, Vec<u8>),
}

/// A concrete request for one cell: the path with its parameters filled in, and the body.
pub struct Req {
    pub path: String,
    pub body: Body,
}

impl Req {
    pub fn new(path: impl Into<String>, body: Body) -> Self {
        Self {
            path: path.into(),
            body,
        }
    }
}

/// The `(METHOD, path)` operations of an OpenAPI document, paths as the document spells them.
pub fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// Fails unless `rows` name exactly the document's operations, each once.
pub fn assert_rows_match<const N: usize>(app: &str, doc: &Value, rows: &[Row<N>]) {
    let documented = operations(doc);
    let mut stated = BTreeSet::new();
    for (method, path, _) in rows {
        let op = ((*method).to_owned(), (*path).to_owned());
        assert!(stated.insert(op), "{app}: {method} {path} has two rows");
    }
    let missing: Vec<_> = documented.difference(&stated).collect();
    let extra: Vec<_> = stated.difference(&documented).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{app}: operations without a row (add one to its table): {missing:?}; \
         rows without an operation in the document: {extra:?}"
    );
}

/// Sends one cell's request as `who`; [`Api::send`] fails on a 5xx or a 4xx outside the
/// app's error format.
pub async fn send(api: &Api, method: &str, req: &Req, who: Auth<'_>) -> Resp {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    // The document's paths sit below the app's mount point, not its API prefix.
    let url = api.server.url(&format!("{}{}", api.app.root, req.path));
    let mut builder = api.http.request(method, url);
    builder = match who {
        Auth::None => builder,
        Auth::Bearer(token) => builder.bearer_auth(token),
        Auth::Cookie(cookie) => builder.header(header::COOKIE, cookie),
    };
    builder = match &req.body {
        Body::None => builder,
        Body::Json(v) => builder.json(v),
        Body::Raw(kind, bytes) => builder
            .header(header::CONTENT_TYPE, kind)
            .body(bytes.clone()),
    };
    api.send(builder).await
}

/// Whether `res` is `expected`; the mismatch, described, if not.
pub fn judge(expected: Outcome, res: &Resp) -> Result<(), String> {
    let status = res.status.as_u16();
    let ok = match expected {
        Outcome::Ok => status != 401 && status != 403,
        Outcome::E401 => status == 401,
        Outcome::E403 => status == 403,
        Outcome::E404 => status == 404,
    };
    match ok {
        true => Ok(()),
        false => Err(format!("expected {expected:?}, got {status}: {}", res.text)),
    }
}

/// The observed outcome of a response, for printing a table to review.
pub fn observed(res: &Resp) -> Outcome {
    match res.status.as_u16() {
        401 => Outcome::E401,
        403 => Outcome::E403,
        404 => Outcome::E404,
        _ => Outcome::Ok,
    }
}

/// The order cells are sent in: refusals first (while every fixture exists), then allowed
/// cells, deletions after the rest, and last the rows that end the caller's own credential:
/// a password change (which revokes its tokens), then a logout (which needs none).
pub fn phase(method: &str, path: &str, expected: Outcome) -> u8 {
    let ends = |word| path.ends_with(word);
    match (expected, method) {
        (Outcome::Ok, _) if ends("/logout") => 4,
        (Outcome::Ok, _) if ends("/password") => 3,
        (Outcome::Ok, "DELETE") => 2,
        (Outcome::Ok, _) => 1,
        _ => 0,
    }
}

/// Sends every cell of `rows` (in [`phase`] order) as the callers `who` (named `names`, in the
/// rows' column order), with requests from `fill(method, path, caller index)`, and fails
/// listing every cell that differs. With `CIVIC_AUTHZ_PRINT=1` it prints the observed table
/// instead of failing, for review.
pub async fn check<const N: usize>(
    api: &Api,
    names: [&str; N],
    who: [Auth<'_>; N],
    rows: &[Row<N>],
    mut fill: impl FnMut(&str, &str, usize) -> Req,
) {
    let mut cells: Vec<(u8, usize, usize)> = Vec::new();
    for (r, (method, path, outcomes)) in rows.iter().enumerate() {
        for (c, expected) in outcomes.iter().enumerate() {
            cells.push((phase(method, path, *expected), r, c));
        }
    }
    cells.sort();
    let mut seen = vec![[Outcome::Ok; N]; rows.len()];
    let mut wrong = Vec::new();
    // Allowed cells answered with a 4xx: a fixture or body to look at when printing.
    let mut refused_data = Vec::new();
    for (_, r, c) in cells {
        let (method, path, outcomes) = &rows[r];
        let req = fill(method, path, c);
        let res = send(api, method, &req, who[c]).await;
        seen[r][c] = observed(&res);
        if outcomes[c] == Outcome::Ok && res.status.is_client_error() {
            refused_data.push(format!(
                "{method} {} as {}: {}",
                req.path, names[c], res.text
            ));
        }
        if let Err(e) = judge(outcomes[c], &res) {
            wrong.push(format!("{method} {} as {}: {e}", req.path, names[c]));
        }
    }
    if std::env::var_os("CIVIC_AUTHZ_PRINT").is_some() {
        println!("{} observed ({names:?}):", api.app.root);
        for (r, (method, path, _)) in rows.iter().enumerate() {
            println!("    ({method:?}, {path:?}, {:?}),", seen[r]);
        }
        println!(
            "allowed, but 4xx for their data:\n{}",
            refused_data.join("\n")
        );
        return;
    }
    assert!(
        wrong.is_empty(),
        "{}: {} cells differ from the table:\n{}",
        api.app.root,
        wrong.len(),
        wrong.join("\n")
    );
}
