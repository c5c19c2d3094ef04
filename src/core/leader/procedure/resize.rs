//! The scheduler's own splits and merges: the shards [`crate::core::scheduler::splits`] and
//! [`crate::core::scheduler::merges`] find due start splitting or merging here, as an operator's
//! would ([`super::split`], [`super::merge`]).

use super::merge::{merge_change, merge_order, merge_refusal};
use super::split::{new_shard_for, split_change};
use super::step::{loads_of, resizes_running};
use crate::core::cause::Cause;
use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::leader::{Ctx, Leader};
use crate::core::live::LiveCluster;
use crate::core::model::ClusterCatalog;
use crate::core::output::PlannedMove;
use crate::core::scheduler::merges;
use crate::core::scheduler::split_choice::{self, Chosen};
use crate::core::scheduler::splits::{self, SplitNeed};
use crate::core::time::Instant;

impl Leader {
    /// The scheduler's own splits and merges: each due shard whose tables can be cut starts
    /// splitting, and each due pair merging; a hot shard that cannot be cut is reported once
    /// per hot streak.
    pub(in crate::core::leader) fn start_due_resizes(&mut self, ctx: &mut Ctx) {
        let dropping = &self.pending_clusters.dropping;
        for (&cid, live) in self.clusters.iter_mut().filter(|(id, _)| !dropping.contains(id)) {
            let cluster = self.catalog.cluster(cid);
            for decision in resize_decisions(cluster, live, ctx.now, ctx.config) {
                let change = match decision {
                    Resize::Split { shard, chosen, need } => {
                        let Ok(new_shard) = new_shard_for(cluster, live, shard, ctx.config) else {
                            break;
                        };
                        split_change(
                            cluster,
                            live,
                            shard,
                            new_shard,
                            chosen,
                            need.describe(),
                            ctx.now,
                            ctx.config,
                        )
                        .0
                    }
                    Resize::Unsplittable { shard, why } => {
                        if live.tell_unsplittable(shard) {
                            live.log_event(ctx.now, Cause::Split, Some(shard), why, ctx.config);
                        }
                        continue;
                    }
                    Resize::Merge { shards: [a, b], why } => {
                        let (from, into) = merge_order(cluster, a, b);
                        if merge_refusal(cluster, live, from, into, ctx.config).is_err() {
                            break;
                        }
                        merge_change(cluster, live, from, into, why, ctx.now, ctx.config).0
                    }
                };
                self.writes.queue(change);
            }
        }
    }
}

/// What the scheduler would do about the shard count now.
pub(in crate::core::leader) enum Resize {
    Split { shard: ShardId, chosen: Chosen, need: SplitNeed },
    Unsplittable { shard: ShardId, why: String },
    Merge { shards: [ShardId; 2], why: String },
}

impl Resize {
    pub(in crate::core::leader) fn planned(&self) -> PlannedMove {
        match self {
            Resize::Split { shard, chosen, need } => {
                let text = format!(
                    "split shard {shard}: {}; {} tables move",
                    need.describe(),
                    chosen.tables.len()
                );
                PlannedMove { shard: *shard, cause: Cause::Split, text }
            }
            Resize::Unsplittable { shard, why } => {
                PlannedMove { shard: *shard, cause: Cause::Split, text: format!("no split: {why}") }
            }
            Resize::Merge { shards: [a, b], why } => PlannedMove {
                shard: *a,
                cause: Cause::Merge,
                text: format!("merge shards {a} and {b}: {why}"),
            },
        }
    }
}

/// Sets the cluster's split and merge lines for the windows that close next, and decides which
/// shards split or merge now, within the procedure limit (splits first).
pub(in crate::core::leader) fn resize_decisions(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    now: Instant,
    config: &CoreConfig,
) -> Vec<Resize> {
    let line = splits::line(cluster, live);
    let merge_line = merges::line(line, live);
    live.set_resize_lines(line, merge_line);
    let room = config.procedures_in_flight_max.saturating_sub(resizes_running(cluster, live));
    let mut decisions: Vec<Resize> = splits::due(cluster, live, line, room)
        .into_iter()
        .map(|(shard, need)| {
            let (units, busiest) =
                if need.by_count() { (0.0, Vec::new()) } else { loads_of(live, shard) };
            match split_choice::choose(
                shard,
                &cluster.shard_tables[shard.index()],
                busiest.into_iter(),
                units,
                need.pieces(),
                config.split_tables_max,
            ) {
                Ok(chosen) => Resize::Split { shard, chosen, need },
                Err(why) => {
                    Resize::Unsplittable { shard, why: format!("{}; {why}", need.describe()) }
                }
            }
        })
        .collect();
    let splitting = decisions.iter().filter(|d| matches!(d, Resize::Split { .. })).count();
    if splitting == 0 {
        let merges = merges::due(cluster, live, merge_line, now, room);
        decisions
            .extend(merges.into_iter().map(|(a, b, why)| Resize::Merge { shards: [a, b], why }));
    }
    decisions
}
