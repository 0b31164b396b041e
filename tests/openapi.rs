//! Every app's OpenAPI document as the real `civic-local` serves it at `/{app}/openapi.json`:
//! valid (`openapi-spec-validator`), accepted by a client generator (`openapi-python-client`,
//! whose client must then import), and the very document the app's first Lambda function
//! serves at `GET /openapi.json` (`civic_runtime::http_router`). The tools come from PyPI into
//! `.venv` (`./scripts/test` installs them; `CIVIC_VENV` names another venv).

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use civic_core::{Limits, Platform};
use civic_store::Backend;
use civic_testkit::local::LocalServer;
use serde_json::Value;
use tower::ServiceExt;

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// Rate limits on, so that the documents list 429 as such a deployment returns it.
const PER_MINUTE: u32 = 100;

fn venv_tool(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::env::var_os("CIVIC_VENV")
        .map(|v| root.join(v)) // a relative CIVIC_VENV is the workspace root's, as in scripts/test
        .unwrap_or_else(|| root.join(".venv"));
    let tool = venv.join("bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: run ./scripts/test once to install it into the venv",
        tool.display()
    );
    tool
}

/// Runs `cmd`, returning its combined output; panics with that output if it fails.
fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// The generator's warnings that name something other than a content type it does not
/// support (`text/csv` uploads, `image/*` downloads): an endpoint or model it had to drop.
fn unexpected_warnings(output: &str) -> Vec<String> {
    output
        .split("WARNING ")
        .skip(1)
        .map(|w| {
            w.split("If you believe this was a mistake")
                .next()
                .unwrap_or(w)
        })
        .filter(|w| {
            !w.contains("Unsupported content type") && !w.contains("Unsupported content_type")
        })
        .map(|w| w.trim().to_owned())
        .collect()
}

/// What the app's first Lambda function answers to `GET /openapi.json`.
async fn lambda_document(functions: &'static [civic_core::Function], dir: &Path) -> Value {
    let backend = Backend::embedded(dir).unwrap();
    let limits = Limits {
        per_hour: 0,
        per_minute: PER_MINUTE,
        ..Limits::default()
    };
    let platform = Platform::local(dir, backend, limits).unwrap();
    let router = civic_runtime::http_router(&functions[0], &platform).unwrap();
    let req = axum::http::Request::get("/openapi.json")
        .body(Body::empty())
        .unwrap();
    let res = router.oneshot(req).await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "{}'s GET /openapi.json",
        functions[0].name
    );
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn every_app_serves_a_valid_document_that_generates_a_client() {
    let server = LocalServer::start_env(
        BIN,
        &[],
        &[
            ("RATE_LIMIT_PER_HOUR", "0"),
            ("RATE_LIMIT_PER_MINUTE", &PER_MINUTE.to_string()),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let tmp = tempfile::tempdir().unwrap();
    for functions in civic_local::registry::APPS {
        let app = functions[0].app.name;
        let res = http
            .get(server.url(&format!("/{app}/openapi.json")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "/{app}/openapi.json");
        let doc: Value = res.json().await.unwrap();
        same_document_as_lambda(functions, &doc).await;
        let file = tmp.path().join(format!("{app}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        validate_and_generate_a_client(app, &file, tmp.path());
    }
}

/// The stack's statuses are in the document (rate limits are on here), and it is Lambda's
/// `GET /openapi.json` but for where the app is mounted.
async fn same_document_as_lambda(functions: &'static [civic_core::Function], doc: &Value) {
    let app = functions[0].app.name;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].get("429").is_some(),
                "{app}: {method} {path} lacks 429"
            );
        }
    }
    let store = tempfile::tempdir().unwrap();
    // The one difference: where the app is mounted (Lambda serves it at its API's root).
    let mut unmounted = doc.clone();
    let servers = unmounted.as_object_mut().unwrap().remove("servers");
    assert_eq!(
        servers,
        Some(serde_json::json!([{"url": format!("/{app}")}]))
    );
    assert!(
        unmounted == lambda_document(functions, store.path()).await,
        "{app}: Lambda's GET /openapi.json differs from civic-local's /{app}/openapi.json"
    );
}

/// `openapi-spec-validator` accepts the document; `openapi-python-client` generates a client
/// from it without dropping anything, and every module of that client imports.
fn validate_and_generate_a_client(app: &str, file: &Path, tmp: &Path) {
    let generator = venv_tool("openapi-python-client");
    // The generator formats its output with ruff, from the same venv.
    let path = format!(
        "{}:{}",
        generator.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut validate = Command::new(venv_tool("openapi-spec-validator"));
    validate.arg(file);
    run(
        validate,
        &format!("openapi-spec-validator on {app}'s document"),
    );

    let out = tmp.join(format!("{app}-client"));
    let mut generate = Command::new(&generator);
    generate
        .args(["generate", "--overwrite", "--path"])
        .arg(file)
        .arg("--output-path")
        .arg(&out)
        .env("PATH", &path)
        .current_dir(tmp);
    let output = run(
        generate,
        &format!("openapi-python-client on {app}'s document"),
    );
    let dropped = unexpected_warnings(&output);
    assert!(
        dropped.is_empty(),
        "openapi-python-client dropped parts of {app}'s document:\n{}",
        dropped.join("\n---\n")
    );

    // The generated package imports, every module of it.
    let mut import = Command::new(venv_tool("python"));
    import
        .args([
            "-c",
            "import importlib, pkgutil, sys\n\
             pkg = next(p for p in pkgutil.iter_modules(['.']) if p.ispkg)\n\
             root = importlib.import_module(pkg.name)\n\
             for m in pkgutil.walk_packages(root.__path__, pkg.name + '.'):\n    importlib.import_module(m.name)\n",
        ])
        .current_dir(&out);
    run(import, &format!("importing {app}'s generated client"));
}
