//! The template's IoT topic rules (`AWS::IoT::TopicRule` resources whose Lambda action names a
//! function of the template), compiled for the local broker. Every rule must parse in the
//! supported IoT SQL subset and reach a linked topic-rule consumer; otherwise civic-local
//! refuses to start and names the rule.

use anyhow::{Result, bail};
use civic_core::IotFunction;
use civic_iot::{Context, Rule};
use serde_yaml::Value;

use crate::registry;

pub const SQL_VERSION: &str = "2016-03-23";

/// A topic rule as the template declares it.
#[derive(Clone, Debug)]
pub struct RuleDef {
    /// The rule's logical id, e.g. `StreetlightStatusRule`.
    pub id: String,
    pub sql: String,
    pub version: Option<String>,
    pub disabled: bool,
    /// The binary of the function its Lambda action invokes.
    pub binary: Option<String>,
    /// The S3 key of its error action, with substitution templates (`${timestamp()}`).
    pub error_key: Option<String>,
}

/// A rule ready to run: its statement, its function and where its error action keeps what the
/// function did not store.
pub struct Compiled {
    pub id: String,
    pub rule: Rule,
    pub function: &'static IotFunction,
    error_key: String,
}

impl Compiled {
    /// The error action's key for a message, its substitution templates filled in.
    pub fn error_key(&self, ctx: &Context) -> String {
        substitute(&self.error_key, ctx).unwrap_or_else(|_| self.error_key.clone())
    }
}

/// Fills in an S3 key's `${...}` substitution templates: `timestamp()`, `newuuid()`,
/// `topic()`, `topic(n)` and `clientid()`; anything else is named as unsupported.
fn substitute(key: &str, ctx: &Context) -> Result<String, String> {
    let mut out = String::with_capacity(key.len() + 40);
    let mut rest = key;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let len = rest[start..]
            .find('}')
            .ok_or_else(|| format!("unclosed substitution template in {key:?}"))?;
        let expr = rest[start + 2..start + len].trim();
        let topic_level = expr
            .strip_prefix("topic(")
            .and_then(|e| e.strip_suffix(')')?.trim().parse::<usize>().ok());
        match (expr, topic_level) {
            ("timestamp()", _) => out.push_str(&ctx.timestamp_ms.to_string()),
            ("newuuid()", _) => out.push_str(&uuid::Uuid::new_v4().to_string()),
            ("topic()", _) => out.push_str(ctx.topic),
            ("clientid()", _) => out.push_str(ctx.client_id.unwrap_or("unknown")),
            (_, Some(n)) => out.push_str(civic_iot::topic::level(ctx.topic, n).unwrap_or("")),
            _ => {
                return Err(format!(
                    "substitution template ${{{expr}}} is not supported (timestamp(), newuuid(), topic(), topic(n), clientid() are)"
                ));
            }
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `!GetAtt Fn.Arn`, `!Ref X` and their long forms, read as the resource they name.
fn referenced(v: &Value) -> Option<&str> {
    let target = match v {
        Value::Tagged(t) => t.value.as_str().or_else(|| {
            // `!GetAtt [Fn, Arn]`
            t.value.as_sequence()?.first()?.as_str()
        }),
        Value::Mapping(_) => v
            .get("Fn::GetAtt")
            .and_then(|g| g.as_str().or_else(|| g.as_sequence()?.first()?.as_str()))
            .or_else(|| v.get("Ref")?.as_str()),
        _ => None,
    }?;
    Some(target.split('.').next().unwrap_or(target))
}

pub fn parse(yaml: &str) -> Result<Vec<RuleDef>> {
    let doc: Value = serde_yaml::from_str(yaml)?;
    let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) else {
        bail!("template has no Resources");
    };
    let binary_of = |id: &str| {
        resources
            .get(id)?
            .get("Metadata")?
            .get("BuildProperties")?
            .get("Binary")?
            .as_str()
            .map(str::to_owned)
    };
    let mut out = Vec::new();
    for (id, res) in resources {
        if res.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function") {
            out.extend(sam_events(id.as_str().unwrap_or_default(), res));
            continue;
        }
        if res.get("Type").and_then(Value::as_str) != Some("AWS::IoT::TopicRule") {
            continue;
        }
        let id = id.as_str().unwrap_or_default().to_owned();
        let payload = res
            .get("Properties")
            .and_then(|p| p.get("TopicRulePayload"));
        let field = |f: &str| payload.and_then(|p| p.get(f));
        let Some(sql) = field("Sql").and_then(Value::as_str) else {
            bail!("topic rule {id} has no TopicRulePayload.Sql");
        };
        let lambdas: Vec<&str> = field("Actions")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|a| referenced(a.get("Lambda")?.get("FunctionArn")?))
            .collect();
        let [function] = lambdas.as_slice() else {
            bail!(
                "topic rule {id} needs exactly one Lambda action with FunctionArn: !GetAtt <Function>.Arn"
            );
        };
        let error_key = field("ErrorAction")
            .and_then(|a| a.get("S3")?.get("Key")?.as_str())
            .map(str::to_owned);
        out.push(RuleDef {
            error_key,
            sql: sql.to_owned(),
            version: field("AwsIotSqlVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            disabled: field("RuleDisabled").and_then(Value::as_bool) == Some(true),
            binary: binary_of(function),
            id,
        });
    }
    Ok(out)
}

/// SAM's `IoTRule` events on a function (rules without an error action).
fn sam_events(function: &str, res: &Value) -> Vec<RuleDef> {
    let binary = res
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties")?.get("Binary")?.as_str());
    let events = res
        .get("Properties")
        .and_then(|p| p.get("Events")?.as_mapping());
    let rules = events
        .into_iter()
        .flatten()
        .filter(|(_, ev)| ev.get("Type").and_then(Value::as_str) == Some("IoTRule"));
    rules
        .map(|(name, ev)| {
            let prop = |f: &str| {
                ev.get("Properties")
                    .and_then(|p| p.get(f)?.as_str())
                    .map(str::to_owned)
            };
            RuleDef {
                id: format!("{function}.{}", name.as_str().unwrap_or_default()),
                sql: prop("Sql").unwrap_or_default(),
                version: prop("AwsIotSqlVersion"),
                disabled: false,
                binary: binary.map(str::to_owned),
                error_key: None,
            }
        })
        .collect()
}

/// Compiles the enabled rules, or names every rule civic-local cannot run as AWS would. A rule
/// without an S3 error action (SAM's `IoTRule` events have none) keeps its unstored messages
/// under `iot-errors/{function}/`.
pub fn compile(defs: &[RuleDef]) -> Result<Vec<Compiled>> {
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for def in defs.iter().filter(|d| !d.disabled) {
        if def.version.as_deref() != Some(SQL_VERSION) {
            problems.push(format!(
                "{}: AwsIotSqlVersion must be '{SQL_VERSION}' (found {:?})",
                def.id, def.version
            ));
        }
        let function = match def.binary.as_deref() {
            Some(b) => registry::find_iot(b).or_else(|| {
                problems.push(format!(
                    "{}: binary {b} is not a topic-rule consumer linked into civic-local",
                    def.id
                ));
                None
            }),
            None => {
                problems.push(format!(
                    "{}: its Lambda action names no function of the template",
                    def.id
                ));
                None
            }
        };
        let error_key = def.error_key.clone().unwrap_or_else(|| {
            let function = def.binary.as_deref().unwrap_or("unknown");
            format!("iot-errors/{function}/${{timestamp()}}-${{newuuid()}}.json")
        });
        let sample = Context {
            topic: "a/b",
            client_id: None,
            timestamp_ms: 0,
        };
        if let Err(e) = substitute(&error_key, &sample) {
            problems.push(format!("{}: error action key: {e}", def.id));
        }
        match Rule::parse(&def.sql) {
            Ok(rule) => {
                if let Some(function) = function {
                    out.push(Compiled {
                        id: def.id.clone(),
                        rule,
                        function,
                        error_key,
                    });
                }
            }
            Err(e) => problems.push(format!("{}: {e} in {:?}", def.id, def.sql)),
        }
    }
    for f in registry::iot_functions() {
        if !defs.iter().any(|d| d.binary.as_deref() == Some(f.name)) {
            problems.push(format!("topic-rule consumer {} has no topic rule", f.name));
        }
    }
    if !problems.is_empty() {
        bail!(
            "template.yaml's IoT topic rules cannot run locally:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap()
    }

    #[test]
    fn every_template_rule_compiles_to_its_consumer() {
        let defs = parse(&template()).unwrap();
        let rules = compile(&defs).unwrap();
        let mut names: Vec<_> = rules.iter().map(|r| r.function.name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "homeforge-iot",
                "occupancy-iot",
                "ozone-iot",
                "streetlight-iot"
            ]
        );
        let ozone = rules
            .iter()
            .find(|r| r.function.name == "ozone-iot")
            .unwrap();
        assert_eq!(ozone.rule.from, "ozone/devices/+/events");
        let ctx = Context {
            topic: "ozone/devices/dev-a/events",
            client_id: Some("dev-a"),
            timestamp_ms: 1_700_000_000_000,
        };
        let key = ozone.error_key(&ctx);
        let name = key.strip_prefix("iot-errors/ozone/1700000000000-").unwrap();
        assert!(
            name.ends_with(".json") && name.len() == 36 + 5,
            "a uuid per message: {key}"
        );
        assert_ne!(key, ozone.error_key(&ctx));
    }

    #[test]
    fn error_keys_fill_in_substitution_templates_or_name_the_unsupported_one() {
        let ctx = Context {
            topic: "occupancy/cameras/7/crossings",
            client_id: Some("cam-7"),
            timestamp_ms: 5,
        };
        assert_eq!(
            substitute(
                "e/${topic(3)}/${clientid()}/${ timestamp() }-${topic()}",
                &ctx
            )
            .unwrap(),
            "e/7/cam-7/5-occupancy/cameras/7/crossings"
        );
        assert!(
            substitute("e/${md5(topic())}", &ctx)
                .unwrap_err()
                .contains("${md5(topic())} is not supported")
        );
        assert!(substitute("e/${topic()", &ctx).is_err());
        let mut defs = parse(&template()).unwrap();
        defs[0].error_key = Some("e/${principal()}".into());
        let err = compile(&defs).err().unwrap().to_string();
        assert!(
            err.contains(&format!("{}: error action key", defs[0].id)),
            "{err}"
        );
    }

    #[test]
    fn unsupported_sql_or_versions_refuse_to_start_naming_the_rule() {
        let mut defs = parse(&template()).unwrap();
        defs[0].sql = "SELECT upper(status) FROM 'streetlight/lights/+/status'".into();
        defs[1].version = Some("2015-10-08".into());
        let id0 = defs[0].id.clone();
        let err = compile(&defs).err().unwrap().to_string();
        assert!(
            err.contains(&format!(
                "{id0}: IoT SQL, at character 8: function upper() is not supported"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("{}: AwsIotSqlVersion must be", defs[1].id)),
            "{err}"
        );

        let mut defs = parse(&template()).unwrap();
        defs[2].binary = Some("streetlight-lights".into());
        let err = compile(&defs).err().unwrap().to_string();
        assert!(
            err.contains("binary streetlight-lights is not a topic-rule consumer"),
            "{err}"
        );
    }

    #[test]
    fn lambda_actions_are_read_through_intrinsic_functions() {
        let yaml = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: ozone-iot } }
  R1:
    Type: AWS::IoT::TopicRule
    Properties:
      TopicRulePayload:
        Sql: "SELECT * FROM 'a/+'"
        AwsIotSqlVersion: '2016-03-23'
        RuleDisabled: false
        Actions: [{ Lambda: { FunctionArn: { "Fn::GetAtt": [Fn, Arn] } } }]
  R2:
    Type: AWS::IoT::TopicRule
    Properties:
      TopicRulePayload:
        Sql: "SELECT * FROM 'b'"
        Actions: [{ Lambda: { FunctionArn: !GetAtt Fn.Arn } }]
  Sam:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: ozone-iot } }
    Properties:
      Events:
        Rule:
          Type: IoTRule
          Properties: { Sql: "SELECT * FROM 'c'", AwsIotSqlVersion: '2016-03-23' }
"#;
        let defs = parse(yaml).unwrap();
        assert_eq!(defs.len(), 3);
        assert!(
            defs.iter()
                .any(|d| d.id == "Sam.Rule" && d.sql == "SELECT * FROM 'c'")
        );
        assert!(
            defs.iter()
                .all(|d| d.binary.as_deref() == Some("ozone-iot"))
        );
    }
}
