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
    assert_eq!(occupancy::admin::sweep(&state).await.unwrap(), 1);

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

/// Issue 15, item 4: a frame batch put straight into the store, past the presigned URL's
/// size limit, is refused from its size and recorded as refused. The object is a sparse
/// 64 GiB file: had the consumer read it, the test would not finish.
#[tokio::test]
async fn an_oversize_batch_in_the_bucket_is_refused_unread_and_recorded() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let (status, _) = call(&occupancy::CAMERAS, &p, event("occupancy-cameras")).await;
    assert_eq!(status, StatusCode::CREATED);

    let sample: aws_lambda_events::s3::S3Event =
        serde_json::from_str(&text("occupancy-frames")).expect("an S3 event");
    let key = sample.records[0].s3.object.key.clone().unwrap();
    // Where the local blob store keeps that key (civic_store::FsBlob under the data dir).
    let path = dir.path().join("blobs/objects").join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"application/x-tar\n").unwrap();
    file.set_len(64 << 30).unwrap();

    let run = occupancy::frames::FRAMES.run;
    let report = run(&p, sample.clone()).await.unwrap();
    let batch = &report["batches"][0];
    let error = batch["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("larger than") && error.contains("not read"),
        "{report}"
    );
    assert_eq!(batch["frames"], 0, "{report}");
    // Recorded under its key: listed with the reason, and a redelivery changes nothing.
    let list = json_request(Method::GET, "/api/occupancy/cameras/1/frames", json!(null));
    let (status, listed) = call(&occupancy::INGEST, &p, list).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed[0]["error"], batch["error"], "{listed}");
    let again = run(&p, sample).await.unwrap();
    assert_eq!(again["batches"][0]["duplicate"], true, "{again}");
}

/// Issue 15, item 4: an upload URL is only given for a stated size within the batch limit.
#[tokio::test]
async fn frame_upload_urls_need_a_size_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let (status, _) = call(&occupancy::CAMERAS, &p, event("occupancy-cameras")).await;
    assert_eq!(status, StatusCode::CREATED);
    let ask = |body: Value| json_request(Method::POST, "/api/occupancy/cameras/1/frames", body);
    let over = occupancy::frames::MAX_BATCH_BYTES + 1;
    for body in [
        json!({}),
        json!({"content_length": 0}),
        json!({"content_length": over}),
    ] {
        let (status, answer) = call(&occupancy::INGEST, &p, ask(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("content_length"),
            "{answer}"
        );
    }
    let (status, put) = call(&occupancy::INGEST, &p, ask(json!({"content_length": 4096}))).await;
    assert_eq!(status, StatusCode::CREATED, "{put}");
    assert_eq!(put["headers"]["Content-Length"], "4096");
    assert!(
        put["url"].as_str().unwrap().contains("length=4096"),
        "{put}"
    );
}
