//! `civic-local provision` on moto, `sam-template`, and scripts/sam-local with stand-ins.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value as Json;

use crate::{BIN, BUCKET, JWT_KEYS, repo};

/// What `provision` needs to reach moto, as scripts/sam-local sets it for LocalStack.
fn on_moto(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ENDPOINT_URL", civic_testkit::moto::moto_url())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (out.stdout, String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    String::from_utf8(stdout).unwrap()
}

#[tokio::test]
async fn provision_creates_the_bucket_the_tables_and_the_keys_once() {
    let bucket = civic_testkit::moto::unique("civic-sam");
    let param = format!("/{}/jwt-keys", civic_testkit::moto::unique("civic"));
    let provision = || {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "provision",
            "--bucket",
            &bucket,
            "--jwt-keys-parameter",
            &param,
        ]);
        stdout_of(on_moto(&mut cmd))
    };
    let said = provision();
    assert!(
        said.contains(&format!("jwt keys {param} (created)")),
        "{said}"
    );

    let sdk = civic_testkit::moto::aws_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let apps: BTreeSet<&str> = civic_local::registry::all().map(|f| f.app.name).collect();
    assert_eq!(apps.len(), 5, "{apps:?}");
    for app in apps {
        let out = dynamo.describe_table().table_name(format!("civic-{app}"));
        let out = out.send().await.unwrap();
        let table = out.table().unwrap();
        let gsi = table.global_secondary_indexes();
        assert_eq!(gsi[0].index_name(), Some("GSI1"), "civic-{app}");
        let stream = table.stream_specification().unwrap();
        assert!(
            stream.stream_enabled(),
            "civic-{app}: the aggregators' stream"
        );
    }
    let store = civic_store::Backend::aws_with_config(&sdk, &bucket);
    store.blob().ping().await.expect("the bucket exists");

    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let keys = civic_core::KeySet::from_ssm(&ssm, &param).await.unwrap();
    assert_eq!(keys.current_kid(), Some("local"));
    let first = keys.current("streetlight").unwrap().1;
    // A second run keeps the key, so tokens signed before it stay valid.
    let said = provision();
    assert!(said.contains(&format!("jwt keys {param} (kept)")), "{said}");
    let keys = civic_core::KeySet::from_ssm(&ssm, &param).await.unwrap();
    assert_eq!(keys.current("streetlight").unwrap().1, first);
}

/// scripts/sam-local with stand-ins for docker, cargo (which runs this build's civic-local)
/// and sam (whose `build` copies the template) that log their arguments; moto plays LocalStack.
#[test]
fn the_script_starts_localstack_provisions_and_serves_one_app_with_sam() {
    let dir = tempfile::tempdir().unwrap();
    let (log, build) = (dir.path().join("log"), dir.path().join("build"));
    let stub = |name: &str, body: &str| {
        let log = log.display();
        let text = format!("#!/usr/bin/env bash\nset -eu\necho \"{name} $*\" >> {log}\n{body}\n");
        std::fs::write(dir.path().join(name), text).unwrap();
        let mut chmod = Command::new("chmod");
        chmod.arg("+x").arg(dir.path().join(name));
        assert!(chmod.status().unwrap().success());
    };
    stub("docker", "");
    stub(
        "cargo",
        &format!("while [ \"$1\" != -- ]; do shift; done; shift; exec {BIN} \"$@\""),
    );
    let sam = "echo \"  as $AWS_ACCESS_KEY_ID in $AWS_REGION, profile ${AWS_PROFILE:-none}\" >> \"$0.env\"
[ \"$1\" != build ] || { mkdir -p \"$SAM_BUILD_DIR\"; cp template.yaml \"$SAM_BUILD_DIR\"; }";
    stub("sam", sam);
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let mut cmd = Command::new(repo().join("scripts/sam-local"));
    cmd.args(["ozone", "--port", "3001"]).env("PATH", path);
    cmd.env("LOCALSTACK_URL", civic_testkit::moto::moto_url());
    cmd.env("SAM_BUILD_DIR", &build);
    cmd.env("AWS_REGION", "us-east-1")
        .env("AWS_PROFILE", "someone-real");
    let said = stdout_of(&mut cmd);
    assert!(
        said.contains("tables civic-ecoflow civic-homeforge"),
        "{said}"
    );
    assert!(said.contains(&format!("bucket {BUCKET}")), "{said}");

    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let b = build.display();
    assert_eq!(
        lines[0],
        "docker compose -f deploy/localstack/compose.yaml up -d --wait"
    );
    let provision = format!("-- provision --bucket {BUCKET} --jwt-keys-parameter {JWT_KEYS}");
    assert!(
        lines[1].starts_with("cargo run") && lines[1].ends_with(&provision),
        "{log}"
    );
    assert_eq!(
        lines[2],
        format!("sam build --config-env local --build-dir {b}")
    );
    let filter =
        format!("-- sam-template --app ozone --template {b}/template.yaml --out {b}/ozone.json");
    assert!(lines[3].ends_with(&filter), "{log}");
    let serve = format!(
        "sam local start-api --config-env local --template {b}/ozone.json --env-vars env.json --docker-network civic-sam --port 3001"
    );
    assert_eq!(lines[4], serve);
    assert_eq!(lines.len(), 5, "{log}");
    let served = std::fs::read_to_string(build.join("ozone.json")).unwrap();
    let functions = civic_local::template::parse(&served).unwrap();
    assert!(
        functions.iter().all(|f| f.id.starts_with("Ozone")),
        "{served}"
    );
    // sam hands the containers these credentials: LocalStack's account, not the user's.
    let env = std::fs::read_to_string(dir.path().join("sam.env")).unwrap();
    assert_eq!(
        env.lines().last(),
        Some("  as test in us-east-1, profile none"),
        "{env}"
    );
}

/// `sam-template`: under SAM, each app alone gives every route of the template one function.
#[test]
fn one_app_at_a_time_every_route_has_one_function() {
    let yaml = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    let all = civic_local::template::parse(&yaml).unwrap();
    let route_count =
        |defs: &[civic_local::FunctionDef]| -> usize { defs.iter().map(|f| f.routes.len()).sum() };
    let apps: BTreeSet<&str> = civic_local::registry::all().map(|f| f.app.name).collect();
    let (mut functions, mut routes) = (0, 0);
    for app in apps {
        let json = civic_local::samlocal::one_app(&yaml, app).unwrap();
        let mine = civic_local::template::parse(&json).unwrap();
        let mut seen = BTreeSet::new();
        for f in &mine {
            assert!(f.id.to_lowercase().starts_with(app), "{app}: {}", f.id);
            for r in &f.routes {
                assert!(seen.insert((&r.method, &r.path)), "{app}: {r:?} twice");
            }
        }
        // Tags in their long form: nothing left for SAM's YAML 1.1 reader to misread.
        let doc: Json = serde_json::from_str(&json).unwrap();
        let endpoint = &doc["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"];
        assert_eq!(
            endpoint["Fn::If"][1],
            serde_json::json!({"Ref": "EndpointUrl"})
        );
        assert_eq!(doc["Parameters"]["RateLimit"]["Default"], "off");
        (functions, routes) = (functions + mine.len(), routes + route_count(&mine));
    }
    assert_eq!(functions, all.len());
    assert_eq!(routes, route_count(&all));
    // All at once, some routes are claimed by two apps: why the script takes an app.
    let mut claimed = BTreeSet::new();
    let shared = all.iter().flat_map(|f| &f.routes);
    let shared = shared
        .filter(|r| !claimed.insert((&r.method, &r.path)))
        .count();
    assert!(shared > 0);
}
