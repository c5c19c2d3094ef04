//! Assigning shards that have no leader, once the cluster has its minimum of online nodes.

use super::{Cause, MoveReason, Planner};
use crate::core::ids::ShardId;
use crate::core::model::ProcedureStep;

impl Planner<'_> {
    pub(super) fn assign(&mut self) {
        if self.rt.intent().unassigned().is_empty() || self.load().len() < self.cluster.record.min_nodes as usize {
            return;
        }
        let want = self.cluster.record.followers_per_shard as usize;
        // A split's new shard waits for its procedure to let it be assigned.
        let held = |s: &ShardId| self.cluster.lock_of(*s).is_some_and(|p| p.new_shard == s.0 && p.step() != ProcedureStep::AwaitingNewShardOpen);
        let candidates: Vec<_> =
            self.rt.intent().unassigned().iter().copied().filter(|s| !held(s)).take(self.config.shard_moves_per_tick_max).collect();
        for shard in candidates {
            if self.exhausted() {
                return;
            }
            let Some(leader) = self.pick_leader() else { return };
            let mut record = self.intended(shard).clone();
            record.leader = Some(leader);
            record.followers = self.pick_followers(shard, &[leader], &[leader], want);
            self.stage(record, Vec::new(), MoveReason::Assign, Cause::Assign, String::new());
        }
    }
}
