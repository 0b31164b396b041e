use base64::Engine;
use civic_core::live::{self, LiveAccess};
use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_800_000_000;
const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:stack-StreetlightLiveAuth";

fn account() -> Account {
    Account::of_function(ARN, None).unwrap()
}

/// What IoT Core sends for an MQTT-over-WebSocket CONNECT (the docs' shape).
fn request(username: &str, password: &str) -> Value {
    json!({
        "token": null,
        "signatureVerified": false,
        "protocols": ["tls", "http", "mqtt"],
        "protocolData": {
            "tls": {"serverName": "abc-ats.iot.eu-west-1.amazonaws.com"},
            "http": {"headers": {}, "queryString": "?x-amz-customauthorizer-name=civic-streetlight-live"},
            "mqtt": {"username": username, "password": password, "clientId": "web-streetlight-1"}
        },
        "connectionMetadata": {"id": "e2d0c1c8-0000-4000-8000-000000000000"}
    })
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn access(filters: &[&str], expires_at: i64) -> LiveAccess {
    LiveAccess {
        principal: "streetlightu1".into(),
        filters: filters.iter().map(|f| f.to_string()).collect(),
        expires_at,
    }
}

/// Grants `streetlight/live/#` for an hour to the token `good`, refuses any other.
fn authorizer() -> LiveAuthorizer {
    live::authorizer((), |(), token: String| async move {
        Ok((token == "good").then(|| access(&["streetlight/live/#"], NOW + 3600)))
    })
}

async fn decide_for(req: Value) -> IoTCoreCustomAuthorizerResponse {
    decide("streetlight", &authorizer(), req, NOW, &account())
        .await
        .unwrap()
}

fn assert_denied(res: &IoTCoreCustomAuthorizerResponse) {
    assert!(!res.is_authenticated);
    assert!(res.policy_documents.is_empty());
    assert_eq!(res.principal_id.as_deref(), Some("denied"));
}

#[tokio::test]
async fn a_valid_token_gets_a_read_only_policy_until_it_expires() {
    let res = decide_for(request("streetlight", &b64("good"))).await;
    assert!(res.is_authenticated);
    assert_eq!(res.principal_id.as_deref(), Some("streetlightu1"));
    assert_eq!(res.disconnect_after_in_seconds, 3600);
    assert_eq!(res.refresh_after_in_seconds, 300);
    let arn = "arn:aws:iot:eu-west-1:123456789012";
    assert_eq!(
        serde_json::to_value(&res).unwrap(),
        json!({
            "isAuthenticated": true,
            "principalId": "streetlightu1",
            "disconnectAfterInSeconds": 3600,
            "refreshAfterInSeconds": 300,
            "policyDocuments": [{
                "Version": "2012-10-17",
                "Statement": [
                    {"Action": ["iot:Connect"], "Effect": "Allow",
                     "Resource": [format!("{arn}:client/web-streetlight-*")]},
                    {"Action": ["iot:Subscribe"], "Effect": "Allow",
                     "Resource": [format!("{arn}:topicfilter/streetlight/live/*")]},
                    {"Action": ["iot:Receive"], "Effect": "Allow",
                     "Resource": [format!("{arn}:topic/streetlight/live/*")]},
                ]
            }]
        })
    );
}

#[tokio::test]
async fn the_user_name_must_be_the_app() {
    assert_denied(&decide_for(request("ozone", &b64("good"))).await);
    assert_denied(&decide_for(request("", &b64("good"))).await);
    // MQTT clients on port 443 may name the authorizer after the user name.
    let named = "streetlight?x-amz-customauthorizer-name=civic-streetlight-live";
    assert!(
        decide_for(request(named, &b64("good")))
            .await
            .is_authenticated
    );
}

#[tokio::test]
async fn a_password_that_is_not_base64_or_missing_is_refused() {
    assert_denied(&decide_for(request("streetlight", "good!")).await);
    assert_denied(&decide_for(request("streetlight", &b64(""))).await);
    let mut no_password = request("streetlight", "");
    no_password["protocolData"]["mqtt"]
        .as_object_mut()
        .unwrap()
        .remove("password");
    assert_denied(&decide_for(no_password).await);
    assert_denied(&decide_for(json!({"protocols": ["http"]})).await);
    assert_denied(&decide_for(json!("not an object")).await);
}

#[tokio::test]
async fn a_refused_token_is_denied() {
    assert_denied(&decide_for(request("streetlight", &b64("bad"))).await);
}

#[test]
fn an_expired_grant_is_denied_and_lifetimes_stay_in_iot_cores_bounds() {
    let a = account();
    assert_denied(&answer("streetlight", Some(access(&["x/#"], NOW)), NOW, &a));
    assert_denied(&answer(
        "streetlight",
        Some(access(&["x/#"], NOW - 1)),
        NOW,
        &a,
    ));
    let soon = answer("streetlight", Some(access(&["x/#"], NOW + 10)), NOW, &a);
    assert_eq!(soon.disconnect_after_in_seconds, 300);
    let late = answer(
        "streetlight",
        Some(access(&["x/#"], NOW + 30 * 86400)),
        NOW,
        &a,
    );
    assert_eq!(late.disconnect_after_in_seconds, 86400);
    assert_denied(&answer("streetlight", None, NOW, &a));
}

#[test]
fn mqtt_wildcards_become_policy_resources() {
    let res = answer(
        "homeforge",
        Some(access(
            &["homeforge/live/owners/+/devices/#", "a/b"],
            NOW + 600,
        )),
        NOW,
        &account(),
    );
    let policy = res.policy_documents[0].as_ref().unwrap();
    let arn = "arn:aws:iot:eu-west-1:123456789012";
    assert_eq!(
        policy.statement[0].resource,
        [format!("{arn}:client/web-homeforge-*")]
    );
    // `+` is literal in a topicfilter resource: the client subscribes with exactly that level.
    assert_eq!(
        policy.statement[1].resource,
        [
            format!("{arn}:topicfilter/homeforge/live/owners/+/devices/*"),
            format!("{arn}:topicfilter/a/b"),
        ]
    );
    assert_eq!(
        policy.statement[2].resource,
        [
            format!("{arn}:topic/homeforge/live/owners/*/devices/*"),
            format!("{arn}:topic/a/b"),
        ]
    );
}

#[test]
fn policy_syntax_in_a_topic_stays_literal() {
    assert_eq!(
        subscribe_resource("a/x*y?/$z"),
        "topicfilter/a/x${*}y${?}/${$}z"
    );
    assert_eq!(receive_resource("a/+/x*"), "topic/a/*/x${*}");
    assert_eq!(subscribe_resource("a/#"), "topicfilter/a/*");
}

#[test]
fn the_account_comes_from_the_function_arn() {
    let a = Account::of_function(ARN, Some("us-east-1")).unwrap();
    assert_eq!(
        (a.partition.as_str(), a.region.as_str(), a.id.as_str()),
        ("aws", "us-east-1", "123456789012")
    );
    let cn = "arn:aws-cn:lambda:cn-north-1:123456789012:function:f";
    assert_eq!(Account::of_function(cn, None).unwrap().partition, "aws-cn");
    assert_eq!(Account::of_function("function:f", None), None);
}
