//! The labelled photos and video frames the tests and the benchmark share (`./scripts/fixtures`
//! fetches them from Debian and PyPI into `target/fixtures`; `tests/labels.csv` has the counts).

use std::path::{Path, PathBuf};

use image::{RgbImage, imageops};

use crate::line::Line;

/// `CIVIC_FIXTURES`, else the repo's `target/fixtures`.
pub fn dir() -> PathBuf {
    let dir = std::env::var_os("CIVIC_FIXTURES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fixtures"),
        PathBuf::from,
    );
    assert!(
        dir.join(".complete").exists(),
        "{} is missing: run ./scripts/fixtures",
        dir.display()
    );
    dir
}

/// The two lines drawn on vtest.avi for the hand count (`tests/vtest-crossings.csv`), both
/// downwards: an entry is a walk to the left, the hand count's `left`.
pub const VTEST_LINES: [Line; 2] = [
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

/// vtest.avi's frames `range` (numbered from 1, 10 frames/s) as `(<capture millis>.jpg, bytes)`,
/// the first frame at `start_ms`: the frame-batch format cameras upload.
pub fn vtest_frames(
    range: std::ops::RangeInclusive<usize>,
    start_ms: i64,
) -> Vec<(String, Vec<u8>)> {
    let dir = dir().join("vtest");
    range
        .map(|n| {
            let data = std::fs::read(dir.join(format!("{n:04}.jpg"))).expect("a vtest frame");
            (format!("{}.jpg", start_ms + 100 * n as i64), data)
        })
        .collect()
}

/// Every hand-counted image: its path and how many people it shows.
pub fn labelled() -> Vec<(PathBuf, usize)> {
    let labels = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/labels.csv");
    let dir = dir().join("labelled");
    csv::Reader::from_path(&labels)
        .expect("tests/labels.csv")
        .records()
        .map(|r| {
            let r = r.expect("a labels.csv row");
            (dir.join(&r[0]), r[1].parse().expect("a count"))
        })
        .collect()
}

pub fn open(path: &Path) -> RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// Frames shrunk into a `cols`-wide grid of `cell` tiles: a crowd of small people.
pub fn mosaic(frames: &[RgbImage], cols: u32, cell: (u32, u32)) -> RgbImage {
    let rows = (frames.len() as u32).div_ceil(cols);
    let mut out = RgbImage::new(cols * cell.0, rows * cell.1);
    for (i, f) in frames.iter().enumerate() {
        let small = imageops::resize(f, cell.0, cell.1, imageops::FilterType::Triangle);
        let (x, y) = (i as u32 % cols * cell.0, i as u32 / cols * cell.1);
        imageops::replace(&mut out, &small, i64::from(x), i64::from(y));
    }
    out
}

/// The 1080p crowd: the twelve labelled vtest frames in a 4×3 grid of 480×360 cells, and how
/// many people it shows.
pub fn crowd() -> (RgbImage, usize) {
    let frames: Vec<(PathBuf, usize)> = labelled()
        .into_iter()
        .filter(|(p, _)| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vtest-"))
        })
        .collect();
    let images: Vec<RgbImage> = frames.iter().map(|(p, _)| open(p)).collect();
    (
        mosaic(&images, 4, (480, 360)),
        frames.iter().map(|(_, n)| n).sum(),
    )
}
