//! Draining: an operator takes a node out of service. Its leader shards leave by transfer, the
//! same two-step procedure as balancing, so a shard pauses only for the handover and no lease is
//! cut short. Its follower slots are refilled like those of dead nodes ([`super::failover`]). A
//! draining node that dies fails over like any other.

use super::{MoveReason, Planner};
use crate::core::ids::*;
use crate::core::model::TransferRecord;

impl Planner<'_> {
    pub(super) fn drain(&mut self) {
        if !self.dynamic() {
            return;
        }
        let draining = (0..self.rt.nodes.len() as u32).filter(|&n| {
            let node = &self.rt.nodes[n as usize];
            node.draining && node.online && node.leaders > 0
        });
        for from in draining.collect::<Vec<_>>() {
            for shard in self.cluster.node_shards[from as usize].iter().copied() {
                if self.rt.transfers.len() >= self.config.transfers_in_flight_max || self.exhausted() {
                    return;
                }
                let rec = self.intended(shard);
                if self.rt.shards[shard.index()].pending > 0 || rec.leader != Some(from) || rec.transfer.is_some() {
                    continue;
                }
                let Some(to) = self.successor(shard) else { continue };
                let mut record = rec.clone();
                record.transfer = Some(TransferRecord { from, to });
                self.stage(record, vec![NodeId(from)], MoveReason::StartTransfer);
            }
        }
    }

    /// Who should lead a shard whose leader leaves: a placeable follower with the fewest leader
    /// shards (a promotion needs no new replica), else the least loaded placeable node.
    pub(super) fn successor(&self, shard: ShardId) -> Option<u32> {
        let rec = self.intended(shard);
        let follower = rec
            .followers
            .iter()
            .copied()
            .filter(|&f| self.rt.nodes[f as usize].placeable())
            .min_by_key(|&f| (self.rt.nodes[f as usize].leaders, f));
        follower.or_else(|| self.pick_leader(&rec.replicas().collect::<Vec<_>>()))
    }
}
