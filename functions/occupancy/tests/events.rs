//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda; the schedule event drives the rollup pass.

use civic_testkit::lambda::{call, event, json_request, platform, text};
use http::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn sample_events_reach_their_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());

    let (status, body) = call(&occupancy::CAMERAS, &p, event("occupancy-cameras")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["id"].clone(), body["camera_id"].clone()),
        (json!(1), json!("GATE_A"))
    );

    let line = json!({"camera_id": 1, "line_name": "Entrance A", "x1": 0, "y1": 300, "x2": 1920, "y2": 300, "direction": "entry", "confidence_threshold": 0.5});
    let line = json_request(Method::POST, "/api/occupancy/lines", line);
    assert_eq!(
        call(&occupancy::CAMERAS, &p, line).await.0,
        StatusCode::CREATED
    );

    // Two crossings, one below the line's threshold.
    let (status, body) = call(&occupancy::INGEST, &p, event("occupancy-ingest")).await;
    assert_eq!(
        (status, body),
        (StatusCode::ACCEPTED, json!({"accepted": 1}))
    );

    let (status, body) = call(&occupancy::ANALYTICS, &p, event("occupancy-analytics")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["current_occupancy"].clone(),
            body["total_entries"].clone()
        ),
        (json!(1), json!(1))
    );

    let (status, body) = call(&occupancy::ALERTS, &p, event("occupancy-alerts")).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));

    let (status, body) = call(&occupancy::ADMIN, &p, event("occupancy-admin")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "aggregation_triggered");

    // The EventBridge schedule event the scheduler function receives: one pass over the cameras.
    let schedule: Value = serde_json::from_str(&text("occupancy-scheduler")).unwrap();
    assert_eq!(schedule["detail-type"], "Scheduled Event");
    let state = occupancy::State::new(&p);
    assert_eq!(
        occupancy::admin::sweep(state.table.as_ref(), &state.config)
            .await
            .unwrap(),
        1
    );

    // The IoT rule's output for `occupancy/cameras/1/crossings`: the same ingest.
    let iot: Value = serde_json::from_str(&text("occupancy-iot")).unwrap();
    let report = (occupancy::CROSSINGS_IN.handler)(&p)(iot).await.unwrap();
    assert_eq!(report, json!({"accepted": 2}));
    let (_, body) = call(&occupancy::ANALYTICS, &p, event("occupancy-analytics")).await;
    assert_eq!(body["total_entries"], 3);
}

/// The S3 sample is the event for a frame batch a camera uploaded: counted once, however often
/// the event arrives.
#[tokio::test]
async fn the_frame_batch_sample_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let (status, _) = call(&occupancy::CAMERAS, &p, event("occupancy-cameras")).await;
    assert_eq!(status, StatusCode::CREATED);

    let sample: aws_lambda_events::s3::S3Event =
        serde_json::from_str(&text("occupancy-frames")).expect("an S3 event");
    let key = sample.records[0].s3.object.key.clone().unwrap();
    // Frames 1–3, named as the sample's batch was captured.
    let frames = civic_vision::fixtures::vtest_frames(1..=3, 1_736_936_000_000);
    let tar = occupancy::frames::tar(frames).unwrap();
    p.blob()
        .put(&key, tar.into(), "application/x-tar")
        .await
        .unwrap();

    let run = occupancy::frames::FRAMES.run;
    let first = run(&p, sample.clone()).await.unwrap();
    assert_eq!(first["batches"][0]["frames"], 3, "{first}");
    assert_eq!(first["batches"][0]["duplicate"], false);
    let again = run(&p, sample).await.unwrap();
    assert_eq!(again["batches"][0]["duplicate"], true, "{again}");
}
