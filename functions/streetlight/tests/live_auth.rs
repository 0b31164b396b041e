//! Streetlight's IoT Core custom authorizer (`streetlight-live-auth`) against the app's own
//! token issuance: what IoT Core gets back for a browser's CONNECT with a given password.

use base64::Engine;
use civic_auth::Auth;
use civic_core::Platform;
use civic_runtime::live::{Account, IoTCoreCustomAuthorizerResponse, decide};
use civic_store::Cond;
use civic_testkit::lambda::{call, json_request, platform};
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use streetlight::live::LIVE;
use streetlight::users::user_key;

const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:civic-StreetlightLiveAuth";
const IOT: &str = "arn:aws:iot:eu-west-1:123456789012";

/// IoT Core's request for an MQTT-over-WebSocket CONNECT with `token` as the password.
fn connect(token: &str) -> Value {
    let password = base64::engine::general_purpose::STANDARD.encode(token);
    json!({
        "signatureVerified": false,
        "protocols": ["tls", "http", "mqtt"],
        "protocolData": {"mqtt": {"username": "streetlight", "password": password,
            "clientId": "web-streetlight-1"}},
        "connectionMetadata": {"id": "c0ffee"}
    })
}

async fn ask(p: &Platform, token: &str) -> IoTCoreCustomAuthorizerResponse {
    let authorizer = (LIVE.authorizer)(p);
    let account = Account::of_function(ARN, None).unwrap();
    let now = civic_core::time::now().unix_timestamp();
    decide(LIVE.app.name, &authorizer, connect(token), now, &account)
        .await
        .unwrap()
}

async fn post(p: &Platform, path: &str, body: Value) -> Value {
    let (status, body) = call(
        &streetlight::AUTH,
        p,
        json_request(Method::POST, path, body),
    )
    .await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body["data"].clone()
}

/// Registers the first user (an admin) and a viewer, and logs the viewer in.
async fn viewer(p: &Platform) -> (String, String) {
    for (name, email) in [("Ada", "ada@example.com"), ("Vic", "vic@example.com")] {
        let user = json!({"name": name, "email": email, "password": "securePassword123",
            "city": "Delhi"});
        post(p, "/api/auth/register", user).await;
    }
    let login = json!({"email": "vic@example.com", "password": "securePassword123"});
    let data = post(p, "/api/auth/login", login).await;
    let id = data["user"]["id"].as_str().unwrap().to_owned();
    (id, data["token"].as_str().unwrap().to_owned())
}

fn email() -> Map<String, Value> {
    Map::from_iter([("email".to_owned(), json!("vic@example.com"))])
}

#[tokio::test]
async fn a_login_token_may_read_every_citys_live_topics_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let (id, token) = viewer(&p).await;
    let res = ask(&p, &token).await;
    assert!(res.is_authenticated);
    let principal: String = format!("streetlight{id}")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    assert_eq!(res.principal_id, Some(principal));
    // The token lives an hour (ACCESS_TOKEN_TTL_SECS' default); a second may have passed.
    assert!(
        (3599..=3600).contains(&res.disconnect_after_in_seconds),
        "{res:?}"
    );
    assert_eq!(res.refresh_after_in_seconds, 300);
    assert_eq!(
        serde_json::to_value(&res.policy_documents).unwrap(),
        json!([{"Version": "2012-10-17", "Statement": [
            {"Action": ["iot:Connect"], "Effect": "Allow",
             "Resource": [format!("{IOT}:client/web-streetlight-*")]},
            {"Action": ["iot:Subscribe"], "Effect": "Allow",
             "Resource": [format!("{IOT}:topicfilter/streetlight/live/*")]},
            {"Action": ["iot:Receive"], "Effect": "Allow",
             "Resource": [format!("{IOT}:topic/streetlight/live/*")]},
        ]}])
    );
}

#[tokio::test]
async fn other_apps_expired_refresh_and_garbage_tokens_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let (id, _) = viewer(&p).await;
    let ozone = Auth::for_app(&p, "ozone")
        .access_token(&id, "viewer", email())
        .unwrap();
    let mut expired = Auth::for_app(&p, "streetlight");
    expired.access_ttl = -60;
    let expired = expired.access_token(&id, "viewer", email()).unwrap();
    let login = json!({"email": "vic@example.com", "password": "securePassword123"});
    let refresh = post(&p, "/api/auth/login", login).await["refreshToken"].clone();
    let refresh = refresh
        .as_str()
        .expect("login returns a refresh token")
        .to_owned();
    // The same claims, freshly signed for Streetlight, are accepted: only the flaw is refused.
    let fresh = Auth::for_app(&p, "streetlight")
        .access_token(&id, "viewer", email())
        .unwrap();
    assert!(ask(&p, &fresh).await.is_authenticated);
    for (what, token) in [
        ("ozone's", ozone.as_str()),
        ("expired", &expired),
        ("refresh", &refresh),
        ("garbage", "not.a.jwt"),
        ("empty", ""),
    ] {
        let res = ask(&p, token).await;
        assert!(!res.is_authenticated, "{what} token: {res:?}");
        assert!(res.policy_documents.is_empty(), "{what} token: {res:?}");
    }
}

#[tokio::test]
async fn a_deleted_accounts_token_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let (_, token) = viewer(&p).await;
    assert!(ask(&p, &token).await.is_authenticated);
    let table = p.table("streetlight");
    let gone = table
        .delete(&user_key("vic@example.com"), Cond::Always)
        .await
        .unwrap();
    assert!(gone.is_some(), "the user item is where user_key says");
    let res = ask(&p, &token).await;
    assert!(!res.is_authenticated, "{res:?}");
    // And the REST API agrees.
    let me = civic_testkit::lambda::bearer(
        json_request(Method::GET, "/api/lights/summary?city=Delhi", json!({})),
        &token,
    );
    let (status, _) = call(&streetlight::LIGHTS, &p, me).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
