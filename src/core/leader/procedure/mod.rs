//! Procedures: changes that take several writes and wait on nodes between them (a split, a
//! merge, a leader transfer). Each is stored with its step, so that a new meta leader resumes it
//! from storage; what a step waits on (a node's report, a lease running out) is read afresh from
//! the live state. Every tick, each stored procedure with no write of its own in flight takes its
//! next step here, in the one place that drives steps; a kind's file says what its steps are.
//!
//! - [`split`]: a shard's tables, some of them, into a new shard;
//! - [`merge`]: one shard's tables into another, the emptied one retired;
//! - a transfer's one step is a placement decision, taken by the planner
//!   (`Planner::finish_transfers`) as the old leader lets go;
//! - [`resize`]: the splits and merges the scheduler starts by itself;
//! - [`requests`]: listing and cancelling;
//! - [`step`]: what every kind's steps are made of.

mod merge;
mod requests;
mod resize;
mod split;
mod step;

pub(super) use self::resize::resize_decisions;

use super::{Ctx, Leader};
use crate::core::model::ProcedureKind;

impl Leader {
    pub(in crate::core::leader) fn advance_procedures(&mut self, ctx: &mut Ctx) {
        let dropping = &self.pending_clusters.dropping;
        for (&cid, live) in self.clusters.iter_mut().filter(|(id, _)| !dropping.contains(id)) {
            let cluster = self.catalog.cluster(cid);
            for p in cluster.procedures.values() {
                if live.procedure_busy(p.id) {
                    continue;
                }
                let changes = match p.kind() {
                    ProcedureKind::Split => {
                        split::advance_split(cluster, live, p, ctx.now, ctx.config)
                    }
                    ProcedureKind::Merge => {
                        merge::advance_merge(cluster, live, p, ctx.now, ctx.config)
                    }
                    // Its one step ends in a placement decision: the planner takes it
                    // (`Planner::finish_transfers`), as the old leader lets go.
                    ProcedureKind::Transfer => Vec::new(),
                };
                for mut change in changes {
                    change.procedure = Some(p.id);
                    live.procedure_queued(p.id);
                    self.writes.queue(change);
                }
            }
        }
    }
}
