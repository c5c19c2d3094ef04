//! Choosing nodes: the least loaded online node first, replicas on distinct nodes, and on
//! distinct zones where the nodes name zones.

use super::Planner;
use crate::core::config::PlantedBug;
use crate::core::ids::{NodeId, ShardId};
use crate::core::leader::runtime::NodeRuntime;
use crate::core::model::ShardRecord;

impl Planner<'_> {
    fn zone(&self, node: u32) -> &str {
        &self.cluster.node(NodeId(node)).zone
    }

    /// The online node with the fewest leader shards, outside `exclude`.
    pub(super) fn pick_leader(&self, exclude: &[u32]) -> Option<u32> {
        self.load().by_leaders().map(|n| n.0).find(|n| !exclude.contains(n))
    }

    /// The follower of `rec` to promote among those `usable` accepts: not draining first, then
    /// the fewest leader shards (a promotion needs no new replica).
    pub(super) fn promotable_follower(&self, rec: &ShardRecord, usable: impl Fn(&NodeRuntime) -> bool) -> Option<u32> {
        let node = |f: u32| self.rt.node(NodeId(f));
        rec.followers.iter().copied().filter(|&f| usable(node(f))).min_by_key(|&f| (node(f).draining, node(f).leaders, f))
    }

    /// Who should lead a shard whose leader leaves: a placeable follower, else the least loaded
    /// placeable node.
    pub(super) fn successor(&self, shard: ShardId) -> Option<u32> {
        let rec = self.intended(shard);
        self.promotable_follower(rec, NodeRuntime::placeable).or_else(|| self.pick_leader(&rec.replicas().collect::<Vec<_>>()))
    }

    /// Whether moving `rec`'s replica on `out` to `into` keeps (or widens) the number of zones
    /// its replicas span. (Nodes that name no zone all count as one.)
    pub(super) fn keeps_zone_spread(&self, rec: &ShardRecord, out: u32, into: u32) -> bool {
        let spread = |replicas: &mut dyn Iterator<Item = u32>| {
            let mut zones: Vec<&str> = replicas.map(|r| self.zone(r)).collect();
            zones.sort_unstable();
            zones.dedup();
            zones.len()
        };
        let before = spread(&mut rec.replicas());
        let after = spread(&mut rec.replicas().map(|r| if r == out { into } else { r }));
        after >= before
    }

    /// Up to `want` placeable nodes with the fewest replicas, outside `exclude`, preferring
    /// zones that `exclude` does not use yet. Among the few least-loaded candidates, the shard's
    /// id picks which: followers of one node's shards then scatter over many nodes, so that its
    /// failover, or its relief by transfers, spreads load instead of doubling one neighbour's.
    pub(super) fn pick_followers(&self, shard: ShardId, exclude: &[u32], want: usize) -> Vec<u32> {
        let mut taken: Vec<u32> = exclude.to_vec();
        if self.config.has_bug(PlantedBug::FollowerOnLeaderNode) {
            taken.clear();
        }
        let mut picked = Vec::new();
        for distinct_zone in [true, false] {
            while picked.len() < want {
                let usable = |n: &u32| {
                    let zone = self.zone(*n);
                    let zone_used = !zone.is_empty() && taken.iter().any(|&t| self.zone(t) == zone);
                    !(taken.contains(n) || distinct_zone && zone_used)
                };
                let candidates: Vec<u32> = self.load().by_replicas().map(|n| n.0).filter(usable).take(SCATTER).collect();
                let Some(&first) = candidates.first() else { break };
                let fewest = self.rt.node(NodeId(first)).replicas;
                let tied = candidates.iter().take_while(|&&n| self.rt.node(NodeId(n)).replicas == fewest).count();
                let n = candidates[scatter(shard, picked.len()) % tied];
                taken.push(n);
                picked.push(n);
            }
        }
        picked
    }
}

/// How many equally loaded nodes a follower may go to.
const SCATTER: usize = 8;

/// A number that varies from shard to shard (and slot to slot), without randomness.
fn scatter(shard: ShardId, slot: usize) -> usize {
    ((shard.0 as u64 ^ ((slot as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize
}
