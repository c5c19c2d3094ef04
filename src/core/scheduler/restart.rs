//! Planned restarts (see `model::RestartRecord`). While the process that is to restart still
//! runs, its leaders leave it by transfer, as a slow node's do ([`super::drain`]); its
//! followers stay, and while it is down they are not replaced, for up to the window
//! ([`super::failover`]). Once a new process of the node is back (online, heard and admitted),
//! the shards it led return to it by transfer, each once its follower there has caught up, as
//! fast as the move budgets allow, up to its fair share of leaders (a node that led more than
//! that when it went down would only be evened out again by the balancer): a rolling restart
//! then ends with leaders where they were, instead of waiting for the balancer to even counts
//! out with whatever shards it picks.

use super::Planner;
use crate::core::cause::Cause;
use crate::core::ids::{NodeId, ShardId};

impl Planner<'_> {
    pub(super) fn return_leaders(&mut self) {
        if !self.dynamic() {
            return;
        }
        let back: Vec<NodeId> = self
            .live
            .nodes()
            .iter()
            .filter(|(_, n)| n.back_from_restart())
            .map(|(id, _)| id)
            .collect();
        let share = self.live.fair_leader_share();
        for node in back {
            let Some(restart) = self.cluster.node(node).restart.as_ref() else { continue };
            for &shard in &restart.leaders {
                if !self.may_start_transfer() {
                    return;
                }
                if !self.may_enter(node) || self.live.node(node).leaders >= share {
                    break;
                }
                let Some(from) = self.returnable(ShardId(shard), node) else { continue };
                if !self.may_leave(NodeId(from)) {
                    continue;
                }
                let why = format!("{} led it before its restart", self.name(node.0));
                self.start_transfer(ShardId(shard), from, node.0, Cause::Restart, why);
            }
        }
    }

    /// The leader to take `shard` from, if `node` can lead it again now: the shard still
    /// exists, `node` follows it (and said so since it came back: its replica is open) in sync,
    /// and its leader may let it go.
    fn returnable(&self, shard: ShardId, node: NodeId) -> Option<u32> {
        if shard.0 >= self.cluster.record.shard_count || self.cluster.shard(shard).retired {
            return None;
        }
        let rec = self.intended(shard);
        let from = rec.leader?;
        let ready = rec.followers.contains(&node.0)
            && self.live.reported_following(node, shard)
            && self.live.laggards().lag(shard, node).is_none()
            && self.may_lead_instead(from, node.0)
            && self.movable(shard, from);
        ready.then_some(from)
    }
}
