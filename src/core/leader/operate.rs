//! Operator requests about scheduling: status, settings (pause and resume), a dry-run plan,
//! the event log, and moves by hand.

use super::clusters::{cluster_named, node_named};
use super::procedure::resize_decisions;
use super::requests::Handled;
use super::schedule::change_for;
use super::writes::Change;
use super::{Ctx, Leader};
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::live::progress::Job;
use crate::core::live::LiveCluster;
use crate::core::model::Mutation;
use crate::core::model::{ClusterCatalog, SchedulerRecord};
use crate::core::output::{EventInfo, JobStatus, NodeLoad, PlannedMove, Response, SchedulerStatus};
use crate::core::scheduler::{CpuWeighing, LoadView, Planner};
use crate::core::settings::SchedulerSettings;
use crate::core::time::Instant;
use crate::core::CoreConfig;

impl Leader {
    pub(super) fn scheduler_status(&self, ctx: &Ctx, cluster: &str) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let live = &self.clusters[&c.id()];
        Ok(Handled::Reply(Response::Scheduler(status(
            c,
            live,
            *live.settings(),
            ctx.now,
            ctx.config,
        ))))
    }

    pub(super) fn set_scheduler(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        settings: &SchedulerSettings,
    ) -> MetaResult<Handled> {
        settings.validate().map_err(MetaError::InvalidArgument)?;
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        self.check_backlog(ctx)?;
        let cid = c.id();
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let text = settings_change(live.settings(), settings);
        live.log_event(ctx.now, crate::core::cause::Cause::Operator, None, text, ctx.config);
        let response = Response::Scheduler(status(c, live, *settings, ctx.now, ctx.config));
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutScheduler(cid, SchedulerRecord::from(settings)));
        self.queue_reply(ctx, id, change, response)
    }

    /// One pass on a copy of the cluster's live state, as if the scheduler were not paused.
    pub(super) fn plan_scheduler(&self, ctx: &Ctx, cluster: &str) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let mut copy = self.clusters[&c.id()].clone();
        copy.set_settings(SchedulerSettings { paused: false, ..*copy.settings() });
        let resizes = resize_decisions(c, &mut copy, ctx.now, ctx.config);
        let moves = Planner::new(c, &mut copy, ctx.now, ctx.config).plan();
        let planned = resizes
            .iter()
            .map(|r| r.planned())
            .chain(moves.iter().map(|m| planned_move(c, m)))
            .collect();
        Ok(Handled::Reply(Response::Plan(planned)))
    }

    pub(super) fn list_events(
        &self,
        ctx: &Ctx,
        cluster: &str,
        after: u64,
        limit: u32,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let log = self.clusters[&c.id()].events();
        let limit = if limit == 0 {
            ctx.config.list_page_default
        } else {
            limit.min(ctx.config.list_page_max)
        };
        let events = log
            .after(after, limit as usize)
            .map(|e| EventInfo {
                seq: e.seq,
                age_ms: ctx.now.0.saturating_sub(e.at.0),
                cause: e.cause,
                shard: e.shard,
                text: e.text.clone(),
            })
            .collect();
        Ok(Handled::Reply(Response::Events { events, last: log.last_seq() }))
    }

    pub(super) fn move_shard(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        shard: ShardId,
        node: &str,
        reopen: bool,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let to = node_named(c, cluster, node)?;
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&c.id()).expect("every cluster has its live state");
        let mut planner = Planner::new(c, live, ctx.now, ctx.config);
        planner.requested_move(shard, to, reopen)?;
        let m = planner.moves.pop().expect("a requested move was staged");
        let response = Response::Moved(planned_move(c, &m));
        let change = change_for(c, live, m, ctx);
        self.queue_reply(ctx, id, change, response)
    }
}

fn status(
    c: &ClusterCatalog,
    live: &LiveCluster,
    settings: SchedulerSettings,
    now: Instant,
    config: &CoreConfig,
) -> SchedulerStatus {
    let view = LoadView::of(c, live, now, config);
    let overfull = view.overfull(&settings);
    let half_life = crate::core::live::recent::wobble_half_life(config.load_window_ms);
    let nodes = view
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let s = s.as_ref()?;
            let name = c.node(NodeId(i as u32)).name.clone();
            Some(NodeLoad {
                name,
                load: s.load,
                capacity: s.capacity,
                judged: s.judged,
                overfull: overfull.contains(&(i as u32)),
                stats_frozen: s.stats_frozen,
                stats_contradicted: s.stats_contradicted,
                wobble: live.recent().wobble(NodeId(i as u32), now, half_life),
            })
        })
        .collect();
    let moves_in_flight = live.intent().transfers_in_flight() as u32;
    let led: Vec<ShardId> = crate::core::scheduler::splits::led(c, live).collect();
    let shards_heating = led
        .iter()
        .filter(|&&s| (1..settings.split_windows).contains(&live.hot().streak(s)))
        .count() as u32;
    let merge_window = crate::core::Duration(settings.merge_window_ms);
    let shards_cooling = led
        .iter()
        .filter(|&&s| live.hot().cold_since(s).is_some_and(|since| now < since + merge_window))
        .count() as u32;
    SchedulerStatus {
        settings,
        mean_utilization: view.mean,
        nodes,
        moves_in_flight,
        last_event: live.events().last_seq(),
        shards_heating,
        shards_cooling,
        shards_short: crate::core::scheduler::splits::scale_out_short(c, live),
        followers_lagging: live.laggards().count(),
        placement_unsatisfied: live.unsatisfied().shards,
        nodes_standing: nodes_standing(&view, live, &settings, now, config),
        load_measure: match view.cpu {
            CpuWeighing::Counted => {
                let cpu = settings.cpu_weight_pct;
                format!("units {}% + cpu {cpu}%", 100 - cpu)
            }
            CpuWeighing::Off if settings.cpu_weight_pct == 0 => "units (cpu_weight_pct 0)".into(),
            CpuWeighing::Off => "units (no CPU time reported)".into(),
            CpuWeighing::Unreported(n) => {
                format!("units ({} reports no CPU time)", c.node(NodeId(n)).name)
            }
        },
        jobs: live
            .jobs()
            .iter()
            .map(|(n, p)| {
                let per_min = match p.job {
                    Job::Fill => settings.moves_in_per_node_per_min,
                    Job::Drain | Job::Slow => settings.moves_out_per_node_per_min,
                };
                JobStatus {
                    node: c.node(n).name.clone(),
                    job: p.job.name(),
                    done: p.done(),
                    remaining: p.remaining,
                    elapsed_ms: now.saturating_since(p.since).as_millis(),
                    eta_ms: p.eta(now, per_min).map(|d| d.as_millis()),
                }
            })
            .collect(),
    }
}

/// Nodes over the overfull line, or under the pull line, in the long run, for fewer windows than
/// `overfull_windows` (as the last pass saw them): one may shed, or pull, once it has stood
/// there long enough.
fn nodes_standing(
    view: &LoadView,
    live: &LiveCluster,
    settings: &SchedulerSettings,
    now: Instant,
    config: &CoreConfig,
) -> u32 {
    let lasts = settings.standing_needed(config.load_window_ms);
    (0..view.nodes.len() as u32)
        .filter(|&n| view.nodes[n as usize].is_some())
        .filter(|&n| {
            let standing = live.recent().standing(NodeId(n));
            standing.iter().flatten().any(|&since| now < since + lasts)
        })
        .count() as u32
}

fn planned_move(c: &ClusterCatalog, m: &crate::core::scheduler::Move) -> PlannedMove {
    let shard = ShardId(m.record.id);
    PlannedMove { shard, cause: m.cause, text: m.describe(c, c.shard(shard).leader) }
}

/// "scheduler paused", "scheduler resumed", or the settings that changed.
fn settings_change(old: &SchedulerSettings, new: &SchedulerSettings) -> String {
    match (old.paused, new.paused) {
        (false, true) => "scheduler paused".into(),
        (true, false) => "scheduler resumed".into(),
        _ if old == new => "scheduler settings stored again, unchanged".into(),
        _ => format!("scheduler settings changed to {new:?}"),
    }
}
