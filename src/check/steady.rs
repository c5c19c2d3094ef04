//! B1, steadiness: the balancer does not carry load to and fro. Load moved for balance from
//! node A to node B never moves from B back to A within the pair cooldown, whichever shards;
//! and asim's thrash measure, for the scenarios that know each shard's load over a cycle.

use std::collections::VecDeque;

use super::{violation, Invariant, Violation};
use crate::core::cause::Cause;
use crate::core::model::ClusterCatalog;

/// A move for balance that started: `shard`'s leader from node `from` to node `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadMove {
    pub shard: u32,
    pub from: u32,
    pub to: u32,
}

/// The moves for balance that started between two durable states of one cluster: transfers
/// whose procedure gives load as the cause, new in `new`.
pub fn load_moves_started(old: &ClusterCatalog, new: &ClusterCatalog) -> Vec<LoadMove> {
    new.shards
        .iter()
        .filter_map(|s| {
            let t = s.transfer?;
            let before = old.shards.get(s.id as usize).and_then(|o| o.transfer);
            let fresh = before.is_none_or(|b| b.procedure != t.procedure);
            let load =
                new.procedures.get(&t.procedure).and_then(|p| p.cause()) == Some(Cause::Load);
            (fresh && load).then_some(LoadMove { shard: s.id, from: t.from, to: t.to })
        })
        .collect()
}

/// The moves for balance seen within the last cooldown, to judge each new one against.
#[derive(Clone, Debug)]
pub struct Steady {
    cooldown_ms: u64,
    recent: VecDeque<(u64, LoadMove)>,
}

impl Steady {
    /// A checker for a cluster whose pair cooldown is `cooldown_ms`.
    pub fn new(cooldown_ms: u64) -> Steady {
        Steady { cooldown_ms, recent: VecDeque::new() }
    }

    /// A move for balance started at `at_ms` (times never go back); a violation if load moved
    /// the other way between the same two nodes less than the cooldown before.
    pub fn observe(&mut self, at_ms: u64, m: LoadMove) -> Result<(), Violation> {
        while self.recent.front().is_some_and(|&(at, _)| at + self.cooldown_ms <= at_ms) {
            self.recent.pop_front();
        }
        if let Some((at, back)) = self.recent.iter().find(|(_, r)| r.from == m.to && r.to == m.from)
        {
            let detail = format!(
                "shard {} moved for balance from node {} to node {} at {at_ms} ms, {} ms after \
                 shard {} moved from node {} to node {} (pair cooldown {} ms)",
                m.shard,
                m.from,
                m.to,
                at_ms - at,
                back.shard,
                back.from,
                back.to,
                self.cooldown_ms
            );
            return violation(Invariant::Steady, detail);
        }
        self.recent.push_back((at_ms, m));
        Ok(())
    }
}

/// asim's thrash of one node's utilization series, in percent: its total variation less its
/// net change, over its range. 0 for a node that only fills or only empties; 200 for a move
/// and its undoing.
pub fn thrash_pct(series: &[f64]) -> f64 {
    let (Some(first), Some(last)) = (series.first(), series.last()) else { return 0.0 };
    let total: f64 = series.windows(2).map(|p| (p[1] - p[0]).abs()).sum();
    let max = series.iter().copied().fold(f64::MIN, f64::max);
    let min = series.iter().copied().fold(f64::MAX, f64::min);
    if max > min {
        100.0 * (total - (last - first).abs()) / (max - min)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_going_back_within_the_cooldown_is_caught_and_after_it_is_not() {
        let (ab, ba) =
            (LoadMove { shard: 1, from: 0, to: 1 }, LoadMove { shard: 2, from: 1, to: 0 });
        let mut steady = Steady::new(600_000);
        steady.observe(1_000, ab).unwrap();
        steady.observe(2_000, LoadMove { shard: 3, from: 0, to: 2 }).unwrap();
        let err = steady.observe(500_000, ba).unwrap_err();
        assert_eq!(err.invariant, Invariant::Steady);
        assert!(err.detail.contains("499000 ms after shard 1"), "{err}");
        let mut steady = Steady::new(600_000);
        steady.observe(1_000, ab).unwrap();
        steady.observe(601_000, ba).unwrap();
    }

    #[test]
    fn thrash_is_zero_for_one_way_series_and_two_hundred_for_a_move_undone() {
        assert_eq!(thrash_pct(&[3.0, 2.0, 2.0, 1.0]), 0.0);
        assert_eq!(thrash_pct(&[1.0, 2.0, 1.0]), 200.0);
        assert_eq!(thrash_pct(&[5.0]), 0.0);
        assert_eq!(thrash_pct(&[]), 0.0);
    }
}
