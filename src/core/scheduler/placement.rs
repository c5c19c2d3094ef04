//! Choosing nodes: nodes that fit the placement rule first ([`super::rules`]), then the least
//! loaded, replicas on distinct nodes, and on distinct zones (or values of the rule's spread
//! label) where the nodes name them.

use super::Planner;
use crate::core::config::PlantedBug;
use crate::core::ids::{NodeId, ShardId};
use crate::core::live::LiveNode;
use crate::core::model::ShardRecord;

impl Planner<'_> {
    /// The placeable node with the fewest leader shards among those that lead best under the
    /// rule (see [`Self::leader_rank`]).
    pub(super) fn pick_leader(&self) -> Option<u32> {
        let mut nodes = self.load().by_leaders().map(|n| n.0);
        if self.rules.is_none() {
            return nodes.next();
        }
        let mut best: Option<u32> = None;
        for n in nodes {
            if best.is_none_or(|b| self.leader_rank(n) < self.leader_rank(b)) {
                best = Some(n);
            }
            if self.leader_rank(n) == (false, false) {
                break;
            }
        }
        best
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
        // Then one the rule lets lead: a rule is placement, freshness is data.
        rec.followers.iter().copied().filter(|&f| usable(node(f))).min_by_key(|&f| {
            let n = node(f);
            (lag(f), self.leader_rank(f), n.draining, n.slowness.slow(), n.leaders, f)
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
    /// leaders among those that may lead under the rule and keep the zone spread, else among
    /// those that keep the placement, else (too few zones, or nodes that fit) any.
    pub(super) fn leader_in_place_of(&self, rec: &ShardRecord, leaving: u32) -> Option<u32> {
        let replicas: Vec<u32> = rec.replicas().collect();
        let shard = ShardId(rec.id);
        let outside = || {
            self.load()
                .by_leaders()
                .map(|n| n.0)
                .filter(|n| !replicas.contains(n) && self.disk_fits(*n, shard))
        };
        let keeps = |n: u32| self.keeps_placement(rec, leaving, n);
        outside()
            .find(|&n| keeps(n) && self.fits_leader(n))
            .or_else(|| outside().find(|&n| keeps(n)))
            .or_else(|| outside().next())
    }

    /// Whether moving `rec`'s replica on `out` to `into` keeps the placement: the rule (see
    /// [`Self::keeps_rule`]) and the spread.
    pub(super) fn keeps_placement(&self, rec: &ShardRecord, out: u32, into: u32) -> bool {
        self.keeps_rule(rec, out, into) && self.keeps_zone_spread(rec, out, into)
    }

    /// Whether moving `rec`'s replica on `out` to `into` keeps (or widens) the number of zones
    /// its replicas span. (Nodes that name no zone all count as one.)
    pub(super) fn keeps_zone_spread(&self, rec: &ShardRecord, out: u32, into: u32) -> bool {
        if self.config.has_bug(PlantedBug::IgnoreZones) {
            return true;
        }
        let spread = |replicas: &mut dyn Iterator<Item = u32>| {
            let mut zones: Vec<u32> = replicas.map(|r| self.zone_id(r)).collect();
            zones.sort_unstable();
            zones.dedup();
            zones.len()
        };
        let before = spread(&mut rec.replicas());
        let after = spread(&mut rec.replicas().map(|r| if r == out { into } else { r }));
        after >= before
    }

    /// Up to `want` placeable nodes with the fewest replicas, outside `exclude`, taken tier by
    /// tier (see [`Self::follower_tiers`]): fitting the rule first, then in zones that none of
    /// `staying` uses (the replicas that remain: a replica being replaced leaves its zone free
    /// for its successor), then preferred. Among the few least-loaded candidates, the shard's
    /// id picks which: followers of one node's shards then scatter over many nodes, so that its
    /// failover, or its relief by transfers, spreads load instead of doubling one neighbour's.
    pub(super) fn pick_followers(
        &self,
        shard: ShardId,
        exclude: &[u32],
        staying: &[u32],
        want: usize,
    ) -> Vec<u32> {
        self.pick_followers_where(shard, exclude, staying, want, |_| true)
    }

    /// [`Self::pick_followers`] among the nodes `allowed` accepts.
    pub(super) fn pick_followers_where(
        &self,
        shard: ShardId,
        exclude: &[u32],
        staying: &[u32],
        want: usize,
        allowed: impl Fn(u32) -> bool,
    ) -> Vec<u32> {
        let mut taken: Vec<u32> = exclude.to_vec();
        let mut zones_used: Vec<u32> =
            staying.iter().map(|&r| self.zone_id(r)).filter(|&z| z != 0).collect();
        if self.config.has_bug(PlantedBug::FollowerOnLeaderNode) {
            taken.clear();
            zones_used.clear();
        }
        let mut picked = Vec::new();
        for tier in self.follower_tiers() {
            while picked.len() < want {
                let usable = |&n: &u32| {
                    !(taken.contains(&n) || tier.distinct && zones_used.contains(&self.zone_id(n)))
                        && (!tier.fit || self.fits(n))
                        && (!tier.preferred || self.preferred(n, false))
                        && allowed(n)
                        && self.disk_fits(n, shard)
                };
                // Nodes that fit come first in the index: a tier of them stops at the first
                // that does not.
                let nodes: Box<dyn Iterator<Item = NodeId>> = match tier.fit {
                    true => Box::new(self.load().fitting_by_replicas()),
                    false => Box::new(self.load().by_replicas()),
                };
                let candidates: Vec<u32> =
                    nodes.map(|n| n.0).filter(usable).take(SCATTER).collect();
                let Some(&first) = candidates.first() else { break };
                let fewest = self.live.node(NodeId(first)).replicas;
                let tied = candidates
                    .iter()
                    .take_while(|&&n| self.live.node(NodeId(n)).replicas == fewest)
                    .count();
                let n = candidates[scatter(shard, picked.len()) % tied];
                taken.push(n);
                picked.push(n);
                zones_used.push(self.zone_id(n));
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
