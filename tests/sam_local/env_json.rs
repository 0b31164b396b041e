//! env.json against template.yaml, and the compose file that env.json's endpoint names.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::{BUCKET, ENDPOINT, JWT_KEYS, env_json, repo, yaml};

/// Each function's declared variables (Globals' and its own; SAM passes no others), with the
/// template's value as YAML text (tags such as `!Ref` kept).
fn declared() -> BTreeMap<String, BTreeMap<String, String>> {
    let doc = yaml("template.yaml");
    let globals = &doc["Globals"]["Function"]["Environment"]["Variables"];
    assert!(globals.get("AWS_ENDPOINT_URL").is_some(), "{globals:?}");
    let mut out = BTreeMap::new();
    for (id, res) in doc["Resources"].as_mapping().unwrap() {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let id = id.as_str().unwrap();
        let vars = civic_local::template::environment(&doc, id).unwrap();
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k, serde_yaml::to_string(&v).unwrap()));
        out.insert(id.to_owned(), vars.collect());
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
