//! Operator requests about procedures once started: list what runs, cancel. (A split starts in
//! [`super::split`], a merge in [`super::merge`].)

use super::step::procedure_info;
use crate::core::cause::Cause;
use crate::core::error::{quoted, MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::leader::clusters::cluster_named;
use crate::core::leader::requests::Handled;
use crate::core::leader::writes::Change;
use crate::core::leader::{Ctx, Leader};
use crate::core::model::{Mutation, ProcedureKind, ProcedureRecord, ProcedureStep, ShardRecord};
use crate::core::output::Response;

use super::step::reopen_as;

impl Leader {
    pub(in crate::core::leader) fn list_procedures(
        &self,
        ctx: &Ctx,
        cluster: &str,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let live = &self.clusters[&c.id()];
        let all = c.procedures.values().map(|p| procedure_info(live, p, ctx.now)).collect();
        Ok(Handled::Reply(Response::Procedures(all)))
    }

    /// Rolls a split back while its new shard may not be led yet, and a merge while its
    /// source still holds its tables; refuses once either only rolls forward. A transfer is
    /// always cancelled.
    pub(in crate::core::leader) fn cancel_procedure(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        procedure: u64,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let p = c.procedures.get(&procedure).ok_or_else(|| {
            MetaError::NotFound(format!(
                "procedure {procedure} in cluster {cluster}",
                cluster = quoted(cluster)
            ))
        })?;
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
            return Err(MetaError::Unavailable(format!(
                "procedure {procedure} is taking a step; retry once it has landed"
            )));
        }
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let record = ProcedureRecord { step: ProcedureStep::RollingBack as u32, ..p.clone() };
        let cause = if p.kind() == ProcedureKind::Merge { Cause::Merge } else { Cause::Split };
        live.log_event(
            ctx.now,
            cause,
            Some(ShardId(p.shard)),
            format!("{kind} of shard {} cancelled by an operator; rolling back", p.shard),
            ctx.config,
        );
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutProcedure(cid, record.clone()));
        change.procedure = Some(procedure);
        live.procedure_queued(procedure);
        let info = procedure_info(live, &record, ctx.now);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }

    /// Ends a transfer with its old leader keeping the shard, at a new version that re-opens
    /// it there. Always safe: the new leader could not have been granted a lease while the
    /// transfer stood.
    fn cancel_transfer(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cid: ClusterId,
        p: ProcedureRecord,
    ) -> MetaResult<Handled> {
        let shard = ShardId(p.shard);
        let c = self.catalog.cluster(cid);
        let live = &self.clusters[&cid];
        if !live.intent().settled(shard) {
            return Err(MetaError::Unavailable(format!(
                "shard {shard} has a change in flight (the transfer may be finishing); retry"
            )));
        }
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let rec = ShardRecord { transfer: None, ..live.intended(c, shard).clone() };
        let keeper = rec.leader.map_or("nobody".to_string(), |n| c.node(NodeId(n)).name.clone());
        live.log_event(
            ctx.now,
            Cause::Operator,
            Some(shard),
            format!("transfer of shard {shard} cancelled by an operator; {keeper} keeps it"),
            ctx.config,
        );
        let info = procedure_info(live, &p, ctx.now);
        let change =
            reopen_as(c, live, rec, Mutation::DeleteProcedure(cid, p.id), ctx.now, ctx.config);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }
}
