//! Moves an operator asks for (`metactl shard transfer|move`): the same two-step transfer the
//! balancer starts, checked first so that an unsafe one is refused with the reason.

use super::Planner;
use crate::core::cause::Cause;
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;

impl Planner<'_> {
    /// Starts moving `shard`'s leader to `to`: by promotion of a follower, or (`reopen`) by
    /// opening it on a node without a replica, which then takes the old leader's slot.
    pub fn requested_move(&mut self, shard: ShardId, to: NodeId, reopen: bool) -> MetaResult<()> {
        let refuse = |why: String| Err(MetaError::FailedPrecondition(why));
        if !self.dynamic() {
            return refuse(format!(
                "cluster {:?} is static: its shards stay on their nodes",
                self.cluster.record.name
            ));
        }
        if shard.0 >= self.cluster.record.shard_count {
            return Err(MetaError::NotFound(format!(
                "shard {shard} (the cluster has {})",
                self.cluster.record.shard_count
            )));
        }
        let (node, name) = (self.live.node(to), self.name(to.0).to_string());
        if !node.placeable() {
            let state = match node {
                n if n.returning => "restarting, and not yet admitted",
                n if !n.online => "offline",
                n if n.draining => "draining",
                n if !n.heard => "not yet heard from by this meta leader",
                _ => "not yet admitted: it has sent fewer heartbeats than the settle count",
            };
            return refuse(format!("node {name} is {state}: it takes no shards"));
        }
        let rec = self.intended(shard);
        let Some(from) = rec.leader else {
            return refuse(format!("shard {shard} has no leader yet"));
        };
        if let Some(p) = self.cluster.lock_of(shard) {
            return refuse(format!(
                "shard {shard} is held by {} procedure {}; wait for it or cancel it",
                p.kind().name(),
                p.id
            ));
        }
        if !self.live.intent().settled(shard)
            || rec.transfer.is_some()
            || self.live.locked(self.cluster, shard)
        {
            return Err(MetaError::Unavailable(format!(
                "shard {shard} has a change in flight; retry"
            )));
        }
        if from == to.0 {
            return refuse(format!("{name} already leads shard {shard}"));
        }
        if !self.staying(from) {
            return refuse(format!(
                "shard {shard}'s leader {} is offline or draining; failover or the drain moves it",
                self.name(from)
            ));
        }
        let follows = rec.followers.contains(&to.0);
        if follows == reopen {
            return refuse(if reopen {
                format!("{name} already follows shard {shard}: transfer to it instead")
            } else {
                format!("{name} holds no replica of shard {shard}: move the shard there instead")
            });
        }
        if reopen && !self.keeps_zone_spread(rec, from, to.0) {
            return refuse(format!(
                "moving shard {shard} to {name} would put two of its replicas in zone {:?}",
                self.cluster.node(to).zone
            ));
        }
        if !self.may_start_transfer() {
            return Err(MetaError::Unavailable(format!(
                "{} moves are in flight, the limit (moves_in_flight_max); retry",
                self.live.intent().transfers_in_flight()
            )));
        }
        let why = format!("asked by an operator ({})", if reopen { "move" } else { "transfer" });
        self.start_transfer(shard, from, to.0, Cause::Operator, why);
        Ok(())
    }
}
