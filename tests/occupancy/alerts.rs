//! Alerts: capacity, negative counts, anomalies against the hour of week and silent cameras,
//! deduplicated and resolved; and `POST /aggregate`, which runs the checks.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Api, at, cross};

#[tokio::test]
async fn alerts_are_detected_deduplicated_and_resolved() {
    let api = Api::start(&[]).await;
    let (cam, entry, exit, _) = api.camera("CAP", Some(10)).await;
    let now = Utc::now() - Duration::seconds(5);
    let entries = |n: i64| {
        (0..n)
            .map(|_| cross(entry, "entry", now, None))
            .collect::<Vec<_>>()
    };

    // An exit at 0 keeps occupancy at 0 and is a negative_count.
    assert_eq!(
        api.events(cam, vec![cross(exit, "exit", now, None)]).await,
        1
    );
    assert_eq!(
        api.get(&format!("/cameras/{cam}/live"), None).await.body["current_occupancy"],
        0
    );
    api.events(cam, entries(9)).await; // 9 > 80% of 10
    api.events(cam, entries(2)).await; // 11 > 10
    api.events(cam, entries(1)).await; // 12: the same alert, updated
    let alerts = api.get(&format!("/alerts?camera_id={cam}"), None).await;
    let alerts = alerts.is(200).as_array().unwrap().clone();
    let types: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["negative_count", "capacity_warning", "capacity_exceeded"]
    );
    let exceeded = &alerts[2];
    assert_eq!(exceeded["current_occupancy"], 12);
    assert_eq!(exceeded["message"], "Occupancy (12) exceeds capacity (10)");
    assert_eq!(exceeded["is_resolved"], false);
    assert_eq!(exceeded["occurrences"], 2);
    for k in ["id", "camera_id", "timestamp"] {
        assert!(!exceeded[k].is_null());
    }
    assert_eq!(
        api.get("/facility/stats", None).await.body["active_alerts"],
        3
    );

    let id = exceeded["id"].as_i64().unwrap();
    let resolved = api
        .call(Method::PUT, &format!("/alerts/{id}/resolve"), None, None)
        .await;
    let resolved = resolved.is(200).clone();
    assert_eq!(
        (resolved["status"].clone(), resolved["alert_id"].clone()),
        (json!("success"), json!(id))
    );
    let again = api
        .call(Method::PUT, &format!("/alerts/{id}/resolve"), None, None)
        .await;
    assert_eq!(again.is(200)["resolved_at"], resolved["resolved_at"]);
    assert_eq!(api.count("/alerts").await, 2);
    assert_eq!(
        api.get("/facility/stats", None).await.body["active_alerts"],
        2
    );
    // Still over capacity: a new alert opens.
    api.events(cam, entries(1)).await;
    let open = api.get("/alerts", None).await.body;
    let exceeded: Vec<&Value> = open
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["alert_type"] == "capacity_exceeded")
        .collect();
    assert_eq!(exceeded.len(), 1);
    assert_ne!(exceeded[0]["id"], id);
    assert_eq!(
        api.get("/alerts?camera_id=999", None).await.is(200),
        &json!([])
    );
}

#[tokio::test]
async fn anomalies_are_judged_against_the_hour_of_week() {
    let api = Api::start(&[]).await;
    let (cam, entry, exit, _) = api.camera("ANOM", None).await;
    // Three Mondays at 09:00 with 4 crossings each, then one with 40.
    let monday = at("2026-10-05T09:00:00Z");
    for week in 0..3 {
        let t = monday + Duration::weeks(week);
        let batch = vec![
            cross(entry, "entry", t, None),
            cross(entry, "entry", t + Duration::minutes(5), None),
            cross(exit, "exit", t + Duration::minutes(10), None),
            cross(exit, "exit", t + Duration::minutes(15), None),
            // The next hour begins: the Monday 09:00 hour is closed into the baseline.
            cross(entry, "entry", t + Duration::hours(2), None),
            cross(exit, "exit", t + Duration::hours(2), None),
        ];
        api.events(cam, batch).await;
        assert_eq!(api.count("/alerts").await, 0);
    }
    let t = monday + Duration::weeks(3);
    let normal: Vec<Value> = (0..4)
        .map(|i| cross(entry, if i % 2 == 0 { "entry" } else { "exit" }, t, None))
        .collect();
    api.events(cam, normal).await;
    assert_eq!(
        api.count("/alerts").await,
        0,
        "a usual hour is not an anomaly"
    );
    let burst: Vec<Value> = (0..40)
        .map(|i| {
            cross(
                entry,
                if i % 2 == 0 { "entry" } else { "exit" },
                t + Duration::minutes(20),
                None,
            )
        })
        .collect();
    api.events(cam, burst).await;
    let alerts = api.get("/alerts", None).await.body;
    assert_eq!(alerts[0]["alert_type"], "anomaly_detected", "{alerts}");
    assert!(
        alerts[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Occupancy anomaly detected")
    );
}

#[tokio::test]
async fn aggregate_requires_an_aggregation_level() {
    let api = Api::start(&[]).await;
    let (cam, ..) = api.camera("LEVELS", None).await;
    // Only camera_id is optional in the seed: no level (absent or null) is a 400, not a default.
    for body in [
        json!({}),
        json!({"camera_id": null}),
        json!({"camera_id": cam}),
        json!({"camera_id": cam, "aggregation_level": null}),
    ] {
        let res = api.post("/aggregate", None, body.clone()).await;
        assert_eq!(
            res.detail(400),
            "aggregation_level is required: hourly, daily or monthly",
            "{body}"
        );
    }
    for body in [
        json!({"aggregation_level": "weekly"}),
        json!({"aggregation_level": ""}),
        json!({"aggregation_level": 1}),
        json!({"aggregation_level": ["hourly"]}),
        json!({"camera_id": "x", "aggregation_level": "hourly"}),
        json!(["hourly"]),
    ] {
        api.post("/aggregate", None, body).await.detail(400);
    }
    api.raw(
        Method::POST,
        "/aggregate",
        None,
        "application/json",
        "{\"aggregation_level\": \"hou",
    )
    .await
    .detail(400);
    // Each level, with and without a camera, is accepted and echoed.
    for level in ["hourly", "daily", "monthly"] {
        for camera in [json!(null), json!(cam)] {
            let res = api
                .post(
                    "/aggregate",
                    None,
                    json!({"camera_id": camera, "aggregation_level": level}),
                )
                .await;
            assert_eq!(res.is(202)["level"], level);
        }
    }
    let res = api
        .post("/aggregate", None, json!({"aggregation_level": "daily"}))
        .await;
    assert_eq!(res.is(202)["status"], "aggregation_triggered");
}

#[tokio::test]
async fn silent_cameras_are_equipment_failures_and_aggregate_is_accepted() {
    let api = Api::start(&[("OCCUPANCY_SILENCE_SECS", "1")]).await;
    let (cam, entry, ..) = api.camera("QUIET", None).await;
    api.camera("QUIET2", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // The seed's example body.
    let res = api
        .post(
            "/aggregate",
            None,
            json!({"camera_id": null, "aggregation_level": "hourly"}),
        )
        .await;
    let res = res.is(202);
    assert_eq!(
        (res["status"].clone(), res["level"].clone()),
        (json!("aggregation_triggered"), json!("hourly"))
    );
    assert!(res["timestamp"].as_str().unwrap().ends_with('Z'));
    let alerts = api.get("/alerts", None).await.body;
    let failures: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["alert_type"] == "equipment_failure")
        .collect();
    assert_eq!(failures.len(), 2, "{alerts}");
    assert!(failures[0]["message"].as_str().unwrap().contains("QUIET"));
    // Deduplicated: another pass updates rather than repeats.
    api.post(
        "/aggregate",
        None,
        json!({"camera_id": cam, "aggregation_level": "daily"}),
    )
    .await
    .is(202);
    assert_eq!(api.count(&format!("/alerts?camera_id={cam}")).await, 1);
    // A camera that reports again is not silent (until it is).
    api.events(cam, vec![cross(entry, "entry", Utc::now(), None)])
        .await;
    assert_eq!(
        api.get("/facility/stats", None).await.body["active_alerts"],
        2
    );
}
