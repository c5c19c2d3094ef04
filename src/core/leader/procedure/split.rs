//! Splitting a shard, of shard A into A and a new shard B, keeps every table served by at most one
//! leader (S1 per table) and in exactly one shard of the catalog (S5):
//! 1. *Start* (one write): the cluster's shard count grows by one, B is stored unassigned, and
//!    the procedure is stored at `AwaitingTablesMoved`, locking A and B.
//! 2. `AwaitingTablesMoved`: the tables move to B in the catalog, a bounded batch per write.
//!    Routes now name B, which nobody leads yet: writes routed there fail as an invalid route
//!    and are retried; writes on an older route still reach A's leader, the only node that
//!    serves the tables. Then A's version is bumped, which re-opens A on its replicas without
//!    the tables.
//! 3. `AwaitingSourceRelease`: A's leader must report that version (it no longer serves the
//!    tables), or A must be leaderless with every lease on it run out. Only then may B be led:
//!    the step ends by releasing B to the assignment pass, which gives it the best node and
//!    zone-spread followers.
//! 4. `AwaitingNewShardOpen`: B's leader reports it open; the procedure is deleted.
//!
//! A cancel, or a step timeout before B may be led, rolls back (`RollingBack`): the tables move
//! back to A, A is re-opened with them, and B stays an empty shard. Once B may be led the split
//! only rolls forward; a timeout there just ends the procedure, leaving B to the scheduler.

use super::step::{
    at_step, loads_of, move_tables, procedure_info, record_only, released, reopen, resizable, Late,
};
use crate::core::cause::Cause;
use crate::core::config::CoreConfig;
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::leader::clusters::cluster_named;
use crate::core::leader::requests::Handled;
use crate::core::leader::writes::Change;
use crate::core::leader::{Ctx, Leader};
use crate::core::live::LiveCluster;
use crate::core::model::{
    ClusterCatalog, ClusterRecord, Mutation, ProcedureKind, ProcedureRecord, ProcedureStep,
    Topology,
};
use crate::core::output::Response;
use crate::core::scheduler::split_choice::{self, Chosen};
use crate::core::time::Instant;

impl Leader {
    /// Starts splitting `shard`: one write grows the shard count and stores the procedure.
    pub(in crate::core::leader) fn split_shard(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        shard: ShardId,
        named: &[TableId],
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let live = &self.clusters[&cid];
        let refuse = |why: String| Err(MetaError::FailedPrecondition(why));
        if c.record.topology() == Topology::Static {
            return refuse(format!("cluster {cluster:?} is static: its shard count is fixed"));
        }
        if shard.index() >= c.shards.len() {
            return Err(MetaError::NotFound(format!(
                "shard {shard} (the cluster has {})",
                c.shards.len()
            )));
        }
        let new_shard = new_shard_for(c, live, shard, ctx.config)?;
        let chosen = choose_tables(c, live, shard, named, ctx.config.split_tables_max)
            .map_err(MetaError::FailedPrecondition)?;
        self.check_backlog(ctx)?;

        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let how = if named.is_empty() { "chosen by load" } else { "named by an operator" };
        let (change, record) = split_change(
            c,
            live,
            shard,
            new_shard,
            chosen,
            format!("asked for by an operator ({how})"),
            ctx.now,
            ctx.config,
        );
        let info = procedure_info(live, &record, ctx.now);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }
}

/// The writes that take the split's next step, if it can take one now.
pub(super) fn advance_split(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    p: &ProcedureRecord,
    now: Instant,
    config: &CoreConfig,
) -> Vec<Change> {
    let (source, new) = (ShardId(p.shard), ShardId(p.new_shard));
    let late = Late::of(live, p, now, config);
    match p.step() {
        ProcedureStep::AwaitingTablesMoved if late.overall => {
            let why = format!(
                "split of shard {source}: its tables did not move {}; rolling back",
                late.describe(config)
            );
            vec![record_only(
                cluster,
                live,
                p,
                at_step(cluster, p, ProcedureStep::RollingBack),
                Cause::Split,
                why,
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingTablesMoved => {
            let moves = move_tables(cluster, live, &p.tables, source, new, config);
            if !moves.is_empty() {
                return moves;
            }
            vec![reopen(
                cluster,
                live,
                source,
                at_step(cluster, p, ProcedureStep::AwaitingSourceRelease),
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingSourceRelease if released(cluster, live, source, now, config) => {
            let why = format!(
                "split of shard {source}: its leader let the tables go; shard {new} may now be led"
            );
            live.split_load(cluster, source, new, p.share_permille as f64 / 1_000.0);
            vec![record_only(
                cluster,
                live,
                p,
                at_step(cluster, p, ProcedureStep::AwaitingNewShardOpen),
                Cause::Split,
                why,
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingSourceRelease if late.any() => {
            let why = format!(
                "split of shard {source}: its leader did not let the tables go {}; rolling back",
                late.describe(config)
            );
            vec![record_only(
                cluster,
                live,
                p,
                at_step(cluster, p, ProcedureStep::RollingBack),
                Cause::Split,
                why,
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingNewShardOpen if live.leases().leader_ready(new) || late.any() => {
            let how = if !live.leases().leader_ready(new) {
                "its leader has not reported it open yet; the scheduler takes over"
            } else {
                "open"
            };
            let why = format!("split of shard {source} done: shard {new} {how}");
            vec![record_only(
                cluster,
                live,
                p,
                Mutation::DeleteProcedure(cluster.id(), p.id),
                Cause::Split,
                why,
                now,
                config,
            )]
        }
        ProcedureStep::RollingBack => {
            let moves = move_tables(cluster, live, &p.tables, new, source, config);
            if !moves.is_empty() {
                return moves;
            }
            live.log_event(
                now,
                Cause::Split,
                Some(source),
                format!("split of shard {source} rolled back; shard {new} stays, empty"),
                config,
            );
            vec![reopen(
                cluster,
                live,
                source,
                Mutation::DeleteProcedure(cluster.id(), p.id),
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingSourceRelease | ProcedureStep::AwaitingNewShardOpen => Vec::new(),
        ProcedureStep::AwaitingTargetOpen | ProcedureStep::AwaitingLeaderRelease => {
            unreachable!("not a split's step")
        }
    }
}

/// The tables a split of `shard` moves: those named, checked, or else chosen by load.
fn choose_tables(
    c: &ClusterCatalog,
    live: &LiveCluster,
    shard: ShardId,
    named: &[TableId],
    moved_max: usize,
) -> Result<Chosen, String> {
    let tables = &c.shard_tables[shard.index()];
    let (units, busiest) = loads_of(live, shard);
    if !named.is_empty() {
        return split_choice::check_named(
            shard,
            tables,
            named,
            busiest.into_iter(),
            units,
            moved_max,
        );
    }
    split_choice::choose(shard, tables, busiest.into_iter(), units, 2, moved_max)
}

/// The id the shard's split would give its new shard, or why it may not split now.
pub(super) fn new_shard_for(
    cluster: &ClusterCatalog,
    live: &LiveCluster,
    shard: ShardId,
    config: &CoreConfig,
) -> Result<u32, MetaError> {
    resizable(cluster, live, shard, config)?;
    let new_shard = cluster.shards.len() as u32 + live.procedures_starting();
    if new_shard >= config.shards_per_cluster_max {
        return Err(MetaError::FailedPrecondition(format!(
            "the cluster has {new_shard} shards, the limit (shards_per_cluster_max)"
        )));
    }
    Ok(new_shard)
}

/// The write that starts splitting `shard` into it and `new_shard`, and the procedure stored.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_change(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    shard: ShardId,
    new_shard: u32,
    chosen: Chosen,
    reason: String,
    now: Instant,
    config: &CoreConfig,
) -> (Change, ProcedureRecord) {
    let cid = cluster.id();
    let mut change = Change::new(cid);
    let pid = live.alloc_id(cid, config.id_block, &mut change.mutations);
    let of = cluster.shard_tables[shard.index()].len();
    let why = format!(
        "split of shard {shard}: {} of its {of} tables to new shard {new_shard}, {reason}",
        chosen.tables.len()
    );
    let record = ProcedureRecord {
        id: pid,
        kind: ProcedureKind::Split as u32,
        step: ProcedureStep::AwaitingTablesMoved as u32,
        shard: shard.0,
        new_shard,
        tables: chosen.tables.iter().map(|t| t.0).collect(),
        why: why.clone(),
        share_permille: (chosen.share.clamp(0.0, 1.0) * 1_000.0).round() as u32,
        cause: Cause::Split.code(),
    };
    change.mutations.push(Mutation::PutCluster(ClusterRecord {
        shard_count: new_shard + 1,
        ..cluster.record.clone()
    }));
    change.mutations.push(Mutation::PutProcedure(cid, record.clone()));
    change.procedure = Some(pid);
    live.procedure_starting(pid, [shard, ShardId(new_shard)]);
    live.split_starting();
    live.log_event(now, Cause::Split, Some(shard), format!("{why}: started"), config);
    (change, record)
}
