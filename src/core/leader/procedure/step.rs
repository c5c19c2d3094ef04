//! What every kind's steps are made of: the clocks a step may run out of, moving tables a
//! batch per write, re-opening a shard, waiting for a shard to let its tables go, storing the
//! next step, and checking that a shard may be split or merged now.

use crate::core::cause::Cause;
use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::error::MetaError;
use crate::core::ids::*;
use crate::core::leader::writes::{Change, Notice};
use crate::core::live::LiveCluster;
use crate::core::model::{
    ClusterCatalog, Mutation, ProcedureRecord, ProcedureStep, ShardRecord, TableRecord,
};
use crate::core::output::ProcedureInfo;
use crate::core::time::{Duration, Instant};

/// Table moves queued per procedure per tick, in writes (each of `txn_ops_max / 2` tables).
const MOVE_WRITES_PER_TICK: usize = 128;

/// Which of a procedure's clocks ran out: its step's, for steps that wait on nodes
/// (`procedure_step_timeout_ms`), and its own (`procedure_timeout_ms`). Both are this meta
/// leader's: they restart when another resumes the procedure.
pub(super) struct Late {
    pub step: bool,
    pub overall: bool,
}

impl Late {
    pub(super) fn of(
        live: &mut LiveCluster,
        p: &ProcedureRecord,
        now: Instant,
        config: &CoreConfig,
    ) -> Late {
        let (step_since, seen_since) = live.procedure_since(p.id, p.step, now);
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
pub(super) fn move_tables(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    tables: &[u64],
    from: ShardId,
    to: ShardId,
    config: &CoreConfig,
) -> Vec<Change> {
    let cid = cluster.id();
    let movable = |&&t: &&u64| {
        let id = TableId(t);
        cluster.tables.get(id).is_some_and(|table| table.shard == from.0) && !live.table_written(id)
    };
    let tables: Vec<u64> = tables
        .iter()
        .filter(movable)
        .copied()
        .take(MOVE_WRITES_PER_TICK * tables_per_write(config))
        .collect();
    let mut changes = Vec::new();
    for batch in tables.chunks(tables_per_write(config)) {
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutEpoch(cid, live.next_epoch()));
        for &t in batch {
            let record: TableRecord = cluster.table(TableId(t)).to_record(TableId(t));
            change.mutations.push(Mutation::PutTable(cid, TableRecord { shard: to.0, ..record }));
        }
        live.move_table_counts(cluster, from, to, batch.len() as u32);
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
pub(super) fn reopen(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    shard: ShardId,
    next: Mutation,
    now: Instant,
    config: &CoreConfig,
) -> Change {
    let rec = live.intended(cluster, shard).clone();
    reopen_as(cluster, live, rec, next, now, config)
}

/// [`reopen`] with a changed placement: `rec` at the shard's next version.
pub(super) fn reopen_as(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    mut rec: ShardRecord,
    next: Mutation,
    now: Instant,
    config: &CoreConfig,
) -> Change {
    let shard = ShardId(rec.id);
    rec.version = live.intended(cluster, shard).version + 1;
    live.set_intended(cluster, rec.clone(), now, config);
    let mut change = Change::new(cluster.id());
    change.mutations.push(Mutation::PutEpoch(cluster.id(), live.next_epoch()));
    change.mutations.push(Mutation::PutShard(cluster.id(), rec));
    change.mutations.push(next);
    change.notify(shard, Notice::Resync);
    change
}

/// Whether no node can still serve the tables a shard let go: its leader reported the
/// version without them, or it has no leader and every lease on it has run out.
pub(super) fn released(
    cluster: &ClusterCatalog,
    live: &LiveCluster,
    source: ShardId,
    now: Instant,
    config: &CoreConfig,
) -> bool {
    if config.has_bug(PlantedBug::SplitWithoutRelease) {
        return true;
    }
    if !live.intent().settled(source) {
        return false;
    }
    match cluster.shard(source).leader {
        Some(_) => live.leases().leader_ready(source),
        None => live.leases().expired(source, now, config),
    }
}

/// The procedure's record at `step`, stored.
pub(super) fn at_step(
    cluster: &ClusterCatalog,
    p: &ProcedureRecord,
    step: ProcedureStep,
) -> Mutation {
    Mutation::PutProcedure(cluster.id(), ProcedureRecord { step: step as u32, ..p.clone() })
}

/// A write of the procedure's record alone (its next step, or its deletion), logged.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_only(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    p: &ProcedureRecord,
    m: Mutation,
    cause: Cause,
    why: String,
    now: Instant,
    config: &CoreConfig,
) -> Change {
    live.log_event(now, cause, Some(ShardId(p.shard)), why, config);
    let mut change = Change::new(cluster.id());
    change.mutations.push(m);
    change
}

/// Splits and merges stored or starting.
pub(super) fn resizes_running(cluster: &ClusterCatalog, live: &LiveCluster) -> usize {
    cluster.resizes_running() + live.procedures_starting() as usize
}

/// Why a split or merge may not take `shard` now, if it may not: another procedure holds it
/// (a transfer's included), a transfer of it is still being stored, or the limit is reached.
pub(super) fn resizable(
    cluster: &ClusterCatalog,
    live: &LiveCluster,
    shard: ShardId,
    config: &CoreConfig,
) -> Result<(), MetaError> {
    if let Some(p) = cluster.lock_of(shard) {
        return Err(MetaError::FailedPrecondition(format!(
            "shard {shard} is held by {} procedure {}; wait for it or cancel it",
            p.kind().name(),
            p.id
        )));
    }
    if live.intended(cluster, shard).transfer.is_some() {
        return Err(MetaError::Unavailable(format!(
            "shard {shard}'s leader is being moved; retry once it has"
        )));
    }
    if live.locked(cluster, shard) {
        return Err(MetaError::Unavailable(format!(
            "a procedure on shard {shard} is being stored; retry"
        )));
    }
    let running = resizes_running(cluster, live);
    if running >= config.procedures_in_flight_max {
        return Err(MetaError::Unavailable(format!(
            "{running} splits and merges run, the limit (procedures_in_flight_max); retry"
        )));
    }
    Ok(())
}

/// The shard's smoothed load units and its busiest tables' units, for choosing tables.
pub(super) fn loads_of(live: &LiveCluster, shard: ShardId) -> (f64, Vec<(TableId, f64)>) {
    let units = live.loads().smoothed(shard).0.units();
    (units, live.loads().busiest(shard).map(|t| (t.table, t.read_units + t.write_units)).collect())
}

/// The procedure as requests answer it.
pub(super) fn procedure_info(
    live: &LiveCluster,
    p: &ProcedureRecord,
    now: Instant,
) -> ProcedureInfo {
    ProcedureInfo {
        id: p.id,
        kind: p.kind(),
        step: p.step(),
        shard: ShardId(p.shard),
        new_shard: ShardId(p.new_shard),
        tables: p.tables.len() as u32,
        why: p.why.clone(),
        step_age_ms: live.procedure_step_age(p.id, p.step, now),
    }
}
