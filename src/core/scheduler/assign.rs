//! Assigning shards that have no leader, once the cluster has its minimum of online nodes: to
//! the node with the fewest leaders, except a split's new shard, which carries load from its
//! first report and goes to the least utilized node (the one it evens out most).

use super::{LoadView, MoveReason, Planner};
use crate::core::cause::Cause;
use crate::core::ids::{NodeId, ShardId};
use crate::core::model::ProcedureStep;

impl Planner<'_> {
    pub(super) fn assign(&mut self) {
        if self.live.intent().unassigned().is_empty()
            || self.load().len() < self.cluster.record.min_nodes as usize
        {
            return;
        }
        let want = self.cluster.record.followers_per_shard as usize;
        // A split's new shard waits for its procedure to let it be assigned.
        let held = |s: &ShardId| {
            self.cluster.lock_of(*s).is_some_and(|p| {
                p.new_shard == s.0 && p.step() != ProcedureStep::AwaitingNewShardOpen
            })
        };
        let candidates: Vec<_> = self
            .live
            .intent()
            .unassigned()
            .iter()
            .copied()
            .filter(|s| !held(s))
            .take(self.config.shard_moves_per_tick_max)
            .collect();
        for shard in candidates {
            if self.exhausted() {
                return;
            }
            let split = self.cluster.lock_of(shard).is_some_and(|p| p.new_shard == shard.0);
            let Some(leader) = (if split { self.least_utilized() } else { self.pick_leader() })
            else {
                return;
            };
            let mut record = self.intended(shard).clone();
            record.leader = Some(leader);
            record.followers = self.pick_followers(shard, &[leader], &[leader], want);
            self.stage(record, Vec::new(), MoveReason::Assign, Cause::Assign, String::new());
        }
    }

    /// The placeable node with the least utilization by load, then the fewest leaders.
    fn least_utilized(&self) -> Option<u32> {
        let view = LoadView::of(self.cluster, self.live, self.now, self.config);
        let standing = |n: u32| {
            view.nodes[n as usize].map(|s| (s.utilization(), self.live.node(NodeId(n)).leaders))
        };
        self.load().by_leaders().map(|n| n.0).min_by(|&a, &b| {
            standing(a)
                .partial_cmp(&standing(b))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.cmp(&b))
        })
    }
}
