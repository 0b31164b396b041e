//! The stats options, the staff's event export, and the flush of all events.

use civic_testkit::api::Auth;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Api, MAC, OzoneResp, Session};

/// Devices esp32-001 and esp32-002, outlets O1 and O2 with a machine each: M1 (bound to
/// esp32-001) and M2. Returns esp32-001's token, O1's id and M1's id.
async fn fleet(api: &Api, admin: &Session) -> (String, i64, i64) {
    let token = api.device(admin, MAC, "esp32-001").await;
    api.device(admin, "AA:BB:CC:DD:EE:01", "esp32-002").await;
    let outlet = api
        .post("/outlets/", admin, json!({"name": "O1"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let o2 = api
        .post("/outlets/", admin, json!({"name": "O2"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let machine = api
        .post(
            "/machines/register/",
            admin,
            json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "M1"}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    api.post("/machines/", admin, json!({"outlet": o2, "name": "M2"}))
        .await
        .ok();
    (token, outlet, machine)
}

/// Five BASIC treatments of esp32-001 and a status event "hb" with a payload.
async fn five_events_and_a_heartbeat(api: &Api, token: &str) {
    for i in 0..5 {
        api.event(token, "esp32-001", &format!("x-{i}"), "BASIC", None)
            .await
            .ok();
    }
    let hb = json!({"device_id": "esp32-001", "event_id": "hb", "event": "status", "payload": {"uptime": 5}});
    api.post("/device/events/", Auth::Bearer(token), hb)
        .await
        .ok();
}

#[tokio::test]
async fn stats_options_narrow_by_outlet_and_machine() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let (_, outlet, machine) = fleet(&api, &admin).await;
    let opts = api.get("/test/stats-options/", &viewer).await;
    assert_eq!(opts.ok()["outlets"].as_array().unwrap().len(), 2);
    assert_eq!(opts.body["machines"].as_array().unwrap().len(), 2);
    assert_eq!(opts.body["devices"].as_array().unwrap().len(), 2);
    assert_eq!(
        opts.body["granularities"],
        json!(["minute", "hour", "day", "month"])
    );
    let of_outlet = api
        .get(&format!("/test/stats-options/?outlet_id={outlet}"), &viewer)
        .await;
    assert_eq!(
        of_outlet.body["machines"],
        json!([{"id": machine, "name": "M1", "outlet_id": outlet}])
    );
    let of_machine = api
        .get(
            &format!("/test/stats-options/?machine_id={machine}"),
            &viewer,
        )
        .await;
    assert_eq!(
        of_machine.body["devices"],
        json!([{"id": "esp32-001", "name": "esp32-001", "machine_id": machine}])
    );
}

#[tokio::test]
async fn the_export_is_staff_only_csv_page_by_page() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let (token, _, _) = fleet(&api, &admin).await;
    five_events_and_a_heartbeat(&api, &token).await;

    // Export: staff only, CSV parsed back, paginated.
    api.get("/export/", &viewer).await.assert_error(403);
    let csv = api.get("/export/?device_id=esp32-001", &admin).await;
    let rows = csv.csv();
    assert_eq!(rows[0][0..3], ["event_id", "device_id", "event_type"]);
    assert_eq!(rows.len(), 7);
    let hb_row = rows.iter().find(|r| r[0] == "hb").unwrap();
    assert_eq!(hb_row[2], "status");
    assert_eq!(
        serde_json::from_str::<Value>(&hb_row[14]).unwrap(),
        json!({"uptime": 5})
    );
    assert!(
        rows[1..]
            .iter()
            .filter(|r| r[0] != "hb")
            .all(|r| r[4] == "BASIC" && r[5] == "124")
    );
    let first = api.get("/export/?limit=4", &admin).await;
    assert_eq!(first.csv().len(), 5);
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let second = api
        .get(&format!("/export/?limit=4&cursor={cursor}"), &admin)
        .await;
    assert_eq!(second.csv().len(), 3);
    assert!(second.headers.get("x-next-cursor").is_none());
    api.get("/export/?days=zero", &admin)
        .await
        .assert_error(400);
}

#[tokio::test]
async fn a_flush_clears_events_and_rollups_but_keeps_devices_and_catalog() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let (token, _, machine) = fleet(&api, &admin).await;
    five_events_and_a_heartbeat(&api, &token).await;

    // Flush: staff only; events and rollups go, devices and catalog stay.
    api.call(Method::POST, "/flush/", &viewer, None)
        .await
        .assert_error(403);
    api.call(Method::POST, "/flush/", Auth::None, None)
        .await
        .assert_error(401);
    let flushed = api.call(Method::POST, "/flush/", &admin, None).await;
    assert_eq!(
        (&flushed.ok()["success"], &flushed.body["complete"]),
        (&json!(true), &json!(true))
    );
    assert!(flushed.body["deleted"].as_u64().unwrap() >= 12);
    assert_eq!(api.get("/events/", &viewer).await.body, json!([]));
    let st = api.get("/test/stats/", &viewer).await;
    assert_eq!(st.body["totals"]["total"], 0);
    let summary = api
        .get("/telemetry/summary/?device_id=esp32-001", &viewer)
        .await;
    assert_eq!(
        (&summary.body["event_count"], &summary.body["machine_id"]),
        (&json!(0), &json!(machine))
    );
    // The same event id is accepted again after a flush, and counted.
    api.event(&token, "esp32-001", "x-0", "BASIC", None)
        .await
        .ok();
    assert_eq!(
        api.get("/test/stats/", &viewer).await.body["totals"]["total"],
        1
    );
}
