//! When each shard's leader and each node's set of leader shards last changed, so that the
//! balancer leaves them alone until fresh load windows have been seen, and which way load was
//! last moved between two nodes, so that it does not flow back (see
//! [`crate::core::scheduler`]'s rebalance).

use std::collections::VecDeque;

use crate::core::ids::{NodeId, ShardId};
use crate::core::time::{Duration, Instant};

/// When each shard's and each node's leadership last moved.
#[derive(Clone, Debug, Default)]
pub struct Recent {
    shard_moved: Vec<Option<Instant>>,
    node_moved: Vec<Option<Instant>>,
    /// Load moves, oldest first, none older than the pair cooldown of the newest, at most
    /// [`LOAD_FLOWS_KEPT`].
    load_flows: VecDeque<Flow>,
    /// Per node, since when it has stood over the overfull line, and under the pull line, in
    /// the long run, as the last pass saw it.
    standing: Vec<[Option<Instant>; 2]>,
    /// Per node, how far apart its two views of load (now and the long run, as ratios to their
    /// means) have lately stood, and when that was last seen: see [`Recent::wobble`].
    wobble: Vec<(f32, Instant)>,
    /// Per node, the shards it led as the last pass whose load was above the floor left them
    /// (`None`: never placeable at such a pass): what a lull keeps (see the scheduler's
    /// rebalance). `None` while no load has been.
    day_leads: Option<Vec<Option<u32>>>,
}

/// One move of load for balance.
#[derive(Clone, Copy, Debug)]
struct Flow {
    from: NodeId,
    to: NodeId,
    at: Instant,
    /// How many nodes were placeable when the move was planned.
    placeable: u32,
}

/// How fast a node's wobble fades (see [`Recent::wobble`]) with load windows of
/// `load_window_ms`: over the long run's span, eight windows.
pub fn wobble_half_life(load_window_ms: u64) -> Duration {
    Duration(load_window_ms.saturating_mul(8))
}

/// The most load moves remembered: a pass starts at most `moves_per_pass_max` of them, and a
/// flood of them within one cooldown means the oldest matter least.
pub const LOAD_FLOWS_KEPT: usize = 4_096;

impl Recent {
    pub(super) fn new(shards: usize) -> Recent {
        Recent {
            shard_moved: vec![None; shards],
            node_moved: Vec::new(),
            load_flows: VecDeque::new(),
            standing: Vec::new(),
            wobble: Vec::new(),
            day_leads: None,
        }
    }

    /// New shards (a split): never moved.
    pub(super) fn grow(&mut self, shards: usize) {
        self.shard_moved.resize(shards, None);
    }

    /// The shard's leader moved from `from` to `to` at `now`.
    pub(super) fn moved(&mut self, shard: ShardId, nodes: [Option<u32>; 2], now: Instant) {
        self.shard_moved[shard.index()] = Some(now);
        for n in nodes.into_iter().flatten() {
            let i = n as usize;
            if self.node_moved.len() <= i {
                self.node_moved.resize(i + 1, None);
            }
            self.node_moved[i] = Some(now);
        }
    }

    /// Load was moved from `from` to `to` at `now`, with `placeable` nodes placeable (for
    /// balance: a failover or a drain is no judgement of load, and does not stop load coming
    /// back). Moves older than `cooldown` are forgotten.
    pub(super) fn load_moved(
        &mut self,
        (from, to): (NodeId, NodeId),
        placeable: u32,
        now: Instant,
        cooldown: Duration,
    ) {
        assert!(from != to, "load moved from {from} to itself");
        while self.load_flows.front().is_some_and(|f| now >= f.at + cooldown) {
            self.load_flows.pop_front();
        }
        if self.load_flows.len() == LOAD_FLOWS_KEPT {
            self.load_flows.pop_front();
        }
        self.load_flows.push_back(Flow { from, to, at: now, placeable });
        assert!(self.load_flows.len() <= LOAD_FLOWS_KEPT);
    }

    /// The flows less than `cooldown` old, newest first.
    fn flows_within(&self, now: Instant, cooldown: Duration) -> impl Iterator<Item = &Flow> {
        self.load_flows.iter().rev().take_while(move |f| now < f.at + cooldown)
    }

    /// Whether load moved from `to` to `from` less than `cooldown` ago: then none goes from
    /// `from` to `to`, whichever shard.
    pub fn flowed_back(&self, from: NodeId, to: NodeId, now: Instant, cooldown: Duration) -> bool {
        self.flows_within(now, cooldown).any(|f| f.from == to && f.to == from)
    }

    /// How many nodes were placeable when the last move of load onto `node` less than
    /// `cooldown` ago was planned; `None` if none was.
    pub fn took_load(&self, node: NodeId, now: Instant, cooldown: Duration) -> Option<u32> {
        self.flows_within(now, cooldown).find(|f| f.to == node).map(|f| f.placeable)
    }

    /// How a pass saw `node` at `now`: over the overfull line, under the pull line (in the
    /// long run), and its two views of load `gap` apart (as ratios to their means; see
    /// [`Recent::wobble`]). A side it left is forgotten; a side it entered starts now.
    pub(super) fn stood(
        &mut self,
        node: NodeId,
        [over, under]: [bool; 2],
        (gap, half_life): (f64, Duration),
        now: Instant,
    ) {
        assert!(!(over && under), "node {node} over the overfull line and under the pull line");
        if self.standing.len() <= node.index() {
            self.standing.resize(node.index() + 1, [None; 2]);
            self.wobble.resize(node.index() + 1, (0.0, now));
        }
        let s = &mut self.standing[node.index()];
        for (since, on) in s.iter_mut().zip([over, under]) {
            *since = if on { Some(since.unwrap_or(now)) } else { None };
        }
        let lately = self.wobble(node, now, half_life).max(gap);
        self.wobble[node.index()] = (lately as f32, now);
    }

    /// How far apart `node`'s two views of load have stood lately, as ratios to their means:
    /// the widest gap seen, halving every `half_life` since (the long run's span: a cycle's
    /// swing is remembered from one peak to the next). The gap is the noise and the cycles in
    /// its load that the long run smooths away, and a move is not worth making for less (see
    /// the scheduler's rebalance). A move shifts both views alike and leaves the gap as it was.
    pub fn wobble(&self, node: NodeId, now: Instant, half_life: Duration) -> f64 {
        self.wobble.get(node.index()).map_or(0.0, |&(widest, at)| {
            let halvings = now.saturating_since(at).0 as f64 / half_life.0.max(1) as f64;
            f64::from(widest) * 0.5f64.powf(halvings)
        })
    }

    /// A pass judged no node's standing (load under the floor, or balancing paused): each
    /// standing starts again at the next pass that judges. A standing that spanned a pause or
    /// a night would count the passes that never looked, and a node over a line at the last
    /// pass before would shed at the first pass after.
    pub(super) fn unjudged(&mut self) {
        self.standing.clear();
        self.wobble.clear();
    }

    /// Whether some node's load has been above the floor under this meta leader: load under
    /// it is then a lull, not a cluster with no load to go by.
    pub fn load_mattered(&self) -> bool {
        self.day_leads.is_some()
    }

    /// A pass balanced by load, which left each node leading `leads` (by node index; `None`
    /// for a node it could not place on, whose count from before stays: a node down for a
    /// while in the night is owed its leaders back, though load above the floor in the long
    /// run was judged while it was away).
    pub(super) fn balanced_by_load(&mut self, leads: impl Iterator<Item = Option<u32>>) {
        let day = self.day_leads.get_or_insert_with(Vec::new);
        for (i, led) in leads.enumerate() {
            match day.get_mut(i) {
                Some(kept) => *kept = led.or(*kept),
                None => day.push(led),
            }
        }
    }

    /// How many shards `node` led when load last mattered; `None` if it was not known then,
    /// or load never mattered.
    pub fn day_leads(&self, node: NodeId) -> Option<u32> {
        self.day_leads.as_ref()?.get(node.index()).copied().flatten()
    }

    /// Since when `node` has stood over the overfull line (`[0]`) and under the pull line
    /// (`[1]`), in the long run.
    pub fn standing(&self, node: NodeId) -> [Option<Instant>; 2] {
        self.standing.get(node.index()).copied().unwrap_or([None; 2])
    }

    /// Whether the shard's leader moved less than `cooldown` ago.
    pub fn shard_cooling(&self, shard: ShardId, now: Instant, cooldown: Duration) -> bool {
        self.shard_moved[shard.index()].is_some_and(|at| now < at + cooldown)
    }

    /// Whether a leader moved onto or off the node less than `settle` ago.
    pub fn node_settling(&self, node: NodeId, now: Instant, settle: Duration) -> bool {
        self.node_moved.get(node.index()).copied().flatten().is_some_and(|at| now < at + settle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_that_moved_one_way_does_not_come_back_within_the_cooldown() {
        let (a, b, c) = (NodeId(0), NodeId(1), NodeId(2));
        let cooldown = Duration(600_000);
        let mut recent = Recent::new(4);
        recent.load_moved((a, b), 3, Instant(1_000), cooldown);
        assert_eq!(recent.took_load(b, Instant(2_000), cooldown), Some(3), "b took load");
        assert_eq!(recent.took_load(a, Instant(2_000), cooldown), None, "a gave it");
        assert!(recent.flowed_back(b, a, Instant(2_000), cooldown), "b to a is held back");
        assert!(!recent.flowed_back(a, b, Instant(2_000), cooldown), "more a to b may go");
        assert!(!recent.flowed_back(b, c, Instant(2_000), cooldown), "other pairs are free");
        assert!(!recent.flowed_back(b, a, Instant(601_000), cooldown), "the cooldown ends");
        for i in 0..LOAD_FLOWS_KEPT as u64 + 10 {
            recent.load_moved((c, a), 3, Instant(700_000 + i), cooldown);
        }
        assert_eq!(recent.load_flows.len(), LOAD_FLOWS_KEPT, "bounded");
        recent.load_moved((a, c), 3, Instant(2_000_000), cooldown);
        assert_eq!(recent.load_flows.len(), 1, "what is older than the cooldown is forgotten");
    }
}
