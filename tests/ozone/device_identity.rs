//! Issue 15, item 1 (a MAC is no password) and item 12 (CSV injection): each attack refused.

use civic_testkit::api::Auth;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Api, FORM, MAC, OzoneResp, Session};

const LEGACY: &str =
    "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&count1=7&timestamp=2025-09-16+14%3A30%3A25";

/// Events stored for `device_id`, as staff see them.
async fn stored(api: &Api, staff: &Session, device_id: &str) -> usize {
    let path = format!("/events/?device_id={device_id}&days=3660");
    api.get(&path, staff).await.ok().as_array().unwrap().len()
}

#[tokio::test]
async fn only_staff_see_a_devices_mac() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "dev-a").await;
    api.event(&token, "dev-a", "m-1", "BASIC", None).await.ok();
    let outputs = [
        ("/devices/all/", "/0"),
        ("/devices/online/", "/0"),
        ("/devices-data/", "/devices/0"),
        ("/telemetry/summary/?device_id=dev-a", ""),
        ("/machines/unregistered/", "/0"),
    ];
    for (path, pointer) in outputs {
        let seen = api.get(path, &viewer).await;
        let device = seen.ok().pointer(pointer).unwrap();
        assert_eq!(device["device_id"], "dev-a", "{path}");
        assert!(device.get("mac").is_none(), "{path} shows a user the MAC");
        assert!(!seen.text.contains(MAC), "{path}: {}", seen.text);
        let staff = api.get(path, &admin).await;
        assert_eq!(staff.ok().pointer(pointer).unwrap()["mac"], MAC, "{path}");
    }
}

#[tokio::test]
async fn a_legacy_report_by_mac_alone_is_refused_and_stores_nothing() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let post = |auth| api.raw(Method::POST, "/iot/", auth, FORM, LEGACY.to_owned());
    let refused = post(Auth::None).await;
    refused.assert_error(401);
    post(Auth::Bearer("guessed")).await.assert_error(401);
    post(Auth::from(&viewer)).await.assert_error(401);
    assert_eq!(stored(&api, &admin, "esp32-001").await, 0);
    let summary = api
        .get("/telemetry/summary/?device_id=esp32-001", &admin)
        .await;
    assert_eq!(summary.ok()["event_count"], 0);
    assert_eq!(summary.body["counts"]["basic"], Value::Null);
    // With the device's token it is taken.
    post(Auth::Bearer(&token)).await.ok();
    assert_eq!(stored(&api, &admin, "esp32-001").await, 1);
}

#[tokio::test]
async fn staff_may_allow_one_devices_token_less_legacy_reports_on_record() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    api.device(&admin, MAC, "esp32-001").await;
    let other = "AA:BB:CC:DD:EE:01";
    api.device(&admin, other, "esp32-002").await;
    let allow = |who, allowed: bool| {
        let body = json!({"allowed": allowed});
        api.put("/devices/esp32-001/legacy-ingest/", who, body)
    };
    allow(Auth::None, true).await.assert_error(401);
    allow(Auth::from(&viewer), true).await.assert_error(403);
    api.put(
        "/devices/ghost/legacy-ingest/",
        &admin,
        json!({"allowed": true}),
    )
    .await
    .assert_error(404);
    api.put("/devices/esp32-001/legacy-ingest/", &admin, json!({}))
        .await
        .assert_error(400);
    let decided = allow(Auth::from(&admin), true).await;
    let record = &decided.ok()["legacy_ingest"];
    assert_eq!(
        (&record["allowed"], &record["by"]),
        (&json!(true), &json!("admin"))
    );
    assert!(record["at"].as_str().unwrap().ends_with('Z'));
    // Staff see the decision in the listings; other users do not.
    let all = api.get("/devices/all/", &admin).await;
    let listed = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == "esp32-001");
    assert_eq!(listed.unwrap()["legacy_ingest"]["by"], "admin");
    let all = api.get("/devices/all/", &viewer).await;
    assert!(
        all.body
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.get("legacy_ingest").is_none())
    );

    let post = |body: String| api.raw(Method::POST, "/iot/", Auth::None, FORM, body);
    assert_eq!(post(LEGACY.to_owned()).await.ok(), &json!({"status": "ok"}));
    assert_eq!(stored(&api, &admin, "esp32-001").await, 1);
    // Per device: the other one still needs its token.
    let theirs = LEGACY.replace("EC:E3:34:46:2B:C0", other);
    post(theirs).await.assert_error(401);
    assert_eq!(stored(&api, &admin, "esp32-002").await, 0);
    // A wrong bearer is still refused, and withdrawing the permission takes effect at once.
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer("guessed"),
        FORM,
        LEGACY.to_owned(),
    )
    .await
    .assert_error(401);
    let withdrawn = allow(Auth::from(&admin), false).await;
    assert_eq!(withdrawn.ok()["legacy_ingest"]["allowed"], false);
    post(LEGACY.replace("count1=7", "count1=8"))
        .await
        .assert_error(401);
    assert_eq!(stored(&api, &admin, "esp32-001").await, 1);
}

#[tokio::test]
async fn a_repeat_handshake_with_a_known_mac_takes_over_nothing() {
    let api = Api::start().await; // OZONE_HANDSHAKE_REISSUE defaults to false
    let (admin, _) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let hs = |auth| {
        api.post(
            "/handshake/",
            auth,
            json!({"mac": MAC, "firmware": "6.6.6"}),
        )
    };
    let taken = hs(Auth::None).await;
    taken.assert_error(409);
    assert!(taken.body.get("token").is_none(), "{}", taken.text);
    hs(Auth::Bearer("guessed")).await.assert_error(401);
    // The real device's token still works; nothing was handed out.
    api.event(&token, "esp32-001", "h-1", "BASIC", None)
        .await
        .ok();
    let summary = api
        .get("/telemetry/summary/?device_id=esp32-001", &admin)
        .await;
    assert_eq!(
        summary.ok()["firmware"],
        "1.0.0",
        "the refused handshake changed nothing"
    );
    // The device itself renews its own token.
    let renewed = hs(Auth::Bearer(&token)).await;
    let renewed = renewed.ok()["token"].as_str().unwrap().to_owned();
    api.event(&token, "esp32-001", "h-2", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&renewed, "esp32-001", "h-2", "BASIC", None)
        .await
        .ok();
}

#[tokio::test]
async fn with_the_reissue_flag_a_handshake_reissues_as_the_seed_does() {
    let api = Api::with(&[], &[("OZONE_HANDSHAKE_REISSUE", "true")]).await;
    let (admin, _) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let again = api
        .post("/handshake/", Auth::None, json!({"mac": MAC}))
        .await;
    assert_eq!(again.ok()["assigned"], true);
    let new = again.body["token"].as_str().unwrap();
    assert_ne!(new, token);
    api.event(&token, "esp32-001", "r-1", "BASIC", None)
        .await
        .assert_error(401);
    api.event(new, "esp32-001", "r-1", "BASIC", None).await.ok();
    assert!(
        again.body.get("iot").is_none(),
        "never a certificate on a repeat handshake"
    );
}

#[tokio::test]
async fn csv_exports_neutralise_formulas_from_devices() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let attack = "=cmd|' /C calc'!A0";
    for (id, firmware) in [
        ("x-1", attack),
        ("x-2", "@SUM(1+1)*cmd|'/C calc'!A0"),
        ("x-3", "-2+3"),
    ] {
        let body = json!({"device_id": "esp32-001", "firmware": firmware, "event_id": id, "treatment": "BASIC", "counter": 3, "ts": "2025-09-16T12:00:00Z"});
        api.post("/device/events/", Auth::Bearer(&token), body)
            .await
            .ok();
    }
    let rows = api
        .get("/export/?device_id=esp32-001&days=3660", &admin)
        .await
        .csv();
    let firmware = rows[0].iter().position(|c| c == "firmware").unwrap();
    let counter = rows[0].iter().position(|c| c == "counter").unwrap();
    let cells: Vec<&str> = rows[1..].iter().map(|r| r[firmware].as_str()).collect();
    assert_eq!(
        cells,
        [
            format!("'{attack}"),
            "'@SUM(1+1)*cmd|'/C calc'!A0".into(),
            "'-2+3".into()
        ]
    );
    assert!(
        rows[1..].iter().all(|r| r[counter] == "3"),
        "numbers stay numbers"
    );
    // The stats export: labels and numbers, nothing a spreadsheet would evaluate.
    let stats = api
        .get(
            "/test/stats-export.csv?start=2025-09-16&end=2025-09-16&compare=true",
            &viewer,
        )
        .await
        .csv();
    assert_eq!(stats[1][0..2], ["2025-09-16", "3"]);
    assert!(
        stats
            .iter()
            .flatten()
            .all(|c| !c.starts_with(['=', '+', '@', '\t', '\r']))
    );
}
