//! Which shards have been hot, and for how long: the windows in a row each shard's trusted
//! load closed above the split line. The line itself (a share of a node's fair load) is set by
//! the scheduling pass each tick, so that the heartbeat path only compares and counts.

use crate::core::ids::ShardId;

#[derive(Clone, Debug, Default)]
pub struct Hot {
    /// Windows in a row above the line, per shard.
    streaks: Vec<u16>,
    /// Whether the shard was already reported unsplittable during its current streak.
    told: Vec<bool>,
    /// Load units per second above which a shard's window counts as hot (`None`: no line).
    line: Option<f64>,
}

impl Hot {
    pub(super) fn new(shards: usize) -> Hot {
        Hot { streaks: vec![0; shards], told: vec![false; shards], line: None }
    }

    pub(super) fn grow(&mut self, shards: usize) {
        self.streaks.resize(shards, 0);
        self.told.resize(shards, false);
    }

    pub(super) fn set_line(&mut self, line: Option<f64>) {
        self.line = line;
    }

    /// A window of the shard closed; `units` is its trusted load, if trusted.
    pub(super) fn window_closed(&mut self, shard: ShardId, units: Option<f64>) {
        let i = shard.index();
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
        hot.window_closed(s, Some(500.0));
        assert_eq!(hot.streak(s), 0, "no line: nothing is hot");
        hot.set_line(Some(100.0));
        hot.window_closed(s, Some(500.0));
        hot.window_closed(s, Some(500.0));
        assert_eq!(hot.streak(s), 2);
        assert!(hot.tell_unsplittable(s) && !hot.tell_unsplittable(s), "told once per streak");
        hot.window_closed(s, None);
        assert_eq!(hot.streak(s), 0, "an untrusted load ends the streak");
        assert!(hot.tell_unsplittable(s), "a new streak is told again");
        hot.window_closed(s, Some(500.0));
        hot.window_closed(s, Some(50.0));
        assert_eq!(hot.streak(s), 0);
    }
}
