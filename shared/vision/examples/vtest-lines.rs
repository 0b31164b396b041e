//! Line crossings in Debian's vtest.avi (decoded by ./scripts/fixtures), at 10 frames/s:
//! `cargo run --release -p civic-vision --example vtest-lines -- [first last]`

use std::time::Instant;

use civic_vision::line::{Line, Sense};
use civic_vision::video::{CameraState, VideoConfig};
use civic_vision::{Counter, Detector, fixtures, runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (first, last) = (
        args.first().copied().unwrap_or(1),
        args.get(1).copied().unwrap_or(795),
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counter = Counter::load(&runtime::Paths::from_env()?, threads)?;
    counter.primary.threshold = 0.3;
    let lines = [
        Line {
            id: 1,
            a: (250.0, 150.0),
            b: (250.0, 330.0),
        },
        Line {
            id: 2,
            a: (550.0, 130.0),
            b: (550.0, 330.0),
        },
    ];
    let cfg = VideoConfig::default();
    let mut state = CameraState::default();
    let dir = fixtures::dir().join("vtest");
    let started = Instant::now();
    let mut totals = [[0; 2]; 2];
    for n in first..=last {
        let img = fixtures::open(&dir.join(format!("{n:04}.jpg")));
        let dets = counter.primary.detect(&img)?;
        for c in state.frame(n as f64 / 10.0, &dets, &lines, &cfg) {
            println!(
                "frame {n}: line {} {:?} track {} ({:.2})",
                c.line_id, c.sense, c.track, c.confidence
            );
            totals[(c.line_id - 1) as usize][usize::from(c.sense == Sense::Exit)] += 1;
        }
    }
    let frames = last + 1 - first;
    println!(
        "{frames} frames in {:.1?} ({:.1} frames/s); line 1 entries {} exits {}; line 2 entries {} exits {}",
        started.elapsed(),
        frames as f64 / started.elapsed().as_secs_f64(),
        totals[0][0],
        totals[0][1],
        totals[1][0],
        totals[1][1]
    );
    Ok(())
}
