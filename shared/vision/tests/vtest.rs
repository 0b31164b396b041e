//! Line crossings on a real pedestrian video, Debian opencv-doc's vtest.avi (795 frames,
//! 10 frames/s), against a hand count of two lines (`vtest-crossings.csv`: frame, line and
//! direction of every crossing, counted by eye on the frames).

use civic_vision::line::Sense;
use civic_vision::video::{CameraState, VideoConfig};
use civic_vision::{Counter, fixtures};

#[test]
fn entries_and_exits_of_two_lines_are_within_ten_percent_of_the_hand_count() {
    let counter = Counter::global().unwrap();
    let cfg = VideoConfig::default();
    let dir = fixtures::dir().join("vtest");
    let mut state = CameraState::default();
    let mut counted = [[0usize; 2]; 2];
    for n in 1..=795 {
        let img = fixtures::open(&dir.join(format!("{n:04}.jpg")));
        let people = counter.primary.detect_min(&img, cfg.tracker.low).unwrap();
        for c in state.frame(n as f64 / 10.0, &people, &fixtures::VTEST_LINES, &cfg) {
            counted[(c.line_id - 1) as usize][usize::from(c.sense == Sense::Exit)] += 1;
        }
    }
    let labels = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vtest-crossings.csv");
    let mut truth = [[0usize; 2]; 2];
    for row in csv::Reader::from_path(labels).unwrap().records() {
        let row = row.unwrap();
        let line: usize = row[1].parse().unwrap();
        truth[line - 1][usize::from(&row[2] == "right")] += 1;
    }
    assert_eq!(truth, [[9, 6], [17, 13]], "the hand count");
    println!("counted {counted:?}, by hand {truth:?}");
    for (c, t) in counted.iter().flatten().zip(truth.iter().flatten()) {
        assert!(
            c.abs_diff(*t) * 10 <= *t,
            "counted {counted:?}, by hand {truth:?}"
        );
    }
}
