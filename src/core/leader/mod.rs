//! The meta leader's state and the parts of its behaviour that every input shares: landing
//! acknowledged writes, recovering from writes with unknown outcome, and sending commands.

mod alter;
mod clusters;
mod consistency;
mod drops;
mod heartbeat;
mod operate;
mod paging;
mod placement;
mod procedure;
mod requests;
mod restart;
mod route_watch;
mod schedule;
mod views;
mod what_if;
pub mod writes;

use std::collections::BTreeMap;

use self::clusters::PendingClusters;
use self::route_watch::{RouteWatches, Touched};
use self::writes::{Change, Notice, Writes};
use super::config::{CoreConfig, PlantedBug};
use super::error::MetaError;
use super::ids::*;
use super::input::{Role, WatchRoutes};
use super::model::Mutation;
use super::model::{Catalog, ClusterCatalog, ProcedureKind};
use super::outbox::Outbox;
use super::output::{CommandKind, NodeMessage, Output, ResignReason, ShardCommand};
use super::settings::SchedulerSettings;
use super::storage::{LoadCause, Snapshot, WriteResult};
use super::time::Instant;
use crate::core::live::awaiting::Awaiting;
use crate::core::live::LiveCluster;

/// What every leader method needs from the core around it.
pub struct Ctx<'a> {
    /// The time of the input being handled.
    pub now: Instant,
    /// The core's settings and limits.
    pub config: &'a CoreConfig,
    /// Where outputs go, in order.
    pub out: &'a mut Outbox,
}

/// The leader's state is private to this module and its children: the core reaches it only
/// through the methods here, so no other code can change a catalog or an index behind the
/// leader's back.
pub struct Leader {
    term: Term,
    /// Leadership surely holds until then; past it the leader grants, decides and answers nothing.
    valid_until: Instant,
    catalog: Catalog,
    clusters: BTreeMap<ClusterId, LiveCluster>,
    writes: Writes,
    /// Clusters being created or dropped (kinds of write in flight; the others are per cluster,
    /// in `crate::core::live::awaiting`).
    pending_clusters: PendingClusters,
    /// Reloads that failed in a row while recovering, and when to ask for the next one.
    reload_failures: u32,
    reload_due: Option<Instant>,
    /// Route watchers, and the recent route changes they resume from.
    watches: RouteWatches,
    /// A shard is waiting on a scheduling pass with no leader (a transfer's old leader let
    /// go, or a node left): the next pass should not wait for the timer.
    pass_soon: bool,
}

/// What the core must do after a write result or a failed reload.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterWrite {
    /// Lead on.
    Continue,
    /// Give the term up, for this reason.
    StepDown(ResignReason),
}

impl Leader {
    /// A leader of `term` over the catalog it loaded, valid until `valid_until` unless renewed.
    pub fn new(
        term: Term,
        valid_until: Instant,
        Snapshot { catalog, fence }: Snapshot,
        now: Instant,
        config: &CoreConfig,
        last_write: u64,
    ) -> Leader {
        let clusters = catalog
            .clusters
            .iter()
            .map(|(&id, c)| (id, LiveCluster::new(c, now, config)))
            .collect();
        let mut leader = Leader {
            term,
            valid_until,
            catalog,
            clusters,
            writes: Writes::starting_after(last_write, fence),
            pending_clusters: PendingClusters::default(),
            reload_failures: 0,
            reload_due: None,
            watches: RouteWatches::new(term),
            pass_soon: false,
        };
        if config.has_bug(PlantedBug::ResetEpochOnLeaderChange) {
            // The next topology change then stores a lower epoch than nodes have seen.
            leader.clusters.values_mut().for_each(LiveCluster::forget_epoch);
        }
        leader
    }

    /// The term it leads in.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Whether a scheduling pass is wanted before the timer's (see `pass_soon`); clears it.
    pub fn take_pass_soon(&mut self) -> bool {
        std::mem::take(&mut self.pass_soon)
    }

    /// When its leadership surely ends, unless renewed.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// A renewal of the term: leadership holds at least until `until`.
    pub fn extend(&mut self, until: Instant) {
        self.valid_until = self.valid_until.max(until);
    }

    /// What storage acknowledged.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The live state of one cluster.
    pub fn live_cluster(&self, cluster: ClusterId) -> Option<&LiveCluster> {
        self.clusters.get(&cluster)
    }

    /// The writes queued and in flight.
    pub fn writes(&self) -> &Writes {
        &self.writes
    }

    /// When to ask for the snapshot again after a failed reload.
    pub fn reload_due(&self) -> Option<Instant> {
        self.reload_due
    }

    /// Whether it may decide and answer at `now`: its leadership still surely holds.
    pub fn serving(&self, now: Instant) -> bool {
        now < self.valid_until
    }

    /// Opens route watch `watch` on a cluster; an error refuses it, and nothing is sent.
    pub fn watch(
        &mut self,
        ctx: &mut Ctx,
        watch: WatchId,
        req: &WatchRoutes,
    ) -> Result<(), MetaError> {
        self.ready(ctx.now)?;
        let c = clusters::cluster_named(
            &self.catalog,
            &self.pending_clusters,
            &req.cluster,
            ctx.config,
        )?;
        self.watches.open(watch, c, req, ctx.config, ctx.out)
    }

    /// Forgets a route watch its driver ended.
    pub fn unwatch(&mut self, watch: WatchId) {
        self.watches.close(watch);
    }

    /// Ends every route watch: this leadership is over.
    pub fn end_watches(&mut self, out: &mut Outbox) {
        self.watches.end_all(out);
    }

    /// Serving and not recovering: may decide and answer.
    pub fn ready(&self, now: Instant) -> Result<(), MetaError> {
        if !self.serving(now) {
            return Err(MetaError::NotLeader);
        }
        if self.writes.recovering {
            return Err(MetaError::Unavailable(
                "meta storage is recovering from a failed write; retry".into(),
            ));
        }
        Ok(())
    }

    /// Sends the next batch to storage if none is in flight.
    pub fn flush(&mut self, ctx: &mut Ctx) {
        self.writes.flush(self.term, ctx.config, &mut ctx.out.outputs);
    }

    /// A batch's result: on `Ok` its changes land (replies, commands, routes); a conflict ends
    /// the term; an unknown outcome starts a reload.
    pub fn on_write_result(
        &mut self,
        ctx: &mut Ctx,
        id: WriteId,
        result: WriteResult,
    ) -> AfterWrite {
        match result {
            WriteResult::Ok => {
                let Some(changes) = self.writes.take_in_flight(id, true) else {
                    return AfterWrite::Continue; // a duplicate or stale result
                };
                // While recovering only the barrier is in flight: its landing ends the recovery.
                self.writes.recovering = false;
                for change in changes {
                    self.land(ctx, change);
                }
                AfterWrite::Continue
            }
            WriteResult::Conflict => AfterWrite::StepDown(ResignReason::Fenced),
            WriteResult::Error => {
                if self.writes.take_in_flight(id, false).is_none() {
                    return AfterWrite::Continue;
                }
                self.writes.drain();
                self.writes.recovering = true;
                ctx.out.fail_all(&MetaError::Unavailable(
                    "meta storage write outcome unknown; retry".into(),
                ));
                ctx.out.push(Output::LoadSnapshot { term: self.term });
                AfterWrite::Continue
            }
        }
    }

    /// The snapshot asked for after an unknown write outcome: the catalog becomes exactly what
    /// storage holds, and every intent is rebuilt from it.
    pub fn on_snapshot(&mut self, ctx: &mut Ctx, Snapshot { catalog, fence }: Snapshot) {
        let (now, config) = (ctx.now, ctx.config);
        if !self.writes.idle() {
            return; // the barrier is already in flight: this is a duplicate snapshot
        }
        (self.reload_failures, self.reload_due) = (0, None);
        self.catalog = catalog;
        self.writes.reset_fence(fence);
        for (&id, cluster) in &self.catalog.clusters {
            match self.clusters.get_mut(&id) {
                Some(live) => live.reset_intent(cluster, now, config),
                None => {
                    self.clusters.insert(id, LiveCluster::new(cluster, now, config));
                }
            }
        }
        self.pending_clusters = PendingClusters::default();
        // A drop whose outcome was unknown may have landed.
        let catalog = &self.catalog;
        self.clusters.retain(|id, _| catalog.clusters.contains_key(id));
        self.watches.resync_all(ctx.out);
        self.writes.flush_barrier(self.term, &mut ctx.out.outputs);
    }

    /// The reload asked for did not load: ask again after a pause, unless storage holds what
    /// the core cannot decode, which a retry will not change.
    pub fn on_snapshot_failed(&mut self, ctx: &mut Ctx, cause: LoadCause) -> AfterWrite {
        if cause == LoadCause::Corrupt {
            return AfterWrite::StepDown(ResignReason::Unloadable);
        }
        self.reload_failures = self.reload_failures.saturating_add(1);
        self.reload_due = Some(ctx.now + cause.retry_pause(self.reload_failures));
        AfterWrite::Continue
    }

    /// Asks for the snapshot again once the pause after a failed reload is over.
    pub fn retry_reload(&mut self, ctx: &mut Ctx) {
        if self.reload_due.is_some_and(|due| due <= ctx.now) {
            self.reload_due = None;
            ctx.out.push(Output::LoadSnapshot { term: self.term });
        }
    }

    /// Applies an acknowledged change, then makes it visible.
    fn land(&mut self, ctx: &mut Ctx, change: Change) {
        let mut touched = Touched::default();
        for m in &change.mutations {
            touched.note(self.catalog.clusters.get(&change.cluster), m);
            self.catalog
                .apply(m.clone())
                .expect("the leader writes only changes consistent with its catalog");
        }
        // A new cluster's live state is built from the whole change (its id ceiling and schema).
        let fresh = !self.clusters.contains_key(&change.cluster);
        if fresh {
            let cluster = self.catalog.cluster(change.cluster);
            self.clusters.insert(change.cluster, LiveCluster::new(cluster, ctx.now, ctx.config));
        }
        // Shards this change only adds a table to, drops one from or alters one of.
        let incremental: Vec<ShardId> = change
            .notify
            .iter()
            .filter(|(_, n)| !matches!(n, Notice::Resync))
            .map(|(s, _)| *s)
            .collect();
        for m in &change.mutations {
            self.after_apply(ctx, m, &incremental);
        }
        if let (Some(id), Some(live)) = (change.procedure, self.clusters.get_mut(&change.cluster)) {
            live.procedure_landed(id);
        }
        if let Some((request, response)) = change.reply {
            ctx.out.reply(request, Ok(response));
        }
        let (Some(cluster), Some(live)) =
            (self.catalog.clusters.get(&change.cluster), self.clusters.get_mut(&change.cluster))
        else {
            return;
        };
        self.watches.record(change.cluster, touched.changes(cluster), ctx.config, ctx.out);
        for (shard, notice) in &change.notify {
            let shard = *shard;
            let rec = cluster.shard(shard);
            live.pushed(shard, Version(rec.version), ctx.now);
            // A replica the change closes (a transfer's old leader) gets only the close.
            for node in rec.replicas().filter(|&n| !change.closes.contains(&(NodeId(n), shard))) {
                let role = if rec.leader == Some(node) { Role::Leader } else { Role::Follower };
                let kind = match notice {
                    Notice::Created(table) => CommandKind::CreateTable { table: *table },
                    Notice::Dropped(tables) => CommandKind::DropTable { tables: tables.clone() },
                    Notice::Altered(table, table_version) => {
                        CommandKind::AlterTable { table: *table, table_version: *table_version }
                    }
                    Notice::Resync if change.kept.contains(&(NodeId(node), shard)) => {
                        CommandKind::ChangeRole { role }
                    }
                    Notice::Resync => open_kind(cluster, shard, role, ctx.config),
                };
                let cmd =
                    ShardCommand { shard, version: Version(rec.version), term: self.term, kind };
                push_command(ctx, self.term, cluster, live, NodeId(node), cmd);
            }
        }
        for &(node, shard) in &change.closes {
            let version = Version(cluster.shard(shard).version);
            let cmd = ShardCommand { shard, version, term: self.term, kind: CommandKind::Close };
            push_command(ctx, self.term, cluster, live, node, cmd);
        }
    }

    /// Keeps the live state in step with one landed mutation.
    fn after_apply(&mut self, ctx: &mut Ctx, m: &Mutation, incremental: &[ShardId]) {
        let c = m.cluster();
        if let Mutation::PutCluster(r) = m {
            if r.dropped {
                self.clusters.remove(&c);
                self.pending_clusters.dropping.remove(&c);
                self.watches.forget_cluster(c, ctx.out);
                return;
            }
            self.pending_clusters.creating.remove(&r.name);
            // A split grew the shard count: the live per-shard arrays grow with it.
            if let Some(live) = self.clusters.get_mut(&c) {
                live.grow(self.catalog.cluster(c));
            }
            return;
        }
        if let Mutation::DeleteClusterData(_) = m {
            return; // its tombstone, next, says what follows
        }
        let cluster = self.catalog.cluster(c);
        let live =
            self.clusters.get_mut(&c).expect("every cluster in the catalog has its live state");
        match m {
            Mutation::PutShard(_, s) => live.shard_landed(s, incremental.contains(&ShardId(s.id))),
            Mutation::PutSchema(_, s) => {
                live.write_landed(&Awaiting::SchemaRecord(s.name.clone()));
                live.write_landed(&Awaiting::SchemaDrop(SchemaId(s.id)));
            }
            Mutation::DeleteSchema(_, id) => {
                live.write_landed(&Awaiting::SchemaDrop(SchemaId(*id)));
            }
            Mutation::PutNode(_, n) => {
                live.write_landed(&Awaiting::Registration(n.name.clone()));
                live.write_landed(&Awaiting::NodeRecord(NodeId(n.id)));
                if n.id as usize == live.nodes().len() {
                    live.add_node(NodeId(n.id), ctx.now);
                }
                live.set_draining(NodeId(n.id), n.draining);
                live.set_slow_mark(NodeId(n.id), n.slow_marked);
                live.set_restart(NodeId(n.id), n.restart.as_ref());
                if n.removed {
                    live.set_removing(NodeId(n.id), false);
                    live.set_online(NodeId(n.id), false);
                }
                // Its zone may have changed (a node back in another zone, or its own record
                // back after an impostor's took its name): replicas crowded into one zone are
                // spread only by this scan, which its return may have run before this landed.
                // So may its labels, and with them where the placement rule lets it hold.
                live.deficit_scan_again();
                live.refit_node(cluster, n, ctx.config);
            }
            Mutation::PutTable(_, t) => {
                live.write_landed(&Awaiting::TableAlter(TableId(t.id)));
                let waiters =
                    live.write_landed(&Awaiting::TableRecords(SchemaId(t.schema), t.name.clone()));
                if !waiters.is_empty() {
                    let info =
                        views::table_info(cluster, TableId(t.id), cluster.table(TableId(t.id)));
                    for w in waiters {
                        let response = super::output::Response::TableCreated {
                            table: info.clone(),
                            created: false,
                        };
                        ctx.out.reply(w, Ok(response));
                    }
                }
            }
            Mutation::DeleteTable(_, t) => {
                live.write_landed(&Awaiting::TableDeletion(*t));
            }
            Mutation::PutScheduler(_, r) => live.set_settings(SchedulerSettings::from(r)),
            // Shards move to meet it from the next pass's scan.
            Mutation::PutPlacement(_, r) => {
                live.placement_landed(r.version);
                live.refit(cluster, ctx.config);
            }
            Mutation::PutCluster(_) | Mutation::PutEpoch(..) | Mutation::PutIdCeiling(..) => {}
            Mutation::DeleteClusterData(_) => unreachable!("handled above"),
            Mutation::PutProcedure(..) => {}
            Mutation::DeleteProcedure(_, id) => live.procedure_ended(*id),
        }
    }
}

/// An `Open` that carries the shard's whole table set, or none for a shard a merge empties:
/// its leader lets every table go before any moves to the merge's target (S1 per table).
fn open_kind(
    cluster: &ClusterCatalog,
    shard: ShardId,
    role: Role,
    config: &CoreConfig,
) -> CommandKind {
    let merging_away = cluster
        .lock_of(shard)
        .is_some_and(|p| p.kind() == ProcedureKind::Merge && p.shard == shard.0);
    let fenced = merging_away && !config.has_bug(PlantedBug::MergeWithoutFence);
    let tables = if fenced {
        Vec::new()
    } else {
        cluster.shard_tables[shard.index()].iter().copied().collect()
    };
    CommandKind::Open { role, tables }
}

/// Pushes a command to a node between heartbeats, if it has a stream. Lost pushes are harmless:
/// the next heartbeat shows the difference and the command is sent again.
fn push_command(
    ctx: &mut Ctx,
    term: Term,
    cluster: &ClusterCatalog,
    live: &LiveCluster,
    node: NodeId,
    cmd: ShardCommand,
) {
    let n = live.node(node);
    if let (true, Some(session)) = (n.online, n.session) {
        let message = NodeMessage {
            term,
            epoch: cluster.epoch,
            lease: None,
            commands: vec![cmd],
            heartbeat_interval_ms: ctx.config.heartbeat_interval_ms,
        };
        ctx.out.push(Output::ToNode { session, message });
    }
}
