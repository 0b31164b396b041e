//! The console on AWS: `template.yaml`'s CloudFront distribution serves the bundle and every
//! app's API on one origin, as civic-local does. Its viewer-request function (`ConsolePaths`)
//! is run here by node (the console's build already needs it) on the paths the console uses,
//! and each app's behaviour must lead to that app's API.

use std::process::Command;

use civic_local::landing::APPS;
use serde_yaml::Value;

fn resources() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let yaml: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    yaml["Resources"].clone()
}

/// What the function makes of each URI: the rewritten URI, or `301 {location}`.
fn run_function(code: &str, uris: &[&str]) -> Vec<String> {
    let script = "eval(process.argv[1] + ';globalThis.handler = handler;');\
        const out = JSON.parse(process.argv[2]).map((uri) => {\
          const r = handler({ request: { uri } });\
          return r.statusCode ? `${r.statusCode} ${r.headers.location.value}` : r.uri; });\
        console.log(JSON.stringify(out));";
    let uris = serde_json::to_string(uris).unwrap();
    let out = Command::new("node")
        .args(["-e", script, code, &uris])
        .output()
        .expect("node (./scripts/console-build installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_cloudfront_function_routes_console_and_api_paths() {
    let code = resources()["ConsolePaths"]["Properties"]["FunctionCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases = [
        ("/streetlight/api/auth/login", "/api/auth/login"),
        ("/ozone/api/auth/live/", "/api/auth/live/"),
        ("/occupancy/api/occupancy/cameras", "/api/occupancy/cameras"),
        ("/homeforge/media/avatars/u1.png", "/media/avatars/u1.png"),
        ("/ecoflow/api/sensor/detect/", "/api/sensor/detect/"),
        ("/console/", "/console/index.html"),
        ("/console/app.js", "/console/app.js"),
        ("/console/config.json", "/console/config.json"),
        ("/console", "301 /console/"),
        // Not an app: left alone (the bucket answers 403 for what it lacks).
        ("/streetlights/api/x", "/streetlights/api/x"),
        ("/api/auth/login", "/api/auth/login"),
    ];
    let uris: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let got = run_function(&code, &uris);
    let want: Vec<&str> = cases.iter().map(|c| c.1).collect();
    assert_eq!(got, want);
    // Every app the console knows is stripped, and only those.
    let apps: Vec<String> = APPS.iter().map(|a| format!("/{}/api/x", a.0)).collect();
    let apps: Vec<&str> = apps.iter().map(String::as_str).collect();
    assert_eq!(run_function(&code, &apps), vec!["/api/x"; APPS.len()]);
}

#[test]
fn each_apps_path_reaches_its_own_api() {
    let r = resources();
    let config = &r["Console"]["Properties"]["DistributionConfig"];
    let origins = config["Origins"].as_sequence().unwrap();
    let behaviours = config["CacheBehaviors"].as_sequence().unwrap();
    for (name, ..) in APPS {
        let b = behaviours
            .iter()
            .find(|b| b["PathPattern"].as_str() == Some(&format!("/{name}/*")))
            .unwrap_or_else(|| panic!("no behaviour for /{name}/*"));
        assert_eq!(b["TargetOriginId"].as_str(), Some(*name));
        let origin = origins
            .iter()
            .find(|o| o["Id"].as_str() == Some(*name))
            .unwrap();
        let domain = serde_yaml::to_string(&origin["DomainName"]).unwrap();
        let api = format!("${{{}Api}}", title_case(name));
        assert!(domain.contains(&api), "{name}: {domain}");
        assert!(r[&api[2..api.len() - 1]].is_mapping(), "{api} is declared");
        // No caching of API answers, and every method goes through.
        assert_eq!(b["AllowedMethods"].as_sequence().unwrap().len(), 7);
    }
}

fn title_case(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase())
        .into_iter()
        .chain(c)
        .collect()
}

/// `scripts/console-deploy` against a stand-in `aws` (the stack's outputs, the IoT endpoint,
/// and a bucket that is a folder): what it uploads is the bundle without source maps, and a
/// config.json that parses and names each app's API on the console's origin and the live URL
/// of each app with an authorizer.
#[test]
fn the_deploy_script_uploads_the_bundle_and_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let aws = dir.path().join("aws");
    let fake = format!(
        r#"#!/usr/bin/env bash
set -eu
case "$1 $2" in
  "cloudformation describe-stacks")
    case "$*" in
      *ConsoleBucketName*) echo civic-console ;;
      *ConsoleDistributionId*) echo E2EXAMPLE ;;
      *ConsoleUrl*) echo https://d111.cloudfront.net/console/ ;;
      *StreetlightLiveAuthorizerName*) echo civic-streetlight-live ;;
      *OzoneLiveAuthorizerName*) echo civic-ozone-live ;;
      *) echo None ;;
    esac ;;
  "iot describe-endpoint") echo abc-ats.iot.eu-west-1.amazonaws.com ;;
  "s3 sync") [ "$4" = s3://civic-console/console/ ] && mkdir -p {bucket} && cp -r "$3/." {bucket}/ ;;
  "cloudfront create-invalidation") echo "$*" > {bucket}.invalidated ;;
  *) exit 9 ;;
esac
"#,
        bucket = bucket.display()
    );
    std::fs::write(&aws, fake).unwrap();
    Command::new("chmod").arg("+x").arg(&aws).status().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/console-deploy");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = Command::new(script)
        .arg("civic")
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("https://d111.cloudfront.net/console/"),
        "{stdout}"
    );

    for file in ["index.html", "app.js", "app.css"] {
        assert!(bucket.join(file).is_file(), "{file} uploaded");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&bucket)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".map") || n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bucket.join("config.json")).unwrap()).unwrap();
    for (name, _, base) in APPS {
        assert_eq!(config["apps"][name]["api"], format!("/{name}{base}"));
    }
    let wss = "wss://abc-ats.iot.eu-west-1.amazonaws.com/mqtt?x-amz-customauthorizer-name=";
    let live = |app: &str| config["apps"][app]["mqtt"].clone();
    assert_eq!(live("streetlight"), format!("{wss}civic-streetlight-live"));
    assert_eq!(live("ozone"), format!("{wss}civic-ozone-live"));
    assert!(live("nothing").is_null());
    let invalidated = std::fs::read_to_string(dir.path().join("bucket.invalidated")).unwrap();
    assert!(invalidated.contains("E2EXAMPLE") && invalidated.contains("/console/*"));
}
