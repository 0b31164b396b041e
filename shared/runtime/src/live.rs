//! Browsers' live subscriptions on AWS: an IoT Core custom authorizer.
//!
//! A browser connects to IoT Core's WSS endpoint
//! (`wss://{ats endpoint}/mqtt?x-amz-customauthorizer-name={authorizer}`) with the app's name
//! as MQTT user name and its access token as password. IoT Core hands both to this function,
//! which asks the app's [`LiveScope`] (the same check civic-local's WebSocket gate makes) and
//! answers with a read-only IoT policy for the topic filters the scope granted.
//!
//! IoT Core cannot rename a client the way civic-local's gate does, so the policy only lets
//! client ids starting with `web-{app}-` connect: a browser picks `web-{app}-{random}`, and can
//! never take over a device's session (devices connect as `{app}-{id}`).

use aws_lambda_events::event::iam::{IamPolicyDocument, IamPolicyEffect, IamPolicyStatement};
pub use aws_lambda_events::event::iot::IoTCoreCustomAuthorizerResponse;
use base64::Engine;
use civic_core::Platform;
use civic_core::live::{LiveAccess, LiveAuthorizer, LiveScope};
use serde::Deserialize;

use crate::{Error, init_tracing};

/// IoT Core's bounds for `disconnectAfterInSeconds` (and `refreshAfterInSeconds`).
const MIN_SECONDS: i64 = 300;
const MAX_SECONDS: i64 = 86_400;
/// How often IoT Core asks again while a connection lasts, so that a deleted account or a
/// changed password is refused then, not only when the token expires.
pub const REFRESH_SECONDS: u32 = 300;

/// Runs `scope`'s IoT Core custom authorizer. A refused credential is an answer
/// (`isAuthenticated: false`, IoT Core closes the connection); a store that cannot say fails
/// the invocation, which IoT Core also treats as a refusal, and which shows in the logs.
pub async fn run_live_authorizer(scope: &'static LiveScope) -> Result<(), Error> {
    init_tracing(true);
    // A bad setting stops the cold start naming its variable, as in every other function.
    (scope.app.config)()?;
    let platform = Platform::from_env().await?;
    let authorizer = (scope.authorizer)(&platform);
    let region = std::env::var("AWS_REGION").ok();
    let handler = lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let arn = event.context.invoked_function_arn.clone();
            let (authorizer, region) = (authorizer.clone(), region.clone());
            async move {
                let account = Account::of_function(&arn, region.as_deref())
                    .ok_or_else(|| Error::from(format!("not a function ARN: {arn:?}")))?;
                let now = civic_core::time::now().unix_timestamp();
                let answer =
                    decide(scope.app.name, &authorizer, event.payload, now, &account).await?;
                tracing::info!(app = scope.app.name, principal = ?answer.principal_id,
                    allowed = answer.is_authenticated, "live connection");
                Ok::<_, Error>(answer)
            }
        },
    );
    lambda_runtime::run(handler).await
}

/// Where the policy's ARNs point: the authorizer's own partition, region and account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub partition: String,
    pub region: String,
    pub id: String,
}

impl Account {
    /// From the invoked function's ARN (`arn:{partition}:lambda:{region}:{account}:function:…`);
    /// `region` (`AWS_REGION`) wins over the ARN's when set.
    pub fn of_function(arn: &str, region: Option<&str>) -> Option<Self> {
        let mut parts = arn.split(':');
        let (Some("arn"), Some(partition), Some("lambda"), Some(arn_region), Some(id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        Some(Self {
            partition: partition.into(),
            region: region.unwrap_or(arn_region).into(),
            id: id.into(),
        })
    }

    fn iot(&self, resource: &str) -> String {
        format!(
            "arn:{}:iot:{}:{}:{resource}",
            self.partition, self.region, self.id
        )
    }
}

/// The part of IoT Core's request this authorizer reads. Its own structs rather than
/// aws_lambda_events' `IoTCoreCustomAuthorizerRequest`, whose password is decoded while the
/// event is: a password that is not base64 must be a refusal, not a failed invocation.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    protocol_data: Option<ProtocolData>,
}

#[derive(Deserialize, Default)]
struct ProtocolData {
    #[serde(default)]
    mqtt: Option<Mqtt>,
}

#[derive(Deserialize, Default)]
struct Mqtt {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The credential of a request for `app`: the MQTT user name must be the app's name (a query
/// string after it, which MQTT clients on port 443 use to name the authorizer, is ignored), and
/// the password is base64 as IoT Core forwards it. Anything else: `None`.
pub fn credential(app: &str, request: serde_json::Value) -> Option<String> {
    let mqtt = serde_json::from_value::<Request>(request)
        .ok()?
        .protocol_data?
        .mqtt?;
    let user = mqtt.username?;
    if user.split('?').next() != Some(app) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(mqtt.password?)
        .ok()?;
    String::from_utf8(bytes).ok().filter(|t| !t.is_empty())
}

/// Checks `request` with the app's authorizer and answers IoT Core (see [`answer`]).
pub async fn decide(
    app: &str,
    authorizer: &LiveAuthorizer,
    request: serde_json::Value,
    now: i64,
    account: &Account,
) -> civic_core::Result<IoTCoreCustomAuthorizerResponse> {
    let access = match credential(app, request) {
        Some(token) => authorizer(token).await?,
        None => None,
    };
    Ok(answer(app, access, now, account))
}

/// IoT Core's answer to the app's decision: refused, or already expired, is
/// `isAuthenticated: false`; a grant is a policy to connect as `web-{app}-*` and to subscribe
/// to and receive within its filters, until it expires (within IoT Core's bounds).
pub fn answer(
    app: &str,
    access: Option<LiveAccess>,
    now: i64,
    account: &Account,
) -> IoTCoreCustomAuthorizerResponse {
    let mut res = IoTCoreCustomAuthorizerResponse::default();
    res.refresh_after_in_seconds = REFRESH_SECONDS;
    res.disconnect_after_in_seconds = MIN_SECONDS as u32;
    let Some(access) = access.filter(|a| a.expires_at > now) else {
        res.principal_id = Some("denied".into());
        return res;
    };
    let subscribe = access.filters.iter().map(|f| subscribe_resource(f));
    let receive = access.filters.iter().map(|f| receive_resource(f));
    let statements = [
        ("iot:Connect", vec![format!("client/web-{app}-*")]),
        ("iot:Subscribe", subscribe.collect()),
        ("iot:Receive", receive.collect()),
    ];
    let mut policy = IamPolicyDocument::default();
    policy.version = Some("2012-10-17".into());
    policy.statement = statements
        .into_iter()
        .map(|(action, resources)| allow(action, resources, account))
        .collect();
    res.is_authenticated = true;
    res.principal_id = Some(access.principal);
    res.disconnect_after_in_seconds =
        (access.expires_at - now).clamp(MIN_SECONDS, MAX_SECONDS) as u32;
    res.policy_documents = vec![Some(policy)];
    res
}

fn allow(action: &str, resources: Vec<String>, account: &Account) -> IamPolicyStatement {
    let mut s = IamPolicyStatement::default();
    s.effect = IamPolicyEffect::Allow;
    s.action = vec![action.into()];
    s.resource = resources.iter().map(|r| account.iot(r)).collect();
    s
}

/// Text in an IoT policy resource: `*`, `?` and `$` are policy syntax, written as the
/// policy variables that stand for them literally.
fn literal(level: &str) -> String {
    level
        .replace('$', "${$}")
        .replace('*', "${*}")
        .replace('?', "${?}")
}

/// The `topicfilter/` resource of an MQTT filter. IoT Core compares the filter a client
/// subscribes with as text, MQTT wildcards included, and policies have no one-level wildcard:
/// a trailing `#` becomes `*` (any filter below it), a `+` stays a literal `+`, so a client
/// granted `a/+/b` subscribes with exactly `a/+/b` (a `*` there would also allow `a/x/y/b`).
pub fn subscribe_resource(filter: &str) -> String {
    let levels: Vec<String> = filter
        .split('/')
        .map(|l| if l == "#" { "*".into() } else { literal(l) })
        .collect();
    format!("topicfilter/{}", levels.join("/"))
}

/// The `topic/` resource of an MQTT filter: every topic it matches, and a few more (`+`
/// becomes `*`, which spans levels). What arrives is still exact: a message is delivered only
/// on a subscription [`subscribe_resource`] allowed, and every such filter lies within a
/// granted one.
pub fn receive_resource(filter: &str) -> String {
    let levels: Vec<String> = filter
        .split('/')
        .map(|l| match l {
            "#" | "+" => "*".into(),
            l => literal(l),
        })
        .collect();
    format!("topic/{}", levels.join("/"))
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
