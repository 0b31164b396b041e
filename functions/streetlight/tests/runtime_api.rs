//! The function binaries as Lambda runs them: started under the test kit's Lambda Runtime API
//! emulator with the template's environment on moto, they reach `/invocation/next`, answer the
//! sample events in `events/`, and answer a malformed event with an error or a 4xx without
//! exiting.

use std::path::Path;
use std::time::Duration;

use civic_store::Backend;
use civic_testkit::lambda::text;
use civic_testkit::moto;
use civic_testkit::runtime_api::{self, Outcome, RuntimeApi};
use serde_json::{Value, json};
use tokio::process::Child;

/// Debug builds on a shared machine: generous, but a hang still fails.
const WAIT: Duration = Duration::from_secs(30);

/// A fresh table and signing key set on moto, and the environment the template gives
/// Streetlight's functions pointed at them.
async fn environment() -> Vec<(String, String)> {
    let sdk = moto::aws_config().await;
    let (bucket, table) = (moto::unique("civic"), moto::unique("civic-streetlight"));
    let backend = Backend::aws_with_config(&sdk, bucket.clone());
    backend.ensure_table(&table).await.unwrap();
    let keys = format!("/civic-test/{}", moto::unique("jwt-keys"));
    moto::put_jwt_keys(&sdk, &keys).await;
    [
        ("RUST_LOG", "warn"),
        ("BUCKET_NAME", &bucket),
        ("RATE_LIMIT", "off"),
        ("AWS_ENDPOINT_URL", &moto::moto_url()),
        ("TABLE_NAME", &table),
        ("JWT_KEYS_PARAMETER", &keys),
        ("JWT_KEYS_REVISION", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Binary `bin` started under its own emulator, once it asked for its first event.
async fn started(bin: &str, env: &[(String, String)]) -> (RuntimeApi, Child) {
    let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
    let api = RuntimeApi::start(name).await.unwrap();
    let child = runtime_api::spawn(Path::new(bin), &api, name, env, true).unwrap();
    let ready = api.ready(WAIT).await;
    assert!(
        ready.is_some(),
        "{name}: no /next; init error {:?}",
        api.init_error()
    );
    (api, child)
}

/// The outcome of `event`, which must come.
async fn invoke(api: &RuntimeApi, event: impl Into<axum::body::Bytes>) -> Outcome {
    api.invoke(event, WAIT).await.expect("an answer").0
}

/// An API Gateway v2 response's status and JSON body.
fn http(outcome: &Outcome) -> (u64, Value) {
    let res = outcome.json();
    let status = res["statusCode"].as_u64();
    let status = status.unwrap_or_else(|| panic!("not an API Gateway response: {outcome:?}"));
    let body = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    (status, body)
}

/// Sample event `name` with its placeholder bearer token replaced by `token`.
fn with_token(name: &str, token: &str) -> String {
    let mut event: Value = serde_json::from_str(&text(name)).unwrap();
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    event.to_string()
}

#[tokio::test]
async fn http_functions_answer_their_samples_and_survive_malformed_events() {
    let env = environment().await;
    let (auth, mut auth_child) = started(env!("CARGO_BIN_EXE_streetlight-auth"), &env).await;
    let (lights, mut lights_child) = started(env!("CARGO_BIN_EXE_streetlight-lights"), &env).await;

    let (status, body) = http(&invoke(&auth, text("streetlight-auth")).await);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["user"]["email"], "john@example.com");
    let token = body["data"]["token"].as_str().unwrap().to_owned();

    // Not an API Gateway event at all: the runtime reports an invocation error...
    match invoke(&auth, "not json").await {
        Outcome::Error { kind, body } => assert!(!kind.is_empty(), "{body}"),
        other => panic!("expected an invocation error, got {other:?}"),
    }
    // ...and a well-formed event with a broken body is the app's 400, in its envelope.
    let mut bad: Value = serde_json::from_str(&text("streetlight-auth")).unwrap();
    bad["body"] = json!("{\"email\": ");
    let (status, body) = http(&invoke(&auth, bad.to_string()).await);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["status"], 400);

    // The token the auth process signed is good in the lights process (one key set in SSM):
    // the sample reaches its handler, which finds no lights in Delhi (the seed's 404).
    let (status, body) = http(&invoke(&lights, with_token("streetlight-lights", &token)).await);
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body,
        json!({"status": 404, "message": "No data for city", "data": null})
    );
    // With the sample's placeholder token: refused.
    let (status, body) = http(&invoke(&lights, text("streetlight-lights")).await);
    assert_eq!((status, &body["status"]), (401, &json!(401)), "{body}");

    for child in [&mut auth_child, &mut lights_child] {
        assert!(child.try_wait().unwrap().is_none(), "a function exited");
        child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn the_iot_function_rejects_bad_messages_and_keeps_serving() {
    let env = environment().await;
    let (api, mut child) = started(env!("CARGO_BIN_EXE_streetlight-iot"), &env).await;

    // The sample reports on SL001, which this fresh table does not have: a client error,
    // logged and acknowledged (a retry could not help).
    let answer = invoke(&api, text("streetlight-iot")).await.json();
    assert_eq!(answer, json!({"rejected": "Light not found"}));

    // A message without the fields: rejected too; bytes that are not JSON: an invocation error.
    let answer = invoke(&api, json!({"light": 1}).to_string()).await.json();
    assert_eq!(
        answer,
        json!({"rejected": "Missing required fields: lightId"})
    );
    let outcome = invoke(&api, "{").await;
    assert!(matches!(outcome, Outcome::Error { .. }), "{outcome:?}");

    // Still serving.
    let answer = invoke(&api, text("streetlight-iot")).await.json();
    assert_eq!(answer, json!({"rejected": "Light not found"}));
    assert!(child.try_wait().unwrap().is_none(), "the function exited");
    child.kill().await.unwrap();
}
