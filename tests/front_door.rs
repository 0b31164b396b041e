//! The front door: the README's run command as a newcomer types it, the landing page in a real
//! browser, the defaults a frontend meets first, and start-up errors that say what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use civic_testkit::http::{Resp, send};
use civic_testkit::local::LocalServer;
use serde_json::{Value, json};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn get(server: &LocalServer, path: &str, token: Option<&str>) -> Resp {
    let mut req = reqwest::Client::new().get(server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    send(req).await
}

async fn post(server: &LocalServer, path: &str, body: Value) -> Resp {
    send(reqwest::Client::new().post(server.url(path)).json(&body)).await
}

/// `./scripts/serve`, exactly as the README has it, on a free port and a fresh data dir. The
/// profile is the test build's (`CIVIC_PROFILE=dev`), so CI builds nothing twice; a user gets
/// the `local` profile through the same script.
#[tokio::test]
async fn the_readme_run_command_serves_all_five_apps() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(repo().join("scripts/serve"));
    cmd.args(["--port", "0", "--mqtt-port", "0", "--data-dir"])
        .arg(data.path())
        .env("CIVIC_PROFILE", "dev")
        // From another folder, as a user might type `~/civic/scripts/serve`.
        .current_dir(std::env::temp_dir());
    let s = LocalServer::spawn(cmd, data.path(), Duration::from_secs(1500)).await;

    let home = get(&s, "/", None).await;
    assert!(home.text.contains("Civic"), "{}", home.text);

    let admin = post(&s, "/streetlight/api/auth/register", json!({"name": "Ada", "email": "ada@example.com", "password": "password123", "city": "Delhi"})).await;
    let token = admin.is(201)["data"]["token"].as_str().unwrap().to_owned();
    let lights = get(&s, "/streetlight/api/lights/list", Some(&token)).await;
    assert_eq!(lights.ok()["data"], json!([]), "{}", lights.text);

    let check = get(&s, "/ozone/api/auth/check/", None).await;
    assert_eq!(check.ok()["authenticated"], false);

    let cameras = get(&s, "/occupancy/api/occupancy/cameras", None).await;
    assert!(cameras.ok().is_array(), "{}", cameras.text);

    post(&s, "/homeforge/api/register/", json!({"username": "olivia", "email": "olivia@example.com", "password": "Attic-Lamp42", "first_name": "Olivia", "last_name": "O"})).await.is(201);
    let login = post(
        &s,
        "/homeforge/api/login/",
        json!({"username": "olivia", "password": "Attic-Lamp42"}),
    )
    .await;
    let access = login.is(200)["access"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&s, "/homeforge/api/me/", Some(&access)).await.ok()["username"],
        "olivia"
    );

    assert!(get(&s, "/ecoflow/api/status/", None).await.ok().is_object());

    assert!(s.stop().await.success(), "SIGTERM is a clean stop");
}

/// The landing page as a browser renders it: every app's links, and health.
#[tokio::test]
async fn the_root_url_shows_what_is_running() {
    let s = LocalServer::start(BIN, &[]).await;
    let health = get(&s, "/_local/health", None).await;
    let h = health.ok();
    assert_eq!(h["store"], "ok");
    assert!(h["detector"].as_str().unwrap().starts_with("ok"), "{h}");
    assert!(h["mqtt"].as_str().unwrap().starts_with("mqtt://127.0.0.1:"));
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert!(h["rate_limit"].as_str().unwrap().starts_with("off"), "{h}");

    let dom = chromium_dom(&s.url("/")).await;
    for app in ["streetlight", "ozone", "occupancy", "homeforge", "ecoflow"] {
        assert!(
            dom.contains(&format!("href=\"/{app}/docs/\"")),
            "{app}: {dom}"
        );
        assert!(
            dom.contains(&format!("href=\"/{app}/openapi.json\"")),
            "{app}"
        );
    }
    assert!(dom.contains("<code>/occupancy/api/occupancy</code>"));
    assert!(dom.contains("<dd id=\"store\">ok</dd>"), "{dom}");
    assert!(dom.contains(h["mqtt"].as_str().unwrap()));
    // Each linked document is there.
    for app in ["streetlight", "ecoflow"] {
        let doc = get(&s, &format!("/{app}/docs/"), None).await;
        assert!(doc.status.is_success(), "{app} docs: {}", doc.status);
    }
}

/// Debian's Chromium, headless, prints the DOM it rendered.
async fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args(civic_testkit::chromium::HEADLESS)
        .arg("--dump-dom")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .await
        .expect("chromium (Debian's package; ./scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The seeds: "currently unlimited, ready for configuration". A frontend polling every second
/// from two tabs must not meet a 429; `--rate-limit plan` switches the planned 100 a minute on.
#[tokio::test]
async fn rate_limits_are_off_by_default_and_the_plan_is_one_flag() {
    let open = LocalServer::start(BIN, &[]).await;
    for _ in 0..150 {
        get(&open, "/ecoflow/api/status/", None).await.ok();
    }
    let planned = LocalServer::start(BIN, &["--rate-limit", "plan"]).await;
    let stated = get(&planned, "/_local/health", None).await;
    assert_eq!(
        stated.ok()["rate_limit"],
        "1000 an hour, 100 a minute per client IP (0 = no limit)"
    );
    for _ in 0..100 {
        get(&planned, "/ecoflow/api/status/", None).await.ok();
    }
    let refused = get(&planned, "/ecoflow/api/status/", None).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    let bad = start_error(&["--rate-limit", "sometimes"], &[]).await;
    assert!(bad.contains("--rate-limit"), "{bad}");
}

/// Runs `civic-local serve` expecting it to refuse to start; returns its stderr, after
/// checking that the error is one line.
async fn start_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve");
    // Free ports and a fresh data dir, unless the test is about one of them.
    let fresh = data.path().to_str().unwrap();
    for (flag, value) in [("--port", "0"), ("--mqtt-port", "0"), ("--data-dir", fresh)] {
        if !args.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(args).envs(env.iter().copied());
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("civic-local should refuse to start, not serve")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one line: {stderr}");
    errors[0].to_owned()
}

#[tokio::test]
async fn start_up_errors_name_the_problem_and_the_fix() {
    let missing = start_error(&["--template", "/nowhere/template.yaml"], &[]).await;
    assert!(missing.starts_with("error: cannot read the template /nowhere/template.yaml"));
    assert!(missing.contains("leave --template out"), "{missing}");

    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let busy = start_error(&["--port", &port], &[]).await;
    assert!(
        busy.contains("already in use") && busy.contains("--port"),
        "{busy}"
    );
    let busy = start_error(&["--mqtt-port", &port], &[]).await;
    assert!(
        busy.contains("already in use") && busy.contains("--mqtt-port"),
        "{busy}"
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    let dir = start_error(&["--data-dir", path], &[]).await;
    assert!(
        dir.contains("cannot use the data dir") && dir.contains("--data-dir"),
        "{dir}"
    );

    let ort = [("ORT_DYLIB_PATH", "/nowhere/libonnxruntime.so")];
    let no_ort = start_error(&[], &ort).await;
    assert!(
        no_ort.contains("ONNX Runtime") && no_ort.contains("ORT_DYLIB_PATH"),
        "{no_ort}"
    );

    // A typo in a setting stops the start, naming the variable, rather than a panic later.
    for (var, value, says) in [
        ("OZONE_ONLINE_WINDOW_SECS", "5m", "is not a valid integer"),
        ("AUTH_BACKOFF_FREE", "many", "is not a valid integer"),
        (
            "OCCUPANCY_TIME_ZONE",
            "Mars/Olympus",
            "is not a valid IANA time zone",
        ),
    ] {
        let typo = start_error(&[], &[(var, value)]).await;
        assert!(
            typo.contains(&format!("{var}=\"{value}\" {says}")),
            "{typo}"
        );
    }

    let yaml = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    let stale = tempfile::NamedTempFile::new().unwrap();
    let moved = yaml.replace("Path: /api/status,", "Path: /api/state,");
    assert_ne!(moved, yaml, "the template still routes /api/status");
    std::fs::write(stale.path(), moved).unwrap();
    let stale = start_error(&["--template", stale.path().to_str().unwrap()], &[]).await;
    assert!(
        stale.contains("disagree") && stale.contains("/api/state"),
        "{stale}"
    );
    assert!(stale.contains("rebuild civic-local"), "{stale}");
}

/// Two programs on one data dir: the second is told, not left to corrupt the first's store.
#[tokio::test]
async fn a_data_dir_in_use_is_refused_with_the_fix() {
    let first = LocalServer::start(BIN, &[]).await;
    let dir = first.data_dir.to_str().unwrap();
    let second = start_error(&["--data-dir", dir], &[]).await;
    assert!(
        second.contains("another civic-local") && second.contains("--data-dir"),
        "{second}"
    );
    get(&first, "/ecoflow/api/status/", None).await.ok();
}

/// Issue 15, item 3: deployed, Occupancy is closed unless a parameter opens it; locally the
/// seed's open mode stays the default and is said out loud (start-up log, landing page).
mod occupancy_access {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    #[test]
    fn the_deployed_default_is_closed() {
        let yaml = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
        let default = civic_local::template::parameter_default(&yaml, "OccupancyRequireAuth");
        assert_eq!(default.as_deref(), Some("true"));
        // Every Occupancy HTTP function takes the parameter, not a literal "false".
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let resources = doc["Resources"].as_mapping().unwrap();
        let mut http = 0;
        for (id, res) in resources {
            let id = id.as_str().unwrap();
            let events = &res["Properties"]["Events"];
            let serves_http = events
                .as_mapping()
                .is_some_and(|m| m.values().any(|e| e["Type"] == "HttpApi"));
            if !id.starts_with("Occupancy") || !serves_http {
                continue;
            }
            http += 1;
            let env = &res["Properties"]["Environment"]["Variables"];
            let set = serde_yaml::to_string(&env["OCCUPANCY_REQUIRE_AUTH"]).unwrap();
            assert!(set.contains("OccupancyRequireAuth"), "{id}: {set}");
        }
        assert!(http >= 5, "found {http} Occupancy HTTP functions");
    }

    #[tokio::test]
    async fn civic_local_states_its_open_mode_at_start_up() {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--mqtt-port", "0", "--data-dir"])
            .arg(data.path())
            .env_remove("OCCUPANCY_REQUIRE_AUTH")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let said = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("occupancy access") {
                    return line;
                }
            }
            panic!("civic-local ended without stating Occupancy's access mode");
        })
        .await
        .expect("the start-up log states Occupancy's access mode");
        assert!(said.contains("open: every route"), "{said}");
        assert!(said.contains("OCCUPANCY_REQUIRE_AUTH=true"), "{said}");
        assert!(said.contains("deployed: closed"), "{said}");
        child.kill().await.unwrap();

        let open = LocalServer::start(BIN, &[]).await;
        let health = get(&open, "/_local/health", None).await;
        let h = health.ok();
        assert!(
            h["occupancy_access"].as_str().unwrap().starts_with("open"),
            "{h}"
        );
        let page = get(&open, "/", None).await;
        assert!(
            page.text.contains("id=\"occupancy-access\">open"),
            "{}",
            page.text
        );
        // Open really means open: a camera is created without a token.
        post(
            &open,
            "/occupancy/api/occupancy/cameras",
            json!({"camera_id": "DOOR", "camera_name": "Door", "location": "Hall"}),
        )
        .await
        .is(201);

        let closed = LocalServer::start_env(BIN, &[], &[("OCCUPANCY_REQUIRE_AUTH", "true")]).await;
        let health = get(&closed, "/_local/health", None).await;
        let h = health.ok();
        assert!(
            h["occupancy_access"]
                .as_str()
                .unwrap()
                .starts_with("closed"),
            "{h}"
        );
        let refused = post(
            &closed,
            "/occupancy/api/occupancy/cameras",
            json!({"camera_id": "DOOR", "camera_name": "Door", "location": "Hall"}),
        )
        .await;
        assert_eq!(refused.status, 401, "{}", refused.text);
    }
}

/// Issue 15, item 10: the token signing keys are an SSM SecureString read by the functions that
/// sign or verify tokens, and by no other; no function's environment holds a secret.
mod signing_keys {
    use super::*;

    #[test]
    fn only_token_functions_may_read_the_key_set() {
        let yaml = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let text = |v: &serde_yaml::Value| serde_yaml::to_string(v).unwrap();
        assert!(!yaml.contains("JWT_SECRET") && !yaml.contains("JwtSecret"));
        assert!(text(&doc["Globals"]).find("JWT_KEYS").is_none());

        let policy = &doc["Resources"]["JwtKeysReadPolicy"]["Properties"]["PolicyDocument"];
        let statements = policy["Statement"].as_sequence().unwrap();
        let get = &statements[0];
        assert_eq!(get["Action"], "ssm:GetParameter");
        assert!(text(&get["Resource"]).contains(":parameter${JwtKeysParameter}"));
        assert!(!text(policy).contains("Resource: '*'"), "{}", text(policy));

        let mut signers = Vec::new();
        for (id, res) in doc["Resources"].as_mapping().unwrap() {
            if res["Type"] != "AWS::Serverless::Function" {
                continue;
            }
            let id = id.as_str().unwrap().to_owned();
            let props = &res["Properties"];
            let env = text(&props["Environment"]["Variables"]);
            let may_read = text(&props["Policies"]).contains("JwtKeysReadPolicy");
            let named = env.contains("JWT_KEYS_PARAMETER");
            assert_eq!(
                may_read, named,
                "{id}: the parameter's name and the right to read it go together"
            );
            if !named {
                continue;
            }
            // Every function with the keys serves HTTP, or is a live authorizer (which IoT Core
            // invokes: no events); none is an IoT, S3 or scheduled one.
            match props["Events"].as_mapping() {
                Some(events) => {
                    assert!(events.values().all(|e| e["Type"] == "HttpApi"), "{id}")
                }
                None => assert!(
                    id.ends_with("LiveAuthFunction"),
                    "{id}: keys without events"
                ),
            }
            assert!(
                !id.starts_with("Ozone"),
                "{id}: Ozone uses sessions, not tokens"
            );
            signers.push(id);
        }
        for app in ["Streetlight", "Occupancy", "Homeforge", "Ecoflow"] {
            assert!(
                signers
                    .iter()
                    .any(|id| id == &format!("{app}AuthFunction") || id.starts_with(app)),
                "{app}: {signers:?}"
            );
        }
        assert!(!signers.iter().any(|id| id.ends_with("IotFunction")
            || id == "EcoflowCounterFunction"
            || id == "OccupancyFramesFunction"
            || id == "OccupancySchedulerFunction"
            || id == "EcoflowStatusFunction"));
    }
}
