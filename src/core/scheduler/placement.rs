//! Choosing nodes: the least loaded online node first, replicas on distinct nodes, and on
//! distinct zones where the nodes name zones.

use super::Planner;
use crate::core::config::PlantedBug;
use crate::core::ids::{NodeId, ShardId};
use crate::core::live::LiveNode;
use crate::core::model::ShardRecord;

impl Planner<'_> {
    pub(super) fn zone(&self, node: u32) -> &str {
        &self.cluster.node(NodeId(node)).zone
    }

    /// The placeable node with the fewest leader shards.
    pub(super) fn pick_leader(&self) -> Option<u32> {
        self.load().by_leaders().map(|n| n.0).next()
    }

    /// The follower of `rec` to promote among those `usable` accepts: not draining first, then
    /// not slow, then the fewest leader shards (a promotion needs no new replica).
    pub(super) fn promotable_follower(
        &self,
        rec: &ShardRecord,
        usable: impl Fn(&LiveNode) -> bool,
    ) -> Option<u32> {
        let node = |f: u32| self.live.node(NodeId(f));
        // In sync (no lag: `None` orders first), then the least behind: a follower that lags
        // has not applied what its leader acknowledged, and would serve or lose less than it.
        let lag = |f: u32| match self.config.has_bug(PlantedBug::IgnoreFollowerLag) {
            true => None,
            false => self.live.laggards().lag(ShardId(rec.id), NodeId(f)),
        };
        rec.followers.iter().copied().filter(|&f| usable(node(f))).min_by_key(|&f| {
            (lag(f), node(f).draining, node(f).slowness.slow(), node(f).leaders, f)
        })
    }

    /// Who should lead a shard whose leader leaves: a placeable follower, else the least loaded
    /// placeable node that keeps the replicas' zone spread.
    pub(super) fn successor(&self, shard: ShardId) -> Option<u32> {
        let rec = self.intended(shard);
        self.promotable_follower(rec, LiveNode::placeable)
            .or_else(|| self.leader_in_place_of(rec, rec.leader?))
    }

    /// A node without a replica of `rec` to take the place of `leaving`: the one with the fewest
    /// leaders among those that keep the zone spread, else (too few zones) any.
    pub(super) fn leader_in_place_of(&self, rec: &ShardRecord, leaving: u32) -> Option<u32> {
        let replicas: Vec<u32> = rec.replicas().collect();
        let shard = ShardId(rec.id);
        let outside = || {
            self.load()
                .by_leaders()
                .map(|n| n.0)
                .filter(|n| !replicas.contains(n) && self.disk_fits(*n, shard))
        };
        outside().find(|&n| self.keeps_zone_spread(rec, leaving, n)).or_else(|| outside().next())
    }

    /// Whether moving `rec`'s replica on `out` to `into` keeps (or widens) the number of zones
    /// its replicas span. (Nodes that name no zone all count as one.)
    pub(super) fn keeps_zone_spread(&self, rec: &ShardRecord, out: u32, into: u32) -> bool {
        if self.config.has_bug(PlantedBug::IgnoreZones) {
            return true;
        }
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
    /// zones that none of `staying` uses (the replicas that remain: a replica being replaced
    /// leaves its zone free for its successor). Among the few least-loaded candidates, the
    /// shard's id picks which: followers of one node's shards then scatter over many nodes, so
    /// that its failover, or its relief by transfers, spreads load instead of doubling one
    /// neighbour's.
    pub(super) fn pick_followers(
        &self,
        shard: ShardId,
        exclude: &[u32],
        staying: &[u32],
        want: usize,
    ) -> Vec<u32> {
        let mut taken: Vec<u32> = exclude.to_vec();
        let mut zones_used: Vec<&str> =
            staying.iter().map(|&r| self.zone(r)).filter(|z| !z.is_empty()).collect();
        if self.config.has_bug(PlantedBug::FollowerOnLeaderNode) {
            taken.clear();
            zones_used.clear();
        }
        let mut picked = Vec::new();
        for distinct_zone in [true, false] {
            while picked.len() < want {
                let distinct_zone = distinct_zone && !self.config.has_bug(PlantedBug::IgnoreZones);
                let usable = |n: &u32| {
                    !(taken.contains(n) || distinct_zone && zones_used.contains(&self.zone(*n)))
                        && self.disk_fits(*n, shard)
                };
                let candidates: Vec<u32> =
                    self.load().by_replicas().map(|n| n.0).filter(usable).take(SCATTER).collect();
                let Some(&first) = candidates.first() else { break };
                let fewest = self.live.node(NodeId(first)).replicas;
                let tied = candidates
                    .iter()
                    .take_while(|&&n| self.live.node(NodeId(n)).replicas == fewest)
                    .count();
                let n = candidates[scatter(shard, picked.len()) % tied];
                taken.push(n);
                picked.push(n);
                zones_used.push(self.zone(n));
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
