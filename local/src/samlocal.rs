//! `civic-local sam-template`: one app's functions of a template, for `sam local start-api`.
//! SAM local serves every HttpApi of a template on one port, and five routes belong to more
//! than one app (`ANY /api/auth/{proxy+}`, `GET /openapi.json`, ...), where SAM keeps the last
//! function of the template: EcoFlow's auth would answer Streetlight's login. One app at a
//! time, each route has one function, as behind each app's own API on AWS.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use serde_yaml::Value;

use crate::registry;

#[derive(Clone, Debug, clap::Args)]
pub struct SamTemplateOpts {
    /// The app whose functions stay: streetlight, ozone, occupancy, homeforge or ecoflow.
    #[arg(long)]
    pub app: String,
    /// The template to read (`sam build`'s `.aws-sam/build/template.yaml`).
    #[arg(long)]
    pub template: PathBuf,
    /// Where to write (JSON): beside the input, so that its relative `CodeUri`s still resolve.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(opts: &SamTemplateOpts) -> Result<()> {
    let path = opts.template.display();
    let yaml =
        std::fs::read_to_string(&opts.template).with_context(|| format!("reading {path}"))?;
    let out = one_app(&yaml, &opts.app)?;
    std::fs::write(&opts.out, out).with_context(|| format!("writing {}", opts.out.display()))
}

/// `yaml` without the functions of other apps (a function's logical id starts with its app's
/// name, e.g. `OzoneGatewayFunction`). Everything else stays: sam local reads only functions
/// and their events, and other resources are what the kept ones refer to.
pub fn one_app(yaml: &str, app: &str) -> Result<String> {
    let apps: BTreeSet<&str> = registry::all().map(|f| f.app.name).collect();
    ensure!(apps.contains(app), "unknown app {app:?}: one of {apps:?}");
    let mut doc: Value = serde_yaml::from_str(yaml).context("the template is not YAML")?;
    let resources = doc.get_mut("Resources").and_then(Value::as_mapping_mut);
    let resources = resources.context("the template has no Resources")?;
    resources.retain(|id, res| {
        let function = res.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function");
        let id = id.as_str().unwrap_or_default().to_ascii_lowercase();
        !function || id.starts_with(app)
    });
    Ok(serde_json::to_string_pretty(&json(doc)?)?)
}

/// The template as JSON, which SAM reads too: its YAML reader is YAML 1.1, where a plain `off`
/// (serde_yaml's output for the string) is false. Tags take their long form (`!Ref X` is
/// `{"Ref": "X"}`, `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` is `{"Fn::Sub": s}`).
fn json(value: Value) -> Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(b),
        Value::Number(n) => serde_json::to_value(n)?,
        Value::String(s) => J::String(s),
        Value::Sequence(items) => J::Array(items.into_iter().map(json).collect::<Result<_>>()?),
        Value::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = k.as_str().context("a mapping key that is not a string")?;
                out.insert(key.to_owned(), json(v)?);
            }
            J::Object(out)
        }
        Value::Tagged(tagged) => {
            let name = tagged.tag.to_string();
            let name = name.trim_start_matches('!');
            let inner = match (name, tagged.value) {
                ("GetAtt", Value::String(s)) => {
                    let (res, attr) = s
                        .split_once('.')
                        .context("!GetAtt needs Resource.Attribute")?;
                    serde_json::json!([res, attr])
                }
                (_, v) => json(v)?,
            };
            let key = if name == "Ref" {
                "Ref".to_owned()
            } else {
                format!("Fn::{name}")
            };
            serde_json::json!({ key: inner })
        }
    })
}
