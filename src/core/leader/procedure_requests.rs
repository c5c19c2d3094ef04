//! Operator requests about procedures: start a split, list what runs, cancel. The steps
//! themselves are taken in [`super::procedures`].

use super::requests::{cluster_named, Handled};
use super::writes::Change;
use super::{Ctx, Leader};
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::leader::runtime::ClusterRuntime;
use crate::core::model::{ClusterCatalog, ClusterRecord, ProcedureKind, ProcedureRecord, ProcedureStep, Topology};
use crate::core::output::{ProcedureInfo, Response};
use crate::core::scheduler::{split_choice, Cause};
use crate::core::storage::Mutation;
use crate::core::time::Instant;

impl Leader {
    /// Starts splitting `shard`: one write grows the shard count and stores the procedure.
    pub(super) fn split_shard(&mut self, ctx: &mut Ctx, id: RequestId, cluster: &str, shard: ShardId, named: &[TableId]) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.creating_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let rt = &self.clusters[&cid];
        let refuse = |why: String| Err(MetaError::FailedPrecondition(why));
        if c.record.topology() == Topology::Static {
            return refuse(format!("cluster {cluster:?} is static: its shard count is fixed"));
        }
        if shard.index() >= c.shards.len() {
            return Err(MetaError::NotFound(format!("shard {shard} (the cluster has {})", c.shards.len())));
        }
        if let Some(p) = c.lock_of(shard) {
            return refuse(format!("shard {shard} is held by {} procedure {}; wait for it or cancel it", p.kind().name(), p.id));
        }
        if rt.intended(c, shard).transfer.is_some() {
            return Err(MetaError::Unavailable(format!("shard {shard}'s leader is being moved; retry once it has")));
        }
        let running = c.procedures.len() + rt.procedures_starting() as usize;
        if running >= ctx.config.procedures_in_flight_max {
            return Err(MetaError::Unavailable(format!("{running} procedures run, the limit (procedures_in_flight_max); retry")));
        }
        let new_shard = c.shards.len() as u32 + rt.procedures_starting();
        if new_shard >= ctx.config.shards_per_cluster_max {
            return refuse(format!("the cluster has {new_shard} shards, the limit (shards_per_cluster_max)"));
        }
        let tables = choose_tables(c, rt, shard, named, ctx.config.split_tables_max).map_err(MetaError::FailedPrecondition)?;
        self.check_backlog(ctx)?;

        let rt = self.clusters.get_mut(&cid).expect("every cluster has a runtime");
        let mut change = Change::new(cid);
        let pid = rt.alloc_id(cid, ctx.config.id_block, &mut change.mutations);
        let how = if named.is_empty() { "chosen by load" } else { "named by an operator" };
        let why = format!("split of shard {shard}: {} of its {} tables ({how}) to new shard {new_shard}", tables.len(), c.shard_tables[shard.index()].len());
        let record = ProcedureRecord {
            id: pid,
            kind: ProcedureKind::Split as u32,
            step: ProcedureStep::AwaitingTablesMoved as u32,
            shard: shard.0,
            new_shard,
            tables: tables.iter().map(|t| t.0).collect(),
            why: why.clone(),
        };
        change.mutations.push(Mutation::PutCluster(ClusterRecord { shard_count: new_shard + 1, ..c.record.clone() }));
        change.mutations.push(Mutation::PutProcedure(cid, record.clone()));
        change.procedure = Some(pid);
        rt.procedure_queued(pid);
        rt.split_starting();
        rt.log_event(ctx.now, Cause::Split, Some(shard), format!("{why} started"), ctx.config);
        let info = procedure_info(rt, &record, ctx.now);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }

    pub(super) fn list_procedures(&self, ctx: &Ctx, cluster: &str) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.creating_clusters, cluster, ctx.config)?;
        let rt = &self.clusters[&c.id()];
        let all = c.procedures.values().map(|p| procedure_info(rt, p, ctx.now)).collect();
        Ok(Handled::Reply(Response::Procedures(all)))
    }

    /// Rolls a split back while its new shard may not be led yet; refuses once it may.
    pub(super) fn cancel_procedure(&mut self, ctx: &mut Ctx, id: RequestId, cluster: &str, procedure: u64) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.creating_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let p = c.procedures.get(&procedure).ok_or_else(|| MetaError::NotFound(format!("procedure {procedure} in cluster {cluster:?}")))?;
        match p.step() {
            ProcedureStep::AwaitingTablesMoved | ProcedureStep::AwaitingSourceRelease => {}
            ProcedureStep::AwaitingNewShardOpen => {
                return Err(MetaError::FailedPrecondition(format!(
                    "procedure {procedure} has released shard {} to be led: a split only rolls forward from there",
                    p.new_shard
                )))
            }
            ProcedureStep::RollingBack => return Err(MetaError::FailedPrecondition(format!("procedure {procedure} is rolling back already"))),
        }
        self.check_backlog(ctx)?;
        let rt = self.clusters.get_mut(&cid).expect("every cluster has a runtime");
        let record = ProcedureRecord { step: ProcedureStep::RollingBack as u32, ..p.clone() };
        rt.log_event(ctx.now, Cause::Split, Some(ShardId(p.shard)), format!("split of shard {} cancelled by an operator; rolling back", p.shard), ctx.config);
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutProcedure(cid, record.clone()));
        change.procedure = Some(procedure);
        rt.procedure_queued(procedure);
        let info = procedure_info(rt, &record, ctx.now);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }
}

/// The tables a split of `shard` moves: those named, checked, or else chosen by load.
fn choose_tables(c: &ClusterCatalog, rt: &ClusterRuntime, shard: ShardId, named: &[TableId], moved_max: usize) -> Result<Vec<TableId>, String> {
    let tables = &c.shard_tables[shard.index()];
    if !named.is_empty() {
        return split_choice::check_named(shard, tables, named, moved_max);
    }
    let units = rt.loads().smoothed(shard).0.units();
    let busiest = rt.loads().busiest(shard).map(|t| (t.table, t.read_units + t.write_units));
    split_choice::choose(shard, tables, busiest, units, moved_max)
}

fn procedure_info(rt: &ClusterRuntime, p: &ProcedureRecord, now: Instant) -> ProcedureInfo {
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
