//! Disk: no node is filled past its disk. A node that declares its disk capacity
//! (`NodeStats::disk_capacity_bytes`) is kept under `disk_high_water_pct` of it: no placement
//! or move that copies data (a new follower, a reopen) goes to a node it would take past the
//! line, and a node above it sheds replicas, largest first, until 5 points under it. A leader
//! transfer copies nothing and is not held back. (HoraeDB's seed 000 saw heavy DDL fill nodes'
//! storage: nothing there knew how full a node was.)
//!
//! **What a node holds.** The larger of what it reports in use and the bytes of every replica
//! meta means it to hold (each shard's bytes as its leader reports them), plus what this pass
//! placed: a replica placed a moment ago counts before the node has copied a byte of it, so
//! two passes cannot both fill the same room. Nodes that declare nothing are not judged.

use super::{MoveReason, Planner};
use crate::core::cause::Cause;
use crate::core::ids::{NodeId, ShardId};
use crate::core::live::LiveCluster;
use crate::core::model::{ClusterCatalog, ShardRecord};

/// Each node's disk as the pass sees it.
#[derive(Clone, Debug)]
pub(super) struct DiskView {
    /// Per node: declared capacity (0: none), bytes reported in use, bytes of intended replicas.
    nodes: Vec<[u64; 3]>,
    /// The share of capacity no move may pass, in percent.
    high_water_pct: u64,
}

impl DiskView {
    /// The view of `cluster`, or `None` when no node declares a disk capacity.
    pub(super) fn of(cluster: &ClusterCatalog, live: &LiveCluster) -> Option<DiskView> {
        let declared = live.nodes().iter().any(|(_, n)| n.stats.disk_capacity_bytes > 0);
        if !declared {
            return None;
        }
        let mut nodes: Vec<[u64; 3]> = live
            .nodes()
            .iter()
            .map(|(_, n)| [n.stats.disk_capacity_bytes, n.stats.disk_used_bytes, 0])
            .collect();
        for i in 0..cluster.shards.len() {
            let shard = ShardId(i as u32);
            let bytes = shard_bytes(live, shard);
            for r in live.intended(cluster, shard).replicas() {
                if let Some(n) = nodes.get_mut(r as usize) {
                    n[2] = n[2].saturating_add(bytes);
                }
            }
        }
        let high_water_pct = live.settings().disk_high_water_pct as u64;
        Some(DiskView { nodes, high_water_pct })
    }

    fn used(&self, node: u32) -> u64 {
        self.nodes.get(node as usize).map_or(0, |&[_, reported, intended]| reported.max(intended))
    }

    fn line(&self, node: u32, pct: u64) -> Option<u64> {
        let cap = self.nodes.get(node as usize)?[0];
        (cap > 0).then(|| cap / 100 * pct + cap % 100 * pct / 100)
    }

    /// Whether `node` can take `bytes` more and stay under the high-water line.
    pub(super) fn fits(&self, node: u32, bytes: u64) -> bool {
        self.line(node, self.high_water_pct)
            .is_none_or(|line| self.used(node).saturating_add(bytes) <= line)
    }

    /// How far `node` is above the line it sheds to (5 points under the high water), in bytes,
    /// when it is above the high water itself; else 0.
    pub(super) fn excess(&self, node: u32) -> u64 {
        let (Some(high), Some(low)) =
            (self.line(node, self.high_water_pct), self.line(node, self.high_water_pct - 5))
        else {
            return 0;
        };
        let used = self.used(node);
        if used > high {
            used - low
        } else {
            0
        }
    }

    /// The share of its capacity `node` holds, in percent (0 when it declares none).
    pub(super) fn used_pct(&self, node: u32) -> f64 {
        let cap = self.nodes.get(node as usize).map_or(0, |n| n[0]);
        if cap == 0 {
            0.0
        } else {
            100.0 * self.used(node) as f64 / cap as f64
        }
    }

    /// A record changed from `old` to `new`: the replicas it gained and lost, of `bytes` each.
    pub(super) fn restage(&mut self, old: &ShardRecord, new: &ShardRecord, bytes: u64) {
        for r in new.replicas().filter(|r| !old.replicas().any(|o| o == *r)) {
            if let Some(n) = self.nodes.get_mut(r as usize) {
                n[2] = n[2].saturating_add(bytes);
            }
        }
        for r in old.replicas().filter(|r| !new.replicas().any(|n| n == *r)) {
            if let Some(n) = self.nodes.get_mut(r as usize) {
                n[2] = n[2].saturating_sub(bytes);
            }
        }
    }
}

/// The shard's bytes, as its leader last reported them.
pub(super) fn shard_bytes(live: &LiveCluster, shard: ShardId) -> u64 {
    live.loads().smoothed(shard).0.bytes
}

impl Planner<'_> {
    /// Whether a replica of `shard` may be copied onto `node`: under its disk line after.
    pub(super) fn disk_fits(&self, node: u32, shard: ShardId) -> bool {
        self.disk.as_ref().is_none_or(|d| d.fits(node, shard_bytes(self.live, shard)))
    }

    /// Nodes above their disk high water shed replicas, largest first: a follower goes to a
    /// node with room; a leader hands over to a follower first (a transfer copies nothing),
    /// and leaves as a follower in a later pass.
    pub(super) fn shed_disk(&mut self) {
        let Some(disk) = &self.disk else { return };
        if !self.dynamic() {
            return;
        }
        let over: Vec<u32> = (0..self.live.nodes().len() as u32)
            .filter(|&n| self.online(n) && disk.excess(n) > 0)
            .collect();
        for node in over {
            let mut held: Vec<(u64, ShardId)> = self.cluster.node_shards[node as usize]
                .iter()
                .map(|&s| (shard_bytes(self.live, s), s))
                .filter(|&(bytes, s)| bytes > 0 && self.live.intent().settled(s))
                .collect();
            held.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for (bytes, shard) in held {
                let excess = self.disk.as_ref().map_or(0, |d| d.excess(node));
                if excess == 0 || self.exhausted() || !self.may_leave(NodeId(node)) {
                    break;
                }
                let rec = self.intended(shard);
                if rec.transfer.is_some() || self.live.locked(self.cluster, shard) {
                    continue;
                }
                if rec.leader == Some(node) {
                    self.hand_over_for_disk(shard, node, bytes);
                } else {
                    self.move_follower_for_disk(shard, node, bytes);
                }
            }
        }
    }

    fn hand_over_for_disk(&mut self, shard: ShardId, node: u32, bytes: u64) {
        if !self.may_start_transfer() {
            return;
        }
        let rec = self.intended(shard);
        let to = self.promotable_follower(rec, |n| n.placeable());
        let Some(to) = to.filter(|&t| self.may_enter(NodeId(t))) else { return };
        let why = self.disk_why(node, shard, bytes, to, "leads it until its follower on");
        self.start_transfer(shard, node, to, Cause::Disk, why);
    }

    fn move_follower_for_disk(&mut self, shard: ShardId, node: u32, bytes: u64) {
        let rec = self.intended(shard);
        let replicas: Vec<u32> = rec.replicas().collect();
        let staying: Vec<u32> = replicas.iter().copied().filter(|&r| r != node).collect();
        let to = self
            .pick_followers(shard, &replicas, &staying, 1)
            .into_iter()
            .find(|&t| self.keeps_placement(rec, node, t) && self.may_enter(NodeId(t)));
        let Some(to) = to else { return };
        let mut record = rec.clone();
        for f in record.followers.iter_mut().filter(|f| **f == node) {
            *f = to;
        }
        let why = self.disk_why(node, shard, bytes, to, "moves its follower to");
        self.live.spend_budget(NodeId(node), NodeId(to), self.now);
        self.stage(record, vec![NodeId(node)], MoveReason::RepairFollowers, Cause::Disk, why);
    }

    /// "n3 disk at 91% of its capacity, above the 85% high water; shard 12 (1.0 GiB) moves its
    /// follower to n5 (67%)".
    fn disk_why(&self, node: u32, shard: ShardId, bytes: u64, to: u32, how: &str) -> String {
        let d = self.disk.as_ref().expect("disk moves only with a disk view");
        format!(
            "{} disk at {:.0}% of its capacity, above the {}% high water; shard {shard} ({:.1} GiB) {how} {} ({:.0}%)",
            self.name(node),
            d.used_pct(node),
            self.live.settings().disk_high_water_pct,
            bytes as f64 / (1u64 << 30) as f64,
            self.name(to),
            d.used_pct(to)
        )
    }
}
