//! A ByteTrack-style tracker: confident detections are matched to predicted tracks by IoU
//! first, then the weak ones keep existing tracks alive (a person half hidden behind a post
//! scores low but is the same person), and only tracks seen on several frames are confirmed.
//! The state is plain data so that it can be stored between frame batches.

use serde::{Deserialize, Serialize};

use crate::geometry::{BBox, Detection};

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct TrackerConfig {
    /// Detections at or above this start tracks and match first.
    pub high: f32,
    /// Detections between this and `high` only extend existing tracks.
    pub low: f32,
    /// Minimum IoU between a prediction and a detection to match.
    pub iou: f32,
    /// Frames a track must be matched on before it is confirmed (counted).
    pub min_hits: u32,
    /// Seconds a track survives without a match.
    pub max_age: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            high: 0.5,
            low: 0.3,
            iou: 0.2,
            min_hits: 3,
            max_age: 1.5,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Track {
    pub id: u64,
    #[serde(with = "bbox_array")]
    pub bbox: BBox,
    /// Pixels per second of the box's corners (x1, y1, x2, y2), smoothed.
    pub velocity: [f32; 4],
    pub hits: u32,
    pub confirmed: bool,
    /// The best score of its detections: how surely this is a person.
    pub score: f32,
    /// Time (seconds) of the last match.
    pub seen: f64,
}

impl Track {
    fn predict(&self, t: f64) -> BBox {
        let dt = (t - self.seen) as f32;
        let v = self.velocity;
        BBox {
            x1: self.bbox.x1 + v[0] * dt,
            y1: self.bbox.y1 + v[1] * dt,
            x2: self.bbox.x2 + v[2] * dt,
            y2: self.bbox.y2 + v[3] * dt,
        }
    }

    fn update(&mut self, d: &Detection, t: f64, min_hits: u32) {
        let b = d.bbox;
        self.score = self.score.max(d.score);
        let dt = (t - self.seen) as f32;
        if dt > 0.0 {
            let new = [
                (b.x1 - self.bbox.x1) / dt,
                (b.y1 - self.bbox.y1) / dt,
                (b.x2 - self.bbox.x2) / dt,
                (b.y2 - self.bbox.y2) / dt,
            ];
            // Detections jitter: trust the new velocity by half.
            for (v, n) in self.velocity.iter_mut().zip(new) {
                *v = if self.hits == 1 {
                    n
                } else {
                    0.5 * *v + 0.5 * n
                };
            }
        }
        self.bbox = b;
        self.seen = t;
        self.hits += 1;
        self.confirmed |= self.hits >= min_hits;
    }
}

/// All of a camera's tracks, and the next id to give.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Tracker {
    pub tracks: Vec<Track>,
    pub next_id: u64,
    /// The time of the last frame seen; older frames are ignored.
    pub last: Option<f64>,
}

impl Tracker {
    /// Advances to the frame at `t` seconds with its detections; returns the tracks matched on
    /// this frame (confirmed or not).
    pub fn step(&mut self, t: f64, dets: &[Detection], cfg: &TrackerConfig) -> Vec<Track> {
        if self.last.is_some_and(|last| t <= last) {
            return Vec::new();
        }
        self.last = Some(t);
        let predicted: Vec<BBox> = self.tracks.iter().map(|tr| tr.predict(t)).collect();
        let mut free_tracks: Vec<usize> = (0..self.tracks.len()).collect();
        let mut matched = Vec::new();

        let (high, low): (Vec<&Detection>, Vec<&Detection>) = dets
            .iter()
            .filter(|d| d.score >= cfg.low)
            .partition(|d| d.score >= cfg.high);
        let unmatched_high = associate(&high, &predicted, &mut free_tracks, cfg.iou, &mut matched);
        associate(&low, &predicted, &mut free_tracks, cfg.iou, &mut matched);

        for &(ti, d) in &matched {
            self.tracks[ti].update(d, t, cfg.min_hits);
        }
        let mut out: Vec<Track> = matched
            .iter()
            .map(|&(ti, _)| self.tracks[ti].clone())
            .collect();
        self.tracks.retain(|tr| t - tr.seen <= cfg.max_age);
        for d in unmatched_high {
            let tr = Track {
                id: self.next_id,
                bbox: d.bbox,
                velocity: [0.0; 4],
                hits: 1,
                confirmed: cfg.min_hits <= 1,
                score: d.score,
                seen: t,
            };
            self.next_id += 1;
            out.push(tr.clone());
            self.tracks.push(tr);
        }
        out
    }
}

/// Greedy matching, best IoU first; matched pairs are appended as (track index, detection)
/// and the detections left over are returned.
fn associate<'d>(
    dets: &[&'d Detection],
    predicted: &[BBox],
    free: &mut Vec<usize>,
    min_iou: f32,
    matched: &mut Vec<(usize, &'d Detection)>,
) -> Vec<&'d Detection> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (di, d) in dets.iter().enumerate() {
        for &ti in free.iter() {
            let iou = predicted[ti].iou(&d.bbox);
            if iou >= min_iou {
                pairs.push((iou, di, ti));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut used = vec![false; dets.len()];
    for (_, di, ti) in pairs {
        if !used[di] && free.contains(&ti) {
            used[di] = true;
            free.retain(|&f| f != ti);
            matched.push((ti, dets[di]));
        }
    }
    dets.iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|(d, _)| *d)
        .collect()
}

/// Boxes stored as `[x1, y1, x2, y2]`.
mod bbox_array {
    use super::BBox;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(b: &BBox, s: S) -> Result<S::Ok, S::Error> {
        [b.x1, b.y1, b.x2, b.y2].serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BBox, D::Error> {
        let [x1, y1, x2, y2] = <[f32; 4]>::deserialize(d)?;
        Ok(BBox { x1, y1, x2, y2 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox {
                x1: x,
                y1: y,
                x2: x + 20.0,
                y2: y + 60.0,
            },
            score,
        }
    }

    #[test]
    fn a_walking_person_keeps_one_id_and_is_confirmed_after_min_hits() {
        let cfg = TrackerConfig::default();
        let mut tracker = Tracker::default();
        let mut ids = Vec::new();
        for f in 0..10 {
            let out = tracker.step(
                f as f64 * 0.1,
                &[det(100.0 + 8.0 * f as f32, 50.0, 0.8)],
                &cfg,
            );
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].confirmed, f >= 2, "frame {f}");
            ids.push(out[0].id);
        }
        assert!(ids.iter().all(|&i| i == ids[0]));
    }

    #[test]
    fn weak_detections_extend_tracks_but_never_start_them() {
        let cfg = TrackerConfig::default();
        let mut tracker = Tracker::default();
        assert!(tracker.step(0.0, &[det(0.0, 0.0, 0.4)], &cfg).is_empty());
        tracker.step(0.1, &[det(0.0, 0.0, 0.9)], &cfg);
        let out = tracker.step(0.2, &[det(2.0, 0.0, 0.35)], &cfg);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].hits, 2);
    }

    #[test]
    fn a_track_survives_a_short_gap_by_prediction_and_dies_after_max_age() {
        let cfg = TrackerConfig::default();
        let mut tracker = Tracker::default();
        for f in 0..4 {
            tracker.step(f as f64 * 0.1, &[det(10.0 * f as f32, 0.0, 0.9)], &cfg);
        }
        // Hidden for half a second while walking on: the prediction still overlaps.
        let out = tracker.step(0.8, &[det(80.0, 0.0, 0.9)], &cfg);
        assert_eq!(out[0].id, 0, "same person after the gap");
        tracker.step(3.0, &[], &cfg);
        assert!(tracker.tracks.is_empty());
        assert_eq!(tracker.step(3.1, &[det(80.0, 0.0, 0.9)], &cfg)[0].id, 1);
    }

    #[test]
    fn two_people_passing_keep_their_ids_and_old_frames_are_ignored() {
        let cfg = TrackerConfig::default();
        let mut tracker = Tracker::default();
        let mut last = Vec::new();
        for f in 0..6 {
            let x = 6.0 * f as f32;
            last = tracker.step(
                f as f64 * 0.1,
                &[det(x, 0.0, 0.9), det(200.0 - x, 0.0, 0.8)],
                &cfg,
            );
        }
        let mut by_x: Vec<_> = last.iter().map(|t| (t.bbox.x1 as i32, t.id)).collect();
        by_x.sort();
        assert_eq!(by_x, vec![(30, 0), (170, 1)]);
        let state = serde_json::to_string(&tracker).unwrap();
        let mut restored: Tracker = serde_json::from_str(&state).unwrap();
        assert_eq!(restored, tracker);
        assert!(
            restored.step(0.2, &[det(0.0, 0.0, 0.9)], &cfg).is_empty(),
            "an old frame"
        );
    }
}
