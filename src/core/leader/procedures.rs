//! Driving procedures: every tick, each stored procedure with no write of its own in flight
//! takes its next step. A procedure's record names its step, so that a new meta leader resumes
//! it from storage; what it waits on (a node's report) is read afresh from the runtime.
//!
//! **A split**, of shard A into A and a new shard B, keeps every table served by at most one
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

use super::runtime::ClusterRuntime;
use super::writes::{Change, Notice};
use super::{Ctx, Leader};
use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::ids::*;
use crate::core::model::{ClusterCatalog, ProcedureKind, ProcedureRecord, ProcedureStep, ShardRecord, TableRecord};
use crate::core::scheduler::Cause;
use crate::core::storage::Mutation;
use crate::core::time::{Duration, Instant};

/// Table moves queued per procedure per tick, in writes (each of `txn_ops_max / 2` tables).
const MOVE_WRITES_PER_TICK: usize = 128;

impl Leader {
    pub(super) fn advance_procedures(&mut self, ctx: &mut Ctx) {
        let dropping = &self.pending_clusters.dropping;
        for (&cid, rt) in self.clusters.iter_mut().filter(|(id, _)| !dropping.contains(id)) {
            let cluster = self.catalog.cluster(cid);
            for p in cluster.procedures.values() {
                if rt.procedure_busy(p.id) {
                    continue;
                }
                let changes = match p.kind() {
                    ProcedureKind::Split => advance_split(cluster, rt, p, ctx.now, ctx.config),
                    ProcedureKind::Merge => super::merge::advance_merge(cluster, rt, p, ctx.now, ctx.config),
                    // Its one step ends in a placement decision: the planner takes it
                    // (`Planner::finish_transfers`), as the old leader lets go.
                    ProcedureKind::Transfer => Vec::new(),
                };
                for mut change in changes {
                    change.procedure = Some(p.id);
                    rt.procedure_queued(p.id);
                    self.writes.queue(change);
                }
            }
        }
    }
}

/// The writes that take the split's next step, if it can take one now.
fn advance_split(cluster: &ClusterCatalog, rt: &mut ClusterRuntime, p: &ProcedureRecord, now: Instant, config: &CoreConfig) -> Vec<Change> {
    let (source, new) = (ShardId(p.shard), ShardId(p.new_shard));
    let late = Late::of(rt, p, now, config);
    match p.step() {
        ProcedureStep::AwaitingTablesMoved if late.overall => {
            let why = format!("split of shard {source}: its tables did not move {}; rolling back", late.describe(config));
            vec![record_only(cluster, rt, p, at_step(cluster, p, ProcedureStep::RollingBack), Cause::Split, why, now, config)]
        }
        ProcedureStep::AwaitingTablesMoved => {
            let moves = move_tables(cluster, rt, &p.tables, source, new, config);
            if !moves.is_empty() {
                return moves;
            }
            vec![reopen(cluster, rt, source, at_step(cluster, p, ProcedureStep::AwaitingSourceRelease), now, config)]
        }
        ProcedureStep::AwaitingSourceRelease if released(cluster, rt, source, now, config) => {
            let why = format!("split of shard {source}: its leader let the tables go; shard {new} may now be led");
            rt.split_load(cluster, source, new, p.share_permille as f64 / 1_000.0);
            vec![record_only(cluster, rt, p, at_step(cluster, p, ProcedureStep::AwaitingNewShardOpen), Cause::Split, why, now, config)]
        }
        ProcedureStep::AwaitingSourceRelease if late.any() => {
            let why = format!("split of shard {source}: its leader did not let the tables go {}; rolling back", late.describe(config));
            vec![record_only(cluster, rt, p, at_step(cluster, p, ProcedureStep::RollingBack), Cause::Split, why, now, config)]
        }
        ProcedureStep::AwaitingNewShardOpen if rt.leases().leader_ready(new) || late.any() => {
            let how = if !rt.leases().leader_ready(new) { "its leader has not reported it open yet; the scheduler takes over" } else { "open" };
            let why = format!("split of shard {source} done: shard {new} {how}");
            vec![record_only(cluster, rt, p, Mutation::DeleteProcedure(cluster.id(), p.id), Cause::Split, why, now, config)]
        }
        ProcedureStep::RollingBack => {
            let moves = move_tables(cluster, rt, &p.tables, new, source, config);
            if !moves.is_empty() {
                return moves;
            }
            rt.log_event(now, Cause::Split, Some(source), format!("split of shard {source} rolled back; shard {new} stays, empty"), config);
            vec![reopen(cluster, rt, source, Mutation::DeleteProcedure(cluster.id(), p.id), now, config)]
        }
        ProcedureStep::AwaitingSourceRelease | ProcedureStep::AwaitingNewShardOpen => Vec::new(),
        ProcedureStep::AwaitingTargetOpen | ProcedureStep::AwaitingLeaderRelease => unreachable!("not a split's step"),
    }
}

/// Which of a procedure's clocks ran out: its step's, for steps that wait on nodes
/// (`procedure_step_timeout_ms`), and its own (`procedure_timeout_ms`). Both are this meta
/// leader's: they restart when another resumes the procedure.
pub(super) struct Late {
    pub step: bool,
    pub overall: bool,
}

impl Late {
    pub(super) fn of(rt: &mut ClusterRuntime, p: &ProcedureRecord, now: Instant, config: &CoreConfig) -> Late {
        let (step_since, seen_since) = rt.procedure_since(p.id, p.step, now);
        Late {
            step: now >= step_since + Duration(config.procedure_step_timeout_ms),
            overall: now >= seen_since + Duration(config.procedure_timeout_ms),
        }
    }

    pub(super) fn any(&self) -> bool {
        self.step || self.overall
    }

    /// "within N ms", naming the clock that ran out.
    pub(super) fn describe(&self, config: &CoreConfig) -> String {
        if self.overall {
            format!("within {} ms in all (procedure_timeout_ms)", config.procedure_timeout_ms)
        } else {
            format!("within {} ms (procedure_step_timeout_ms)", config.procedure_step_timeout_ms)
        }
    }
}

/// Writes that move those of `tables` still in `from` to `to`, a batch each; none when all
/// have moved. A table being dropped or altered is left alone until that lands: a move written
/// from the record before it would bring the table back, or its old schema.
pub(super) fn move_tables(cluster: &ClusterCatalog, rt: &mut ClusterRuntime, tables: &[u64], from: ShardId, to: ShardId, config: &CoreConfig) -> Vec<Change> {
    let cid = cluster.id();
    let movable = |&&t: &&u64| {
        let id = TableId(t);
        cluster.tables.get(id).is_some_and(|table| table.shard == from.0) && !rt.table_written(id)
    };
    let tables: Vec<u64> = tables.iter().filter(movable).copied().take(MOVE_WRITES_PER_TICK * tables_per_write(config)).collect();
    let mut changes = Vec::new();
    for batch in tables.chunks(tables_per_write(config)) {
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutEpoch(cid, rt.next_epoch()));
        for &t in batch {
            let record: TableRecord = cluster.table(TableId(t)).to_record(TableId(t));
            change.mutations.push(Mutation::PutTable(cid, TableRecord { shard: to.0, ..record }));
        }
        rt.move_table_counts(cluster, from, to, batch.len() as u32);
        changes.push(change);
    }
    changes
}

/// Tables moved per write: half a transaction, leaving room for the rest of the change.
fn tables_per_write(config: &CoreConfig) -> usize {
    (config.txn_ops_max / 2).max(1)
}

/// Bumps the shard's version, which re-opens it on its replicas with the tables the catalog now
/// gives it; `next` stores the procedure's next step (or its end) in the same write.
pub(super) fn reopen(cluster: &ClusterCatalog, rt: &mut ClusterRuntime, shard: ShardId, next: Mutation, now: Instant, config: &CoreConfig) -> Change {
    let rec = rt.intended(cluster, shard).clone();
    reopen_as(cluster, rt, rec, next, now, config)
}

/// [`reopen`] with a changed placement: `rec` at the shard's next version.
pub(super) fn reopen_as(cluster: &ClusterCatalog, rt: &mut ClusterRuntime, mut rec: ShardRecord, next: Mutation, now: Instant, config: &CoreConfig) -> Change {
    let shard = ShardId(rec.id);
    rec.version = rt.intended(cluster, shard).version + 1;
    rt.set_intended(cluster, rec.clone(), now, config);
    let mut change = Change::new(cluster.id());
    change.mutations.push(Mutation::PutEpoch(cluster.id(), rt.next_epoch()));
    change.mutations.push(Mutation::PutShard(cluster.id(), rec));
    change.mutations.push(next);
    change.notify(shard, Notice::Resync);
    change
}

/// Whether no node can still serve the tables a shard let go: its leader reported the
/// version without them, or it has no leader and every lease on it has run out.
pub(super) fn released(cluster: &ClusterCatalog, rt: &ClusterRuntime, source: ShardId, now: Instant, config: &CoreConfig) -> bool {
    if config.has_bug(PlantedBug::SplitWithoutRelease) {
        return true;
    }
    if !rt.intent().settled(source) {
        return false;
    }
    match cluster.shard(source).leader {
        Some(_) => rt.leases().leader_ready(source),
        None => rt.leases().expired(source, now, config),
    }
}

/// The procedure's record at `step`, stored.
pub(super) fn at_step(cluster: &ClusterCatalog, p: &ProcedureRecord, step: ProcedureStep) -> Mutation {
    Mutation::PutProcedure(cluster.id(), ProcedureRecord { step: step as u32, ..p.clone() })
}

/// A write of the procedure's record alone (its next step, or its deletion), logged.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_only(cluster: &ClusterCatalog, rt: &mut ClusterRuntime, p: &ProcedureRecord, m: Mutation, cause: Cause, why: String, now: Instant, config: &CoreConfig) -> Change {
    rt.log_event(now, cause, Some(ShardId(p.shard)), why, config);
    let mut change = Change::new(cluster.id());
    change.mutations.push(m);
    change
}
