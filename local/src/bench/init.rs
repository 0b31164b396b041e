//! The lambda-init bench's parts: every function of template.yaml with the environment
//! `sam local --env-vars env.json` gives it (pointed at moto instead of LocalStack), and one
//! cold start of its binary under the test kit's Lambda Runtime API emulator.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use civic_testkit::runtime_api::{self, Outcome, RuntimeApi};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::template;

/// One function of the template, ready to start.
pub struct Target {
    /// The cargo binary, e.g. `streetlight-lights`.
    pub binary: String,
    /// Whether it serves HttpApi routes (the functions the 15 ms goal is for).
    pub http: bool,
    /// Its environment: the variables the template declares, with env.json's values.
    pub env: Vec<(String, String)>,
    /// `events/{binary}.json`, if there is one.
    pub event: Option<String>,
}

/// Every function of `repo`'s template.yaml, in template order, its AWS endpoint `moto`.
pub fn targets(repo: &Path, moto: &str) -> Result<Vec<Target>> {
    let yaml = std::fs::read_to_string(repo.join("template.yaml")).context("template.yaml")?;
    let doc: Yaml = serde_yaml::from_str(&yaml)?;
    let values: Json = serde_json::from_str(&std::fs::read_to_string(repo.join("env.json"))?)?;
    let mut out = Vec::new();
    for def in template::parse(&yaml)? {
        let vars = template::environment(&doc, &def.id).unwrap_or_default();
        let mut env = Vec::new();
        for (name, _) in vars {
            let value = values[&def.id]
                .get(&name)
                .or_else(|| values["Parameters"].get(&name))
                .and_then(Json::as_str);
            let value = value.with_context(|| format!("env.json: {} has no {name}", def.id))?;
            env.push((name.clone(), local_value(repo, &name, value, moto)));
        }
        let event = repo.join("events").join(format!("{}.json", def.binary));
        out.push(Target {
            http: !def.routes.is_empty(),
            event: std::fs::read_to_string(event).ok(),
            binary: def.binary,
            env,
        });
    }
    Ok(out)
}

/// env.json's `value` of `name` on this machine: moto for LocalStack, and the detector's
/// runtime and models where the Lambda layer would put them in `/opt`.
fn local_value(repo: &Path, name: &str, value: &str, moto: &str) -> String {
    match name {
        "AWS_ENDPOINT_URL" => moto.to_owned(),
        "ORT_DYLIB_PATH" => std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| value.to_owned()),
        "CIVIC_MODEL_DIR" => repo.join("models").display().to_string(),
        _ => value.to_owned(),
    }
}

/// One cold start: exec to the first `/next`, and the first invocation's outcome.
pub struct Start {
    pub init: Duration,
    /// How long the event took and what came back, when one was sent.
    pub first: Option<(Duration, String)>,
}

/// Starts `bin` as `t`, waits for its first `/next`, then sends it `event` if given.
pub async fn cold_start(bin: &Path, t: &Target, event: Option<&str>) -> Result<Start> {
    let api = RuntimeApi::start(&t.binary).await?;
    let exec = Instant::now();
    let mut child = runtime_api::spawn(bin, &api, &t.binary, &t.env, false)
        .with_context(|| format!("starting {}", bin.display()))?;
    let Some(ready) = api.ready(Duration::from_secs(30)).await else {
        let status = child.try_wait()?;
        bail!(
            "{}: no /next (init error {:?}, exit {status:?})",
            t.binary,
            api.init_error()
        );
    };
    let mut start = Start {
        init: ready.duration_since(exec),
        first: None,
    };
    if let Some(event) = event {
        let (outcome, took) = api
            .invoke(event.to_owned(), Duration::from_secs(30))
            .await
            .with_context(|| format!("{}: no answer to its sample event", t.binary))?;
        start.first = Some((took, status(&outcome)));
    }
    child.kill().await?;
    Ok(start)
}

/// What an answer says, in a word: an API Gateway response's status code, a topic-rule
/// consumer's rejection, `ok` for any other response, or the error's type.
pub fn status(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error { kind, .. } => format!("error {kind}"),
        Outcome::Response(_) => {
            let json = outcome.json();
            if let Some(code) = json["statusCode"].as_u64() {
                code.to_string()
            } else if json.get("rejected").is_some() {
                "rejected".to_owned()
            } else {
                "ok".to_owned()
            }
        }
    }
}

/// The function's deployable size: cargo-lambda's arm64 `bootstrap` if one was built into
/// `{lambda}/{binary}/` (`target/lambda`), else the binary measured. The flag says which.
pub fn size(lambda: &Path, bin: &Path, binary: &str) -> (u64, &'static str) {
    let arm = lambda.join(binary).join("bootstrap");
    let len = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).ok();
    match len(&arm) {
        Some(n) => (n, "arm64"),
        None => (len(&bin.to_path_buf()).unwrap_or(0), "x86_64"),
    }
}
