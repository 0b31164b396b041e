//! The model's running figures: per kind, per partition key per simulated second, and which
//! items are inside an in-flight transaction.

use std::collections::{BTreeMap, HashMap};

use super::{HotKey, KindStats};
use crate::Key;

/// Writes and write units on one partition key.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Load {
    pub(super) writes: u64,
    pub(super) wcu: u64,
}

impl Load {
    pub(super) fn add(&mut self, other: Load) {
        self.writes += other.writes;
        self.wcu += other.wcu;
    }

    fn max(&mut self, other: Load) {
        self.writes = self.writes.max(other.writes);
        self.wcu = self.wcu.max(other.wcu);
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) kinds: BTreeMap<&'static str, KindStats>,
    /// First and last simulated second seen.
    pub(super) span: Option<(i64, i64)>,
    /// The simulated second `this_second` counts.
    pub(super) second: i64,
    pub(super) this_second: HashMap<String, Load>,
    /// Per key, its worst second so far; only the hottest keys are kept (see [`State::fold`]).
    pub(super) peaks: HashMap<String, Load>,
    /// The highest peak writes of a key dropped from `peaks`: a key re-enters only above it.
    pub(super) floor: u64,
    /// Per item, when the last transaction that touched it ends.
    pub(super) busy_until: HashMap<Key, f64>,
}

impl State {
    /// Moves to the second of `at`, folding the finished second into the peaks.
    pub(super) fn advance(&mut self, at: f64, tracked: usize) {
        let second = at.floor() as i64;
        self.span = Some(
            self.span
                .map_or((second, second), |(a, b)| (a.min(second), b.max(second))),
        );
        if second > self.second {
            self.fold(tracked);
            self.second = second;
            // Transactions already over can conflict with nothing: forget them.
            self.busy_until.retain(|_, end| *end > at);
        }
    }

    /// Folds the current second into the peaks, then, past `2 * tracked` keys, keeps only the
    /// `tracked` hottest. A key dropped had a peak no higher than any kept key's, and re-enters
    /// only with a second hotter than every dropped key, so the kept peaks stay exact.
    pub(super) fn fold(&mut self, tracked: usize) {
        for (key, load) in self.this_second.drain() {
            match self.peaks.get_mut(&key) {
                Some(peak) => peak.max(load),
                None if load.writes > self.floor => {
                    self.peaks.insert(key, load);
                }
                None => {}
            }
        }
        if self.peaks.len() > 2 * tracked.max(1) {
            let mut all: Vec<_> = self.peaks.drain().collect();
            all.sort_unstable_by_key(|(_, load)| std::cmp::Reverse(load.writes));
            let dropped = all.split_off(tracked.max(1));
            self.floor = self.floor.max(dropped.first().map_or(0, |d| d.1.writes));
            self.peaks = all.into_iter().collect();
        }
    }

    /// Marks `keys` busy during `[at, at + latency)`; whether one of them was busy already.
    pub(super) fn overlaps(&mut self, keys: &[Key], at: f64, latency: f64) -> bool {
        let mut clash = false;
        for key in keys {
            let end = self.busy_until.entry(key.clone()).or_insert(f64::MIN);
            // A microsecond of slack: a request's next transaction starts exactly where its
            // previous one ended, up to float rounding.
            clash |= *end > at + 1e-6;
            *end = end.max(at + latency);
        }
        clash
    }

    /// The `top` hottest keys, counting the current second too.
    pub(super) fn hot(&self, top: usize) -> Vec<HotKey> {
        let mut merged: HashMap<&str, Load> =
            self.peaks.iter().map(|(k, l)| (k.as_str(), *l)).collect();
        for (key, load) in &self.this_second {
            merged.entry(key).or_default().max(*load);
        }
        let mut hot: Vec<HotKey> = merged
            .into_iter()
            .filter(|(_, l)| l.writes > 0 || l.wcu > 0)
            .map(|(key, l)| HotKey {
                key: key.to_owned(),
                peak_writes: l.writes,
                peak_wcu: l.wcu,
            })
            .collect();
        hot.sort_by(|a, b| {
            (b.peak_writes, b.peak_wcu)
                .cmp(&(a.peak_writes, a.peak_wcu))
                .then_with(|| a.key.cmp(&b.key))
        });
        hot.truncate(top);
        hot
    }
}
