//! Counting line crossings in a stream of frames: detect people, track them, and watch each
//! track's feet against every line. The state carries over from one batch of frames to the next.

use serde::{Deserialize, Serialize};

use crate::geometry::Detection;
use crate::line::{Hysteresis, Line, Sense, Sides};
use crate::track::{Tracker, TrackerConfig};

/// One camera's tracks and where they stand relative to its lines.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraState {
    pub tracker: Tracker,
    pub sides: Sides,
}

/// A counted crossing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Crossed {
    pub line_id: i64,
    pub sense: Sense,
    /// Seconds, on the batch's clock.
    pub t: f64,
    pub track: u64,
    /// The detector's score for the person on that frame.
    pub confidence: f32,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct VideoConfig {
    pub tracker: TrackerConfig,
    pub hysteresis: Hysteresis,
}

impl CameraState {
    /// Advances by one frame at `t` seconds. Frames at or before the last one seen are skipped,
    /// so a batch delivered twice changes nothing.
    pub fn frame(
        &mut self,
        t: f64,
        dets: &[Detection],
        lines: &[Line],
        cfg: &VideoConfig,
    ) -> Vec<Crossed> {
        let mut crossed = Vec::new();
        for track in self.tracker.step(t, dets, &cfg.tracker) {
            let feet = track.bbox.bottom_centre();
            for (line_id, sense) in self.sides.observe(track.id, feet, lines, &cfg.hysteresis) {
                // A track seen on fewer than `min_hits` frames may be noise: its side is
                // remembered, but only a confirmed person's crossing counts.
                if track.confirmed {
                    crossed.push(Crossed {
                        line_id,
                        sense,
                        t,
                        track: track.id,
                        confidence: track.score,
                    });
                }
            }
        }
        let tracker = &self.tracker;
        self.sides
            .retain_tracks(|id| tracker.tracks.iter().any(|tr| tr.id == id));
        crossed
    }
}
