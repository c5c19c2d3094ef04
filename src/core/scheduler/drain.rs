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
                if !self.may_start_transfer() {
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
}
