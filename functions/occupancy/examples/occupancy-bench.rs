//! Occupancy on the embedded store: crossing-ingest throughput through the ingest function's
//! own router (every batch committed with fsync before its 202), and the store round trips of
//! `monthly?months=12` at 1k crossings and after many more, which must not grow.
//!
//! `cargo run --profile local -p occupancy --example occupancy-bench -- [MANY] [CAMERAS]`
//! (defaults: 1,000,000 crossings over 4 cameras, in batches of 500, spread over 300 days).

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use chrono::{Duration, SecondsFormat, Utc};
use civic_core::{Limits, Platform};
use civic_store::Backend;
use serde_json::{Value, json};
use tower::ServiceExt;

const BATCH: usize = 500;
const WARM: usize = 1000;

async fn call(router: &Router, method: &str, path: &str, body: Option<Value>) -> (u16, Value, u64) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let trips = res
        .headers()
        .get(civic_core::layers::ROUND_TRIPS_HEADER)
        .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        trips,
    )
}

/// Crossings `from..to` of a camera whose `total` crossings are spread evenly over 300 days up
/// to now (all inside `months=12`):
/// alternating entries and exits by 200 tracked persons.
fn crossings(line_in: i64, line_out: i64, from: usize, to: usize, total: usize) -> Vec<Value> {
    let start = Utc::now() - Duration::days(300);
    let step = 300.0 * 86400.0 / total as f64;
    (from..to)
        .map(|k| {
            let t = start + Duration::milliseconds((k as f64 * step * 1000.0) as i64);
            let (line, dir) = if k % 2 == 0 { (line_in, "entry") } else { (line_out, "exit") };
            json!({"line_id": line, "direction": dir, "timestamp": t.to_rfc3339_opts(SecondsFormat::Secs, true), "confidence": 0.9, "track_id": k % 200})
        })
        .collect()
}

async fn ingest(router: Router, cam: i64, lines: (i64, i64), from: usize, to: usize, total: usize) {
    for chunk in (from..to).step_by(BATCH) {
        let events = crossings(lines.0, lines.1, chunk, (chunk + BATCH).min(to), total);
        let (status, body, _) = call(
            &router,
            "POST",
            &format!("/api/occupancy/cameras/{cam}/events"),
            Some(json!({"events": events})),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
}

/// A camera with its entry line and its exit line.
type Cam = (i64, (i64, i64));

/// Creates `cameras` cameras through the admin router, each with an entry and an exit line.
async fn setup(admin: &Router, cameras: usize) -> Vec<Cam> {
    let mut cams = Vec::new();
    for c in 0..cameras {
        let body = json!({"camera_id": format!("BENCH_{c}"), "camera_name": "bench"});
        let id = call(admin, "POST", "/api/occupancy/cameras", Some(body))
            .await
            .1["id"]
            .as_i64()
            .unwrap();
        let mut lines = Vec::new();
        for dir in ["entry", "exit"] {
            let body = json!({"camera_id": id, "line_name": dir, "x1": 0, "y1": 10, "x2": 100, "y2": 10, "direction": dir});
            lines.push(
                call(admin, "POST", "/api/occupancy/lines", Some(body))
                    .await
                    .1["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
        cams.push((id, (lines[0], lines[1])));
    }
    cams
}

/// `monthly?months=12` of a camera: its store round trips and the entries it sums to.
async fn monthly(analytics: &Router, cam: i64) -> (u64, i64) {
    let path = format!("/api/occupancy/cameras/{cam}/monthly?months=12");
    let (status, body, trips) = call(analytics, "GET", &path, None).await;
    assert_eq!(status, 200, "{body}");
    let entries: i64 = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entries"].as_i64().unwrap())
        .sum();
    (trips, entries)
}

/// The same batches, the same way, into every camera at once (`from` skips the warm-up):
/// the seconds it took.
async fn run(router: Router, cams: &[Cam], per_camera: usize) -> f64 {
    let began = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    for (i, &(cam, lines)) in cams.iter().enumerate() {
        let from = if i == 0 { WARM } else { 0 };
        runs.spawn(ingest(
            router.clone(),
            cam,
            lines,
            from,
            per_camera,
            per_camera,
        ));
    }
    runs.join_all().await;
    began.elapsed().as_secs_f64()
}

/// Baseline: a no-op handler that parses the same batch bodies and answers 202.
fn noop() -> Router {
    Router::new().route(
        "/api/occupancy/cameras/{cam}/events",
        axum::routing::post(|axum::Json(b): axum::Json<Value>| async move {
            let n = b["events"].as_array().map_or(0, Vec::len);
            (
                axum::http::StatusCode::ACCEPTED,
                axum::Json(json!({ "accepted": n })),
            )
        }),
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let many = args.first().copied().unwrap_or(1_000_000);
    let cameras = args.get(1).copied().unwrap_or(4).max(1);
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::local(
        dir.path(),
        Backend::embedded(dir.path()).unwrap(),
        Limits::default().unlimited_rate(),
    )
    .unwrap();
    let [admin, ingest_fn, analytics] =
        [occupancy::CAMERAS, occupancy::INGEST, occupancy::ANALYTICS].map(|f| f.build(&p).0);

    let cams = setup(&admin, cameras).await;
    let per_camera = many / cameras;
    let (cam0, lines0) = cams[0];
    ingest(ingest_fn.clone(), cam0, lines0, 0, WARM, per_camera).await;
    let (trips_small, entries_small) = monthly(&analytics, cam0).await;

    let base_secs = run(noop(), &cams, per_camera).await;
    let before = civic_store::CommitStats::now();
    let secs = run(ingest_fn.clone(), &cams, per_camera).await;
    let commits = civic_store::CommitStats::now();
    let ingested = per_camera * cameras - WARM;
    let (trips_large, entries_large) = monthly(&analytics, cam0).await;

    println!(
        "crossing ingest: {ingested} crossings over {cameras} cameras in {secs:.1} s = {:.0} crossings/s (batches of {BATCH}, fsync per batch)",
        ingested as f64 / secs
    );
    println!(
        "no-op handler, same batches: {:.0} crossings/s; ratio occupancy/no-op = {:.3}",
        ingested as f64 / base_secs,
        base_secs / secs
    );
    // As civic-local's bench::commit_line (this crate cannot depend on civic-local).
    println!(
        "store during the measured ingest: groups: mean {:.1} calls, max {}; fsyncs/s {:.0}",
        commits.mean_since(&before),
        commits.max,
        commits.groups_since(&before) as f64 / secs
    );
    println!(
        "monthly?months=12 store round trips: {trips_small} at {WARM} crossings ({entries_small} entries), {trips_large} at {per_camera} crossings ({entries_large} entries)"
    );
    assert_eq!(
        trips_small, trips_large,
        "history reads must not grow with crossings"
    );
}
