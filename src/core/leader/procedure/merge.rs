//! Merging two shards: shard B's tables move into shard A and B is retired; its id is never
//! used again. Every table stays in exactly one shard of the catalog (S5) and is served by at
//! most one leader (S1 per table), because B lets go of *every* table before any moves:
//! 1. *Start* (one write): the procedure is stored at `AwaitingSourceRelease`, locking A and B,
//!    and B's version is bumped; a shard a merge empties is opened with no tables
//!    (`leader::open_kind`), so its replicas stop serving them. New tables go elsewhere.
//! 2. `AwaitingSourceRelease`: B's leader must report that version, or B must be leaderless
//!    with every lease on it run out. Writes to B's tables meanwhile fail as an invalid route
//!    and are retried. A timeout, or a cancel, rolls back: one write deletes the procedure and
//!    re-opens B with its tables.
//! 3. `AwaitingTablesMoved`: the tables move to A in the catalog, a bounded batch per write;
//!    then A's version is bumped, which re-opens A on its replicas with them. (A failover of A
//!    in between opens it with whatever has moved: B serves none of it.)
//! 4. `AwaitingTargetOpen`: A's leader reports the version; B is retired (no replicas, closed
//!    on its nodes) and the procedure deleted in one write. From step 3 on a merge only rolls
//!    forward.

use super::step::{
    at_step, move_tables, procedure_info, record_only, released, reopen, resizable, Late,
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
use crate::core::model::Mutation;
use crate::core::model::{
    ClusterCatalog, ProcedureKind, ProcedureRecord, ProcedureStep, ShardRecord, Topology,
};
use crate::core::output::Response;
use crate::core::time::Instant;

impl Leader {
    /// Starts merging shards `a` and `b`: the one with fewer tables moves into the other.
    pub(in crate::core::leader) fn merge_shards(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        a: ShardId,
        b: ShardId,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let live = &self.clusters[&cid];
        let (from, into) = merge_order(c, a, b);
        merge_refusal(c, live, from, into, ctx.config)?;
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let (change, record) = merge_change(
            c,
            live,
            from,
            into,
            "asked for by an operator".into(),
            ctx.now,
            ctx.config,
        );
        let info = procedure_info(live, &record, ctx.now);
        self.queue_reply(ctx, id, change, Response::Procedure(info))
    }
}

/// Which of two shards empties into the other: the one with fewer tables (then the higher id).
pub(super) fn merge_order(c: &ClusterCatalog, a: ShardId, b: ShardId) -> (ShardId, ShardId) {
    let key =
        |s: ShardId| (c.shard_tables.get(s.index()).map_or(0, |t| t.len()), std::cmp::Reverse(s.0));
    if key(b) < key(a) {
        (b, a)
    } else {
        (a, b)
    }
}

/// Why `from` may not merge into `into` now, if it may not.
pub(super) fn merge_refusal(
    c: &ClusterCatalog,
    live: &LiveCluster,
    from: ShardId,
    into: ShardId,
    config: &CoreConfig,
) -> MetaResult<()> {
    let refuse = |why: String| Err(MetaError::FailedPrecondition(why));
    if c.record.topology() == Topology::Static {
        return refuse(format!("cluster {:?} is static: its shards are fixed", c.record.name));
    }
    for s in [from, into] {
        if s.index() >= c.shards.len() {
            return Err(MetaError::NotFound(format!(
                "shard {s} (the cluster has {})",
                c.shards.len()
            )));
        }
        if c.shard(s).retired {
            return refuse(format!("shard {s} is retired: it was merged away"));
        }
        resizable(c, live, s, config)?;
    }
    if from == into {
        return refuse(format!("shard {from} cannot merge with itself"));
    }
    let max = live.settings().tables_per_shard_max as usize;
    let tables = c.shard_tables[from.index()].len() + c.shard_tables[into.index()].len();
    if max > 0 && tables > max {
        return refuse(format!(
            "the merged shard would hold {tables} tables, above tables_per_shard_max {max}"
        ));
    }
    Ok(())
}

/// The write that starts merging `from` into `into`, and the procedure stored.
pub(super) fn merge_change(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    from: ShardId,
    into: ShardId,
    reason: String,
    now: Instant,
    config: &CoreConfig,
) -> (Change, ProcedureRecord) {
    let cid = cluster.id();
    let mut ids = Vec::new();
    let pid = live.alloc_id(cid, config.id_block, &mut ids);
    let tables = cluster.shard_tables[from.index()].len();
    let why = format!(
        "merge of shard {from} ({tables} table{}) into shard {into}, {reason}",
        if tables == 1 { "" } else { "s" }
    );
    let record = ProcedureRecord {
        id: pid,
        kind: ProcedureKind::Merge as u32,
        step: ProcedureStep::AwaitingSourceRelease as u32,
        shard: from.0,
        new_shard: into.0,
        why: why.clone(),
        cause: Cause::Merge.code(),
        ..Default::default()
    };
    let mut change =
        reopen(cluster, live, from, Mutation::PutProcedure(cid, record.clone()), now, config);
    change.mutations.splice(0..0, ids);
    change.procedure = Some(pid);
    live.procedure_starting(pid, [from, into]);
    live.set_merging_away(cluster, from, true);
    live.log_event(now, Cause::Merge, Some(from), format!("{why}: started"), config);
    (change, record)
}

/// The writes that take the merge's next step, if it can take one now.
pub(super) fn advance_merge(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    p: &ProcedureRecord,
    now: Instant,
    config: &CoreConfig,
) -> Vec<Change> {
    let (from, into) = (ShardId(p.shard), ShardId(p.new_shard));
    let late = Late::of(live, p, now, config);
    let cause = Cause::Merge;
    match p.step() {
        ProcedureStep::AwaitingSourceRelease if released(cluster, live, from, now, config) => {
            let why = format!(
                "merge of shard {from}: its leader let its tables go; they move to shard {into}"
            );
            vec![record_only(
                cluster,
                live,
                p,
                at_step(cluster, p, ProcedureStep::AwaitingTablesMoved),
                cause,
                why,
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingSourceRelease if late.any() => {
            let why = format!(
                "merge of shard {from}: its leader did not let its tables go {}; rolling back",
                late.describe(config)
            );
            vec![record_only(
                cluster,
                live,
                p,
                at_step(cluster, p, ProcedureStep::RollingBack),
                cause,
                why,
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingTablesMoved => {
            let tables: Vec<u64> = cluster.shard_tables[from.index()].iter().map(|t| t.0).collect();
            let moves = move_tables(cluster, live, &tables, from, into, config);
            if !moves.is_empty() || !cluster.shard_tables[from.index()].is_empty() {
                return moves; // a table being dropped is waited for
            }
            live.merge_load(cluster, from, into);
            vec![reopen(
                cluster,
                live,
                into,
                at_step(cluster, p, ProcedureStep::AwaitingTargetOpen),
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingTargetOpen if opened(cluster, live, into) || late.any() => {
            let how = if !opened(cluster, live, into) {
                "its leader has not reported it yet; the scheduler takes over"
            } else {
                "open with its tables"
            };
            live.log_event(now, cause, Some(from), format!("merge of shard {from} into shard {into} done: shard {into} {how}; shard {from} retired"), config);
            live.set_merging_away(cluster, from, false);
            vec![retire(
                cluster,
                live,
                from,
                Mutation::DeleteProcedure(cluster.id(), p.id),
                now,
                config,
            )]
        }
        ProcedureStep::RollingBack => {
            live.log_event(now, cause, Some(from), format!("merge of shard {from} into shard {into} rolled back; shard {from} serves its tables again"), config);
            live.set_merging_away(cluster, from, false);
            vec![reopen(
                cluster,
                live,
                from,
                Mutation::DeleteProcedure(cluster.id(), p.id),
                now,
                config,
            )]
        }
        ProcedureStep::AwaitingSourceRelease | ProcedureStep::AwaitingTargetOpen => Vec::new(),
        ProcedureStep::AwaitingNewShardOpen | ProcedureStep::AwaitingLeaderRelease => {
            unreachable!("not a merge's step")
        }
    }
}

/// Whether the target's leader reports its newest version (a leaderless target counts as open:
/// whoever is assigned it opens it with its tables).
fn opened(cluster: &ClusterCatalog, live: &LiveCluster, into: ShardId) -> bool {
    live.intent().settled(into)
        && (cluster.shard(into).leader.is_none() || live.leases().leader_ready(into))
}

/// The write that retires an emptied shard: no replicas, closed on the nodes that held one.
fn retire(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    shard: ShardId,
    next: Mutation,
    now: Instant,
    config: &CoreConfig,
) -> Change {
    let old = live.intended(cluster, shard).clone();
    let rec =
        ShardRecord { id: shard.0, version: old.version + 1, retired: true, ..Default::default() };
    live.set_intended(cluster, rec.clone(), now, config);
    let mut change = Change::new(cluster.id());
    change.mutations.push(Mutation::PutEpoch(cluster.id(), live.next_epoch()));
    change.mutations.push(Mutation::PutShard(cluster.id(), rec));
    change.mutations.push(next);
    change.closes = old.replicas().map(|n| (NodeId(n), shard)).collect();
    change
}
