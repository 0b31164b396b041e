//! Device events: the JSON ingest (acknowledged once, bad input a 4xx) and the firmware's
//! legacy form ingest.

use civic_testkit::api::Auth;
use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::{Api, FORM, MAC, OzoneResp, Session, series};

/// The seed's treatment event of device esp32-001, on 16 September 2025.
fn treatment() -> Value {
    json!({"device_id": "esp32-001", "firmware": "1.0.0", "event_id": "esp32-001-0000000123", "event": "treatment", "treatment": "BASIC", "counter": 124, "ts": "2025-09-16T12:34:56Z"})
}

#[tokio::test]
async fn an_event_is_acknowledged_and_stored_once() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let body = treatment();
    let first = api
        .post("/device/events/", Auth::Bearer(&token), body.clone())
        .await;
    assert_eq!(
        first.ok(),
        &json!({"ack": true, "event_id": "esp32-001-0000000123"})
    );
    // A duplicate (even with other content) gets the same ack and stores nothing.
    let mut changed = body.clone();
    changed["treatment"] = "PREMIUM".into();
    let dup = api
        .post("/device/events/", Auth::Bearer(&token), changed)
        .await;
    assert_eq!(dup.body, first.body);
    let stats = api
        .get("/test/stats/?start=2025-09-16&end=2025-09-16", &viewer)
        .await;
    assert_eq!(series(&stats.body, "total"), vec![1.0]);
    assert_eq!(series(&stats.body, "BASIC"), vec![1.0]);
    assert_eq!(series(&stats.body, "PREMIUM"), vec![0.0]);
}

/// Ozone after the good [`treatment`] of esp32-001: the device's token and a user's session.
async fn one_good_event(api: &Api) -> (String, Session) {
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    api.post("/device/events/", Auth::Bearer(&token), treatment())
        .await
        .ok();
    (token, viewer)
}

/// Nothing bad was stored: the day holds the one good event.
async fn only_the_good_event_is_counted(api: &Api, viewer: &Session) {
    let stats = api
        .get("/test/stats/?start=2025-09-16&end=2025-09-16", viewer)
        .await;
    assert_eq!(series(&stats.body, "total"), vec![1.0]);
}

#[tokio::test]
async fn bad_event_fields_are_400_and_store_nothing() {
    let api = Api::start().await;
    let (token, viewer) = one_good_event(&api).await;
    let body = treatment();
    let bad = |patch: Value| {
        let mut b = body.clone();
        b["event_id"] = "bad-1".into();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (patch, field) in [
        (json!({"treatment": "DELUXE"}), "treatment"),
        (json!({"treatment": "basic"}), "treatment"),
        (json!({"treatment": null}), "treatment"),
        (json!({"counter": -1}), "counter"),
        (json!({"ts": "16/09/2025"}), "ts"),
        (json!({"device_id": "esp 32"}), "device_id"),
        (json!({"event_id": ""}), "event_id"),
        (json!({"event": "Bad Event"}), "event"),
    ] {
        let res = api
            .post("/device/events/", Auth::Bearer(&token), bad(patch.clone()))
            .await;
        assert!(
            res.assert_error(400)[field].is_array(),
            "{patch}: {}",
            res.text
        );
    }
    for patch in [
        json!({"counter": "abc"}),
        json!({"counter": 1.5}),
        json!({"device_id": 7}),
        json!({"payload": 1, "counter": [1]}),
    ] {
        api.post("/device/events/", Auth::Bearer(&token), bad(patch))
            .await
            .assert_error(400);
    }
    only_the_good_event_is_counted(&api, &viewer).await;
}

#[tokio::test]
async fn malformed_event_requests_are_4xx_and_store_nothing() {
    let api = Api::start().await;
    let (token, viewer) = one_good_event(&api).await;
    api.raw(
        Method::POST,
        "/device/events/",
        Auth::Bearer(&token),
        "application/json",
        "{\"device_id\": ",
    )
    .await
    .assert_error(400);
    api.raw(
        Method::POST,
        "/device/events/",
        Auth::Bearer(&token),
        "application/json",
        "[1,2]",
    )
    .await
    .assert_error(400);
    api.raw(
        Method::POST,
        "/device/events/",
        Auth::Bearer(&token),
        FORM,
        "device_id=esp32-001",
    )
    .await
    .assert_error(415);
    api.get("/device/events/", Auth::Bearer(&token))
        .await
        .assert_error(405);
    only_the_good_event_is_counted(&api, &viewer).await;
}

#[tokio::test]
async fn a_status_event_is_stored_but_bills_nothing() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let body = treatment();
    api.post("/device/events/", Auth::Bearer(&token), body)
        .await
        .ok();
    // A status event is stored but bills nothing.
    let hb = json!({"device_id": "esp32-001", "event_id": "hb-1", "event": "heartbeat", "wifi_status": "connected"});
    api.post("/device/events/", Auth::Bearer(&token), hb)
        .await
        .ok();
    let events = api.get("/events/?device_id=esp32-001", &viewer).await;
    assert_eq!(
        events.body.as_array().unwrap().len(),
        1,
        "the 2025 event is older than 7 days"
    );
    assert_eq!(events.body[0]["event_type"], "status");
    let events = api
        .get("/events/?device_id=esp32-001&days=3660", &viewer)
        .await;
    assert_eq!(events.body.as_array().unwrap().len(), 2);
}

/// A device that is refused for load (503) waits `Retry-After` and sends the same event again:
/// every copy is acknowledged in the end, and the event is stored once. `--max-in-flight 10`
/// makes sure many of the thousand are shed first.
#[tokio::test]
async fn a_thousand_concurrent_copies_of_an_event_store_one() {
    let api = Api::with(&["--max-in-flight", "10"], &[]).await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let body = json!({"device_id": "esp32-001", "event_id": "esp32-001-0000000777", "event": "treatment", "treatment": "PREMIUM", "counter": 9, "ts": "2025-09-16T12:00:00Z"});
    let send_until_acked = || async {
        let mut shed = 0;
        loop {
            let req = api.request(Method::POST, "/device/events/", Auth::Bearer(&token));
            let res = req.json(&body).send().await.expect("request");
            if res.status() != 503 {
                return (res.status(), res.json::<Value>().await.unwrap(), shed);
            }
            let wait: u64 = res.headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let refusal: Value = res.json().await.unwrap();
            assert_eq!(refusal["success"], false, "{refusal}");
            shed += 1;
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
    };
    let replies = futures::future::join_all((0..1000).map(|_| send_until_acked())).await;
    for (status, body, _) in &replies {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(
            *body,
            json!({"ack": true, "event_id": "esp32-001-0000000777"})
        );
    }
    let shed: usize = replies.iter().map(|r| r.2).sum();
    assert!(
        shed > 0,
        "a thousand at once past a bound of 10: some must be shed"
    );
    let events = api
        .get("/events/?device_id=esp32-001&days=3660", &viewer)
        .await;
    assert_eq!(events.body.as_array().unwrap().len(), 1);
    let stats = api
        .get(
            "/test/stats/?device_id=esp32-001&start=2025-09-16&end=2025-09-16&granularity=hour",
            &viewer,
        )
        .await;
    assert_eq!(stats.body["totals"]["PREMIUM"], 1);
    assert_eq!(stats.body["totals"]["total"], 1);
    let summary = api
        .get("/telemetry/summary/?device_id=esp32-001", &viewer)
        .await;
    assert_eq!(summary.body["event_count"], 1);
}

/// The firmware's form report of `mode` from `mac`.
fn form(mode: &str, mac: &str) -> String {
    format!(
        "mode={mode}&macaddr={mac}&type1=1.5&type2=0&type3=0&count1=10&count2=20&count3=30&timestamp=2025-09-16+14%3A30%3A25&rtc_available=true&sd_available=false"
    )
}

#[tokio::test]
async fn legacy_reports_need_an_assigned_mac_and_its_token() {
    let api = Api::start().await;
    let (admin, _) = api.users().await;
    // Unknown (unassigned) MAC: refused until an admin assigns it.
    let res = api
        .raw(Method::POST, "/iot/", Auth::None, FORM, form("BASIC", MAC))
        .await;
    res.assert_error(403);
    // ...and listed for staff to assign.
    assert_eq!(
        api.get("/devices/pending/", &admin).await.body[0]["mac"],
        MAC
    );
    let token = api.device(&admin, MAC, "esp32-001").await;
    let ok = api
        .raw(
            Method::POST,
            "/iot/",
            Auth::Bearer(&token),
            FORM,
            form("BASIC", MAC),
        )
        .await;
    assert_eq!(ok.ok(), &json!({"status": "ok"}));
    // A retry of the same report is stored once.
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer(&token),
        FORM,
        form("BASIC", MAC),
    )
    .await
    .ok();
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer(&token),
        FORM,
        form("status", MAC),
    )
    .await
    .ok();
    // The bearer must be the device's.
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer("wrong"),
        FORM,
        form("PREMIUM", MAC),
    )
    .await
    .assert_error(401);
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer(&token),
        FORM,
        form("PREMIUM", MAC),
    )
    .await
    .ok();
}

/// Three legacy reports of esp32-001 (BASIC, a status, PREMIUM; the BASIC one sent twice).
async fn three_legacy_reports(api: &Api, admin: &Session) {
    let token = api.device(admin, MAC, "esp32-001").await;
    for mode in ["BASIC", "BASIC", "status", "PREMIUM"] {
        api.raw(
            Method::POST,
            "/iot/",
            Auth::Bearer(&token),
            FORM,
            form(mode, MAC),
        )
        .await
        .ok();
    }
}

#[tokio::test]
async fn legacy_reports_are_events_with_the_firmwares_counts() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    three_legacy_reports(&api, &admin).await;

    let events = api
        .get("/events/?device_id=esp32-001&days=3660", &viewer)
        .await;
    let list = events.body.as_array().unwrap();
    assert_eq!(list.len(), 3, "{}", events.text);
    let basic = list.iter().find(|e| e["event_type"] == "BASIC").unwrap();
    assert_eq!(
        (
            &basic["treatment"],
            &basic["counter"],
            &basic["count_premium"]
        ),
        (&json!("BASIC"), &json!(10), &json!(30))
    );
    assert_eq!(basic["occurred_at"], "2025-09-16T14:30:25Z");
    assert_eq!(basic["payload"]["type1"], 1.5);
    let only = api
        .get(
            "/events/?device_id=esp32-001&days=3660&exclude_status=true",
            &viewer,
        )
        .await;
    assert_eq!(only.body.as_array().unwrap().len(), 2);
    let summary = api
        .get("/telemetry/summary/?device_id=esp32-001", &viewer)
        .await;
    assert_eq!(
        summary.body["counts"],
        json!({"basic": 10, "standard": 20, "premium": 30})
    );
    assert_eq!(
        (
            &summary.body["rtc_available"],
            &summary.body["sd_card_available"]
        ),
        (&json!(true), &json!(false))
    );
}

#[tokio::test]
async fn bad_legacy_forms_are_400() {
    let api = Api::start().await;
    for bad in [
        "mode=DELUXE&macaddr=EC:E3:34:46:2B:C0",
        "mode=BASIC&macaddr=not-a-mac",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&count1=ten",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&count2=-4",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&type1=fast",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&timestamp=yesterday",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&rtc_available=perhaps",
        "macaddr=EC:E3:34:46:2B:C0",
        "mode=BASIC&macaddr=%zz%",
        "mode=BASIC&mode=STANDARD&macaddr=EC:E3:34:46:2B:C0",
    ] {
        let res = api
            .raw(Method::POST, "/iot/", Auth::None, FORM, bad.to_owned())
            .await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
        res.assert_error(400);
    }
    api.post("/iot/", Auth::None, json!({"mode": "BASIC"}))
        .await
        .assert_error(415);
}
