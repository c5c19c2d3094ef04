//! The leader's periodic work: failure detection, then a scheduling pass per cluster whose
//! decisions are queued as changes.

use super::writes::{Change, Notice};
use super::{Ctx, Leader};
use crate::core::ids::*;
use crate::core::live::LiveCluster;
use crate::core::model::ClusterCatalog;
use crate::core::model::Mutation;
use crate::core::scheduler::{Move, Planner};

impl Leader {
    /// The timer: a scheduling pass per cluster, due procedure steps and background drops.
    pub fn on_tick(&mut self, ctx: &mut Ctx) {
        if self.ready(ctx.now).is_err() {
            return;
        }
        self.ensure_default_cluster(ctx);
        for (cid, live) in self.clusters.iter_mut() {
            live.detect_silent(self.catalog.cluster(*cid), ctx.now, ctx.config);
            live.detect_slow(self.catalog.cluster(*cid), ctx.now, ctx.config);
        }
        self.end_restarts(ctx);
        // Leave room in the queue for requests: scheduling can wait a tick.
        if self.writes.backlog() >= ctx.config.changes_queued_max / 2 {
            return;
        }
        self.advance_procedures(ctx);
        self.advance_schema_drops(ctx);
        self.start_due_resizes(ctx);
        // A cluster being dropped takes no more decisions: they would land after it is gone.
        let dropping = &self.pending_clusters.dropping;
        for (&cid, live) in self.clusters.iter_mut().filter(|(id, _)| !dropping.contains(id)) {
            let cluster = self.catalog.cluster(cid);
            for m in Planner::new(cluster, live, ctx.now, ctx.config).plan() {
                self.writes.queue(change_for(cluster, live, m, ctx));
            }
        }
    }
}

/// The change that stores a decided move, logged as an event.
pub(super) fn change_for(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    m: Move,
    ctx: &Ctx,
) -> Change {
    let (cid, shard) = (cluster.id(), ShardId(m.record.id));
    live.log_event(
        ctx.now,
        m.cause,
        Some(shard),
        m.describe(cluster, cluster.shard(shard).leader),
        ctx.config,
    );
    let mut change = Change::new(cid);
    change.mutations.push(Mutation::PutEpoch(cid, live.next_epoch()));
    change.mutations.push(Mutation::PutShard(cid, m.record));
    change.mutations.extend(m.writes);
    // Every move re-opens the shard on its replicas at the new version; a replica it keeps only
    // changes role. A transfer start closes the old leader and keeps the followers as they are,
    // but they too step to the new version, so that the finish's role change (to the target)
    // applies on top of it at once instead of waiting for a heartbeat to re-sync the target.
    change.notify(shard, Notice::Resync);
    change.closes = m.closes.into_iter().map(|n| (n, shard)).collect();
    change.kept = m.kept.into_iter().map(|n| (n, shard)).collect();
    change
}
