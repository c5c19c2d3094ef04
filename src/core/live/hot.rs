//! Which shards have been hot or cold, and for how long: the windows in a row each shard's
//! trusted load closed above the split line, and since when it has stayed below the merge
//! line. The lines themselves are set by the scheduling pass each tick, so that the heartbeat
//! path only compares and counts.

use crate::core::ids::ShardId;
use crate::core::time::Instant;

/// Per shard, how many load windows in a row it has been above the split line.
#[derive(Clone, Debug, Default)]
pub struct Hot {
    /// Windows in a row above the line, per shard.
    streaks: Vec<u16>,
    /// Whether the shard was already reported unsplittable during its current streak.
    told: Vec<bool>,
    /// Since when each shard's every trusted window closed below the merge line.
    cold_since: Vec<Option<Instant>>,
    /// Load units per second above which a shard's window counts as hot (`None`: no line).
    line: Option<f64>,
    /// Below which it counts as cold.
    merge_line: Option<f64>,
}

impl Hot {
    pub(super) fn new(shards: usize) -> Hot {
        Hot {
            streaks: vec![0; shards],
            told: vec![false; shards],
            cold_since: vec![None; shards],
            line: None,
            merge_line: None,
        }
    }

    pub(super) fn grow(&mut self, shards: usize) {
        self.streaks.resize(shards, 0);
        self.told.resize(shards, false);
        self.cold_since.resize(shards, None);
    }

    pub(super) fn set_lines(&mut self, split: Option<f64>, merge: Option<f64>) {
        (self.line, self.merge_line) = (split, merge);
    }

    /// A window of the shard closed at `now`; `units` is its trusted load, if trusted.
    pub(super) fn window_closed(&mut self, shard: ShardId, units: Option<f64>, now: Instant) {
        let i = shard.index();
        let cold = matches!((units, self.merge_line), (Some(u), Some(line)) if u < line);
        self.cold_since[i] = if cold { self.cold_since[i].or(Some(now)) } else { None };
        let hot = matches!((units, self.line), (Some(u), Some(line)) if u > line);
        self.streaks[i] = if hot { self.streaks[i].saturating_add(1) } else { 0 };
        if !hot {
            self.told[i] = false;
        }
    }

    /// The shard's load is learnt afresh (a split moved part of it away): no streak.
    pub(super) fn reset(&mut self, shard: ShardId) {
        self.streaks[shard.index()] = 0;
        self.told[shard.index()] = false;
        self.cold_since[shard.index()] = None;
    }

    /// Since when the shard has been below the merge line, window after window.
    pub fn cold_since(&self, shard: ShardId) -> Option<Instant> {
        self.cold_since[shard.index()]
    }

    /// Windows in a row the shard has been above the line.
    pub fn streak(&self, shard: ShardId) -> u32 {
        u32::from(self.streaks[shard.index()])
    }

    /// Marks the shard as reported unsplittable; `true` the first time in its streak.
    pub(super) fn tell_unsplittable(&mut self, shard: ShardId) -> bool {
        !std::mem::replace(&mut self.told[shard.index()], true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_counts_hot_windows_in_a_row_and_a_cool_or_untrusted_one_ends_it() {
        let mut hot = Hot::new(1);
        let s = ShardId(0);
        let at = Instant(0);
        hot.window_closed(s, Some(500.0), at);
        assert_eq!(hot.streak(s), 0, "no line: nothing is hot");
        hot.set_lines(Some(100.0), Some(25.0));
        hot.window_closed(s, Some(500.0), at);
        hot.window_closed(s, Some(500.0), at);
        assert_eq!(hot.streak(s), 2);
        assert!(hot.tell_unsplittable(s) && !hot.tell_unsplittable(s), "told once per streak");
        hot.window_closed(s, None, at);
        assert_eq!(hot.streak(s), 0, "an untrusted load ends the streak");
        assert!(hot.tell_unsplittable(s), "a new streak is told again");
        hot.window_closed(s, Some(500.0), at);
        hot.window_closed(s, Some(50.0), at);
        assert_eq!(hot.streak(s), 0);
    }

    #[test]
    fn a_shard_is_cold_from_its_first_window_below_the_merge_line_until_one_is_not() {
        let mut hot = Hot::new(1);
        let s = ShardId(0);
        hot.set_lines(Some(100.0), Some(25.0));
        hot.window_closed(s, Some(10.0), Instant(1_000));
        hot.window_closed(s, Some(20.0), Instant(2_000));
        assert_eq!(hot.cold_since(s), Some(Instant(1_000)));
        hot.window_closed(s, Some(30.0), Instant(3_000));
        assert_eq!(hot.cold_since(s), None, "one warm window ends it");
        hot.window_closed(s, None, Instant(4_000));
        assert_eq!(hot.cold_since(s), None, "an untrusted load is not cold");
    }
}
