//! The operator console at `/console/`: the files `./scripts/console-build` writes to
//! `console/dist`, served from disk at run time (so a rebuilt console needs no relink), and
//! `/console/config.json`, generated per request: where each app's API and the live feed are,
//! as this browser reaches them. On AWS the deploy step writes the same file next to the bundle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header, uri::Authority};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::landing::APPS;

#[derive(Clone, Debug, clap::Args)]
pub struct ConsoleOpts {
    /// The built console (`./scripts/console-build` writes it), served at /console/.
    #[arg(long, env = "CIVIC_CONSOLE_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../console/dist"))]
    pub console_dir: PathBuf,
}

pub fn router(opts: &ConsoleOpts) -> Router {
    let dir = Arc::new(opts.console_dir.clone());
    Router::new()
        // The page loads `app.js` relative to its own URL, which must end in a slash.
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/config.json", get(config))
        .route("/console/", get(files))
        .route("/console/{*path}", get(files))
        .with_state(dir)
}

/// `{"apps": {name: {title, api}}, "mqtt": "ws://HOST/mqtt"}`, from the request's own `Host`
/// (and `X-Forwarded-Proto` behind a TLS proxy), so the console works under any address.
async fn config(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        // Only a host[:port]: anything else would turn into a URL of someone else's choosing.
        .filter(|h| h.parse::<Authority>().is_ok_and(|a| a.as_str() == *h))
        .unwrap_or("127.0.0.1");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .and_then(|p| p.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let (http, ws) = if https {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let apps: Map<String, Value> = APPS
        .iter()
        .map(|&(name, title, base)| {
            let api = format!("{http}://{host}/{name}{base}");
            (name.to_owned(), json!({"title": title, "api": api}))
        })
        .collect();
    let body = json!({"apps": apps, "mqtt": format!("{ws}://{host}/mqtt")});
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// A file of the built console, or a page that says how to build it.
async fn files(State(dir): State<Arc<PathBuf>>, req: Request) -> Response {
    if !dir.join("index.html").is_file() {
        return not_built(&dir);
    }
    let req = strip_prefix(req);
    let mut res = match ServeDir::new(dir.as_path()).oneshot(req).await {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    };
    // Revalidate every time (ServeDir answers 304 from Last-Modified): a rebuilt console shows
    // at the next reload, not when some cache expires.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// `/console/app.js` → `/app.js`: ServeDir looks paths up under its own root.
fn strip_prefix(mut req: Request) -> Request {
    let path = req.uri().path().strip_prefix("/console").unwrap_or("/");
    let rest = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    if let Ok(uri) = rest.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    req
}

fn not_built(dir: &Path) -> Response {
    let dir = crate::landing::escape(&dir.display().to_string());
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Console not built</title></head><body>\
         <h1>The console is not built</h1>\
         <p>Run <code>./scripts/console-build</code> in the checkout (it needs Node.js; \
         <code>./scripts/serve</code> runs it for you), then reload this page.</p>\
         <p>civic-local looked for it in <code>{dir}</code> \
         (<code>--console-dir</code> or <code>CIVIC_CONSOLE_DIR</code> changes that).</p>\
         </body></html>"
    );
    (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    async fn get(
        dir: &Path,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let app = router(&ConsoleOpts {
            console_dir: dir.to_path_buf(),
        });
        let mut req = Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into(),
        )
    }

    #[tokio::test]
    async fn serves_the_built_files_under_console() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>console</p>").unwrap();
        std::fs::write(dir.path().join("app.js"), "let a = 1;").unwrap();
        let (status, headers, body) = get(dir.path(), "/console/", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "<p>console</p>"));
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let (status, headers, body) = get(dir.path(), "/console/app.js?v=2", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "let a = 1;"));
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("javascript")
        );
        let (status, headers, _) = get(dir.path(), "/console", &[]).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(headers[header::LOCATION], "/console/");
        let (status, ..) = get(dir.path(), "/console/../Cargo.toml", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_missing_build_says_how_to_build_it() {
        let dir = tempfile::tempdir().unwrap();
        let (status, _, body) = get(&dir.path().join("dist"), "/console/", &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("Run <code>./scripts/console-build</code>"),
            "{body}"
        );
        assert!(body.contains("/dist"), "{body}");
    }

    #[tokio::test]
    async fn config_names_each_api_and_the_live_feed_as_the_browser_reached_us() {
        let dir = tempfile::tempdir().unwrap();
        let (status, _, body) = get(
            dir.path(),
            "/console/config.json",
            &[("host", "10.0.0.5:8000")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let cfg: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(cfg["mqtt"], "ws://10.0.0.5:8000/mqtt");
        assert_eq!(
            cfg["apps"]["streetlight"]["api"],
            "http://10.0.0.5:8000/streetlight/api"
        );
        assert_eq!(
            cfg["apps"]["occupancy"]["api"],
            "http://10.0.0.5:8000/occupancy/api/occupancy"
        );
        assert_eq!(cfg["apps"].as_object().unwrap().len(), 5);
        let proxied = [("host", "civic.example"), ("x-forwarded-proto", "https")];
        let (_, _, body) = get(dir.path(), "/console/config.json", &proxied).await;
        let cfg: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(cfg["mqtt"], "wss://civic.example/mqtt");
        assert_eq!(
            cfg["apps"]["ozone"]["api"],
            "https://civic.example/ozone/api"
        );
        // A Host that is not a plain authority does not make it into the URLs.
        let (_, _, body) = get(dir.path(), "/console/config.json", &[("host", "evil/x?")]).await;
        assert!(body.contains("ws://127.0.0.1/mqtt"), "{body}");
    }
}
