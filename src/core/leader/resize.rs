//! The scheduler's own splits and merges ([`crate::core::scheduler::splits`],
//! [`crate::core::scheduler::merges`]), and starting a split, whether an operator asked for it
//! or the scheduler found a shard that needs one. A split's start is one write: the cluster's
//! shard count grows by one and the procedure is stored at its first step;
//! [`super::procedures`] takes it from there. (A merge starts in [`super::merge`].)

use super::runtime::ClusterRuntime;
use super::writes::Change;
use super::{Ctx, Leader};
use crate::core::config::CoreConfig;
use crate::core::error::MetaError;
use crate::core::ids::*;
use crate::core::model::{ClusterCatalog, ClusterRecord, ProcedureKind, ProcedureRecord, ProcedureStep};
use crate::core::output::PlannedMove;
use crate::core::scheduler::split_choice::{self, Chosen};
use super::merge::{merge_change, merge_order, merge_refusal};
use crate::core::scheduler::merges;
use crate::core::scheduler::splits::{self, SplitNeed};
use crate::core::scheduler::Cause;
use crate::core::storage::Mutation;
use crate::core::time::Instant;

impl Leader {
    /// The scheduler's own splits and merges: each due shard whose tables can be cut starts
    /// splitting, and each due pair merging; a hot shard that cannot be cut is reported once
    /// per hot streak.
    pub(super) fn start_due_resizes(&mut self, ctx: &mut Ctx) {
        let dropping = &self.pending_clusters.dropping;
        for (&cid, rt) in self.clusters.iter_mut().filter(|(id, _)| !dropping.contains(id)) {
            let cluster = self.catalog.cluster(cid);
            for decision in resize_decisions(cluster, rt, ctx.now, ctx.config) {
                let change = match decision {
                    Resize::Split { shard, chosen, need } => {
                        let Ok(new_shard) = new_shard_for(cluster, rt, shard, ctx.config) else { break };
                        split_change(cluster, rt, shard, new_shard, chosen, need.describe(), ctx.now, ctx.config).0
                    }
                    Resize::Unsplittable { shard, why } => {
                        if rt.tell_unsplittable(shard) {
                            rt.log_event(ctx.now, Cause::Split, Some(shard), why, ctx.config);
                        }
                        continue;
                    }
                    Resize::Merge { shards: [a, b], why } => {
                        let (from, into) = merge_order(cluster, a, b);
                        if merge_refusal(cluster, rt, from, into, ctx.config).is_err() {
                            break;
                        }
                        merge_change(cluster, rt, from, into, why, ctx.now, ctx.config).0
                    }
                };
                self.writes.queue(change);
            }
        }
    }
}

/// What the scheduler would do about the shard count now.
pub(super) enum Resize {
    Split { shard: ShardId, chosen: Chosen, need: SplitNeed },
    Unsplittable { shard: ShardId, why: String },
    Merge { shards: [ShardId; 2], why: String },
}

impl Resize {
    pub(super) fn planned(&self) -> PlannedMove {
        match self {
            Resize::Split { shard, chosen, need } => {
                let text = format!("split shard {shard}: {}; {} tables move", need.describe(), chosen.tables.len());
                PlannedMove { shard: *shard, cause: Cause::Split, text }
            }
            Resize::Unsplittable { shard, why } => PlannedMove { shard: *shard, cause: Cause::Split, text: format!("no split: {why}") },
            Resize::Merge { shards: [a, b], why } => PlannedMove { shard: *a, cause: Cause::Merge, text: format!("merge shards {a} and {b}: {why}") },
        }
    }
}

/// Sets the cluster's split and merge lines for the windows that close next, and decides which
/// shards split or merge now, within the procedure limit (splits first).
pub(super) fn resize_decisions(cluster: &ClusterCatalog, rt: &mut ClusterRuntime, now: Instant, config: &CoreConfig) -> Vec<Resize> {
    let line = splits::line(cluster, rt);
    let merge_line = merges::line(line, rt);
    rt.set_resize_lines(line, merge_line);
    let room = config.procedures_in_flight_max.saturating_sub(resizes_running(cluster, rt));
    let mut decisions: Vec<Resize> = splits::due(cluster, rt, line, room)
        .into_iter()
        .map(|(shard, need)| {
            let (units, busiest) = if need.by_count() { (0.0, Vec::new()) } else { loads_of(rt, shard) };
            match split_choice::choose(shard, &cluster.shard_tables[shard.index()], busiest.into_iter(), units, need.pieces(), config.split_tables_max) {
                Ok(chosen) => Resize::Split { shard, chosen, need },
                Err(why) => Resize::Unsplittable { shard, why: format!("{}; {why}", need.describe()) },
            }
        })
        .collect();
    let splitting = decisions.iter().filter(|d| matches!(d, Resize::Split { .. })).count();
    if splitting == 0 {
        let merges = merges::due(cluster, rt, merge_line, now, room);
        decisions.extend(merges.into_iter().map(|(a, b, why)| Resize::Merge { shards: [a, b], why }));
    }
    decisions
}

/// The shard's smoothed load units and its busiest tables' units, for choosing tables.
pub(super) fn loads_of(rt: &ClusterRuntime, shard: ShardId) -> (f64, Vec<(TableId, f64)>) {
    let units = rt.loads().smoothed(shard).0.units();
    (units, rt.loads().busiest(shard).map(|t| (t.table, t.read_units + t.write_units)).collect())
}

/// Splits and merges stored or starting.
fn resizes_running(cluster: &ClusterCatalog, rt: &ClusterRuntime) -> usize {
    cluster.resizes_running() + rt.procedures_starting() as usize
}

/// Why a split or merge may not take `shard` now, if it may not: another procedure holds it
/// (a transfer's included), a transfer of it is still being stored, or the limit is reached.
pub(super) fn resizable(cluster: &ClusterCatalog, rt: &ClusterRuntime, shard: ShardId, config: &CoreConfig) -> Result<(), MetaError> {
    if let Some(p) = cluster.lock_of(shard) {
        return Err(MetaError::FailedPrecondition(format!("shard {shard} is held by {} procedure {}; wait for it or cancel it", p.kind().name(), p.id)));
    }
    if rt.intended(cluster, shard).transfer.is_some() {
        return Err(MetaError::Unavailable(format!("shard {shard}'s leader is being moved; retry once it has")));
    }
    if rt.locked(cluster, shard) {
        return Err(MetaError::Unavailable(format!("a procedure on shard {shard} is being stored; retry")));
    }
    let running = resizes_running(cluster, rt);
    if running >= config.procedures_in_flight_max {
        return Err(MetaError::Unavailable(format!("{running} splits and merges run, the limit (procedures_in_flight_max); retry")));
    }
    Ok(())
}

/// The id the shard's split would give its new shard, or why it may not split now.
pub(super) fn new_shard_for(cluster: &ClusterCatalog, rt: &ClusterRuntime, shard: ShardId, config: &CoreConfig) -> Result<u32, MetaError> {
    resizable(cluster, rt, shard, config)?;
    let new_shard = cluster.shards.len() as u32 + rt.procedures_starting();
    if new_shard >= config.shards_per_cluster_max {
        return Err(MetaError::FailedPrecondition(format!("the cluster has {new_shard} shards, the limit (shards_per_cluster_max)")));
    }
    Ok(new_shard)
}

/// The write that starts splitting `shard` into it and `new_shard`, and the procedure stored.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_change(
    cluster: &ClusterCatalog,
    rt: &mut ClusterRuntime,
    shard: ShardId,
    new_shard: u32,
    chosen: Chosen,
    reason: String,
    now: Instant,
    config: &CoreConfig,
) -> (Change, ProcedureRecord) {
    let cid = cluster.id();
    let mut change = Change::new(cid);
    let pid = rt.alloc_id(cid, config.id_block, &mut change.mutations);
    let of = cluster.shard_tables[shard.index()].len();
    let why = format!("split of shard {shard}: {} of its {of} tables to new shard {new_shard}, {reason}", chosen.tables.len());
    let record = ProcedureRecord {
        id: pid,
        kind: ProcedureKind::Split as u32,
        step: ProcedureStep::AwaitingTablesMoved as u32,
        shard: shard.0,
        new_shard,
        tables: chosen.tables.iter().map(|t| t.0).collect(),
        why: why.clone(),
        share_permille: (chosen.share.clamp(0.0, 1.0) * 1_000.0).round() as u32,
    };
    change.mutations.push(Mutation::PutCluster(ClusterRecord { shard_count: new_shard + 1, ..cluster.record.clone() }));
    change.mutations.push(Mutation::PutProcedure(cid, record.clone()));
    change.procedure = Some(pid);
    rt.procedure_starting(pid, [shard, ShardId(new_shard)]);
    rt.split_starting();
    rt.log_event(now, Cause::Split, Some(shard), format!("{why}: started"), config);
    (change, record)
}
