//! Crossings drive live occupancy, a calibration resets it, and the facility is the sum of its
//! cameras; concurrent batches lose nothing and count nothing twice.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::{Api, cross, ts};

#[tokio::test]
async fn crossings_drive_live_occupancy_calibration_and_the_facility() {
    let api = Api::start(&[]).await;
    let now = Utc::now() - Duration::seconds(30);
    let (cam, entry) = crossings_count_by_line_direction(&api, now).await;
    let gate = an_entry_only_camera_ignores_exits(&api, now).await;
    a_calibration_sets_the_level_and_is_logged(&api, cam, entry).await;
    the_facility_is_the_sum_of_its_cameras(&api, cam, gate).await;
}

/// Camera `GATE_A` counts only what each line's direction and threshold admit: its id and
/// entry line, for the steps that follow.
async fn crossings_count_by_line_direction(api: &Api, now: DateTime<Utc>) -> (i64, i64) {
    let (cam, entry, exit, both) = api.camera("GATE_A", None).await;
    let low = json!({"line_id": both, "direction": "entry", "timestamp": ts(now), "confidence": 0.2, "track_id": 99});
    let batch = vec![
        cross(entry, "entry", now, Some(1)),
        cross(entry, "entry", now, Some(2)),
        cross(both, "entry", now, Some(3)),
        cross(both, "exit", now, Some(3)),
        cross(exit, "exit", now, Some(1)),
        cross(entry, "exit", now, Some(4)), // an entry line does not count exits
        cross(exit, "entry", now, Some(5)), // nor an exit line entries
        low,                                // below the line's threshold
    ];
    assert_eq!(api.events(cam, batch).await, 5);
    let live = api.get(&format!("/cameras/{cam}/live"), None).await;
    let live = live.is(200);
    assert_eq!(live["camera_id"], cam);
    assert_eq!(
        (
            live["current_occupancy"].clone(),
            live["total_entries"].clone(),
            live["total_exits"].clone()
        ),
        (json!(1), json!(3), json!(2))
    );
    assert_eq!(live["unique_persons"], 3);
    assert!(live["last_updated"].as_str().unwrap().ends_with('Z'));
    (cam, entry)
}

/// An entry_only camera (`IN`), calibrated to 50 with the seed's cURL body: its id, whose
/// level the facility adds up.
async fn an_entry_only_camera_ignores_exits(api: &Api, now: DateTime<Utc>) -> i64 {
    // An entry_only camera ignores exits even on a bidirectional line.
    let gate = api
        .post(
            "/cameras",
            None,
            json!({"camera_id": "IN", "camera_name": "In", "camera_type": "entry_only"}),
        )
        .await
        .is(201)["id"]
        .as_i64()
        .unwrap();
    let gline = api.post("/lines", None, json!({"camera_id": gate, "line_name": "l", "x1": 0, "y1": 1, "x2": 9, "y2": 1, "direction": "bidirectional"})).await.is(201)["id"].as_i64().unwrap();
    assert_eq!(
        api.events(
            gate,
            vec![
                cross(gline, "entry", now, None),
                cross(gline, "exit", now, None)
            ]
        )
        .await,
        1
    );
    // The seed's cURL calibration: no notes.
    assert_eq!(
        api.post(
            &format!("/cameras/{gate}/calibrate"),
            None,
            json!({"occupancy_value": 50})
        )
        .await
        .is(200)["occupancy_set_to"],
        50
    );
    gate
}

/// `GATE_A` calibrated to 50 with notes, then one more entry: live and the logs show both.
async fn a_calibration_sets_the_level_and_is_logged(api: &Api, cam: i64, entry: i64) {
    let cal = api
        .post(
            &format!("/cameras/{cam}/calibrate"),
            None,
            json!({"occupancy_value": 50, "notes": "Manual headcount performed at 10:30"}),
        )
        .await;
    let cal = cal.is(200);
    assert_eq!(
        (
            cal["status"].clone(),
            cal["camera_id"].clone(),
            cal["occupancy_set_to"].clone()
        ),
        (json!("success"), json!(cam), json!(50))
    );
    assert!(cal["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        api.events(cam, vec![cross(entry, "entry", Utc::now(), Some(6))])
            .await,
        1
    );
    let live = api.get(&format!("/cameras/{cam}/live"), None).await.body;
    assert_eq!(
        (
            live["current_occupancy"].clone(),
            live["total_entries"].clone()
        ),
        (json!(51), json!(4))
    );

    let logs = api
        .get(&format!("/cameras/{cam}/logs?hours=24"), None)
        .await;
    let logs = logs.is(200).as_array().unwrap().clone();
    let manual: Vec<&Value> = logs
        .iter()
        .filter(|l| l["is_manual_calibration"] == true)
        .collect();
    assert_eq!(manual.len(), 1, "{logs:?}");
    assert_eq!(manual[0]["net_occupancy"], 50);
    assert_eq!(manual[0]["notes"], "Manual headcount performed at 10:30");
    let counted: i64 = logs
        .iter()
        .map(|l| l["entry_count"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 4);
    for l in &logs {
        for k in [
            "id",
            "camera_id",
            "entry_count",
            "exit_count",
            "net_occupancy",
            "timestamp",
            "tracked_persons",
        ] {
            assert!(!l[k].is_null(), "{k} in {l}");
        }
    }
    // A period's net occupancy is the level at its end: after the calibration and the entry.
    let last_period = logs
        .iter()
        .rev()
        .find(|l| l["is_manual_calibration"] == false)
        .unwrap();
    assert_eq!(last_period["net_occupancy"], 51);
}

/// The facility's totals, from `GATE_A` (51) and `IN` (50), and its reads.
async fn the_facility_is_the_sum_of_its_cameras(api: &Api, cam: i64, gate: i64) {
    // The facility is the sum of its cameras, kept at write time.
    let f = api.get("/facility/live", None).await;
    let f = f.is(200);
    assert_eq!(f["facility_occupancy"], 51 + 50);
    assert_eq!(f["total_entries_all_cameras"], 4 + 1);
    assert_eq!(f["total_exits_all_cameras"], 2);
    assert_eq!(f["cameras_active"], 2);
    let stats = api.get("/facility/stats", None).await;
    let stats = stats.is(200);
    assert_eq!(
        (
            stats["total_cameras"].clone(),
            stats["active_cameras"].clone(),
            stats["total_persons_in_facility"].clone()
        ),
        (json!(2), json!(2), json!(101))
    );
    assert_eq!(stats["capacity_utilization"], 0.0);
    for id in [cam, gate] {
        let bigger = json!({"max_occupancy": 200});
        api.put(&format!("/cameras/{id}"), None, bigger)
            .await
            .is(200);
    }
    assert_eq!(
        api.get("/facility/stats", None).await.body["capacity_utilization"],
        25.3
    );
    // Reads are one store round trip whatever the history.
    assert_eq!(
        api.get(&format!("/cameras/{cam}/live"), None)
            .await
            .round_trips(),
        1
    );
    assert_eq!(api.get("/facility/stats", None).await.round_trips(), 1);
}

#[tokio::test]
async fn concurrent_batches_lose_nothing() {
    let api = Api::start(&[]).await;
    let (cam, entry, _, _) = api.camera("BUSY", None).await;
    let (cam2, entry2, _, _) = api.camera("BUSY2", None).await;
    let now = Utc::now() - Duration::seconds(10);
    let batches = || {
        (0..16).map(|i| {
            let (c, l) = if i % 2 == 0 {
                (cam, entry)
            } else {
                (cam2, entry2)
            };
            let events: Vec<Value> = (0..25)
                .map(|j| cross(l, "entry", now, Some(i * 100 + j)))
                .collect();
            let api = &api;
            async move { api.events(c, events).await }
        })
    };
    let accepted: i64 = futures::future::join_all(batches()).await.into_iter().sum();
    assert_eq!(accepted, 400);
    // All of it again, as concurrently: every batch spans transactions, and each crossing's
    // marker is in its own chunk's, so nothing counts twice.
    let again: i64 = futures::future::join_all(batches()).await.into_iter().sum();
    assert_eq!(again, 0);
    let live = api.get(&format!("/cameras/{cam}/live"), None).await.body;
    assert_eq!(
        (
            live["current_occupancy"].clone(),
            live["unique_persons"].clone()
        ),
        (json!(200), json!(200))
    );
    assert_eq!(
        api.get("/facility/live", None).await.body["facility_occupancy"],
        400
    );
    let hourly = api
        .get(&format!("/cameras/{cam}/hourly?days=1"), None)
        .await
        .body;
    let entries: i64 = hourly
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["entries"].as_i64().unwrap())
        .sum();
    assert_eq!(entries, 200);
}
