//! The handshake: an unknown MAC waits for staff to assign it a device id; the device's token
//! and how staff rotate, revoke and annotate it; what a device token may speak for.

use civic_testkit::api::Auth;
use civic_testkit::http;
use reqwest::{Method, header};
use serde_json::json;

use crate::{Api, MAC, OzoneResp, Session};

/// Ozone as the seed behaves: every handshake of an assigned MAC reissues the token.
async fn reissuing() -> Api {
    Api::with(&[], &[("OZONE_HANDSHAKE_REISSUE", "true")]).await
}

/// A first handshake of [`MAC`] (in another spelling), which leaves it pending.
async fn first_handshake(api: &Api) {
    let body = json!({"mac": "ec-e3-34-46-2b-c0", "firmware": "1.0.0"});
    api.post("/handshake/", Auth::None, body).await.ok();
}

#[tokio::test]
async fn bad_handshakes_are_400_and_an_unknown_mac_waits_for_staff() {
    let api = reissuing().await;
    let (admin, _) = api.users().await;

    for bad in [
        json!({"mac": "EC:E3:34:46:2B"}),
        json!({"mac": "zz:e3:34:46:2b:c0"}),
        json!({}),
        json!({"mac": 42}),
    ] {
        api.post("/handshake/", Auth::None, bad)
            .await
            .assert_error(400);
    }
    let first = api
        .post(
            "/handshake/",
            Auth::None,
            json!({"mac": "ec-e3-34-46-2b-c0", "firmware": "1.0.0"}),
        )
        .await;
    assert_eq!(
        first.ok(),
        &json!({"device_id": null, "token": null, "assigned": false})
    );
    let pending = api.get("/devices/pending/", &admin).await;
    assert_eq!(pending.ok()[0]["mac"], MAC);
    assert_eq!(pending.body[0]["firmware"], "1.0.0");
}

#[tokio::test]
async fn only_staff_assign_a_mac_and_only_once() {
    let api = reissuing().await;
    let (admin, viewer) = api.users().await;
    first_handshake(&api).await;

    // Only staff assign.
    let assign = json!({"mac": MAC, "device_id": "esp32-001"});
    api.post("/devices/assign/", Auth::None, assign.clone())
        .await
        .assert_error(401);
    api.post("/devices/assign/", &viewer, assign.clone())
        .await
        .assert_error(403);
    api.post(
        "/devices/assign/",
        &admin,
        json!({"mac": MAC, "device_id": "bad id!"}),
    )
    .await
    .assert_error(400);
    let ok = api.post("/devices/assign/", &admin, assign.clone()).await;
    assert_eq!(
        ok.ok(),
        &json!({"success": true, "mac": MAC, "device_id": "esp32-001", "assigned": true})
    );
    api.post("/devices/assign/", &admin, assign).await.ok();
    api.post(
        "/devices/assign/",
        &admin,
        json!({"mac": MAC, "device_id": "esp32-002"}),
    )
    .await
    .assert_error(409);
    api.post(
        "/devices/assign/",
        &admin,
        json!({"mac": "AA:BB:CC:DD:EE:FF", "device_id": "esp32-001"}),
    )
    .await
    .assert_error(409);
    assert_eq!(api.get("/devices/pending/", &admin).await.body, json!([]));
}

#[tokio::test]
async fn every_handshake_of_an_assigned_mac_reissues_its_token() {
    let api = reissuing().await;
    let (admin, _) = api.users().await;
    first_handshake(&api).await;
    let assign = json!({"mac": MAC, "device_id": "esp32-001"});
    api.post("/devices/assign/", &admin, assign).await.ok();

    let hs = api
        .post(
            "/handshake/",
            Auth::None,
            json!({"mac": MAC, "firmware": "1.0.1"}),
        )
        .await;
    assert_eq!(
        (&hs.body["device_id"], &hs.body["assigned"]),
        (&json!("esp32-001"), &json!(true))
    );
    let token = hs.body["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 40);
    api.event(&token, "esp32-001", "e-1", "BASIC", None)
        .await
        .ok();

    // A new handshake replaces the token.
    let again = api
        .post("/handshake/", Auth::None, json!({"mac": MAC}))
        .await;
    let token2 = again.body["token"].as_str().unwrap().to_owned();
    assert_ne!(token, token2);
    api.event(&token, "esp32-001", "e-2", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&token2, "esp32-001", "e-2", "BASIC", None)
        .await
        .ok();
}

#[tokio::test]
async fn staff_rotate_a_token_and_the_old_one_stops_at_once() {
    let api = reissuing().await;
    let (admin, viewer) = api.users().await;
    let token2 = api.device(&admin, MAC, "esp32-001").await;

    // Staff rotation: the old token stops working at once.
    api.call(Method::POST, "/devices/esp32-001/token/", &viewer, None)
        .await
        .assert_error(403);
    api.call(Method::POST, "/devices/nope/token/", &admin, None)
        .await
        .assert_error(404);
    let rotated = api
        .call(Method::POST, "/devices/esp32-001/token/", &admin, None)
        .await;
    let token3 = rotated.ok()["token"].as_str().unwrap().to_owned();
    api.event(&token2, "esp32-001", "e-3", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&token3, "esp32-001", "e-3", "BASIC", None)
        .await
        .ok();
}

#[tokio::test]
async fn staff_write_a_devices_notes_and_users_read_them() {
    let api = reissuing().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    api.event(&token, "esp32-001", "e-1", "BASIC", None)
        .await
        .ok();

    // Notes.
    let notes = api
        .put(
            "/devices/esp32-001/notes/",
            &admin,
            json!({"notes": "by the door"}),
        )
        .await;
    assert_eq!(notes.ok()["notes"], "by the door");
    assert!(notes.body.get("token_digest").is_none());
    api.put("/devices/esp32-001/notes/", &viewer, json!({"notes": "x"}))
        .await
        .assert_error(403);
    api.put("/devices/ghost/notes/", &admin, json!({"notes": "x"}))
        .await
        .assert_error(404);
    let all = api.get("/devices/all/", &viewer).await;
    assert_eq!(all.ok()[0]["notes"], "by the door");
    assert_eq!(
        all.body[0]["firmware"], "1.0.0",
        "as the latest event reported it"
    );
    assert!(all.body[0].get("token_digest").is_none());
}

#[tokio::test]
async fn handshakes_can_hand_out_only_unclaimed_tokens() {
    let api = Api::with(&[], &[("OZONE_HANDSHAKE_REISSUE", "false")]).await;
    let (admin, _) = api.users().await;
    let hs = |auth| api.post("/handshake/", auth, json!({"mac": MAC}));
    let token = api.device(&admin, MAC, "esp32-001").await;
    // Knowing the MAC is no longer enough for a token...
    hs(Auth::None).await.assert_error(409);
    api.event(&token, "esp32-001", "c-1", "BASIC", None)
        .await
        .ok();
    // ...but the device itself may renew its own.
    let renewed = hs(Auth::Bearer(&token)).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    api.event(&token, "esp32-001", "c-2", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&renewed, "esp32-001", "c-2", "BASIC", None)
        .await
        .ok();
    // Staff revoke a lost token; the next handshake claims a new one.
    let revoked = api.delete("/devices/esp32-001/token/", &admin).await;
    assert_eq!(
        revoked.ok(),
        &json!({"success": true, "device_id": "esp32-001"})
    );
    api.event(&renewed, "esp32-001", "c-3", "BASIC", None)
        .await
        .assert_error(401);
    let claimed = hs(Auth::None).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    api.event(&claimed, "esp32-001", "c-3", "BASIC", None)
        .await
        .ok();
    hs(Auth::None).await.assert_error(409);
    api.delete("/devices/ghost/token/", &admin)
        .await
        .assert_error(404);
}

#[tokio::test]
async fn device_tokens_speak_only_for_their_device_and_never_as_users() {
    let api = Api::start().await;
    let (admin, _) = api.users().await;
    let a = api.device(&admin, MAC, "dev-a").await;
    let b = api.device(&admin, "AA:BB:CC:DD:EE:01", "dev-b").await;
    api.event(&a, "dev-a", "x-1", "BASIC", None).await.ok();
    api.event(&a, "dev-b", "x-2", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&b, "dev-a", "x-3", "BASIC", None)
        .await
        .assert_error(401);
    api.event("made-up", "dev-a", "x-4", "BASIC", None)
        .await
        .assert_error(401);
    let none = api
        .post(
            "/device/events/",
            Auth::None,
            json!({"device_id": "dev-a", "event_id": "x-5", "treatment": "BASIC"}),
        )
        .await;
    none.assert_error(401);
    // As a user credential a device token is nothing: not as a bearer, not as a cookie.
    api.get("/auth/user/", Auth::Bearer(&a))
        .await
        .assert_error(401);
    api.get("/events/", Auth::Bearer(&a))
        .await
        .assert_error(401);
    let cookie = Session(format!("ozone_sessionid={a}"));
    api.get("/auth/user/", &cookie).await.assert_error(401);
    api.get("/devices/all/", &cookie).await.assert_error(401);
    // Another app's credentials are refused: a Streetlight token here, an Ozone session there.
    let sl = http::send(api.http.post(api.server.url("/streetlight/api/auth/register")).json(
            &json!({"name": "n", "email": "n@example.com", "password": "password123", "city": "Delhi"}),
        ))
    .await;
    let sl_token = sl.body["data"]["token"].as_str().unwrap().to_owned();
    api.get("/auth/user/", Auth::Bearer(&sl_token))
        .await
        .assert_error(401);
    api.event(&sl_token, "dev-a", "x-6", "BASIC", None)
        .await
        .assert_error(401);
    let summary = api.server.url("/streetlight/api/lights/summary");
    let res = http::send(api.http.get(summary).header(header::COOKIE, &admin.0)).await;
    assert_eq!(res.status, 401);
    // Only one event was stored.
    assert_eq!(
        api.get("/events/?device_id=dev-a", &admin)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
