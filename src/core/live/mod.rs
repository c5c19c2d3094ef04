//! Live state: what the leader knows about a cluster beyond the catalog, heard from nodes or
//! decided and not yet stored; none of it durable. Each part keeps its fields private and
//! changes only through its own methods, so a derived index cannot drift from what it indexes;
//! [`LiveCluster::check_consistency`] rebuilds every one to prove it.
//! - [`nodes`]: liveness, sessions and stats of nodes, their intended load, and the load index;
//! - [`per_shard`]: one 128-byte entry per shard, holding its part of [`leases`] and [`load`]
//!   and a copy of its placement, so that a heartbeat's report takes one cache miss; and a
//!   dense copy of what the scheduler's scan over every shard reads;
//! - [`leases`]: who may hold each shard's lease, and what its leader has reported;
//! - [`intent`]: the state the catalog will have once every queued write lands;
//! - [`awaiting`]: the writes in flight that later requests must wait for, by key;
//! - [`load`]: each shard's reported load, smoothed, and when it can be trusted;
//! - [`hot`]: how many windows in a row each shard has been above the split line;
//! - [`placement`]: the order in which shards take new tables;
//! - [`recent`]: when shards and nodes last saw a leader move, for the balancer's patience;
//! - [`events`]: the scheduling events operators read.
//!
//! A new meta leader rebuilds all of it, with a grace period, from the catalog.

pub mod awaiting;
pub mod budgets;
pub mod contrast;
pub mod events;
pub mod hot;
pub mod intent;
pub mod laggards;
pub mod leases;
pub mod load;
pub mod nodes;
pub mod per_shard;
pub mod placement;
pub mod progress;
pub mod recent;
pub mod slow;
pub mod unsatisfied;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use self::awaiting::{Awaiting, InFlight};
use self::budgets::Budgets;
use self::contrast::Contrasts;
use self::events::Events;
use self::hot::Hot;
use self::intent::Intent;
use self::laggards::Laggards;
pub use self::nodes::{LiveNode, LoadIndex, Nodes};
use self::per_shard::{PerShard, Placed};
use self::placement::{Class, Placement, Standing};
use self::progress::{Job, Jobs};
use self::recent::Recent;
pub use self::unsatisfied::Unsatisfied;
use crate::core::cause::Cause;
use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::input::{Heartbeat, ShardLoad, TableLoad};
use crate::core::model::{
    ClusterCatalog, PlacementRecord, ProcedureKind, RestartRecord, ShardRecord,
};
use crate::core::model::{Mutation, NodeRecord};
use crate::core::settings::SchedulerSettings;
use crate::core::time::{Duration, Instant};

/// The leader's live state of one cluster (see the module docs for its parts).
#[derive(Clone, Debug)]
pub struct LiveCluster {
    nodes: Nodes,
    shards: PerShard,
    intent: Intent,
    in_flight: InFlight,
    hot: Hot,
    placement: Placement,
    recent: Recent,
    budgets: Budgets,
    jobs: Jobs,
    /// What each node's load reports said of shards that moved to or from it.
    contrasts: Contrasts,
    /// Followers that said they lag their leader.
    laggards: Laggards,
    /// The shards each node in a planned restart said it follows, by its last heartbeat (see
    /// [`LiveCluster::reported_following`]); bounded by the nodes restarting.
    restart_follows: BTreeMap<NodeId, BTreeSet<ShardId>>,
    /// Shards whose leader moved and whose new leader has not closed two windows yet: the node
    /// they left, the units it last reported, for the contrast, and whether the first closed.
    arrivals: BTreeMap<ShardId, (NodeId, f64, bool)>,
    events: Events,
    settings: SchedulerSettings,
    /// A node joined or came back since follower deficits were last looked for.
    deficit_scan_due: bool,
    /// Shards the placement rule cannot be met for, as the last scan found.
    unsatisfied: Unsatisfied,
    /// The placement rule last queued to be stored, until it lands.
    placement_queued: Option<PlacementRecord>,
    /// Procedures with writes queued or in flight, and how many.
    procedures_busy: BTreeMap<u64, u32>,
    /// Shards a split or merge locks from when its start is queued: the catalog holds the lock
    /// only once the start lands, and no transfer may start on them meanwhile.
    locks_starting: BTreeMap<ShardId, u64>,
    /// When this leader first saw each procedure, and at its step (for timeouts).
    procedure_steps: BTreeMap<u64, ProcedureClock>,
    /// Splits whose first write (which grows the shard count) has not landed yet: the next
    /// split's new shard id comes after theirs.
    splits_starting: u32,
    /// Shards a merge empties, from when its start is queued: new tables go elsewhere.
    merging_away: BTreeSet<ShardId>,
    /// Nodes whose removal is being written: their name is refused until it lands.
    removing: BTreeSet<NodeId>,
}

#[derive(Clone, Copy, Debug)]
struct ProcedureClock {
    step: u32,
    step_since: Instant,
    seen_since: Instant,
}

impl LiveCluster {
    /// Live state for a leader that just took over: every node is treated as alive and every
    /// assigned shard as leased for one more lease, so that a meta failover never causes a shard
    /// failover by itself.
    pub fn new(cluster: &ClusterCatalog, now: Instant, config: &CoreConfig) -> LiveCluster {
        let mut live = LiveCluster {
            nodes: Nodes::new(config.node_settle_heartbeats),
            shards: PerShard::inherited(cluster, now, config),
            intent: Intent::of(cluster),
            in_flight: InFlight::default(),
            hot: Hot::new(cluster.shards.len()),
            placement: Placement::default(),
            recent: Recent::new(cluster.shards.len()),
            budgets: Budgets::default(),
            jobs: Jobs::default(),
            contrasts: Contrasts::default(),
            laggards: Laggards::default(),
            restart_follows: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            events: Events::default(),
            settings: cluster.scheduler.as_ref().map_or(config.scheduler, SchedulerSettings::from),
            deficit_scan_due: true,
            unsatisfied: Unsatisfied::default(),
            placement_queued: None,
            procedures_busy: BTreeMap::new(),
            procedure_steps: BTreeMap::new(),
            locks_starting: BTreeMap::new(),
            removing: BTreeSet::new(),
            splits_starting: 0,
            merging_away: BTreeSet::new(),
        };
        live.reset_intent(cluster, now, config);
        live
    }

    /// Every node as this leader knows it.
    pub fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// One node as this leader knows it.
    pub fn node(&self, id: NodeId) -> &LiveNode {
        self.nodes.get(id)
    }

    /// Who may hold each shard's lease, and what its leader reported.
    pub fn leases(&self) -> &PerShard {
        &self.shards
    }

    /// The catalog as it will be once every queued write lands.
    pub fn intent(&self) -> &Intent {
        &self.intent
    }

    /// The writes in flight that later requests must wait for.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Each shard's reported load, smoothed.
    pub fn loads(&self) -> &PerShard {
        &self.shards
    }

    /// Reads the shards' state ahead of a heartbeat's loop over them (see `answer_reports`);
    /// what it returns means nothing.
    pub fn touch(&self, shards: impl Iterator<Item = ShardId>) -> u64 {
        self.shards.touch(shards)
    }

    /// The shard's leader reported its load.
    pub fn record_load(
        &mut self,
        cluster: &ClusterCatalog,
        (node, shard): (NodeId, ShardId),
        load: &ShardLoad,
        now: Instant,
    ) {
        let Some(units) = self.shards.record(shard, load, now) else { return };
        self.hot.window_closed(shard, self.shards.trusted(shard).map(|l| l.units()), now);
        self.placement.window_closed(shard);
        self.reindex(cluster, shard);
        // The new leader's second window, against what the old one reported (its first may
        // span the shard's opening, when it reports nothing yet).
        if planned(self.intended(cluster, shard)).leader == Some(node.0) {
            match self.arrivals.get_mut(&shard) {
                Some((_, _, first @ false)) => *first = true,
                Some(&mut (from, before, true)) => {
                    self.arrivals.remove(&shard);
                    self.contrasts.observed(from, node, before, units);
                }
                None => {}
            }
        }
    }

    /// What the nodes' load reports said of shards that moved (see [`contrast`]).
    pub fn contrasts(&self) -> &Contrasts {
        &self.contrasts
    }

    /// Followers that said they lag their leader (see `live::laggards`).
    pub fn laggards(&self) -> &Laggards {
        &self.laggards
    }

    /// A heartbeat of `node` reported these shards it follows, with their lag.
    pub fn heard_lags(
        &mut self,
        node: NodeId,
        follows: impl Iterator<Item = (ShardId, Option<u64>)> + Clone,
    ) {
        if self.nodes.get(node).restart.is_some() {
            let held = follows.clone().map(|(shard, _)| shard).collect();
            self.restart_follows.insert(node, held);
        }
        self.laggards.heard(node, follows);
    }

    /// Whether `node`, in a planned restart, said in its last heartbeat that it follows `shard`:
    /// a replica the catalog places there may not be open yet after the node came back.
    pub fn reported_following(&self, node: NodeId, shard: ShardId) -> bool {
        self.restart_follows.get(&node).is_some_and(|held| held.contains(&shard))
    }

    /// A heartbeat of `node` carried this stats sample counter (see `LiveNode::stats_frozen`).
    pub fn stats_sampled(&mut self, node: NodeId, sample: u64, now: Instant) {
        self.nodes.stats_sampled(node, sample, now);
    }

    /// The busiest tables the shard's leader reported.
    pub fn record_tables(&mut self, shard: ShardId, tables: &[TableLoad]) {
        self.shards.record_tables(shard, tables);
    }

    /// How long each shard has been above the split line.
    pub fn hot(&self) -> &Hot {
        &self.hot
    }

    /// The loads above which a shard's window counts as hot, and below which as cold, for the
    /// windows that close next.
    pub fn set_resize_lines(&mut self, split: Option<f64>, merge: Option<f64>) {
        self.hot.set_lines(split, merge);
    }

    /// Marks the shard as reported unsplittable; `true` the first time in its hot streak.
    pub fn tell_unsplittable(&mut self, shard: ShardId) -> bool {
        self.hot.tell_unsplittable(shard)
    }

    /// A split's source let `share` of its load go to the new shard: both are learnt afresh,
    /// each starting from its part of the source's estimate.
    pub fn split_load(
        &mut self,
        cluster: &ClusterCatalog,
        source: ShardId,
        new: ShardId,
        share: f64,
    ) {
        self.shards.split(source, new, share);
        self.hot.reset(source);
        self.hot.reset(new);
        self.reindex(cluster, source);
        self.reindex(cluster, new);
    }

    /// A merge moved `from`'s tables into `into`: `into` carries both loads, learnt afresh.
    pub fn merge_load(&mut self, cluster: &ClusterCatalog, from: ShardId, into: ShardId) {
        self.shards.merge(from, into);
        self.hot.reset(from);
        self.hot.reset(into);
        self.reindex(cluster, from);
        self.reindex(cluster, into);
    }

    /// The order in which shards take new tables.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// When leaders last moved, for the balancer's patience.
    pub fn recent(&self) -> &Recent {
        &self.recent
    }

    /// A pass balanced by load (some node's load was above the floor): below it from now on
    /// is a lull, which keeps the leader counts this pass left.
    pub fn balanced_by_load(&mut self) {
        // Node ids are dense: by index is by id.
        let leads = self.nodes.iter().map(|(_, n)| n.placeable().then_some(n.leaders));
        self.recent.balanced_by_load(leads);
    }

    /// The balancer moved load from `from` to `to` at `now`, with `placeable` nodes placeable:
    /// none flows back for the pair cooldown, and `to` is a taker as long (see the scheduler's
    /// rebalance).
    pub fn load_moved(&mut self, from: NodeId, to: NodeId, placeable: u32, now: Instant) {
        let cooldown = Duration(self.settings.pair_cooldown_ms);
        self.recent.load_moved((from, to), placeable, now, cooldown);
    }

    /// How many moves each node may still start, in and out, and has started.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// A move from `from` to `to` started at `now`, spending from both nodes' budgets.
    pub fn spend_budget(&mut self, from: NodeId, to: NodeId, now: Instant) {
        self.budgets.spend(from, to, now, &self.settings);
    }

    /// The drains, slow nodes' evictions and fills under way.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// A pass saw `node` doing `job` with so much left (`None`: no job); a job that ended is
    /// logged with what it did and how long it took.
    pub fn job_seen(
        &mut self,
        cluster: &ClusterCatalog,
        node: NodeId,
        job: Option<(Job, u32)>,
        now: Instant,
        config: &CoreConfig,
    ) {
        let Some(ended) = self.jobs.saw(node, job, now) else { return };
        let unit = ended.job.unit();
        let text = format!(
            "{} {} ended: {} {unit} in {} s{}",
            cluster.node(node).name,
            ended.job.name(),
            ended.done(),
            now.saturating_since(ended.since).as_millis() / 1_000,
            if ended.remaining > 0 {
                format!(", {} left undone", ended.remaining)
            } else {
                String::new()
            }
        );
        self.log_event(now, ended.job.cause(), None, text, config);
    }

    /// How a balancing pass saw `node` at `now` (see `Recent::stood`).
    pub fn stood(&mut self, node: NodeId, sides: [bool; 2], gap: (f64, Duration), now: Instant) {
        self.recent.stood(node, sides, gap, now);
    }

    /// A pass judged no node's standing (see `Recent::unjudged`).
    pub fn unjudged(&mut self) {
        self.recent.unjudged();
    }

    /// The scheduling event log.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Logs a scheduling event, dropping the oldest past `events_kept_max`.
    pub fn log_event(
        &mut self,
        at: Instant,
        cause: Cause,
        shard: Option<ShardId>,
        text: String,
        config: &CoreConfig,
    ) {
        self.events.push(at, cause, shard, text, config.events_kept_max);
    }

    /// Shards the placement rule cannot be met for, as the last complete scan found.
    pub fn unsatisfied(&self) -> &Unsatisfied {
        &self.unsatisfied
    }

    /// A scan got through every shard and found these against the rule with no way to meet
    /// it; a change in their number is logged.
    pub fn set_unsatisfied(&mut self, found: Unsatisfied, at: Instant, config: &CoreConfig) {
        if let Some(text) = found.change_from(&self.unsatisfied) {
            self.log_event(at, Cause::Rule, None, text, config);
        }
        self.unsatisfied = found;
    }

    /// The placement rule as the last change queued leaves it: the one being written, else the
    /// stored one.
    pub fn placement_written<'a>(&'a self, c: &'a ClusterCatalog) -> Option<&'a PlacementRecord> {
        self.placement_queued.as_ref().or(c.placement.as_ref())
    }

    /// A placement rule is being written.
    pub fn placement_queued(&mut self, rule: PlacementRecord) {
        self.placement_queued = Some(rule);
    }

    /// A placement rule landed: shards are looked at again against it.
    pub fn placement_landed(&mut self, version: u64) {
        if self.placement_queued.as_ref().is_some_and(|r| r.version <= version) {
            self.placement_queued = None;
        }
        self.deficit_scan_due = true;
    }

    /// Marks each node the placement rule keeps replicas off (see `LiveNode::misfit`): after
    /// the rule changed, or a new leader's start.
    pub fn refit(&mut self, cluster: &ClusterCatalog, config: &CoreConfig) {
        for record in cluster.nodes.iter().take(self.nodes.len()) {
            self.refit_node(cluster, record, config);
        }
    }

    /// The same for one node, whose record (its labels) changed.
    pub fn refit_node(
        &mut self,
        cluster: &ClusterCatalog,
        record: &NodeRecord,
        config: &CoreConfig,
    ) {
        let rule = cluster.placement.as_ref().filter(|r| r.constrains());
        let ignored = config.has_bug(crate::core::PlantedBug::IgnorePlacementRules);
        let misfit = !ignored && rule.is_some_and(|r| !r.fits_replica(record));
        self.nodes.set_misfit(NodeId(record.id), misfit);
    }

    /// The scheduler's settings for this cluster.
    pub fn settings(&self) -> &SchedulerSettings {
        &self.settings
    }

    /// Replaces them (an operator's change, once stored).
    pub fn set_settings(&mut self, settings: SchedulerSettings) {
        self.settings = settings;
    }

    /// What places the shard in the placement order (see [`placement`]).
    fn standing(&self, cluster: &ClusterCatalog, shard: ShardId) -> Standing {
        let rec = self.intended(cluster, shard);
        let class = match rec.leader.map(|l| self.nodes.get(NodeId(l))) {
            _ if rec.retired || self.merging_away.contains(&shard) => Class::Leaving,
            None => Class::Unassigned,
            Some(n) if n.online && n.heard => Class::Ready,
            Some(_) => Class::Assigned,
        };
        let load = self.shards.trusted(shard).map_or(0.0, |l| l.units());
        Standing { class, load, tables: self.intent.shard_tables(shard) }
    }

    fn reindex(&mut self, cluster: &ClusterCatalog, shard: ShardId) {
        let standing = self.standing(cluster, shard);
        self.placement.set(shard, standing);
    }

    /// The record the shard will have once pending writes land.
    pub fn intended<'a>(&'a self, cluster: &'a ClusterCatalog, id: ShardId) -> &'a ShardRecord {
        self.intent.shard(cluster, id)
    }

    /// Forgets every pending change: the intent becomes the catalog again. Liveness and leases
    /// are kept. A new allocation block starts at the durable ceiling, so an id handed out in a
    /// write whose outcome is unknown is never handed out again.
    pub fn reset_intent(&mut self, cluster: &ClusterCatalog, now: Instant, config: &CoreConfig) {
        // A registration whose outcome was unknown may have landed.
        while self.nodes.len() < cluster.nodes.len() {
            self.nodes.add(NodeId(self.nodes.len() as u32), now, false);
        }
        self.refit(cluster, config);
        for (id, record) in cluster.nodes.iter().enumerate() {
            let id = NodeId(id as u32);
            self.nodes.set_flags(id, self.nodes.get(id).online, record.draining);
            self.nodes.set_slow_mark(id, record.slow_marked);
            self.set_restart(id, record.restart.as_ref());
        }
        self.intent = Intent::of(cluster);
        // The catalog may have changed under the live state (a reload after an unknown outcome):
        // a split's start may have landed, and any shard's version may have moved past what
        // its leader last reported ready.
        self.grow_per_shard(cluster.shards.len());
        self.shards.reloaded(cluster);
        self.in_flight = InFlight::default();
        self.procedures_busy.clear();
        self.locks_starting.clear();
        self.removing.clear();
        self.splits_starting = 0;
        self.procedure_steps.retain(|id, _| cluster.procedures.contains_key(id));
        self.merging_away = cluster
            .procedures
            .values()
            .filter(|p| p.kind() == ProcedureKind::Merge)
            .map(|p| ShardId(p.shard))
            .collect();
        self.nodes.recount(&planned_counts(cluster, &self.intent, self.nodes.len()));
        self.placement = Placement::new(
            (0..cluster.shards.len()).map(|i| self.standing(cluster, ShardId(i as u32))),
        );
        self.deficit_scan_due = true;
    }

    /// The cluster's shard count grew (a split landed): every per-shard array grows with it.
    pub fn grow(&mut self, cluster: &ClusterCatalog) {
        let (from, to) = (self.shards.len(), cluster.shards.len());
        assert!(to >= from, "a cluster's shard count only grows ({from} to {to})");
        self.intent.grow(to);
        self.grow_per_shard(to);
        let standings: Vec<Standing> =
            (from..to).map(|i| self.standing(cluster, ShardId(i as u32))).collect();
        self.placement.grow(standings.into_iter());
        self.splits_starting = self.splits_starting.saturating_sub((to - from) as u32);
        debug_assert_eq!(self.shards.len(), to, "every per-shard array grew");
    }

    /// The per-shard arrays beside the intent and placement, to `shards` entries.
    fn grow_per_shard(&mut self, shards: usize) {
        self.shards.grow(shards);
        self.hot.grow(shards);
        self.recent.grow(shards);
    }

    /// A merge that empties `shard` is queued (`true`) or has ended (`false`).
    pub fn set_merging_away(&mut self, cluster: &ClusterCatalog, shard: ShardId, merging: bool) {
        if merging {
            self.merging_away.insert(shard);
        } else {
            self.merging_away.remove(&shard);
        }
        self.reindex(cluster, shard);
    }

    /// A split's first write is queued.
    pub fn split_starting(&mut self) {
        self.splits_starting += 1;
    }

    /// Splits whose first write is queued and not yet landed.
    pub fn procedures_starting(&self) -> u32 {
        self.splits_starting
    }

    /// Whether a write of the procedure is queued or in flight.
    pub fn procedure_busy(&self, id: u64) -> bool {
        self.procedures_busy.contains_key(&id)
    }

    /// A split's or merge's first write is queued: it locks `shards` from now.
    pub fn procedure_starting(&mut self, id: u64, shards: [ShardId; 2]) {
        self.procedure_queued(id);
        for s in shards {
            self.locks_starting.insert(s, id);
        }
    }

    /// Whether a procedure holds the shard, or will once its queued start lands.
    pub fn locked(&self, cluster: &ClusterCatalog, shard: ShardId) -> bool {
        cluster.shard_locks.contains_key(&shard) || self.locks_starting.contains_key(&shard)
    }

    /// A write of the procedure is queued: it takes no next step until that lands.
    pub fn procedure_queued(&mut self, id: u64) {
        *self.procedures_busy.entry(id).or_default() += 1;
    }

    /// A write of the procedure landed; a deleted procedure's step clock is dropped too.
    pub fn procedure_landed(&mut self, id: u64) {
        if let Some(n) = self.procedures_busy.get_mut(&id) {
            assert!(*n > 0, "procedure {id}: a landed write was queued");
            *n -= 1;
            if *n == 0 {
                self.procedures_busy.remove(&id);
                self.locks_starting.retain(|_, holder| *holder != id);
            }
        }
    }

    /// When this leader first saw procedure `id` at `step`, and first saw it at all (now, the
    /// first time it asks). Both clocks restart with a new meta leader.
    pub fn procedure_since(&mut self, id: u64, step: u32, now: Instant) -> (Instant, Instant) {
        let entry = self.procedure_steps.entry(id).or_insert(ProcedureClock {
            step,
            step_since: now,
            seen_since: now,
        });
        if entry.step != step {
            (entry.step, entry.step_since) = (step, now);
        }
        (entry.step_since, entry.seen_since)
    }

    /// How long this leader has seen the procedure at `step`, in ms (0: not yet).
    pub fn procedure_step_age(&self, id: u64, step: u32, now: Instant) -> u64 {
        self.procedure_steps
            .get(&id)
            .filter(|c| c.step == step)
            .map_or(0, |c| now.0.saturating_sub(c.step_since.0))
    }

    /// The procedure's deletion landed: its step clock goes too.
    pub fn procedure_ended(&mut self, id: u64) {
        self.procedure_steps.remove(&id);
    }

    /// Whether a drop or an alter of the table is being written: a move that rewrites its
    /// record now would undo it.
    pub fn table_written(&self, table: TableId) -> bool {
        self.in_flight.contains(&Awaiting::TableDeletion(table))
            || self.in_flight.contains(&Awaiting::TableAlter(table))
    }

    /// `count` tables move from one shard to another (a split): the intent's counts follow.
    pub fn move_table_counts(
        &mut self,
        cluster: &ClusterCatalog,
        from: ShardId,
        to: ShardId,
        count: u32,
    ) {
        assert!(from != to, "tables move between two shards");
        let total = self.intent.tables();
        self.intent.count_table(from, -(count as i32));
        self.intent.count_table(to, count as i32);
        debug_assert_eq!(self.intent.tables(), total, "a move keeps the cluster's table count");
        self.reindex(cluster, from);
        self.reindex(cluster, to);
    }

    /// A node registration landed.
    pub fn add_node(&mut self, id: NodeId, now: Instant) {
        self.nodes.add(id, now, true);
        self.deficit_scan_due = true;
    }

    /// Sets whether the node is online. The placement order is not told: callers that change
    /// a node's liveness outside tests and benchmarks go through `heard_from` or
    /// `detect_silent`, which are.
    pub fn set_online(&mut self, id: NodeId, online: bool) {
        let draining = self.nodes.get(id).draining;
        self.deficit_scan_due |= self.nodes.set_flags(id, online, draining);
        if !online {
            // An offline node's followers are promoted by no one; its next process says anew.
            self.laggards.heard(id, std::iter::empty());
        }
    }

    /// Whether `node`'s removal is being written.
    pub fn removing(&self, node: NodeId) -> bool {
        self.removing.contains(&node)
    }

    /// A removal of `node` was queued (`true`) or ended (`false`): while it is written, and for
    /// good once it lands, the node is offline and takes nothing.
    pub fn set_removing(&mut self, node: NodeId, removing: bool) {
        if removing {
            self.removing.insert(node);
            self.set_online(node, false);
        } else {
            self.removing.remove(&node);
        }
    }

    /// The drain mark joined the intent (a drain request) or landed.
    pub fn set_draining(&mut self, id: NodeId, draining: bool) {
        let online = self.nodes.get(id).online;
        self.deficit_scan_due |= self.nodes.set_flags(id, online, draining);
    }

    /// A heartbeat from `node`: it is online. `false` for a duplicate or reordered heartbeat,
    /// which must not extend any lease.
    pub fn heard_from(
        &mut self,
        cluster: &ClusterCatalog,
        node: NodeId,
        session: SessionId,
        hb: &Heartbeat,
        now: Instant,
    ) -> bool {
        let incarnation = self.nodes.get(node).incarnation;
        let Some(heard) = self.nodes.heard(node, session, hb, now) else {
            return false;
        };
        if self.nodes.get(node).incarnation != incarnation {
            self.contrasts.forget(node);
        }
        self.deficit_scan_due |= heard.placeable;
        if heard.reclassed {
            self.reindex_led_by(cluster, node);
        }
        true
    }

    /// The node said it is leaving, having stopped leading: it is offline from now, and no lease
    /// it held counts any more, so failover moves its shards on the next pass.
    pub fn node_left(&mut self, cluster: &ClusterCatalog, node: NodeId) {
        for &shard in cluster.node_shards.get(node.index()).into_iter().flatten() {
            let _ = self.shards.released(shard, node);
        }
        self.nodes.left(node);
        self.laggards.heard(node, std::iter::empty());
        self.reindex_led_by(cluster, node);
    }

    /// Marks offline every node silent for longer than a lease. New tables then avoid the
    /// shards it leads.
    pub fn detect_silent(&mut self, cluster: &ClusterCatalog, now: Instant, config: &CoreConfig) {
        for id in self.nodes.silent(now, config.lease()) {
            self.set_online(id, false);
            self.reindex_led_by(cluster, id);
        }
    }

    /// Checks every node's figures for slowness (see [`slow`]), logging each change.
    pub fn detect_slow(&mut self, cluster: &ClusterCatalog, now: Instant, config: &CoreConfig) {
        for (id, change) in self.nodes.check_slow(now, &self.settings, config.load_window_ms) {
            let name = &cluster.node(id).name;
            let text = if change.slow {
                format!("{name} is slow: {}; its leaders leave it", change.why)
            } else {
                self.deficit_scan_due = true;
                format!("{name} is well again: {}", change.why)
            };
            self.log_event(now, Cause::Slow, None, text, config);
        }
    }

    /// A node record's planned restart joined the intent or landed (`None`: none, or over).
    pub fn set_restart(&mut self, id: NodeId, restart: Option<&RestartRecord>) {
        if restart.is_none() {
            self.restart_follows.remove(&id);
        }
        let restart = restart.map(|r| (r.incarnation, Duration(r.window_ms)));
        // A node placeable again may fill follower slots left empty for want of nodes.
        self.deficit_scan_due |= self.nodes.set_restart(id, restart);
    }

    /// A placeable node's fair share of leaders by count: the leaders on placeable nodes over
    /// their number, rounded up.
    pub fn fair_leader_share(&self) -> u32 {
        let placeable = self.nodes.iter().filter(|(_, n)| n.placeable());
        let (count, leaders) = placeable.fold((0, 0), |(c, l), (_, n)| (c + 1, l + n.leaders));
        leaders.div_ceil(count.max(1))
    }

    /// Refreshes each planned restart at `now` (see [`nodes::PlannedRestart`]).
    pub fn refresh_restarts(&mut self, now: Instant) {
        self.nodes.refresh_restarts(now);
    }

    /// An operator's slow mark joined the intent (a request) or landed.
    pub fn set_slow_mark(&mut self, id: NodeId, marked: bool) {
        self.deficit_scan_due |= self.nodes.set_slow_mark(id, marked);
    }

    /// The shards `node` is meant to lead moved class (it came to life or died): those the
    /// catalog places on it, and those a pending change gives it.
    fn reindex_led_by(&mut self, cluster: &ClusterCatalog, node: NodeId) {
        let stored = cluster.node_shards.get(node.index()).into_iter().flatten().copied();
        let led: Vec<ShardId> = stored
            .chain(self.intent.pending_shards())
            .filter(|&s| self.intended(cluster, s).leader == Some(node.0))
            .collect();
        for shard in led {
            self.reindex(cluster, shard);
        }
    }

    /// Records a decided (not yet durable) shard record and keeps the load counters in step.
    /// Load counters count a shard in transfer as already moved, so that planning does not pile
    /// more work on the node it is leaving. A leader move is remembered from `now`.
    pub fn set_intended(
        &mut self,
        cluster: &ClusterCatalog,
        new: ShardRecord,
        now: Instant,
        config: &CoreConfig,
    ) {
        let id = ShardId(new.id);
        // Net change per node first, so that a node whose role stays the same costs nothing.
        let mut deltas: Vec<(u32, i32, i32)> = Vec::with_capacity(8);
        let mut count =
            |node: u32, leader: bool, d: i32| match deltas.iter_mut().find(|x| x.0 == node) {
                Some(x) => {
                    x.1 += d * leader as i32;
                    x.2 += d;
                }
                None => deltas.push((node, d * leader as i32, d)),
            };
        let old = planned(self.intended(cluster, id));
        for r in old.replicas() {
            count(r, old.leader == Some(r), -1);
        }
        let after = planned(&new);
        for r in after.replicas() {
            count(r, after.leader == Some(r), 1);
        }
        // A new leader's node reports the shard's load from scratch.
        let (was, will) = (old.leader, after.leader);
        drop(old);
        if was != will {
            // Only a shard whose load held steady says what its new leader's reports should
            // show: one that rises and falls changes of itself.
            let now_units = self.shards.estimate_units(id);
            match (was, will) {
                (Some(from), Some(_)) if self.shards.known(id) && self.shards.steady(id) => {
                    self.arrivals.insert(id, (NodeId(from), now_units, false));
                }
                _ => {
                    self.arrivals.remove(&id);
                }
            }
            self.shards.moved(id);
            // A first assignment is no move: nothing to cool down from.
            if was.is_some() {
                self.recent.moved(id, [was, will], now);
            }
        }
        for (node, leaders, replicas) in deltas {
            if leaders != 0 || replicas != 0 {
                self.nodes.adjust(NodeId(node), leaders, replicas, config);
            }
        }
        // What the loader would refuse must never be decided (a planted bug may, for its checker).
        // A debug assertion: the check allocates, and this runs for every decided move.
        debug_assert!(
            new.shape_error().is_none() || config.planted_bug.is_some(),
            "shard {id}: {:?}",
            new.shape_error()
        );
        self.intent.record(new);
        self.reindex(cluster, id);
    }

    /// A shard record landed. Unless it only carried a table's create, drop or alter
    /// (`incremental`), its new version is not ready until its leader reports it.
    pub fn shard_landed(&mut self, s: &ShardRecord, incremental: bool) {
        let id = ShardId(s.id);
        assert!(!self.intent.settled(id), "shard {id}: a landed record was pending");
        self.intent.landed(id);
        self.shards.place(s);
        if !incremental {
            self.shards.reopened(id, Version(s.version));
        }
    }

    /// The shard's leader once its queued writes land and its transfer, if any, is done:
    /// `planned(intended(..)).leader`, without reading the catalog's record for a shard with
    /// nothing pending (a scan over every shard then reads only its scan copy, see
    /// [`per_shard`]).
    pub fn planned_leader(&self, cluster: &ClusterCatalog, id: ShardId) -> Option<NodeId> {
        if self.intent.settled(id) {
            self.shards.scanned(id).planned_leader()
        } else {
            planned(self.intended(cluster, id)).leader.map(NodeId)
        }
    }

    /// Where the catalog places the shard, from the copy kept for heartbeats (see
    /// [`per_shard`]).
    pub fn placed(&self, id: ShardId) -> Placed {
        self.shards.placed(id)
    }

    /// The shard's leader reported it as leader at this version, or not as leader (`None`).
    pub fn leader_reported(&mut self, id: ShardId, reported: Option<Version>) {
        self.shards.leader_reported(id, reported);
    }

    /// A version of the shard was pushed to its replicas between heartbeats.
    pub fn pushed(&mut self, id: ShardId, version: Version, now: Instant) {
        self.shards.pushed(id, version, now);
    }

    /// Grants or renews `node`'s lease on `shard` unless the node is offline (a restart not yet
    /// admitted) or another lease may still hold.
    pub fn try_grant_lease(
        &mut self,
        shard: ShardId,
        node: NodeId,
        now: Instant,
        config: &CoreConfig,
    ) -> bool {
        let nodes = &self.nodes;
        nodes.get(node).online
            && self.shards.try_grant(shard, node, now, config, |n| !nodes.get(n).online)
    }

    /// `node` let go of `shard` (for a transfer): its lease, if it held one, is over. `true` if
    /// it held one: the transfer can finish now.
    pub fn release_lease(&mut self, shard: ShardId, node: NodeId) -> bool {
        self.shards.released(shard, node)
    }

    /// Hands out an id, raising the stored ceiling in the same change when the block runs out.
    pub fn alloc_id(
        &mut self,
        cluster: ClusterId,
        block: u64,
        mutations: &mut Vec<Mutation>,
    ) -> u64 {
        self.intent.alloc_id(cluster, block, mutations)
    }

    /// A new table's shard (see [`placement`]), now counting the table and its expected load.
    pub fn place_table(&mut self, cluster: &ClusterCatalog) -> ShardId {
        let shard = self.placement.best();
        assert!(shard.index() < cluster.shards.len(), "a new table goes to a shard that exists");
        let estimate = self.placement.table_estimate(self.intent.tables());
        self.intent.count_table(shard, 1);
        self.placement.placed(shard, estimate);
        self.reindex(cluster, shard);
        shard
    }

    /// A table of `shard` is being dropped: the shard and the cluster count one fewer.
    pub fn unplace_table(&mut self, cluster: &ClusterCatalog, shard: ShardId) {
        self.intent.count_table(shard, -1);
        self.reindex(cluster, shard);
    }

    /// A topology change: the epoch it stores.
    pub fn next_epoch(&mut self) -> Epoch {
        self.intent.next_epoch()
    }

    /// Planted bug only (see `PlantedBug::ResetEpochOnLeaderChange`).
    pub fn forget_epoch(&mut self) {
        self.intent.forget_epoch()
    }

    /// A write that later requests on `key` must wait for is queued.
    pub fn begin_write(&mut self, key: Awaiting) {
        self.in_flight.begin(key)
    }

    /// Makes `request` wait for the write of `key`; `false` when none is in flight.
    pub fn wait_for(&mut self, key: &Awaiting, request: RequestId) -> bool {
        self.in_flight.wait(key, request)
    }

    /// The write of `key` landed: the requests that waited for it.
    pub fn write_landed(&mut self, key: &Awaiting) -> Vec<RequestId> {
        self.in_flight.landed(key)
    }

    /// Whether follower deficits should be looked for, clearing the mark.
    pub fn take_deficit_scan(&mut self) -> bool {
        std::mem::take(&mut self.deficit_scan_due)
    }

    /// Looks for follower deficits again next pass (some could not be filled this one).
    pub fn deficit_scan_again(&mut self) {
        self.deficit_scan_due = true;
    }

    /// `Err` names the first derived value that disagrees with its source: each is rebuilt from
    /// the catalog and the intent and compared with what the live state holds.
    pub fn check_consistency(&self, cluster: &ClusterCatalog) -> Result<(), String> {
        if self.shards.len() != cluster.shards.len() || self.nodes.len() < cluster.nodes.len() {
            return Err(format!(
                "{} shard and {} node live states for {} shards and {} nodes",
                self.shards.len(),
                self.nodes.len(),
                cluster.shards.len(),
                cluster.nodes.len()
            ));
        }
        self.shards.check_copies(cluster)?;
        self.intent.check(cluster)?;
        self.placement
            .check((0..cluster.shards.len()).map(|i| self.standing(cluster, ShardId(i as u32))))?;
        self.nodes.check_counts(&planned_counts(cluster, &self.intent, self.nodes.len()))?;
        self.in_flight.check()
    }
}

/// Each node's intended (leaders, replicas), counting transfers as finished.
fn planned_counts(cluster: &ClusterCatalog, intent: &Intent, nodes: usize) -> Vec<(u32, u32)> {
    let mut counts = vec![(0u32, 0u32); nodes];
    for i in 0..cluster.shards.len() {
        let after = planned(intent.shard(cluster, ShardId(i as u32)));
        if let Some(l) = after.leader {
            counts[l as usize].0 += 1;
        }
        for r in after.replicas() {
            counts[r as usize].1 += 1;
        }
    }
    counts
}

/// The record a shard will have once its transfer (if any) finishes with the planned target: the
/// target leads, and the old leader takes the target's follower slot if it had one.
pub fn planned(s: &ShardRecord) -> Cow<'_, ShardRecord> {
    let Some(t) = s.transfer else { return Cow::Borrowed(s) };
    let mut after = s.clone();
    after.transfer = None;
    after.leader = Some(t.to);
    if let Some(slot) = after.followers.iter_mut().find(|f| **f == t.to) {
        *slot = t.from;
    }
    Cow::Owned(after)
}
