//! Occupancy's IoT Core custom authorizer (`occupancy-live-auth`) as deployed, closed
//! (`OCCUPANCY_REQUIRE_AUTH=true`, the template's default): what IoT Core gets back for a
//! browser's CONNECT with a given password. One test in this binary: the setting is read once
//! per process, and this one sets it.

use base64::Engine;
use civic_auth::Auth;
use civic_core::Platform;
use civic_runtime::live::{Account, IoTCoreCustomAuthorizerResponse, decide};
use civic_testkit::lambda::{platform, text};
use occupancy::live::LIVE;
use serde_json::{Map, Value, json};

const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:civic-OccupancyLiveAuth";
const IOT: &str = "arn:aws:iot:eu-west-1:123456789012";

async fn ask(p: &Platform, password: &str) -> IoTCoreCustomAuthorizerResponse {
    let authorizer = (LIVE.authorizer)(p);
    let account = Account::of_function(ARN, None).unwrap();
    let now = civic_core::time::now().unix_timestamp();
    // IoT Core's request as in the sample event, with this password.
    let mut connect: Value = serde_json::from_str(&text("occupancy-live-auth")).unwrap();
    let password = base64::engine::general_purpose::STANDARD.encode(password);
    connect["protocolData"]["mqtt"]["password"] = password.into();
    decide(LIVE.app.name, &authorizer, connect, now, &account)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_occupancy_access_token_reads_the_live_topics_and_nothing_else_does() {
    // SAFETY: set before anything reads the environment, in this binary's only test.
    unsafe { std::env::set_var("OCCUPANCY_REQUIRE_AUTH", "true") };
    (LIVE.app.config)().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let token = Auth::for_app(&p, "occupancy")
        .access_token("ops", "viewer", Map::new())
        .unwrap();
    let res = ask(&p, &token).await;
    assert!(res.is_authenticated, "{res:?}");
    assert_eq!(res.principal_id.as_deref(), Some("occupancyops"));
    assert!((300..=86_400).contains(&res.disconnect_after_in_seconds));
    let policy = serde_json::to_value(&res.policy_documents).unwrap();
    assert_eq!(
        policy[0]["Statement"][2]["Resource"],
        json!([format!("{IOT}:topic/occupancy/live/*")])
    );
    let text = policy.to_string();
    assert!(!text.contains("iot:Publish"), "{text}");

    let streetlight = Auth::for_app(&p, "streetlight")
        .access_token("ops", "viewer", Map::new())
        .unwrap();
    for refused in [streetlight.as_str(), "garbage", ""] {
        assert!(!ask(&p, refused).await.is_authenticated, "{refused}");
    }
}
