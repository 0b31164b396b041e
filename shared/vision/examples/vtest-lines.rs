//! Line crossings in Debian's vtest.avi (frames decoded by ./scripts/fixtures, 10 frames/s)
//! against the hand count in `tests/vtest-crossings.csv`, with frames/s end to end (decode,
//! detect, track, count): `cargo run --profile local -p civic-vision --example vtest-lines`.
//! Both lines are drawn downwards, so an entry is a walk to the left (the hand count's `left`).

use std::time::Instant;

use civic_vision::line::Sense;
use civic_vision::video::{CameraState, VideoConfig};
use civic_vision::{BBox, Counter, Detection, fixtures, runtime};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The video pipeline's settings, each overridable from the environment for tuning.
fn config() -> VideoConfig {
    let mut cfg = VideoConfig::default();
    cfg.hysteresis.band = env("BAND", cfg.hysteresis.band);
    cfg.tracker.min_hits = env("MIN_HITS", cfg.tracker.min_hits);
    cfg.tracker.iou = env("IOU", cfg.tracker.iou);
    cfg.tracker.low = env("LOW", cfg.tracker.low);
    cfg.tracker.high = env("HIGH", cfg.tracker.high);
    cfg
}

/// A frame's detections as saved: `[x1, y1, x2, y2, score]` each.
type Boxes = Vec<[f32; 5]>;

fn from_boxes(boxes: &[[f32; 5]]) -> Vec<Detection> {
    boxes
        .iter()
        .map(|d| Detection {
            bbox: BBox {
                x1: d[0],
                y1: d[1],
                x2: d[2],
                y2: d[3],
            },
            score: d[4],
        })
        .collect()
}

fn to_boxes(people: &[Detection]) -> Boxes {
    people
        .iter()
        .map(|d| [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2, d.score])
        .collect()
}

/// Baseline: reading and decoding the same frames, nothing else. Returns the seconds taken.
fn decode_alone(dir: &std::path::Path) -> f64 {
    let t = Instant::now();
    for n in 1..=795 {
        std::hint::black_box(fixtures::open(&dir.join(format!("{n:04}.jpg"))));
    }
    t.elapsed().as_secs_f64()
}

/// The hand count, by line: `[entries, exits]`.
fn hand_count() -> Result<[[usize; 2]; 2], Box<dyn std::error::Error>> {
    let mut truth = [[0usize; 2]; 2];
    let labels = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vtest-crossings.csv");
    for row in csv::Reader::from_path(labels)?.records() {
        let row = row?;
        let line: usize = row[1].parse()?;
        truth[line - 1][usize::from(&row[2] == "right")] += 1;
    }
    Ok(truth)
}

fn report(
    threads: usize,
    elapsed: f64,
    decode: f64,
    counted: [[usize; 2]; 2],
    truth: [[usize; 2]; 2],
) {
    println!(
        "vtest.avi: 795 frames in {elapsed:.1} s = {:.1} frames/s on {threads} threads",
        795.0 / elapsed
    );
    println!(
        "  baseline, reading and decoding alone: {:.1} frames/s (the whole path takes {:.1}x as long)",
        795.0 / decode,
        elapsed / decode
    );
    for (l, (c, t)) in counted.iter().zip(truth).enumerate() {
        for (k, sense) in ["entries", "exits"].iter().enumerate() {
            let err = 100.0 * (c[k] as f64 - t[k] as f64) / t[k] as f64;
            println!(
                "  line {} {sense}: counted {}, by hand {} ({err:+.0}%)",
                l + 1,
                c[k],
                t[k]
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counter = Counter::load(&runtime::Paths::from_env()?, threads)?;
    let cfg = config();
    let verbose = std::env::var("VERBOSE").is_ok();

    let dir = fixtures::dir().join("vtest");
    // DETECTIONS=file: detect once, then tune the tracker and lines against the saved boxes.
    let cache = std::env::var("DETECTIONS").ok();
    let saved: Option<Vec<Boxes>> = cache
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut all = Vec::new();
    let mut state = CameraState::default();
    let mut counted = [[0usize; 2]; 2];
    let started = Instant::now();
    for n in 1..=795 {
        let people: Vec<Detection> = match &saved {
            Some(s) => from_boxes(&s[n - 1]),
            None => {
                let img = fixtures::open(&dir.join(format!("{n:04}.jpg")));
                counter.primary.detect_min(&img, 0.2)?
            }
        };
        all.push(to_boxes(&people));
        let people: Vec<Detection> = people
            .into_iter()
            .filter(|d| d.score >= cfg.tracker.low)
            .collect();
        for c in state.frame(n as f64 / 10.0, &people, &fixtures::VTEST_LINES, &cfg) {
            if verbose {
                println!(
                    "frame {n}: line {} {:?} track {}",
                    c.line_id, c.sense, c.track
                );
            }
            counted[(c.line_id - 1) as usize][usize::from(c.sense == Sense::Exit)] += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let decode = decode_alone(&dir);
    if let (Some(f), None) = (&cache, &saved) {
        std::fs::write(f, serde_json::to_vec(&all)?)?;
    }
    let truth = hand_count()?;
    report(threads, elapsed, decode, counted, truth);
    Ok(())
}
