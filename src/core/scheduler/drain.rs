//! Leaders leaving a node: an operator drains it (taking it out of service), it is slow (see
//! `live::slow`), or it is about to restart (see [`super::restart`]). Its leader shards leave by transfer, the same two-step procedure as
//! balancing, so a shard pauses only for the handover and no lease is cut short, and within the
//! nodes' move budgets. A drained node's follower slots are refilled like those of dead nodes
//! ([`super::failover`]); a slow node keeps its followers, which cost it little and may lead
//! again once it is well, and so does a node about to restart. A draining or slow node that dies fails over like any other.

use super::Planner;
use crate::core::cause::Cause;
use crate::core::ids::NodeId;

impl Planner<'_> {
    pub(super) fn drain(&mut self) {
        if !self.dynamic() {
            return;
        }
        let leaving: Vec<(u32, Cause)> = self
            .live
            .nodes()
            .iter()
            .filter(|(_, n)| n.online && n.leaders > 0)
            .filter_map(|(id, n)| {
                let cause = if n.draining {
                    Cause::Drain
                } else if n.slowness.slow() {
                    Cause::Slow
                } else if n.leaving_for_restart() {
                    Cause::Restart
                } else {
                    return None;
                };
                Some((id.0, cause))
            })
            .collect();
        for (from, cause) in leaving {
            for shard in self.cluster.node_shards[from as usize].iter().copied() {
                if !self.may_start_transfer() {
                    return;
                }
                if !self.may_leave(NodeId(from)) {
                    break;
                }
                if !self.movable(shard, from) {
                    continue;
                }
                let Some(to) = self.successor(shard) else { continue };
                if !self.may_enter(NodeId(to)) {
                    continue;
                }
                let why = match cause {
                    Cause::Drain => format!("{} is draining", self.name(from)),
                    Cause::Restart => format!("{} is about to restart", self.name(from)),
                    _ => format!("{} is slow", self.name(from)),
                };
                self.start_transfer(shard, from, to, cause, why);
            }
        }
    }
}
