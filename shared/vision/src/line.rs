//! Virtual-line crossings with hysteresis. Each (track, line) pair remembers the side of the
//! line its anchor (bottom centre: the feet) was last *clearly* on; a crossing is a change of
//! that side. A person loitering on the line moves within the dead band and changes nothing,
//! so tracker jitter never counts as crossings back and forth.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A segment from `a` to `b` in image pixels. Going from its left to its right (seen along
/// `a → b`, with image y pointing down) is an entry; the reverse is an exit. For a line drawn
/// left to right, entering means moving down the image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub id: i64,
    pub a: (f32, f32),
    pub b: (f32, f32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sense {
    Entry,
    Exit,
}

impl Line {
    /// Signed distance of `p` from the line (positive on the entry side), and where along the
    /// segment it falls (0 at `a`, 1 at `b`).
    fn locate(&self, p: (f32, f32)) -> (f32, f32) {
        let (dx, dy) = (self.b.0 - self.a.0, self.b.1 - self.a.1);
        let len2 = dx * dx + dy * dy;
        if len2 == 0.0 {
            return (0.0, f32::NAN);
        }
        let (px, py) = (p.0 - self.a.0, p.1 - self.a.1);
        (
            (dx * py - dy * px) / len2.sqrt(),
            (px * dx + py * dy) / len2,
        )
    }
}

/// How far (pixels) past the line the anchor must be to be on a side, and how far beyond the
/// segment's ends (fraction of its length) a crossing still counts.
#[derive(Clone, Copy, Debug)]
pub struct Hysteresis {
    pub band: f32,
    pub overhang: f32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self {
            // Pixels either side of the line. On vtest.avi (768×576, people 60–150 px tall)
            // 6 px let tracker jitter count a loiterer twice; 10 and 15 count as by hand.
            band: 10.0,
            overhang: 0.1,
        }
    }
}

/// The remembered sides, keyed `"{track}/{line}"` so that the state serialises as a map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sides(pub BTreeMap<String, i8>);

impl Sides {
    /// Moves `track`'s anchor to `p`; returns the lines it crossed, and which way.
    pub fn observe(
        &mut self,
        track: u64,
        p: (f32, f32),
        lines: &[Line],
        h: &Hysteresis,
    ) -> Vec<(i64, Sense)> {
        let mut crossed = Vec::new();
        for line in lines {
            let (d, t) = line.locate(p);
            let side = if d > h.band {
                1
            } else if d < -h.band {
                -1
            } else {
                continue; // inside the band: nothing changes
            };
            let key = format!("{track}/{}", line.id);
            let previous = self.0.insert(key, side);
            let within = (-h.overhang..=1.0 + h.overhang).contains(&t);
            match previous {
                Some(-1) if side == 1 && within => crossed.push((line.id, Sense::Entry)),
                Some(1) if side == -1 && within => crossed.push((line.id, Sense::Exit)),
                _ => {}
            }
        }
        crossed
    }

    /// Forgets tracks that no longer exist.
    pub fn retain_tracks(&mut self, alive: impl Fn(u64) -> bool) {
        self.0.retain(|k, _| {
            k.split('/')
                .next()
                .and_then(|t| t.parse().ok())
                .is_some_and(&alive)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A horizontal line at y = 100 from x = 0 to x = 200.
    const LINE: Line = Line {
        id: 7,
        a: (0.0, 100.0),
        b: (200.0, 100.0),
    };

    fn walk(ys: &[f32], x: f32) -> Vec<(i64, Sense)> {
        let mut sides = Sides::default();
        ys.iter()
            .flat_map(|&y| sides.observe(1, (x, y), &[LINE], &Hysteresis::default()))
            .collect()
    }

    #[test]
    fn walking_down_across_is_an_entry_and_up_is_an_exit() {
        assert_eq!(
            walk(&[80.0, 95.0, 105.0, 120.0], 50.0),
            vec![(7, Sense::Entry)]
        );
        assert_eq!(walk(&[120.0, 100.0, 80.0], 50.0), vec![(7, Sense::Exit)]);
    }

    #[test]
    fn flicker_on_the_line_counts_nothing_and_a_real_return_counts_once() {
        // Jitter of ±6 px around the line after arriving from above: no crossing.
        assert!(walk(&[80.0, 97.0, 104.0, 96.0, 105.0, 99.0], 50.0).is_empty());
        // Across, a wobble back into the band, then on: one entry.
        assert_eq!(
            walk(&[80.0, 110.0, 98.0, 112.0, 130.0], 50.0),
            vec![(7, Sense::Entry)]
        );
        // Across and truly back: an entry then an exit.
        assert_eq!(
            walk(&[80.0, 120.0, 125.0, 85.0], 50.0),
            vec![(7, Sense::Entry), (7, Sense::Exit)]
        );
    }

    #[test]
    fn first_sightings_and_passing_beyond_the_ends_do_not_count() {
        // A track first seen below the line has crossed nothing.
        assert!(walk(&[120.0, 130.0], 50.0).is_empty());
        // Crossing the line's extension, far right of the segment.
        assert!(walk(&[80.0, 120.0], 400.0).is_empty());
    }

    #[test]
    fn state_is_per_track_and_line_and_can_be_pruned() {
        let mut sides = Sides::default();
        let h = Hysteresis::default();
        let lines = [
            LINE,
            Line {
                id: 8,
                a: (100.0, 0.0),
                b: (100.0, 200.0),
            },
        ];
        sides.observe(1, (50.0, 80.0), &lines, &h);
        sides.observe(2, (150.0, 120.0), &lines, &h);
        // Track 1 walks down and right: enters line 7; crosses line 8 (drawn downwards) from
        // its right side to its left, an exit.
        let crossed = sides.observe(1, (150.0, 120.0), &lines, &h);
        assert_eq!(crossed, vec![(7, Sense::Entry), (8, Sense::Exit)]);
        assert_eq!(sides.0.len(), 4);
        sides.retain_tracks(|t| t == 2);
        assert_eq!(sides.0.keys().collect::<Vec<_>>(), vec!["2/7", "2/8"]);
    }
}
