//! Draining: an operator takes a node out of service. Its leader shards leave by transfer, the
//! same two-step procedure as balancing, so a shard pauses only for the handover and no lease is
//! cut short. Its follower slots are refilled like those of dead nodes ([`super::failover`]). A
//! draining node that dies fails over like any other.

use super::Planner;
use crate::core::cause::Cause;

impl Planner<'_> {
    pub(super) fn drain(&mut self) {
        if !self.dynamic() {
            return;
        }
        let draining: Vec<u32> = self
            .live
            .nodes()
            .iter()
            .filter(|(_, n)| n.draining && n.online && n.leaders > 0)
            .map(|(id, _)| id.0)
            .collect();
        for from in draining {
            for shard in self.cluster.node_shards[from as usize].iter().copied() {
                if !self.may_start_transfer() {
                    return;
                }
                if !self.movable(shard, from) {
                    continue;
                }
                let Some(to) = self.successor(shard) else { continue };
                let why = format!("{} is draining", self.name(from));
                self.start_transfer(shard, from, to, Cause::Drain, why);
            }
        }
    }
}
