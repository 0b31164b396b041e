//! Bad input of every kind is a 4xx in the app's format, `{"detail": "..."}`, and changes
//! nothing. Each test starts from one camera, `BAD` (capacity 10), with its three lines.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Api, cross};

#[tokio::test]
async fn bad_camera_requests_are_a_4xx_detail() {
    let api = Api::start(&[]).await;
    api.camera("BAD", Some(10)).await;
    let raw = |body| api.raw(Method::POST, "/cameras", None, "application/json", body);
    assert_eq!(raw("{nope").await.detail(400), "Malformed JSON body");
    assert!(
        raw(r#"{"camera_id": 5, "camera_name": "x"}"#)
            .await
            .detail(400)
            .contains("camera_id")
    );
    assert!(
        raw(r#"{"camera_id": "X", "camera_name": "x", "camera_type": "sideways"}"#)
            .await
            .detail(400)
            .contains("sideways")
    );
    assert_eq!(
        api.post("/cameras", None, json!({"camera_id": "X"}))
            .await
            .detail(400),
        "camera_name is required"
    );
    assert_eq!(
        api.post(
            "/cameras",
            None,
            json!({"camera_id": " ", "camera_name": "x"})
        )
        .await
        .detail(400),
        "camera_id is required"
    );
    assert!(
        api.post(
            "/cameras",
            None,
            json!({"camera_id": "X", "camera_name": "x", "max_occupancy": 0})
        )
        .await
        .detail(400)
        .contains("max_occupancy")
    );
    let no_type = api
        .http
        .post(api.url("/cameras"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_type.status(), 415);
}

#[tokio::test]
async fn bad_paths_methods_and_sizes_are_a_4xx_detail() {
    let api = Api::start(&[]).await;
    api.camera("BAD", Some(10)).await;
    assert!(
        api.get("/cameras/abc", None)
            .await
            .detail(400)
            .contains("abc")
    );
    assert_eq!(
        api.delete("/cameras/1", None).await.detail(405),
        "Method not allowed"
    );
    assert_eq!(
        api.get("/nothing/here", None).await.detail(404),
        "Not found"
    );
    // Refused from its Content-Length before it is read, on a connection of its own: the
    // server closes it after the 413, which a pooled client connection would race against.
    let path = api.url("/cameras");
    let path = path.trim_start_matches(&api.server.base);
    let big = civic_testkit::http::raw(
        &api.server.base,
        &format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{{"),
    )
    .await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    assert!(
        big.contains(r#"{"detail":"Request body is too large"}"#),
        "{big}"
    );
}

#[tokio::test]
async fn bad_lines_and_history_queries_are_a_4xx_detail() {
    let api = Api::start(&[]).await;
    let (cam, ..) = api.camera("BAD", Some(10)).await;
    assert!(
        api.post(
            "/lines",
            None,
            json!({"camera_id": cam, "line_name": "x", "x1": 0, "y1": 0, "x2": 5000, "y2": 0})
        )
        .await
        .detail(400)
        .contains("frame")
    );
    assert!(api.post("/lines", None, json!({"camera_id": cam, "line_name": "x", "x1": 0, "y1": 0, "x2": 10, "y2": 0, "confidence_threshold": 1.5})).await.detail(400).contains("confidence_threshold"));
    assert!(api.post("/lines", None, json!({"camera_id": cam, "line_name": "x", "x1": 0, "y1": 0, "x2": 10, "y2": 0, "direction": "up"})).await.detail(400).contains("up"));

    for q in ["days=0", "days=abc", "days=-3", "days=100000"] {
        api.get(&format!("/cameras/{cam}/daily?{q}"), None)
            .await
            .detail(400);
    }
    api.get(&format!("/cameras/{cam}/logs?hours=0"), None)
        .await
        .detail(400);
    api.get(&format!("/cameras/{cam}/monthly?months=0"), None)
        .await
        .detail(400);
    assert_eq!(
        api.get("/cameras/999/hourly", None).await.detail(404),
        "Camera 999 not found"
    );
}

#[tokio::test]
async fn bad_event_batches_are_a_4xx_detail_and_count_nothing() {
    let api = Api::start(&[]).await;
    let (cam, entry, ..) = api.camera("BAD", Some(10)).await;
    let now = Utc::now();
    let path = format!("/cameras/{cam}/events");
    let events = |e: Value| api.post(&path, None, e);
    events(json!({"events": []})).await.detail(400);
    events(json!({"nope": 1})).await.detail(400);
    events(json!({"events": [cross(9999, "entry", now, None)]}))
        .await
        .detail(400);
    events(json!({"events": [cross(entry, "sideways", now, None)]}))
        .await
        .detail(400);
    events(json!({"events": [cross(entry, "entry", now + Duration::hours(1), None)]}))
        .await
        .detail(400);
    let mut bad_time = cross(entry, "entry", now, None);
    bad_time["timestamp"] = "yesterday".into();
    events(json!({"events": [bad_time]})).await.detail(400);
    let mut bad_conf = cross(entry, "entry", now, None);
    bad_conf["confidence"] = 2.0.into();
    events(json!({"events": [bad_conf]})).await.detail(400);
    assert_eq!(
        api.post(
            "/cameras/999/events",
            None,
            json!({"events": [cross(entry, "entry", now, None)]})
        )
        .await
        .detail(404),
        "Camera 999 not found"
    );
    // A rejected batch counted nothing.
    assert_eq!(
        api.get(&format!("/cameras/{cam}/live"), None).await.is(200)["total_entries"],
        0
    );
}

#[tokio::test]
async fn bad_calibrations_aggregations_and_alerts_are_a_4xx_detail() {
    let api = Api::start(&[]).await;
    let (cam, ..) = api.camera("BAD", Some(10)).await;
    api.post(&format!("/cameras/{cam}/calibrate"), None, json!({}))
        .await
        .detail(400);
    api.post(
        &format!("/cameras/{cam}/calibrate"),
        None,
        json!({"occupancy_value": -1}),
    )
    .await
    .detail(400);
    api.post(
        "/cameras/999/calibrate",
        None,
        json!({"occupancy_value": 1}),
    )
    .await
    .detail(404);
    api.post("/aggregate", None, json!({"aggregation_level": "weekly"}))
        .await
        .detail(400);
    assert_eq!(
        api.post(
            "/aggregate",
            None,
            json!({"camera_id": 999, "aggregation_level": "daily"})
        )
        .await
        .detail(404),
        "Camera 999 not found"
    );
    assert_eq!(
        api.call(Method::PUT, "/alerts/999/resolve", None, None)
            .await
            .detail(404),
        "Alert 999 not found"
    );
    api.get("/alerts?camera_id=x", None).await.detail(400);
}
