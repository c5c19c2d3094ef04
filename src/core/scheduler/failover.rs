//! Dead nodes. A leader shard moves only after every lease its old leader may hold has surely
//! ended (lease plus clock drift), which is what keeps a single writer per shard under
//! partitions. A follower, when one is online, takes over (one in sync with the old leader
//! first, else the one least behind, and the event says how far behind it was); otherwise a
//! dynamic cluster reopens the shard on the least loaded node and a static cluster waits for
//! the node to return.

use super::{MoveReason, Planner};
use crate::core::cause::Cause;
use crate::core::config::PlantedBug;
use crate::core::ids::*;
use crate::core::live::LiveNode;

impl Planner<'_> {
    /// Shards of the nodes `select` picks, that no pending change touches.
    fn shards_on(&self, select: impl Fn(&LiveNode) -> bool) -> Vec<(NodeId, ShardId)> {
        let mut out = Vec::new();
        for (id, n) in self.live.nodes().iter() {
            if !select(n) {
                continue;
            }
            for &s in &self.cluster.node_shards[id.index()] {
                if self.live.intent().settled(s) {
                    out.push((id, s));
                }
            }
        }
        out
    }

    pub(super) fn fail_over(&mut self) {
        if self.config.has_bug(PlantedBug::SkipFailover) {
            return;
        }
        for (dead, shard) in self.shards_on(|n| !n.online) {
            if self.exhausted() {
                return;
            }
            let rec = self.intended(shard);
            if rec.leader != Some(dead.0)
                || rec.transfer.is_some()
                || !self.live.leases().expired(shard, self.now, self.config)
            {
                continue;
            }
            // Any live follower will do, a draining one too: promotion keeps the data in place.
            // It must have spoken to this leader: one inherited from the last may be dead.
            let promoted = self.promotable_follower(rec, |n| n.online && n.heard);
            let mut record = rec.clone();
            let mut why = format!("{} is offline and its lease is over", self.name(dead.0));
            if let Some(f) = promoted {
                if let Some(lag) = self.live.laggards().lag(shard, NodeId(f)) {
                    let f = self.name(f);
                    why += &format!("; {f} is {lag} entries behind, and no follower in sync lives");
                }
                // The old leader keeps a follower slot: it may return, and repair replaces it if not.
                record.leader = Some(f);
                record.followers.retain(|&x| x != f);
                record.followers.push(dead.0);
                self.stage(record, Vec::new(), MoveReason::PromoteFollower, Cause::Failover, why);
            } else if self.dynamic() {
                let Some(to) = self.leader_in_place_of(rec, dead.0) else { continue };
                record.leader = Some(to);
                self.stage(record, vec![dead], MoveReason::ReopenElsewhere, Cause::Failover, why);
            }
        }
    }

    /// Dynamic clusters replace followers on dead or draining nodes and fill follower slots left
    /// empty when there were too few nodes; when a scan is due, they then move shards where the
    /// placement rule says and spread replicas crowded into one zone.
    pub(super) fn repair_followers(&mut self) {
        if !self.dynamic() {
            return;
        }
        let scan = self.live.take_deficit_scan();
        let done = self.cluster.record.followers_per_shard == 0 || self.fill_followers(scan);
        if scan && done {
            self.meet_rule();
            self.spread_zones();
        }
    }

    /// Replaces and fills followers; `false` when the pass's budget ran out first (the scan is
    /// then due again).
    fn fill_followers(&mut self, scan: bool) -> bool {
        let mut candidates: Vec<ShardId> = self
            .shards_on(|n| !n.keeps_followers())
            .into_iter()
            .filter(|&(leaving, s)| self.intended(s).followers.contains(&leaving.0))
            .map(|(_, s)| s)
            .collect();
        let want = self.cluster.record.followers_per_shard as usize;
        if scan {
            candidates.extend(
                (0..self.cluster.record.shard_count)
                    .map(ShardId)
                    .filter(|&s| self.live.intent().settled(s))
                    .filter(|&s| {
                        self.intended(s).leader.is_some() && self.intended(s).followers.len() < want
                    }),
            );
            candidates.sort_unstable();
            candidates.dedup();
        }
        for shard in candidates {
            if self.exhausted() {
                self.live.deficit_scan_again();
                return false;
            }
            let rec = self.intended(shard);
            if rec.transfer.is_some() {
                continue;
            }
            let leaving: Vec<u32> =
                rec.followers.iter().copied().filter(|&f| !self.keeps_followers(f)).collect();
            let kept: Vec<u32> = rec.replicas().filter(|r| !leaving.contains(r)).collect();
            let fresh = self.pick_followers(
                shard,
                &rec.replicas().collect::<Vec<_>>(),
                &kept,
                want.saturating_sub(kept.len() - 1),
            );
            if fresh.is_empty() {
                continue;
            }
            // Leaving followers give up their slots only as far as fresh nodes can fill them.
            let mut record = rec.clone();
            let mut closes = Vec::new();
            for f in fresh {
                if record.followers.len() >= want {
                    let Some(pos) = record
                        .followers
                        .iter()
                        .position(|x| leaving.contains(x) && !closes.contains(&NodeId(*x)))
                    else {
                        break;
                    };
                    closes.push(NodeId(record.followers.remove(pos)));
                }
                record.followers.push(f);
            }
            if record.followers != self.intended(shard).followers {
                self.stage(
                    record,
                    closes,
                    MoveReason::RepairFollowers,
                    Cause::Repair,
                    String::new(),
                );
            }
        }
        true
    }
}
