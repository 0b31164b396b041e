//! Live updates: a signed-in user subscribed over `/mqtt` sees each new or changed alert (by
//! hand or raised by a crowded frame) and each broadcast, pushed with a seq that grows per
//! alert; the gate refuses foreign or garbage credentials, subscriptions beyond EcoFlow's
//! live topics, and publishing.

use std::time::Duration;

use civic_local::bench::live::{Connected, LiveClient};
use civic_testkit::api::Auth;
use civic_testkit::signin::call;
use reqwest::Method;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, SubscribeReasonCode};
use serde_json::{Value, json};

use crate::sensor::photo;
use crate::{Api, id};

const SOON: Duration = Duration::from_secs(2);
const OK: [SubscribeReasonCode; 1] = [SubscribeReasonCode::Success(QoS::AtMostOnce)];

impl Api {
    /// A page signed in as `token`, subscribed to every alert and broadcast.
    async fn page(&self, token: &str) -> LiveClient {
        let (mut page, c) = LiveClient::connect(&self.server.base, "ecoflow", token).await;
        assert_eq!(c, Connected::Accepted);
        for filter in ["ecoflow/live/alerts/+", "ecoflow/live/notifications/+"] {
            assert_eq!(page.subscribe(&[filter]).await, OK, "{filter}");
        }
        page
    }
}

/// The next message, which must come within 2 s: `(topic, envelope)`.
async fn next(page: &mut LiveClient) -> (String, Value) {
    page.message(SOON).await.expect("pushed within 2 s")
}

#[tokio::test]
async fn alerts_and_broadcasts_reach_a_subscribed_user() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let mut page = api.page(&user).await;

    let body = json!({"heading": "Fire drill", "sub_heading": "Main Hall, 3 pm"});
    let created = api.post("/alerts/", &*admin, body).await.is(201).clone();
    let alert = id(&created);
    let (topic, msg) = next(&mut page).await;
    assert_eq!(topic, format!("ecoflow/live/alerts/{alert}"));
    assert_eq!(
        (&msg["app"], &msg["kind"]),
        (&json!("ecoflow"), &json!("alert"))
    );
    assert_eq!(msg["seq"], 1);
    assert_eq!(msg["data"], created, "the REST shape");

    // Each change is pushed at the alert's next version; what REST reads back is what came.
    let path = format!("/alerts/{alert}/acknowledge/");
    api.post(&path, &*admin, json!({})).await.is(200);
    let (_, acked) = next(&mut page).await;
    assert_eq!(
        (&acked["seq"], &acked["data"]["status"]),
        (&json!(2), &json!("ACKNOWLEDGED"))
    );
    let stored = api.get(&format!("/alerts/{alert}/"), &*user).await;
    assert_eq!(&acked["data"], stored.is(200));
    // A change that changes nothing writes nothing, so pushes nothing.
    api.post(&path, &*admin, json!({})).await.is(200);
    api.delete(&format!("/alerts/{alert}/"), &*admin)
        .await
        .is(204);
    let (topic, gone) = next(&mut page).await;
    assert_eq!(topic, format!("ecoflow/live/alerts/{alert}"));
    assert_eq!(
        (&gone["kind"], &gone["seq"]),
        (&json!("alert_deleted"), &json!(3))
    );
    assert_eq!(gone["data"], json!({"id": alert}));

    let body = json!({"title": "Maintenance", "message": "Servers restart at 6."});
    let sent = api
        .post("/notifications/", &*admin, body)
        .await
        .is(201)
        .clone();
    let n = id(&sent);
    let (topic, msg) = next(&mut page).await;
    assert_eq!(topic, format!("ecoflow/live/notifications/{n}"));
    assert_eq!(
        (&msg["kind"], &msg["seq"]),
        (&json!("notification"), &json!(1))
    );
    assert_eq!(msg["data"], sent);
    api.delete(&format!("/notifications/{n}/"), &*admin)
        .await
        .is(204);
    let (_, gone) = next(&mut page).await;
    assert_eq!(
        (&gone["kind"], &gone["seq"]),
        (&json!("notification_deleted"), &json!(2))
    );
    // Refused writes push nothing.
    let body = json!({"title": "t", "message": "m"});
    api.post("/notifications/", &*user, body).await.is(403);
    assert!(page.message(SOON).await.is_none(), "nothing else");
}

/// A frame counted at the zone's capacity raises the zone's OVERCROWDING alert, pushed like
/// any other; the next crowded frame finds it open and pushes nothing.
#[tokio::test]
async fn a_crowded_frame_pushes_its_overcrowding_alert() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let org = api.org(&admin, "Tech Corp HQ").await;
    let zone = api.zone(&admin, org, "Lobby").await;
    api.capacity(&admin, zone, 1).await;
    let camera = api.camera(&admin, zone, "Front Desk Cam").await;
    let (frame, _) = photo("vtest-0140.jpg");
    let mut page = api.page(&user).await;

    let counted = api.detect_photo(&user, zone, camera, &frame).await;
    let counted = counted.is(200).clone();
    assert_eq!(counted["status"], "DANGER", "{counted}");
    let (topic, msg) = next(&mut page).await;
    let alert = msg["data"]["id"].as_i64().expect("an alert id");
    assert_eq!(topic, format!("ecoflow/live/alerts/{alert}"));
    assert_eq!(msg["data"]["alert_type"], "OVERCROWDING");
    assert_eq!(msg["data"]["zone_id"], zone);
    assert_eq!(msg["data"]["organization_id"], org);
    assert_eq!(msg["seq"], 1);
    let again = api.detect_photo(&user, zone, camera, &frame).await;
    assert_eq!(again.is(200)["status"], "DANGER");
    assert!(page.message(SOON).await.is_none(), "still the same alert");
}

/// A wrong or foreign credential gets no connection; a subscription beyond EcoFlow's live
/// topics is refused (SUBACK 0x80); a subscriber that publishes is disconnected.
#[tokio::test]
async fn the_live_gate_refuses_what_a_page_may_not_do() {
    let api = Api::start().await;
    let (_admin, user) = api.admin_and_user().await;
    let base = api.server.base.clone();
    let refused = Connected::Refused(ConnectReturnCode::NotAuthorized);
    let (_, c) = LiveClient::connect(&base, "ecoflow", "not-a-token").await;
    assert_eq!(c, refused);
    let (_, c) = LiveClient::connect(&base, "ecoflow", "").await;
    assert_eq!(
        c,
        Connected::Refused(ConnectReturnCode::BadUserNamePassword)
    );
    // A refresh token is not an access token.
    let refresh = api.login("user@example.com").await["refresh"].clone();
    let (_, c) = LiveClient::connect(&base, "ecoflow", refresh.as_str().unwrap()).await;
    assert_eq!(c, refused, "a refresh token");
    // An EcoFlow token opens no other app's topics, and no other app's token opens EcoFlow's.
    let (_, c) = LiveClient::connect(&base, "streetlight", &user).await;
    assert_eq!(c, refused);
    let body = json!({"name": "sl", "email": "sl@example.com", "password": "sl-pass-88123", "city": "Delhi"});
    let (http, path) = (&api.http, "/streetlight/api/auth/register");
    let sl = call(http, &api.server, Method::POST, path, Auth::None, body).await;
    let sl = sl["data"]["token"].as_str().expect("a Streetlight token");
    let (_, c) = LiveClient::connect(&base, "ecoflow", sl).await;
    assert_eq!(c, refused, "a Streetlight token");

    let (mut page, c) = LiveClient::connect(&base, "ecoflow", &user).await;
    assert_eq!(c, Connected::Accepted);
    for filter in ["#", "+/live/#", "streetlight/live/#", "ecoflow/alerts/#"] {
        let codes = page.subscribe(&[filter, "ecoflow/live/#"]).await;
        assert_eq!(codes, [SubscribeReasonCode::Failure; 2], "{filter}");
    }
    assert_eq!(page.subscribe(&["ecoflow/live/#"]).await, OK);
    page.publish("ecoflow/live/alerts/1", "{}").await;
    assert!(
        page.closed(SOON).await,
        "a publishing subscriber is dropped"
    );
}
