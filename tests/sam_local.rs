//! SAM local + LocalStack, as far as a machine without Docker can check it: env.json gives every
//! function of template.yaml each variable it declares, pointed at LocalStack; the compose file
//! declares LocalStack on the network that `sam local` joins; `civic-local provision` creates
//! what env.json names (on moto); and scripts/sam-local runs its steps in order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");
/// What the function containers call: the compose service on the `civic-sam` network.
const ENDPOINT: &str = "http://localstack:4566";
/// `civic-local provision`'s defaults, which scripts/sam-local uses.
const BUCKET: &str = "civic-local";
const JWT_KEYS: &str = "/civic/jwt-keys";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(file: &str) -> Yaml {
    serde_yaml::from_str(&std::fs::read_to_string(repo().join(file)).unwrap()).unwrap()
}

fn env_json() -> serde_json::Map<String, Json> {
    let text = std::fs::read_to_string(repo().join("env.json")).unwrap();
    serde_json::from_str(&text).expect("env.json is a JSON object")
}

/// Each function's declared variables (Globals' and its own; SAM passes no others), with the
/// template's value as YAML text (tags such as `!Ref` kept).
fn declared() -> BTreeMap<String, BTreeMap<String, String>> {
    let doc = yaml("template.yaml");
    let names = |vars: &Yaml| -> BTreeMap<String, String> {
        let vars = vars.as_mapping().into_iter().flatten();
        vars.map(|(k, v)| {
            let text = serde_yaml::to_string(v).unwrap();
            (k.as_str().unwrap().to_owned(), text)
        })
        .collect()
    };
    let globals = names(&doc["Globals"]["Function"]["Environment"]["Variables"]);
    assert!(globals.contains_key("AWS_ENDPOINT_URL"), "{globals:?}");
    let mut out = BTreeMap::new();
    for (id, res) in doc["Resources"].as_mapping().unwrap() {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let mut vars = globals.clone();
        vars.extend(names(&res["Properties"]["Environment"]["Variables"]));
        out.insert(id.as_str().unwrap().to_owned(), vars);
    }
    out
}

/// The value SAM local gives `var` in function `id`: the function's entry wins over
/// `Parameters` (samcli's `_make_env_vars`).
fn effective<'a>(env: &'a serde_json::Map<String, Json>, id: &str, var: &str) -> Option<&'a Json> {
    env.get(id)
        .and_then(|f| f.get(var))
        .or_else(|| env["Parameters"].get(var))
}

#[test]
fn env_json_gives_every_function_each_variable_it_declares() {
    let (template, env) = (declared(), env_json());
    assert!(template.len() >= 35, "{} functions", template.len());
    for (id, vars) in &template {
        assert!(env.contains_key(id), "env.json has no entry for {id}");
        for var in vars.keys() {
            let value = effective(&env, id, var);
            let value = value.unwrap_or_else(|| panic!("env.json: {id} lacks {var}"));
            assert!(value.is_string(), "{id}.{var}: {value} is not a string");
        }
    }
    // SAM silently drops what a function does not declare: such an entry would be dead.
    for (id, entry) in &env {
        let entry = entry.as_object().unwrap();
        if id == "Parameters" {
            for var in entry.keys() {
                let used = template.values().any(|v| v.contains_key(var));
                assert!(used, "env.json Parameters.{var}: no function declares it");
            }
            continue;
        }
        let vars = template.get(id);
        let vars = vars.unwrap_or_else(|| panic!("env.json: {id} is not in template.yaml"));
        for var in entry.keys() {
            assert!(
                vars.contains_key(var),
                "env.json: {id} does not declare {var}"
            );
        }
    }
}

#[test]
fn env_json_points_every_function_at_localstack_and_what_provision_creates() {
    let (template, env) = (declared(), env_json());
    let get = |id: &str, var: &str| effective(&env, id, var).and_then(Json::as_str);
    for (id, vars) in &template {
        assert_eq!(get(id, "AWS_ENDPOINT_URL"), Some(ENDPOINT), "{id}");
        assert_eq!(get(id, "BUCKET_NAME"), Some(BUCKET), "{id}");
        // `!Ref StreetlightTable` → civic-streetlight, the table `provision` creates.
        let table = vars["TABLE_NAME"].split_whitespace().last().unwrap();
        let app = table.strip_suffix("Table").unwrap().to_lowercase();
        assert_eq!(
            get(id, "TABLE_NAME"),
            Some(&*format!("civic-{app}")),
            "{id}"
        );
        if vars.contains_key("JWT_KEYS_PARAMETER") {
            assert_eq!(get(id, "JWT_KEYS_PARAMETER"), Some(JWT_KEYS), "{id}");
        }
        // LocalStack's free edition has no IoT Core: no device certificates.
        if vars.contains_key("DEVICE_POLICY") {
            assert_eq!(get(id, "DEVICE_POLICY"), Some(""), "{id}");
        }
        // Nothing left as the template's logical ids (what SAM makes of an unresolved !Ref).
        for var in vars.keys() {
            let value = get(id, var).unwrap();
            let id_like = ["Table", "Policy", "Uploads"]
                .iter()
                .any(|s| value.ends_with(s));
            assert!(!id_like, "{id}.{var} = {value}");
        }
    }
}

#[test]
fn the_compose_file_declares_localstack_on_sams_network() {
    let doc = yaml("deploy/localstack/compose.yaml");
    let ls = &doc["services"]["localstack"];
    let image = ls["image"].as_str().unwrap();
    let tag = image.strip_prefix("localstack/localstack:").unwrap();
    assert!(
        tag.starts_with(|c: char| c.is_ascii_digit()),
        "pinned: {image}"
    );
    let services = ls["environment"]["SERVICES"].as_str().unwrap();
    let services: BTreeSet<&str> = services.split(',').collect();
    for s in ["s3", "dynamodb", "dynamodbstreams", "sqs", "ssm"] {
        assert!(services.contains(s), "{s} in {services:?}");
    }
    let ports = serde_yaml::to_string(&ls["ports"]).unwrap();
    assert!(ports.contains("4566:4566"), "{ports}");
    let aliases = serde_yaml::to_string(&ls["networks"]["civic-sam"]).unwrap();
    assert!(aliases.contains("localstack"), "{aliases}");
    assert_eq!(doc["networks"]["civic-sam"]["name"], "civic-sam");
    // samconfig's `local` environment and the script join that very network.
    let samconfig = std::fs::read_to_string(repo().join("samconfig.toml")).unwrap();
    let local = samconfig.split("[local.local_start_api.parameters]").nth(1);
    let local = local.expect("samconfig.toml has a local start-api section");
    assert!(local.contains("docker_network = \"civic-sam\""), "{local}");
    assert!(local.contains("env_vars = \"env.json\""), "{local}");
}

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
/// and sam that log their arguments; moto plays LocalStack for `provision`.
#[test]
fn the_script_starts_localstack_provisions_and_serves_with_sam() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let stub = |name: &str, body: &str| {
        let text = format!(
            "#!/usr/bin/env bash\nset -eu\necho \"{name} $*\" >> {}\n{body}\n",
            log.display()
        );
        std::fs::write(dir.path().join(name), text).unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(dir.path().join(name))
            .status()
            .unwrap();
    };
    stub("docker", "");
    stub(
        "cargo",
        &format!("while [ \"$1\" != -- ]; do shift; done; shift; exec {BIN} \"$@\""),
    );
    stub(
        "sam",
        "echo \"  as $AWS_ACCESS_KEY_ID in $AWS_REGION, profile ${AWS_PROFILE:-none}\" >> \"$0.env\"",
    );
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let mut cmd = Command::new(repo().join("scripts/sam-local"));
    cmd.arg("--port").arg("3001").env("PATH", path);
    cmd.env("LOCALSTACK_URL", civic_testkit::moto::moto_url());
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
    assert_eq!(
        lines[0],
        "docker compose -f deploy/localstack/compose.yaml up -d --wait"
    );
    let provision =
        format!("--bin civic-local -- provision --bucket {BUCKET} --jwt-keys-parameter {JWT_KEYS}");
    assert!(
        lines[1].starts_with("cargo run") && lines[1].ends_with(&provision),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "sam build --config-env local");
    let serve = "sam local start-api --config-env local --env-vars env.json --docker-network civic-sam --port 3001";
    assert_eq!(lines[3], serve);
    assert_eq!(lines.len(), 4, "{log}");
    // sam hands the containers these credentials: LocalStack's account, not the user's.
    let env = std::fs::read_to_string(dir.path().join("sam.env")).unwrap();
    assert_eq!(
        env.lines().last(),
        Some("  as test in us-east-1, profile none"),
        "{env}"
    );
}
