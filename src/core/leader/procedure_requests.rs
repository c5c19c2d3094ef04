//! Operator requests about procedures: start a split, list what runs, cancel (a merge starts
//! in [`super::merge`]). The steps
//! themselves are taken in [`super::procedures`].

use super::requests::{cluster_named, Handled};
use super::writes::Change;
use super::{Ctx, Leader};
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::leader::runtime::ClusterRuntime;
use super::procedures::reopen_as;
use super::resize::{loads_of, new_shard_for, split_change};
use crate::core::model::{ClusterCatalog, ProcedureKind, ProcedureRecord, ProcedureStep, ShardRecord, Topology};
use crate::core::output::{ProcedureInfo, Response};
use crate::core::scheduler::split_choice::{self, Chosen};
use crate::core::scheduler::Cause;
use crate::core::storage::Mutation;
use crate::core::time::Instant;
use crate::core::validate::quoted;

impl Leader {
    /// Starts splitting `shard`: one write grows the shard count and stores the procedure.
    pub(super) fn split_shard(&mut self, ctx: &mut Ctx, id: RequestId, cluster: &str, shard: ShardId, named: &[TableId]) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let rt = &self.clusters[&cid];
        let refuse = |why: String| Err(MetaError::FailedPrecondition(why));
        if c.record.topology() == Topology::Static {
            return refuse(format!("cluster {cluster:?} is static: its shard count is fixed"));
        }
        if shard.index() >= c.shards.len() {
            return Err(MetaError::NotFound(format!("shard {shard} (the cluster has {})", c.shards.len())));
        }
        let new_shard = new_shard_for(c, rt, shard, ctx.config)?;
        let chosen = choose_tables(c, rt, shard, named, ctx.config.split_tables_max).map_err(MetaError::FailedPrecondition)?;
        self.check_backlog(ctx)?;

        let rt = self.clusters.get_mut(&cid).expect("every cluster has a runtime");
        let how = if named.is_empty() { "chosen by load" } else { "named by an operator" };
        let (change, record) = split_change(c, rt, shard, new_shard, chosen, format!("asked for by an operator ({how})"), ctx.now, ctx.config);
        let info = procedure_info(rt, &record, ctx.now);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }

    pub(super) fn list_procedures(&self, ctx: &Ctx, cluster: &str) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let rt = &self.clusters[&c.id()];
        let all = c.procedures.values().map(|p| procedure_info(rt, p, ctx.now)).collect();
        Ok(Handled::Reply(Response::Procedures(all)))
    }

    /// Rolls a split back while its new shard may not be led yet, and a merge while its
    /// source still holds its tables; refuses once either only rolls forward. A transfer is
    /// always cancelled.
    pub(super) fn cancel_procedure(&mut self, ctx: &mut Ctx, id: RequestId, cluster: &str, procedure: u64) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let p = c.procedures.get(&procedure).ok_or_else(|| MetaError::NotFound(format!("procedure {procedure} in cluster {cluster}", cluster = quoted(cluster))))?;
        let kind = p.kind().name();
        match (p.kind(), p.step()) {
            (ProcedureKind::Transfer, _) => return self.cancel_transfer(ctx, id, cid, p.clone()),
            (ProcedureKind::Split, ProcedureStep::AwaitingTablesMoved | ProcedureStep::AwaitingSourceRelease) => {}
            (ProcedureKind::Merge, ProcedureStep::AwaitingSourceRelease) => {}
            (_, ProcedureStep::RollingBack) => return Err(MetaError::FailedPrecondition(format!("procedure {procedure} is rolling back already"))),
            (ProcedureKind::Split, _) => {
                return Err(MetaError::FailedPrecondition(format!(
                    "procedure {procedure} has released shard {} to be led: a split only rolls forward from there",
                    p.new_shard
                )))
            }
            (ProcedureKind::Merge, _) => {
                return Err(MetaError::FailedPrecondition(format!(
                    "procedure {procedure} is moving tables into shard {}: a merge only rolls forward from there",
                    p.new_shard
                )))
            }
        }
        // The step judged above is the stored one: a step of its own still being written
        // (a split releasing its new shard to be led, say) would land first, and a rollback
        // decided from the older step would then move tables back from a shard that is led.
        if self.clusters[&cid].procedure_busy(procedure) {
            return Err(MetaError::Unavailable(format!("procedure {procedure} is taking a step; retry once it has landed")));
        }
        self.check_backlog(ctx)?;
        let rt = self.clusters.get_mut(&cid).expect("every cluster has a runtime");
        let record = ProcedureRecord { step: ProcedureStep::RollingBack as u32, ..p.clone() };
        let cause = if p.kind() == ProcedureKind::Merge { Cause::Merge } else { Cause::Split };
        rt.log_event(ctx.now, cause, Some(ShardId(p.shard)), format!("{kind} of shard {} cancelled by an operator; rolling back", p.shard), ctx.config);
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutProcedure(cid, record.clone()));
        change.procedure = Some(procedure);
        rt.procedure_queued(procedure);
        let info = procedure_info(rt, &record, ctx.now);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }

    /// Ends a transfer with its old leader keeping the shard, at a new version that re-opens
    /// it there. Always safe: the new leader could not have been granted a lease while the
    /// transfer stood.
    fn cancel_transfer(&mut self, ctx: &mut Ctx, id: RequestId, cid: ClusterId, p: ProcedureRecord) -> MetaResult<Handled> {
        let shard = ShardId(p.shard);
        let c = self.catalog.cluster(cid);
        let rt = &self.clusters[&cid];
        if !rt.intent().settled(shard) {
            return Err(MetaError::Unavailable(format!("shard {shard} has a change in flight (the transfer may be finishing); retry")));
        }
        self.check_backlog(ctx)?;
        let rt = self.clusters.get_mut(&cid).expect("every cluster has a runtime");
        let rec = ShardRecord { transfer: None, ..rt.intended(c, shard).clone() };
        let keeper = rec.leader.map_or("nobody".to_string(), |n| c.node(NodeId(n)).name.clone());
        rt.log_event(ctx.now, Cause::Operator, Some(shard), format!("transfer of shard {shard} cancelled by an operator; {keeper} keeps it"), ctx.config);
        let info = procedure_info(rt, &p, ctx.now);
        let change = reopen_as(c, rt, rec, Mutation::DeleteProcedure(cid, p.id), ctx.now, ctx.config);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }
}

/// The tables a split of `shard` moves: those named, checked, or else chosen by load.
fn choose_tables(c: &ClusterCatalog, rt: &ClusterRuntime, shard: ShardId, named: &[TableId], moved_max: usize) -> Result<Chosen, String> {
    let tables = &c.shard_tables[shard.index()];
    let (units, busiest) = loads_of(rt, shard);
    if !named.is_empty() {
        return split_choice::check_named(shard, tables, named, busiest.into_iter(), units, moved_max);
    }
    split_choice::choose(shard, tables, busiest.into_iter(), units, 2, moved_max)
}

pub(super) fn procedure_info(rt: &ClusterRuntime, p: &ProcedureRecord, now: Instant) -> ProcedureInfo {
    ProcedureInfo {
        id: p.id,
        kind: p.kind(),
        step: p.step(),
        shard: ShardId(p.shard),
        new_shard: ShardId(p.new_shard),
        tables: p.tables.len() as u32,
        why: p.why.clone(),
        step_age_ms: rt.procedure_step_age(p.id, p.step, now),
    }
}
