//! The parts of `template.yaml` the local program acts on: each function's binary, its HttpApi
//! routes, schedules and S3 events, and its environment. CloudFormation tags (`!Ref`, `!Sub`,
//! ...) are read as plain values.

use anyhow::{Context, Result, bail};
use serde_yaml::Value;

#[derive(Clone, Debug)]
pub struct FunctionDef {
    /// The template's logical id, e.g. `StreetlightLightsFunction`.
    pub id: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub routes: Vec<Route>,
    /// `Schedule` events' expressions, e.g. `rate(5 minutes)`.
    pub schedules: Vec<String>,
    /// `S3` events.
    pub s3: Vec<S3Trigger>,
    /// `DynamoDB` events: the event names (the stream is its app's table).
    pub streams: Vec<String>,
}

/// An `S3` event: which object events, under which key prefix and suffix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Trigger {
    /// e.g. `s3:ObjectCreated:*`.
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

impl S3Trigger {
    /// Whether S3 would deliver `event` (e.g. `ObjectCreated:Put`) for `key`.
    pub fn matches(&self, event: &str, key: &str) -> bool {
        let event = format!("s3:{event}");
        let named = self.events.iter().any(|e| match e.strip_suffix('*') {
            Some(stem) => event.starts_with(stem),
            None => *e == event,
        });
        named && key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }

    fn parse(props: Option<&Value>) -> Option<Self> {
        let props = props?;
        let events = match props.get("Events")? {
            Value::Sequence(list) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            one => vec![one.as_str()?.to_owned()],
        };
        let mut trigger = Self {
            events,
            ..Self::default()
        };
        let rules = props
            .get("Filter")
            .and_then(|f| f.get("S3Key"))
            .and_then(|k| k.get("Rules"))
            .and_then(Value::as_sequence);
        for rule in rules.into_iter().flatten() {
            let (Some(name), Some(value)) = (
                rule.get("Name").and_then(Value::as_str),
                rule.get("Value").and_then(Value::as_str),
            ) else {
                return None;
            };
            match name.to_ascii_lowercase().as_str() {
                "prefix" => trigger.prefix = value.to_owned(),
                "suffix" => trigger.suffix = value.to_owned(),
                _ => return None,
            }
        }
        Some(trigger)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Upper case, or `ANY`.
    pub method: String,
    /// API Gateway syntax, e.g. `/api/lights/{proxy+}`.
    pub path: String,
}

impl Route {
    /// The same path in axum's syntax: `{proxy+}` becomes `{*proxy}`.
    pub fn axum_path(&self) -> String {
        self.path
            .split('/')
            .map(
                |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                    Some(name) => format!("{{*{name}}}"),
                    None => seg.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether this route receives a request for `method` `path` (an OpenAPI path, whose
    /// `{param}` segments match any one segment).
    pub fn covers(&self, method: &str, path: &str) -> bool {
        if self.method != "ANY" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let (mut pat, mut segs) = (self.path.split('/'), path.split('/'));
        loop {
            match (pat.next(), segs.next()) {
                (None, None) => return true,
                (Some(p), Some(_)) if p.ends_with("+}") => return true,
                (Some(p), Some(s)) if p == s || (p.starts_with('{') && !s.is_empty()) => {}
                _ => return false,
            }
        }
    }
}

pub fn parse(yaml: &str) -> Result<Vec<FunctionDef>> {
    let doc: Value = serde_yaml::from_str(yaml).context("template.yaml is not valid YAML")?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .context("template has no Resources")?;
    let mut out = Vec::new();
    for (id, res) in resources {
        if res.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap_or_default().to_owned();
        let binary = res
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .with_context(|| format!("function {id} has no Metadata.BuildProperties.Binary"))?
            .to_owned();
        let (mut routes, mut schedules, mut s3) = (Vec::new(), Vec::new(), Vec::new());
        let mut streams = Vec::new();
        let events = res
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping);
        for (name, ev) in events.into_iter().flatten() {
            let kind = ev.get("Type").and_then(Value::as_str);
            if kind == Some("Schedule") {
                let expr = ev
                    .get("Properties")
                    .and_then(|p| p.get("Schedule"))
                    .and_then(Value::as_str);
                let expr = expr.with_context(|| {
                    format!("function {id}: Schedule event {name:?} needs Schedule")
                })?;
                schedules.push(expr.to_owned());
            }
            if kind == Some("S3") {
                s3.push(S3Trigger::parse(ev.get("Properties")).with_context(|| {
                    format!("function {id}: S3 event {name:?} needs Events and prefix/suffix Filter rules")
                })?);
            }
            if kind == Some("DynamoDB") {
                streams.push(name.as_str().unwrap_or_default().to_owned());
            }
            if kind != Some("HttpApi") {
                continue;
            }
            let props = ev.get("Properties");
            let field = |f: &str| {
                props
                    .and_then(|p| p.get(f))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let (Some(path), Some(method)) = (field("Path"), field("Method")) else {
                bail!("function {id}: HttpApi event {name:?} needs Path and Method");
            };
            routes.push(Route {
                method: method.to_uppercase(),
                path,
            });
        }
        out.push(FunctionDef {
            id,
            binary,
            routes,
            schedules,
            s3,
            streams,
        });
    }
    Ok(out)
}

/// A template parameter's `Default` (what a deployment gets unless told otherwise).
pub fn parameter_default(yaml: &str, name: &str) -> Option<String> {
    let doc: Value = serde_yaml::from_str(yaml).ok()?;
    match doc.get("Parameters")?.get(name)?.get("Default")? {
        Value::String(s) => Some(s.clone()),
        other => serde_yaml::to_string(other)
            .ok()
            .map(|s| s.trim().to_owned()),
    }
}

/// Function `id`'s environment variables as SAM gives them: `Globals.Function.Environment`'s,
/// with the function's own `Environment.Variables` over them, in template order, each value as
/// written (tags such as `!Ref` kept). `None` if `doc` has no resource `id`.
pub fn environment(doc: &Value, id: &str) -> Option<Vec<(String, Value)>> {
    let function = doc.get("Resources")?.get(id)?;
    let variables = |v: Option<&Value>| {
        v.and_then(|v| v.get("Environment")?.get("Variables")?.as_mapping())
            .cloned()
            .unwrap_or_default()
    };
    let mut vars = variables(doc.get("Globals").and_then(|g| g.get("Function")));
    // A name in both keeps the global's place and takes the function's value.
    vars.extend(variables(function.get("Properties")));
    let named = vars
        .into_iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)));
    Some(named.collect())
}

/// The period of an EventBridge `rate(...)` expression; `cron(...)` is not supported locally.
pub fn rate(expr: &str) -> Option<std::time::Duration> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::{Route, rate};
    use serde_yaml::Value;

    #[test]
    fn rates_parse_and_cron_is_refused() {
        assert_eq!(
            rate("rate(5 minutes)"),
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(
            rate("rate(1 hour)"),
            Some(std::time::Duration::from_secs(3600))
        );
        assert_eq!(rate("rate(0 minutes)"), None);
        assert_eq!(rate("cron(0 12 * * ? *)"), None);
    }

    #[test]
    fn s3_events_parse_with_their_filters() {
        let yaml = r#"
Resources:
  Counter:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: counter } }
    Properties:
      Events:
        Jpeg:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
            Filter: { S3Key: { Rules: [{ Name: prefix, Value: app/ }, { Name: suffix, Value: .jpg }] } }
        Removed:
          Type: S3
          Properties: { Bucket: !Ref Uploads, Events: [s3:ObjectRemoved:Delete] }
"#;
        let defs = super::parse(yaml).unwrap();
        let t = &defs[0].s3;
        assert_eq!(t.len(), 2);
        assert!(t[0].matches("ObjectCreated:Put", "app/a/b.jpg"));
        assert!(!t[0].matches("ObjectCreated:Put", "app/a/b.png"));
        assert!(!t[0].matches("ObjectCreated:Put", "other/b.jpg"));
        assert!(!t[0].matches("ObjectRemoved:Delete", "app/b.jpg"));
        assert!(t[1].matches("ObjectRemoved:Delete", "anything"));
        assert!(!t[1].matches("ObjectCreated:Put", "anything"));

        let bad = yaml.replace("Name: prefix", "Name: infix");
        assert!(super::parse(&bad).is_err());
    }

    #[test]
    fn a_functions_variables_go_over_the_globals() {
        let yaml = r#"
Globals: { Function: { Environment: { Variables: { RUST_LOG: info, TABLE_NAME: !Ref T } } } }
Resources:
  Own:
    Type: AWS::Serverless::Function
    Properties: { Environment: { Variables: { MODE: own, RUST_LOG: debug } } }
  Bare: { Type: AWS::Serverless::Function, Properties: {} }
"#;
        let doc: Value = serde_yaml::from_str(yaml).unwrap();
        let text = |vars: Vec<(String, Value)>| -> Vec<(String, String)> {
            let text = |v: &Value| serde_yaml::to_string(v).unwrap().trim().to_owned();
            vars.iter().map(|(k, v)| (k.clone(), text(v))).collect()
        };
        let own = text(super::environment(&doc, "Own").unwrap());
        let pairs = [
            ("RUST_LOG", "debug"),
            ("TABLE_NAME", "!Ref T"),
            ("MODE", "own"),
        ];
        assert_eq!(own, pairs.map(|(k, v)| (k.to_owned(), v.to_owned())));
        let bare = text(super::environment(&doc, "Bare").unwrap());
        assert_eq!(bare[0], ("RUST_LOG".to_owned(), "info".to_owned()));
        assert_eq!(bare.len(), 2);
        assert!(super::environment(&doc, "Missing").is_none());
    }

    fn r(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
        }
    }

    #[test]
    fn greedy_and_param_paths_match() {
        assert!(r("ANY", "/api/lights/{proxy+}").covers("GET", "/api/lights/list"));
        assert!(!r("ANY", "/api/lights/{proxy+}").covers("GET", "/api/lights"));
        assert!(r("GET", "/api/cameras/{id}").covers("GET", "/api/cameras/{id}"));
        assert!(!r("GET", "/api/cameras/{id}").covers("POST", "/api/cameras/{id}"));
        assert!(!r("GET", "/api/users").covers("GET", "/api/users/role"));
        assert_eq!(
            r("ANY", "/api/lights/{proxy+}").axum_path(),
            "/api/lights/{*proxy}"
        );
    }
}
