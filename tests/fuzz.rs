//! Property-based fuzzing of every app's API: Schemathesis (from PyPI, in `.venv`; `./scripts/test`
//! installs it) generates requests from each app's OpenAPI document, valid and invalid, and
//! sends them to the real civic-local as the app's first user (admin, staff or owner), checking
//! that no response is a 5xx (`--checks not_a_server_error`). Bounded by a time budget per app
//! (`CIVIC_FUZZ_SECS`, default 25) so that the whole run stays within a few minutes on 2 cores;
//! each run's seed is printed, and `CIVIC_FUZZ_SEED` replays one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use civic_testkit::local::LocalServer;
use civic_testkit::signin::FirstUsers;

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// Operations that end or replace the fuzzer's own credential (a logout, a password or role
/// change that can hit its own account): fuzzed last, in a run of their own, so that the rest
/// is fuzzed signed in.
const LAST: &[(&str, &str)] = &[
    ("streetlight", "/api/users/role"),
    ("ozone", "/api/auth/logout"),
    ("homeforge", "/api/me"),
    ("homeforge", "/api/users/{id}"),
];

fn schemathesis() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::env::var_os("CIVIC_VENV")
        .map(|v| root.join(v))
        .unwrap_or_else(|| root.join(".venv"));
    let tool = venv.join("bin").join("schemathesis");
    assert!(
        tool.exists(),
        "{} is missing: run ./scripts/test once to install it into the venv",
        tool.display()
    );
    tool
}

/// `target/schemathesis`, created if missing.
fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/schemathesis");
    std::fs::create_dir_all(&dir).expect("create target/schemathesis");
    dir
}

/// One Schemathesis run over `app`'s operations (`only` the [`LAST`] ones, or all others),
/// sending `header`; its output, and whether it passed.
fn run(base: &str, app: &str, header: &str, only_last: bool, secs: u64) -> (bool, String) {
    let mut cmd = std::process::Command::new(schemathesis());
    cmd.arg("run")
        .arg(format!("{base}/{app}/openapi.json"))
        .args(["--checks", "not_a_server_error"])
        // One worker: Python 3.11.7's parser is not thread-safe ("AST constructor recursion
        // depth mismatch" in Hypothesis with two), and the server has only 2 cores anyway.
        .args(["--workers", "1", "--max-examples", "50"])
        .args(["--max-time", &secs.to_string()])
        .args(["--request-timeout", "30", "--warnings", "off"])
        .args(["--header", header])
        // No colours or progress bars in the captured output.
        .env("NO_COLOR", "1")
        // Schemathesis and Hypothesis keep their caches (and replay past crashes) in the
        // working directory: the build's, not the source tree.
        .current_dir(work_dir());
    if let Ok(seed) = std::env::var("CIVIC_FUZZ_SEED") {
        cmd.args(["--seed", &seed]);
    }
    let paths = LAST.iter().filter(|(a, _)| *a == app).map(|(_, p)| *p);
    for path in paths {
        cmd.args([
            if only_last {
                "--include-path"
            } else {
                "--exclude-path"
            },
            path,
        ]);
    }
    let out = cmd.output().expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// [`run`] off the async runtime, which keeps serving nothing but the test's own requests.
async fn fuzz(base: &str, app: &str, header: &str, only_last: bool, secs: u64) -> (bool, String) {
    let (base, app, header) = (base.to_owned(), app.to_owned(), header.to_owned());
    tokio::task::spawn_blocking(move || run(&base, &app, &header, only_last, secs))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_generated_request_gets_a_server_error() {
    let secs: u64 = std::env::var("CIVIC_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    let server = LocalServer::start(BIN, &[]).await;
    let http = reqwest::Client::new();
    let first = FirstUsers::register(&http, &server).await;
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    // Each app's caller, and a request that needs that caller signed in (none for Occupancy,
    // open as civic-local serves it by default): after the main run it must still succeed,
    // or the run was not signed in throughout.
    let apps = [
        (
            "streetlight",
            bearer(&first.streetlight),
            Some("/api/lights/list"),
        ),
        (
            "ozone",
            format!("Cookie: {}", first.ozone),
            Some("/api/auth/user/"),
        ),
        ("occupancy", "X-Fuzz: 1".to_owned(), None),
        ("homeforge", bearer(&first.homeforge), Some("/api/me/")),
        ("ecoflow", bearer(&first.ecoflow), Some("/api/auth/me/")),
    ];
    let mut failures = Vec::new();
    for (app, header, whoami) in apps {
        let started = Instant::now();
        let mut results = vec![fuzz(&server.base, app, &header, false, secs).await];
        if let Some(path) = whoami {
            let (name, value) = header.split_once(": ").unwrap();
            let url = server.url(&format!("/{app}{path}"));
            let res = http.get(url).header(name, value).send().await.unwrap();
            assert_eq!(
                res.status(),
                200,
                "{app}: the fuzzer's credential stopped working"
            );
        }
        if LAST.iter().any(|(a, _)| *a == app) {
            results.push(fuzz(&server.base, app, &header, true, secs / 5 + 1).await);
        }
        println!("{app}: fuzzed in {:.1?}", started.elapsed());
        for (ok, text) in results {
            let summary: Vec<_> = text.lines().rev().take(12).collect();
            let summary: Vec<_> = summary.into_iter().rev().collect();
            println!("{}", summary.join("\n"));
            if !ok {
                failures.push(format!("=== {app}\n{text}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "Schemathesis found server errors (or could not run):\n{}",
        failures.join("\n")
    );
}
