//! Per-node move budgets: how many moves the scheduler may start into and out of each node, as
//! token buckets. Limits per pass and in flight bound the work outstanding; they do not bound
//! the pace a node sees. Without an inbound bound a node back from a restart is handed every
//! leader it lost at once (TiKV PD flooded a restarted store so, tikv/pd#11197, and added an
//! inbound bucket). Moves for balance, drains and slow nodes spend tokens; failover and follower
//! repair never wait for one: availability is not rationed.
//!
//! Each node has two buckets, in and out, refilled at `moves_in_per_node_per_min` and
//! `moves_out_per_node_per_min` and holding at most a sixth of that (10 s worth, at least one
//! move): a burst, then a steady pace. A bucket nobody spent from is full. The counts of moves
//! started also give drains and fills their progress (see [`super::progress`]).

use crate::core::ids::NodeId;
use crate::core::settings::SchedulerSettings;
use crate::core::time::Instant;

/// Thousandths of a move: a bucket refills by whole milliseconds without losing fractions.
const MILLI: u64 = 1_000;

/// One token bucket. `at` is when `milli` was last worked out; `None`: never spent, full.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    milli: u64,
    at: Option<Instant>,
}

impl Bucket {
    /// Tokens it holds at `now`, in thousandths, for a refill of `per_min` moves a minute.
    fn level(&self, now: Instant, per_min: u32) -> u64 {
        let cap = burst(per_min) * MILLI;
        let Some(at) = self.at else { return cap };
        let gained = now.saturating_since(at).as_millis().saturating_mul(per_min as u64) / 60;
        self.milli.saturating_add(gained).min(cap)
    }

    fn spend(&mut self, now: Instant, per_min: u32) {
        self.milli = self.level(now, per_min).saturating_sub(MILLI);
        self.at = Some(now);
    }
}

/// The most moves a bucket refilled at `per_min` holds: 10 s worth, at least one.
pub fn burst(per_min: u32) -> u64 {
    (per_min as u64 / 6).max(1)
}

/// Both buckets of every node, with the moves each has started, in and out.
#[derive(Clone, Debug, Default)]
pub struct Budgets {
    nodes: Vec<NodeBudget>,
}

#[derive(Clone, Copy, Debug, Default)]
struct NodeBudget {
    buckets: [Bucket; 2],
    started: [u64; 2],
}

impl Budgets {
    fn node(&self, node: NodeId) -> NodeBudget {
        self.nodes.get(node.index()).copied().unwrap_or_default()
    }

    /// Whether a move from `from` to `to` may start at `now`: both buckets hold a move.
    pub fn allows(
        &self,
        from: NodeId,
        to: NodeId,
        now: Instant,
        settings: &SchedulerSettings,
    ) -> bool {
        self.may_leave(from, now, settings) && self.may_enter(to, now, settings)
    }

    /// Whether `node`'s outbound bucket holds a move at `now`.
    pub fn may_leave(&self, node: NodeId, now: Instant, settings: &SchedulerSettings) -> bool {
        self.node(node).buckets[1].level(now, settings.moves_out_per_node_per_min) >= MILLI
    }

    /// Whether `node`'s inbound bucket holds a move at `now`.
    pub fn may_enter(&self, node: NodeId, now: Instant, settings: &SchedulerSettings) -> bool {
        self.node(node).buckets[0].level(now, settings.moves_in_per_node_per_min) >= MILLI
    }

    /// A move from `from` to `to` started at `now`: one token from each bucket.
    pub(super) fn spend(
        &mut self,
        from: NodeId,
        to: NodeId,
        now: Instant,
        settings: &SchedulerSettings,
    ) {
        assert!(from != to, "a move from node {from} to itself");
        let last = from.index().max(to.index());
        if self.nodes.len() <= last {
            self.nodes.resize(last + 1, NodeBudget::default());
        }
        let rates = [settings.moves_in_per_node_per_min, settings.moves_out_per_node_per_min];
        for (side, node) in [(0, to), (1, from)] {
            let b = &mut self.nodes[node.index()];
            b.buckets[side].spend(now, rates[side]);
            b.started[side] += 1;
        }
    }

    /// Moves started into (`[0]`) and out of (`[1]`) `node` since this leader began.
    pub fn started(&self, node: NodeId) -> [u64; 2] {
        self.node(node).started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_takes_a_burst_then_a_steady_pace() {
        let settings = SchedulerSettings {
            moves_in_per_node_per_min: 60,
            moves_out_per_node_per_min: 600,
            ..Default::default()
        };
        let (a, b) = (NodeId(0), NodeId(1));
        let mut budgets = Budgets::default();
        let mut now = Instant(1_000);
        let mut burst_moves = 0;
        while budgets.allows(a, b, now, &settings) {
            budgets.spend(a, b, now, &settings);
            burst_moves += 1;
        }
        assert_eq!(burst_moves, 10, "60 a minute holds 10 s worth");
        assert!(budgets.may_leave(a, now, &settings), "the outbound bucket is far from empty");
        // Then one a second: 60 in the next minute, no more.
        let mut paced = 0;
        for _ in 0..600 {
            now = now + crate::core::time::Duration(100);
            if budgets.allows(a, b, now, &settings) {
                budgets.spend(a, b, now, &settings);
                paced += 1;
            }
        }
        assert_eq!(paced, 60);
        assert_eq!(budgets.started(b), [70, 0]);
        assert_eq!(budgets.started(a), [0, 70]);
    }
}
