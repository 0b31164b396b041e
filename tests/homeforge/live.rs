//! Live updates: a device's state change reaches, over `/mqtt`, its owner and the staff, with
//! a seq that grows per device; a user who is not staff may subscribe to their own devices
//! only, and the gate refuses forged, foreign, outdated and refresh tokens, and publishing.

use std::time::Duration;

use civic_local::bench::live::{Connected, LiveClient};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, SubscribeReasonCode};
use serde_json::{Value, json};

use crate::Api;

const SOON: Duration = Duration::from_secs(2);
/// How long to wait for a message that must not come.
const QUIET: Duration = Duration::from_millis(500);

async fn connected(api: &Api, token: &str) -> LiveClient {
    let (client, c) = LiveClient::connect(&api.server.base, "homeforge", token).await;
    assert_eq!(c, Connected::Accepted);
    client
}

/// The next message, which must come within 2 s.
async fn next(client: &mut LiveClient) -> (String, Value) {
    client.message(SOON).await.expect("pushed within 2 s")
}

#[tokio::test]
async fn a_state_change_reaches_its_owner_and_the_staff_only() {
    let api = Api::start().await;
    let u = api.users().await;
    let t = api.approved_type(&u.user, &u.owner, "Smart Fan").await;
    let mine = api.device(&u.user, t, "Fan").await["id"].as_i64().unwrap();
    let theirs = api.device(&u.owner, t, "Hall fan").await["id"]
        .as_i64()
        .unwrap();
    let ok = [SubscribeReasonCode::Success(QoS::AtMostOnce)];

    let mut user = connected(&api, &u.user).await;
    let own = format!("homeforge/live/owners/{}/#", u.user_id);
    assert_eq!(user.subscribe(&[&own]).await, ok);
    // Another owner's devices, every owner's, or everything: refused, one by one.
    let others = format!("homeforge/live/owners/{}/#", u.owner_id);
    let device = format!("homeforge/live/owners/{}/devices/{theirs}", u.owner_id);
    for filter in [
        others.as_str(),
        &device,
        "homeforge/live/owners/+/devices/+",
        "homeforge/live/#",
        "#",
    ] {
        let codes = user.subscribe(&[filter]).await;
        assert_eq!(codes, [SubscribeReasonCode::Failure], "{filter}");
    }
    let mut admin = connected(&api, &u.admin).await;
    assert_eq!(admin.subscribe(&["homeforge/live/#"]).await, ok);

    let path = format!("/devices/{mine}/state/");
    api.patch(&path, &u.user, json!({"relay_1": true, "pwm_1": 70}))
        .await
        .is(200);
    let topic = format!("homeforge/live/owners/{}/devices/{mine}", u.user_id);
    for client in [&mut user, &mut admin] {
        let (got, msg) = next(client).await;
        assert_eq!(got, topic);
        assert_eq!(
            (msg["app"].as_str(), msg["kind"].as_str()),
            (Some("homeforge"), Some("device"))
        );
        assert_eq!(msg["seq"], 1);
        assert_eq!(msg["data"]["id"], mine);
        assert_eq!(msg["data"]["status"], "online");
        assert_eq!(
            msg["data"]["current_state"],
            json!({"relay_1": true, "pwm_1": 70})
        );
        assert!(msg["data"]["last_seen"].is_string(), "{msg}");
    }

    // The owner's own device: the admin hears of it, the user does not.
    let other_path = format!("/devices/{theirs}/state/");
    api.patch(&other_path, &u.owner, json!({"relay_1": true}))
        .await
        .is(200);
    let (got, msg) = next(&mut admin).await;
    assert_eq!(
        got,
        format!("homeforge/live/owners/{}/devices/{theirs}", u.owner_id)
    );
    assert_eq!(msg["seq"], 1, "seqs count per device");
    assert_eq!(user.message(QUIET).await, None, "another owner's device");

    // The next change of the user's device, here by an admin: its seq is above the last.
    api.patch(&path, &u.admin, json!({"pwm_1": 20}))
        .await
        .is(200);
    let (_, msg) = next(&mut user).await;
    assert_eq!(msg["seq"], 2);
    assert_eq!(
        msg["data"]["current_state"],
        json!({"relay_1": true, "pwm_1": 20})
    );
    // REST shows the same count, so a client that re-reads drops what is not newer.
    let d = api.get(&format!("/devices/{mine}/"), &u.user).await;
    assert_eq!(d.is(200)["live_seq"], 2);
    // A refused patch changes nothing, so nothing is pushed.
    api.patch(&path, &u.user, json!({"relay_1": {"on": 1}}))
        .await
        .is(400);
    assert_eq!(user.message(QUIET).await, None, "a refused patch");
}

/// Forged, foreign, refresh and revoked tokens get no connection; a subscriber that publishes
/// is dropped.
#[tokio::test]
async fn the_live_gate_refuses_what_a_homeforge_browser_may_not_do() {
    let api = Api::start().await;
    let u = api.users().await;
    let base = api.server.base.clone();
    let refused = Connected::Refused(ConnectReturnCode::NotAuthorized);
    let (_, c) = LiveClient::connect(&base, "homeforge", "not-a-token").await;
    assert_eq!(c, refused);
    let (_, c) = LiveClient::connect(&base, "homeforge", "").await;
    assert_eq!(
        c,
        Connected::Refused(ConnectReturnCode::BadUserNamePassword),
        "no password"
    );
    // A HomeForge token is no other app's credential.
    for app in ["streetlight", "ozone"] {
        let (_, c) = LiveClient::connect(&base, app, &u.user).await;
        assert_eq!(c, refused, "{app}");
    }
    let r = api.login("ursula", "Attic-Lamp42").await;
    let refresh = r.is(200)["refresh"].as_str().unwrap().to_owned();
    let (_, c) = LiveClient::connect(&base, "homeforge", &refresh).await;
    assert_eq!(c, refused, "a refresh token");

    let mut page = connected(&api, &u.user).await;
    let own = format!("homeforge/live/owners/{}/devices/1", u.user_id);
    page.publish(&own, "{}").await;
    assert!(
        page.closed(SOON).await,
        "a publishing subscriber is dropped"
    );

    // A password change revokes the tokens issued before it, here too.
    let change = json!({"password": "NewPass1", "current_password": "Attic-Lamp42"});
    api.put("/me/", &u.user, change).await.is(200);
    let (_, c) = LiveClient::connect(&base, "homeforge", &u.user).await;
    assert_eq!(c, refused, "a revoked token");
}
