//! Frame batches uploaded through presigned URLs to the bucket and counted by the person
//! detector, across batches and once each; and the size an upload URL is signed for.

use chrono::Utc;
use serde_json::{Value, json};

use crate::Api;

/// A tar of vtest.avi frames `range` (10 frames/s), named by capture time from `start_ms`.
fn frame_batch(range: std::ops::RangeInclusive<usize>, start_ms: i64) -> Vec<u8> {
    occupancy::frames::tar(civic_vision::fixtures::vtest_frames(range, start_ms)).unwrap()
}

/// Hand-counted crossings of vtest.avi (shared/vision/tests/vtest-crossings.csv) in `frames`:
/// (entries, exits), where both lines are drawn downwards so an entry is a walk to the left.
fn hand_count(frames: std::ops::RangeInclusive<usize>) -> (i64, i64) {
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vision/tests/vtest-crossings.csv"
    );
    let mut counts = (0, 0);
    for row in csv::Reader::from_path(csv).unwrap().records() {
        let row = row.unwrap();
        if frames.contains(&row[0].parse().unwrap()) {
            match &row[2] {
                "left" => counts.0 += 1,
                _ => counts.1 += 1,
            }
        }
    }
    counts
}

impl Api {
    /// Uploads a frame batch through a presigned URL; returns the URL.
    async fn upload_frames(&self, cam: i64, body: Vec<u8>) -> String {
        let put = self
            .post(
                &format!("/cameras/{cam}/frames"),
                None,
                json!({"content_length": body.len()}),
            )
            .await;
        let url = put.is(201)["url"].as_str().unwrap().to_owned();
        self.put_frames(&url, body).await;
        url
    }

    async fn put_frames(&self, url: &str, body: Vec<u8>) {
        let resp = self
            .http
            .put(url)
            .header("content-type", "application/x-tar")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "{}",
            resp.text().await.unwrap()
        );
    }

    /// Waits until `n` batches of the camera are counted; returns their reports.
    async fn counted_batches(&self, cam: i64, n: usize) -> Vec<Value> {
        for _ in 0..1200 {
            let list = self.get(&format!("/cameras/{cam}/frames"), None).await;
            let list = list.is(200).as_array().unwrap().clone();
            if list.len() >= n {
                return list;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        panic!("{n} batches were not counted within 5 minutes");
    }
}

#[tokio::test]
async fn frame_batches_uploaded_to_the_bucket_are_counted_across_batches_once_each() {
    let api = Api::start(&[]).await;
    let cam = vtest_camera(&api).await;
    // Ten minutes ago at 10 frames/s; two consecutive batches, so tracks carry over.
    let start = Utc::now().timestamp_millis() - 600_000;
    let (first, counted) = two_batches_count_as_by_hand(&api, cam, start).await;
    redeliveries_and_late_frames_change_nothing(&api, cam, start, &first, counted).await;
    refused_batches_count_nothing(&api, cam, start, counted.0).await;

    // An unknown camera: 404 in the app's format.
    api.post("/cameras/999/frames", None, json!({}))
        .await
        .detail(404);
    api.get("/cameras/999/frames", None).await.detail(404);
}

/// A bidirectional camera for vtest.avi with two vertical lines drawn downwards (where
/// `hand_count` counts a walk to the left as an entry): its id.
async fn vtest_camera(api: &Api) -> i64 {
    let cam = api
        .post("/cameras", None, json!({"camera_id": "VTEST", "camera_name": "vtest.avi", "camera_type": "bidirectional"}))
        .await;
    let cam = cam.is(201)["id"].as_i64().unwrap();
    for (x, y1) in [(250, 150), (550, 130)] {
        api.post("/lines", None, json!({"camera_id": cam, "line_name": format!("x={x}"), "x1": x, "y1": y1, "x2": x, "y2": 330, "direction": "bidirectional", "confidence_threshold": 0.5}))
            .await
            .is(201);
    }
    cam
}

/// Two consecutive batches (frames 150–265), counted within one of the hand count: the first
/// batch's URL and the (entries, exits) counted, which later deliveries must not change.
async fn two_batches_count_as_by_hand(api: &Api, cam: i64, start: i64) -> (String, (i64, i64)) {
    let first = api.upload_frames(cam, frame_batch(150..=200, start)).await;
    api.counted_batches(cam, 1).await;
    api.upload_frames(cam, frame_batch(201..=265, start)).await;
    let reports = api.counted_batches(cam, 2).await;
    assert!(
        reports
            .iter()
            .all(|r| r["skipped"] == 0 && r["duplicate"] == false)
    );
    assert_eq!(
        reports
            .iter()
            .map(|r| r["frames"].as_i64().unwrap())
            .sum::<i64>(),
        116
    );

    let live = api.get(&format!("/cameras/{cam}/live"), None).await;
    let live = live.is(200).clone();
    let counted = (
        live["total_entries"].as_i64().unwrap(),
        live["total_exits"].as_i64().unwrap(),
    );
    let by_hand = hand_count(150..=265);
    println!("vtest frames 150–265: counted (entries, exits) {counted:?}, by hand {by_hand:?}");
    assert!(
        by_hand.0 + by_hand.1 >= 5,
        "a window with traffic: {by_hand:?}"
    );
    assert!(
        counted.0.abs_diff(by_hand.0) <= 1 && counted.1.abs_diff(by_hand.1) <= 1,
        "counted {counted:?}, by hand {by_hand:?}"
    );
    let accepted: i64 = reports
        .iter()
        .map(|r| r["accepted"].as_i64().unwrap())
        .sum();
    assert_eq!(accepted, counted.0 + counted.1);
    (first, counted)
}

/// S3 may deliver an object's event twice, and a camera may upload late: counts stay put.
async fn redeliveries_and_late_frames_change_nothing(
    api: &Api,
    cam: i64,
    start: i64,
    first: &str,
    counted: (i64, i64),
) {
    // The same object delivered again, and a late batch of older frames: nothing changes.
    api.upload_frames(cam, frame_batch(100..=140, start)).await;
    let late = api.counted_batches(cam, 3).await;
    let late = late.iter().find(|r| r["frames"] == 41).unwrap();
    assert_eq!(
        (late["skipped"].as_i64(), late["crossings"].as_i64()),
        (Some(41), Some(0))
    );
    // The first object again (a duplicate S3 event for the same key): counted once.
    api.put_frames(first, frame_batch(150..=200, start)).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(api.counted_batches(cam, 3).await.len(), 3);
    let again = api.get(&format!("/cameras/{cam}/live"), None).await;
    let again = again.is(200).clone();
    assert_eq!(
        (
            again["total_entries"].as_i64().unwrap(),
            again["total_exits"].as_i64().unwrap()
        ),
        counted
    );
}

/// A refused batch is listed with its reason, so an operator sees why nothing was counted.
async fn refused_batches_count_nothing(api: &Api, cam: i64, start: i64, entries: i64) {
    // Not a tar, and a frame that is not an image: refused with the reason, nothing counted.
    api.upload_frames(cam, b"GIF89a, not a tar".to_vec()).await;
    let bad = occupancy::frames::tar([(format!("{}.jpg", start + 300_000), b"hello")]).unwrap();
    api.upload_frames(cam, bad).await;
    let all = api.counted_batches(cam, 5).await;
    let refused: Vec<&str> = all.iter().filter_map(|r| r["error"].as_str()).collect();
    assert_eq!(refused.len(), 2, "{all:?}");
    assert!(
        refused.iter().all(|e| e.starts_with("frame")),
        "{refused:?}"
    );
    let after = api.get(&format!("/cameras/{cam}/live"), None).await;
    assert_eq!(after.is(200)["total_entries"].as_i64().unwrap(), entries);
}

/// Issue 15, item 4, through civic-local's upload path (S3's stand-in): a URL signed for one
/// size takes that many bytes and no more, and its size cannot be edited.
mod upload_limits {
    use super::*;

    #[tokio::test]
    async fn an_upload_url_takes_only_the_size_it_was_signed_for() {
        let api = Api::start(&[]).await;
        let cam = api
            .post(
                "/cameras",
                None,
                json!({"camera_id": "LIMIT", "camera_name": "Limit"}),
            )
            .await;
        let cam = cam.is(201)["id"].as_i64().unwrap();
        let path = format!("/cameras/{cam}/frames");
        let put = api.post(&path, None, json!({"content_length": 100})).await;
        let url = put.is(201)["url"].as_str().unwrap().to_owned();
        // Uploads on their own connections: the refused ones are closed by the server, and a
        // pooled connection it closed would fail the next request sent on it.
        let uploads = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let send = |url: String, body: Vec<u8>| {
            uploads
                .put(url)
                .header("content-type", "application/x-tar")
                .body(body)
                .send()
        };
        // More bytes than signed, fewer, or the size edited in the URL: refused, nothing stored.
        for (url, body) in [
            (url.clone(), vec![0u8; 64 << 10]),
            (url.clone(), vec![0u8; 99]),
            (url.replace("length=100", "length=65536"), vec![0u8; 65536]),
        ] {
            match send(url, body).await {
                Ok(res) => assert_eq!(res.status().as_u16(), 403, "{}", res.text().await.unwrap()),
                // civic-local answers 403 from the headers alone and closes without reading the
                // body (as S3 does); a client still sending may see the close before the answer.
                Err(e) => assert!(e.is_request(), "{e}"),
            }
        }
        // Bigger than a batch may be: no URL at all.
        let over = 64 << 20 | 1;
        api.post(&path, None, json!({"content_length": over}))
            .await
            .detail(400);
        api.post(&path, None, json!({})).await.detail(400);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(api.count(&path).await, 0, "nothing was stored or counted");
        // The signed size itself is taken (a 100-byte non-tar: refused as a batch, recorded).
        let res = send(url, vec![0u8; 100]).await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let listed = api.counted_batches(cam, 1).await;
        assert!(listed[0]["error"].is_string(), "{listed:?}");
    }
}
