//! Control: switching lights and reporting their status is for operators and admins; the
//! city's counters, the recent logs and the paginated control history follow every change.

use serde_json::json;

use crate::{Api, Envelope};

#[tokio::test]
async fn control_is_for_operators_and_keeps_counters_and_logs() {
    let api = Api::start().await;
    let (admin, op, viewer) = api.users().await;
    api.create(&admin, "SL001", "Delhi").await;
    api.create(&admin, "SL002", "Delhi").await;
    bad_controls_are_refused(&api, &op, &viewer).await;
    operators_and_admins_switch_lights(&api, &op, &admin).await;
    a_reported_error_is_kept_with_its_details(&api, &op, &viewer).await;
    counters_and_recent_logs_follow(&api, &viewer).await;
    the_control_history_is_for_operators_and_paginated(&api, &op, &viewer).await;
}

/// A viewer's control, and an operator's without an action, with an unknown one or on an
/// unknown light: refused before anything changes.
async fn bad_controls_are_refused(api: &Api, op: &str, viewer: &str) {
    let denied = api
        .post(
            "/lights/control",
            viewer,
            json!({"lightId": "SL001", "action": "on"}),
        )
        .await;
    denied.assert_error(403);
    // The role is checked before the body is read.
    api.post("/lights/control", viewer, json!({"nonsense": true}))
        .await
        .assert_error(403);
    api.post("/lights/control", op, json!({"lightId": "SL001"}))
        .await
        .assert_error(400);
    api.post(
        "/lights/control",
        op,
        json!({"lightId": "SL001", "action": "dim"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/lights/control",
        op,
        json!({"lightId": "NOPE", "action": "on"}),
    )
    .await
    .assert_error(404);
}

/// SL001 on (by the operator), off and on again (by the admin): three logged controls.
async fn operators_and_admins_switch_lights(api: &Api, op: &str, admin: &str) {
    let on = api
        .post(
            "/lights/control",
            op,
            json!({"lightId": "SL001", "action": "on"}),
        )
        .await;
    assert_eq!(on.status, 200);
    assert_eq!(on.body["message"], "Light turned on");
    assert_eq!(on.data()["light_id"], "SL001");
    assert_eq!(on.data()["status"], "on");
    assert_eq!(on.data()["is_automatic"], false);
    assert!(on.data()["last_status_change"].is_string());
    let off = api
        .post(
            "/lights/control",
            admin,
            json!({"lightId": "SL001", "action": "off"}),
        )
        .await;
    assert_eq!(off.body["message"], "Light turned off");
    api.post(
        "/lights/control",
        admin,
        json!({"lightId": "SL001", "action": "on"}),
    )
    .await;
}

/// SL002 reported in error by the operator; bad or unauthorised reports are refused.
async fn a_reported_error_is_kept_with_its_details(api: &Api, op: &str, viewer: &str) {
    let err = api
        .post(
            "/lights/update-status",
            op,
            json!({"lightId": "SL002", "status": "error", "errorDetails": "Bulb failed"}),
        )
        .await;
    assert_eq!(err.status, 200);
    assert_eq!(err.body["message"], "Light status updated");
    assert_eq!(err.data()["error_details"], "Bulb failed");
    assert_eq!(err.data()["status"], "error");
    api.post("/lights/update-status", op, json!({"lightId": "SL002"}))
        .await
        .assert_error(400);
    api.post(
        "/lights/update-status",
        op,
        json!({"lightId": "SL002", "status": "broken"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/lights/update-status",
        viewer,
        json!({"lightId": "SL002", "status": "on"}),
    )
    .await
    .assert_error(403);
    api.post(
        "/lights/update-status",
        op,
        json!({"lightId": "NOPE", "status": "on"}),
    )
    .await
    .assert_error(404);
}

/// The city's counters and each light's recent logs, newest first, after the steps above.
async fn counters_and_recent_logs_follow(api: &Api, viewer: &str) {
    let s = api.get("/lights/summary?city=delhi", viewer).await;
    assert_eq!(s.data()["total_lights"], 2);
    assert_eq!(s.data()["lights_on"], 1);
    assert_eq!(s.data()["lights_off"], 0);
    assert_eq!(s.data()["lights_in_error"], 1);

    let detail = api.get("/lights/detail?lightId=SL001", viewer).await;
    let logs = detail.data()["recentLogs"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let actions: Vec<&str> = logs.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["on", "off", "on"], "newest first");
    assert_eq!(logs[0]["previous_status"], "off");
    assert_eq!(logs[0]["new_status"], "on");
    assert_eq!(logs[0]["performed_by"], "admin@example.com");
    assert_eq!(logs[0]["control_type"], "manual");
    assert_eq!(logs[2]["performed_by"], "oper@example.com");
    let auto = api.get("/lights/detail?lightId=SL002", viewer).await;
    assert_eq!(auto.data()["recentLogs"][0]["control_type"], "automatic");
    assert_eq!(auto.data()["light"]["error_details"], "Bulb failed");
}

/// The control history: operators and admins only, paginated, newest first.
async fn the_control_history_is_for_operators_and_paginated(api: &Api, op: &str, viewer: &str) {
    api.get("/lights/logs?lightId=SL001", viewer)
        .await
        .assert_error(403);
    api.get("/lights/logs", op).await.assert_error(400);
    api.get("/lights/logs?lightId=NOPE", op)
        .await
        .assert_error(404);
    let page1 = api.get("/lights/logs?lightId=SL001&limit=2", op).await;
    assert_eq!(page1.data().as_array().unwrap().len(), 2);
    let cursor = page1.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let page2 = api
        .get(
            &format!("/lights/logs?lightId=SL001&limit=2&cursor={cursor}"),
            op,
        )
        .await;
    assert_eq!(page2.data()[0]["action"], "on");
    assert_eq!(page2.data()[0]["previous_status"], "off");
    api.get("/lights/logs?lightId=SL001&cursor=garbage", op)
        .await
        .assert_error(400);
    api.get("/lights/logs?lightId=SL001&limit=0", op)
        .await
        .assert_error(400);
    api.get("/lights/logs?lightId=SL001&limit=ten", op)
        .await
        .assert_error(400);
}

#[tokio::test]
async fn concurrent_controls_keep_the_summary_exact() {
    let api = Api::start().await;
    let (admin, op, _) = api.users().await;
    api.create(&admin, "SL001", "Delhi").await;
    api.create(&admin, "SL002", "Delhi").await;
    let calls = (0..24).map(|i| {
        let action = if i % 3 == 0 { "off" } else { "on" };
        let light = if i % 2 == 0 { "SL001" } else { "SL002" };
        api.post(
            "/lights/control",
            &op,
            json!({"lightId": light, "action": action}),
        )
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let list = api.get("/lights/list", &op).await;
    let on = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["status"] == "on")
        .count() as i64;
    let s = api.get("/lights/summary", &op).await;
    assert_eq!(s.data()["lights_on"].as_i64(), Some(on));
    assert_eq!(s.data()["lights_off"].as_i64(), Some(2 - on));
    let logs = api.get("/lights/logs?lightId=SL001&limit=500", &op).await;
    assert_eq!(logs.data().as_array().unwrap().len(), 12);
}
