//! What leaves the core. Every variant says what the driver must do with it.

use super::error::MetaError;
use super::ids::*;
use super::input::Role;
use super::model::Topology;
use super::storage::WriteBatch;
use crate::core::cause::Cause;
use crate::core::settings::SchedulerSettings;

/// One thing the driver must do, in the order the core put it out.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Execute this transaction atomically, failing it unless the writer still holds
    /// `batch.term`, then report with [`Input::WriteResult`](super::Input::WriteResult). At most
    /// one batch is in flight.
    Persist(WriteBatch),
    /// Send on the node's heartbeat stream `session`; drop it if that stream is gone (the core
    /// re-sends whatever still matters on a later heartbeat).
    ToNode {
        /// The node's stream.
        session: SessionId,
        /// What to send.
        message: NodeMessage,
    },
    /// Answer request `request`.
    Reply {
        /// The request's id, as it was handed in.
        request: RequestId,
        /// The answer, or the refusal.
        result: Result<Response, MetaError>,
    },
    /// The heartbeat on stream `session` was refused, and nothing changed: end the stream by
    /// naming `redirect`, the meta node to go to, or else with `error`.
    CloseStream {
        /// The stream to end.
        session: SessionId,
        /// Where the node should go instead, if a leader is known.
        redirect: Option<Redirect>,
        /// Why, when there is nowhere to send it.
        error: MetaError,
    },
    /// A write's outcome is unknown: read every key under the storage root and hand it in as
    /// [`Input::Snapshot`](super::Input::Snapshot). Nothing is written until then.
    LoadSnapshot {
        /// The term the snapshot is for.
        term: Term,
    },
    /// Resign the election for `term`; the core already acts as a follower.
    Resign {
        /// The term to give up.
        term: Term,
        /// Why.
        reason: ResignReason,
    },
    /// Send on route watch `watch`. A watcher too slow to take it must be cut off (ended with
    /// a status that says so, then [`Input::Unwatch`](super::Input::Unwatch)), never buffered
    /// without bound.
    ToWatcher {
        /// The watch.
        watch: WatchId,
        /// What to send.
        update: RouteUpdate,
    },
    /// End route watch `watch` with `error`; the core has forgotten it.
    EndWatch {
        /// The watch.
        watch: WatchId,
        /// Why it ends.
        error: MetaError,
    },
}

/// Where a refused heartbeat stream is sent: the meta node the election names leader, and its
/// term, so that a data node can refuse to be sent back to an older leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// Its gRPC endpoint.
    pub endpoint: String,
    /// The term it leads in.
    pub term: Term,
}

/// What a route watcher is sent: the route changes that landed up to `revision`, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteUpdate {
    /// The last change's position; resume after it. It grows within a meta leader's term and
    /// from one term to the next.
    pub revision: u64,
    /// What the watcher holds may be stale (it resumed from a revision this leader no longer
    /// has, or from another leader's): drop it and read routes again. Changes after `revision`
    /// follow.
    pub resync: bool,
    /// The changes after the watcher's last revision, oldest first.
    pub changes: Vec<RouteChange>,
}

/// One route change. Each names the whole new state of what it is about, so applying one twice,
/// or after a newer read, leaves the watcher right once the later changes are applied too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteChange {
    /// A table was created in, or moved to, `shard`.
    Table {
        /// The table's schema.
        schema: String,
        /// The table's name.
        name: String,
        /// The table.
        id: TableId,
        /// The shard that holds it now.
        shard: ShardId,
    },
    /// A table was dropped.
    TableDropped {
        /// The table's schema.
        schema: String,
        /// The table's name.
        name: String,
        /// The table.
        id: TableId,
    },
    /// A shard's version, leader or followers changed (or a replica's endpoint moved).
    Shard {
        /// The shard.
        shard: ShardId,
        /// Its version now.
        version: Version,
        /// Its leader now, if it has one.
        leader: Option<Endpoint>,
        /// Its followers now.
        followers: Vec<Endpoint>,
    },
}

/// Why the core gives a term up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResignReason {
    /// Storage refused a write for this term: another leader exists.
    Fenced,
    /// The reload after a write with unknown outcome found metadata the core cannot decode:
    /// another meta node may load it, and this one must not lead without it.
    Unloadable,
}

/// A message on a node's heartbeat stream.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeMessage {
    /// The meta leader's term: a node refuses messages from an older one.
    pub term: Term,
    /// The cluster's epoch: a node refuses routes from an older one.
    pub epoch: Epoch,
    /// Present only in the reply to a heartbeat.
    pub lease: Option<LeaseGrant>,
    /// What the node must do with its shards, in order.
    pub commands: Vec<ShardCommand>,
    /// How often the node should heartbeat.
    pub heartbeat_interval_ms: u64,
}

/// Leases for the leader shards that a heartbeat reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The heartbeat this grant answers; the lease counts from the node's clock when it sent it.
    pub seq: u64,
    /// How long each lease lasts, from the heartbeat's send time.
    pub duration_ms: u64,
    /// Reported leader shards that get no lease: the node must stop leading them now.
    pub revoked: Vec<ShardId>,
}

/// One command for one shard, at one shard version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardCommand {
    /// The shard.
    pub shard: ShardId,
    /// The shard version it brings the replica to; older ones are refused.
    pub version: Version,
    /// The meta term it was decided in; older ones are refused.
    pub term: Term,
    /// What to do.
    pub kind: CommandKind,
}

/// What a shard command asks of a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Open the shard in `role` with exactly these tables (also a full re-sync).
    Open {
        /// Leader or follower.
        role: Role,
        /// Every table the shard holds.
        tables: Vec<TableId>,
    },
    /// Close the shard: the node holds no replica of it any more.
    Close,
    /// Incremental: only valid on top of `version - 1`; the table set is unchanged.
    ChangeRole {
        /// The new role.
        role: Role,
    },
    /// Incremental: only valid on top of `version - 1`.
    CreateTable {
        /// The table created.
        table: TableId,
    },
    /// Incremental: only valid on top of `version - 1`. One change can drop many tables of a
    /// shard (a cascading drop): they come in one command, not as a re-sync of every table left.
    DropTable {
        /// The tables dropped.
        tables: Vec<TableId>,
    },
    /// Incremental: only valid on top of `version - 1`. The table's encoded schema or options
    /// changed; `table_version` is its new version (read it with `GetTables`).
    AlterTable {
        /// The table altered.
        table: TableId,
        /// Its new version.
        table_version: u32,
    },
}

/// A successful reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// A cluster created.
    Cluster(ClusterInfo),
    /// A page of clusters.
    Clusters(Page<ClusterInfo>),
    /// A cluster's counts.
    View(ClusterView),
    /// A cluster dropped.
    ClusterDropped {
        /// Its id, never given again.
        id: ClusterId,
        /// The tables it held.
        tables: u64,
    },
    /// A schema created, or found.
    SchemaCreated {
        /// The schema.
        id: SchemaId,
        /// Whether this request created it (else it existed).
        created: bool,
    },
    /// The schema is gone, or (`tables` > 0) hidden, with those tables being deleted after.
    SchemaDropped {
        /// The schema.
        id: SchemaId,
        /// Tables left to delete in the background.
        tables: u64,
    },
    /// A table created, or found.
    TableCreated {
        /// The table.
        table: TableInfo,
        /// Whether this request created it (else it existed).
        created: bool,
    },
    /// A table dropped.
    TableDropped {
        /// The table.
        id: TableId,
    },
    /// The table at its new version.
    TableAltered(TableDetail),
    /// Routes of the tables asked for.
    Routes {
        /// The cluster's epoch they were read at.
        epoch: Epoch,
        /// In the order asked, sub-tables after their parent.
        routes: Vec<TableRoute>,
    },
    /// Everything stored about the tables asked for.
    TableDetails {
        /// The cluster's epoch they were read at.
        epoch: Epoch,
        /// In the order asked.
        tables: Vec<TableDetail>,
    },
    /// A page of nodes.
    Nodes(Page<NodeInfo>),
    /// A node after a drain or its cancellation.
    Node(NodeInfo),
    /// A node forgotten.
    NodeRemoved {
        /// Its name, free now.
        name: String,
    },
    /// A page of shards.
    Shards(Page<ShardInfo>),
    /// A page of tables.
    Tables(Page<TableInfo>),
    /// The scheduler's settings and view of the load.
    Scheduler(SchedulerStatus),
    /// The placement rule and how it stands (`GetPlacement`, `SetPlacement`).
    Placement(PlacementInfo),
    /// What a change would do (`WhatIf`).
    WhatIf(WhatIfReport),
    /// What a pass would do now (`PlanScheduler`).
    Plan(Vec<PlannedMove>),
    /// Scheduling events.
    Events {
        /// Oldest first.
        events: Vec<EventInfo>,
        /// The newest event's number: ask for those after it next.
        last: u64,
    },
    /// An operator's move, decided and stored.
    Moved(PlannedMove),
    /// A procedure started or changed.
    Procedure(ProcedureInfo),
    /// The procedures in flight.
    Procedures(Vec<ProcedureInfo>),
}

/// A procedure in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcedureInfo {
    /// The procedure.
    pub id: u64,
    /// Split, merge or transfer.
    pub kind: crate::core::model::ProcedureKind,
    /// What it waits on.
    pub step: crate::core::model::ProcedureStep,
    /// The shard it works on (see `ProcedureRecord::shard`).
    pub shard: ShardId,
    /// Its other shard (see `ProcedureRecord::new_shard`).
    pub new_shard: ShardId,
    /// Tables it moves.
    pub tables: u32,
    /// Why it started.
    pub why: String,
    /// How long it has been at its step, as this meta leader saw it (0: not seen yet).
    pub step_age_ms: u64,
}

/// The scheduler's settings and how it sees the cluster's load now.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerStatus {
    /// The cluster's settings.
    pub settings: SchedulerSettings,
    /// Load over capacity, across placeable nodes.
    pub mean_utilization: f64,
    /// Every placeable node.
    pub nodes: Vec<NodeLoad>,
    /// Leader transfers decided and not finished.
    pub moves_in_flight: u32,
    /// The newest event's number.
    pub last_event: u64,
    /// Led shards above the split line for fewer windows than a split needs: a split may come
    /// as their next windows close.
    pub shards_heating: u32,
    /// Led shards below the merge line for less than the merge window: a merge may come when
    /// it has passed.
    pub shards_cooling: u32,
    /// Shards the scale-out rule may yet split for: placeable nodes beyond the shards, while a
    /// shard can split and the cluster is busy or its load not yet known.
    pub shards_short: u32,
    /// Nodes over the overfull line, or under the pull line, for fewer windows than
    /// `overfull_windows`: one may shed, or pull, once it has stood there long enough.
    pub nodes_standing: u32,
    /// Followers that said they lag their leader: no leader is handed to one by plan, so a
    /// move for balance that only they could take waits until they catch up.
    pub followers_lagging: u32,
    /// Shards the placement rule cannot be met for with the nodes there are (see
    /// [`PlacementInfo::unsatisfied`]).
    pub placement_unsatisfied: u32,
    /// Drains, slow nodes' evictions and fills under way.
    pub jobs: Vec<JobStatus>,
    /// What the load is: "units 50% + cpu 50%", or units alone and why.
    pub load_measure: String,
}

/// A node's long job as `scheduler status` shows it (see `live::progress`).
#[derive(Clone, Debug, PartialEq)]
pub struct JobStatus {
    /// The node.
    pub node: String,
    /// drain, slow or fill.
    pub job: &'static str,
    /// Replicas moved (drain), leaders moved (slow), moves in (fill).
    pub done: u32,
    /// What is left, in the same unit.
    pub remaining: u32,
    /// How long it has run, in ms.
    pub elapsed_ms: u64,
    /// When it should end, from now, in ms: the pace so far, or the node's budget if that is
    /// slower; `None` before anything is done.
    pub eta_ms: Option<u64>,
}

/// A cluster's placement rule and how it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacementInfo {
    /// The rule in force; version 0 with no constraints: none was ever set.
    pub rule: super::model::PlacementRecord,
    /// Shards whose replicas or leader sit against the rule because no node that fits could
    /// take them, as the scheduler's last look at every shard found (it looks again when nodes
    /// or the rule change).
    pub unsatisfied: u32,
    /// Why, for the first of them: "shard 3: n2 lacks disk=ssd, and no placeable node that
    /// fits holds no replica of it".
    pub example: String,
}

/// A change rehearsed on a copy of the cluster (see `scheduler::rehearsal`).
#[derive(Clone, Debug, PartialEq)]
pub struct WhatIfReport {
    /// The change, in words: "drain n3".
    pub change: String,
    /// Why the change itself would be refused now, if it would (the rehearsal runs anyway,
    /// as if it had been made).
    pub refused: Option<String>,
    /// Leader moves it takes: promotions, transfers, reopens.
    pub leader_moves: u32,
    /// Replicas opened where the shard had none: data copied.
    pub replicas_copied: u32,
    /// How long the moves take at the move budgets, in ms.
    pub took_ms: u64,
    /// Whether the scheduler would run out of things to do (else the rehearsal stopped at its
    /// bound of passes).
    pub settled: bool,
    /// Shards left with fewer followers than the cluster wants.
    pub under_replicated: u32,
    /// Shards left without a leader on a live node.
    pub leaderless: u32,
    /// Shards left with a replica or leader against the placement rule.
    pub rule_violating: u32,
    /// Each node that holds or would hold anything: before and after.
    pub nodes: Vec<NodeAfter>,
    /// The first moves, as the event log would say them.
    pub moves: Vec<String>,
}

/// A node's share before and after a rehearsed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAfter {
    /// The node.
    pub name: String,
    /// Shards it leads, before and after.
    pub leaders: (u32, u32),
    /// Replicas it holds, before and after.
    pub replicas: (u32, u32),
    /// Whether it is live after the change (not lost, removed or drained).
    pub live: bool,
}

/// A placeable node as the balancer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeLoad {
    /// The node.
    pub name: String,
    /// Load units per second of the shards it is meant to lead.
    pub load: f64,
    /// Its capacity.
    pub capacity: f64,
    /// The balancer may judge it now (its loads are trusted and no move touched it lately).
    pub judged: bool,
    /// Over the overfull line.
    pub overfull: bool,
    /// Its load reports repeated the same numbers for a minute: they are not believed, and it
    /// is neither a source nor a target of load moves until they change.
    pub stats_frozen: bool,
    /// Its load reports contradict what other nodes reported of the same shards: not believed.
    pub stats_contradicted: bool,
    /// How far apart its two views of load (now and the long run, as ratios to their means)
    /// have lately stood: its noise and cycles. Under the overfull line, a move that takes it
    /// below the shedding line must bring it nearer by twice this.
    pub wobble: f64,
}

/// A move a pass decided (or would), with its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedMove {
    /// The shard it moves.
    pub shard: ShardId,
    /// What it is for.
    pub cause: Cause,
    /// Why, in words.
    pub text: String,
}

/// A scheduling event, as a reader sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventInfo {
    /// Its number in this leader's log.
    pub seq: u64,
    /// How long ago, by meta's clock.
    pub age_ms: u64,
    /// Why.
    pub cause: Cause,
    /// The shard it moved, if it moved one.
    pub shard: Option<ShardId>,
    /// What happened and why, in words.
    pub text: String,
}

/// One page of a listing, in id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in id order.
    pub items: Vec<T>,
    /// The last id this page looked at, when more may follow: pass it as the next request's
    /// [`PageRequest::after`](crate::core::PageRequest). A page can hold fewer than asked (a
    /// filter that matched little within the scan limit) and still have a next one.
    pub next: Option<u64>,
}

/// A cluster, as answers show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Its id.
    pub id: ClusterId,
    /// Its name.
    pub name: String,
    /// How many shards it has.
    pub shard_count: u32,
    /// Followers each shard gets.
    pub followers_per_shard: u32,
    /// Dynamic or static.
    pub topology: Topology,
    /// Online nodes needed before the first assignment.
    pub min_nodes: u32,
    /// Its epoch.
    pub epoch: Epoch,
}

/// A cluster's counts, as the leader sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// The cluster.
    pub cluster: ClusterInfo,
    /// The leader's term.
    pub term: Term,
    /// Nodes heard within their lease.
    pub nodes_online: u32,
    /// Nodes not heard within their lease, removed ones aside.
    pub nodes_offline: u32,
    /// Online nodes that are slow (found so, or marked): they take nothing new.
    pub nodes_slow: u32,
    /// Online nodes whose stats froze: the balancer does not believe their load.
    pub nodes_stats_frozen: u32,
    /// Online nodes whose load reports contradict the cluster's: not believed either.
    pub nodes_stats_contradicted: u32,
    /// Each node's long job under way (node, drain/slow/fill, what is left).
    pub jobs: Vec<(String, &'static str, u32)>,
    /// Shards whose leader reported them open.
    pub shards_ready: u32,
    /// Shards without a leader.
    pub shards_unassigned: u32,
    /// Tables, sub-tables included.
    pub tables: u32,
    /// Changes to this cluster the leader has decided but storage has not yet acknowledged:
    /// zero means the catalog in storage is everything the leader has decided.
    pub changes_pending: u32,
    /// Shards the placement rule cannot be met for (see [`PlacementInfo::unsatisfied`]).
    pub placement_unsatisfied: u32,
    /// Scheduling events this leader has logged, by cause (`failover`, `load`, `drain`, …):
    /// what the metrics count as moves.
    pub events_by_cause: Vec<(&'static str, u64)>,
    /// Every status with its count of shards, zeros included.
    pub shards_by_status: Vec<(&'static str, u32)>,
    /// Stored procedures (transfers, splits, merges) by kind, zeros included.
    pub procedures_by_kind: Vec<(&'static str, u32)>,
    /// The failovers this leader saw end, newest last (see [`FailoverLog`]).
    pub failovers: FailoverLog,
}

/// How long shards were without a writable leader when their leader died: from the dead
/// leader's last lease renewal (it was alive then) to the first lease of the shard's new leader.
/// Kept by the leader, bounded: the newest [`FailoverLog::KEPT_MAX`], numbered, so that a reader
/// (the metrics) takes each once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverLog {
    /// `(number, milliseconds)`, numbers from 1 in order.
    pub recent: std::collections::VecDeque<(u64, u64)>,
    /// The newest number: every failover ever recorded, dropped ones included.
    pub total: u64,
}

impl FailoverLog {
    /// Durations kept; older ones are dropped, numbered still.
    pub const KEPT_MAX: usize = 1_024;

    /// Records one failover of `ms` milliseconds.
    pub fn record(&mut self, ms: u64) {
        self.total += 1;
        if self.recent.len() >= Self::KEPT_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back((self.total, ms));
    }

    /// The durations numbered after `after`, oldest first.
    pub fn after(&self, after: u64) -> impl Iterator<Item = u64> + '_ {
        self.recent.iter().filter(move |(n, _)| *n > after).map(|&(_, ms)| ms)
    }
}

/// A table, as listings and creates answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// Its id.
    pub id: TableId,
    /// Its schema's name.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// The shard that holds it.
    pub shard: ShardId,
    /// A partitioned table's sub-tables.
    pub sub_tables: Vec<TableId>,
}

/// A node, by name and where it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The node's name.
    pub name: String,
    /// Where it serves.
    pub endpoint: String,
}

/// Everything meta stores about a table. A sub-table shares its parent's encoded schema and
/// options, and is answered with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDetail {
    /// The table.
    pub info: TableInfo,
    /// 1 at creation, bumped by every change to the encoded schema or options.
    pub version: u32,
    /// The table schema as the database encoded it.
    pub encoded_schema: Vec<u8>,
    /// The table's options.
    pub options: std::collections::BTreeMap<String, String>,
    /// A partitioned table's partition rule, opaque to meta.
    pub partition_rule: Option<Vec<u8>>,
    /// A sub-table's partitioned parent.
    pub parent: Option<TableId>,
}

/// Where a table is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRoute {
    /// The table's name.
    pub table: String,
    /// The table.
    pub table_id: TableId,
    /// The shard that holds it.
    pub shard: ShardId,
    /// The shard's version.
    pub version: Version,
    /// The shard's leader, if it has one.
    pub leader: Option<Endpoint>,
    /// The shard's followers.
    pub followers: Vec<Endpoint>,
}

/// Whether a node is heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Heard within its lease.
    Online,
    /// Not heard within its lease.
    Offline,
}

/// A node, as listings answer it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Where it serves.
    pub endpoint: String,
    /// Its failure domain.
    pub zone: String,
    /// Its labels with its zone among them (as `zone`), by key.
    pub labels: Vec<super::model::Label>,
    /// Online or offline.
    pub state: NodeState,
    /// The node is being drained (or is drained): it takes no new replicas.
    pub draining: bool,
    /// Leader shards on the node.
    pub shards: u32,
    /// Replicas (leader or follower) on the node; a drained node has none.
    pub replicas: u32,
    /// What it last reported about itself.
    pub stats: super::input::NodeStats,
    /// Load values in its heartbeats that had to be clamped.
    pub load_rejections: u64,
    /// Online, and its incarnation has sent the settle count of heartbeats to this leader: it
    /// may take new replicas.
    pub admitted: bool,
    /// Slow, by its figures or an operator's mark: it takes nothing new and its leaders leave.
    pub slow: bool,
    /// An operator marked it slow.
    pub slow_marked: bool,
    /// Its planned restart, if one is under way.
    pub restart: Option<RestartInfo>,
}

/// A planned restart under way, as node listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartInfo {
    /// `leaving` (the process that is to restart runs; its leaders leave), `down` (its
    /// followers stay for up to the window) or `back` (a new process runs; its leaders return).
    pub phase: &'static str,
    /// How long it may stay down with its followers kept, in ms.
    pub window_ms: u64,
    /// The shards it led when the restart began, which return to it.
    pub leaders: u32,
    /// Of those, the ones it leads again (or is being handed).
    pub led_again: u32,
}

/// Where a shard stands, as listings and metrics show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardStatus {
    /// No leader yet.
    Unassigned,
    /// Assigned; the leader has not yet reported it ready at this version.
    Opening,
    /// Its leader reported it open at its version.
    Ready,
    /// A leader transfer is in progress.
    Transferring,
    /// The leader's node is offline.
    Offline,
    /// Merged away: it holds nothing, and its id is never used again.
    Retired,
}

// `ALL` is in declaration order: checked when compiling.
const _: () = {
    let mut i = 0;
    while i < ShardStatus::ALL.len() {
        assert!(ShardStatus::ALL[i] as usize == i);
        i += 1;
    }
};

impl ShardStatus {
    /// In declaration order, so that `status as usize` is its position here.
    pub const ALL: [ShardStatus; 6] = [
        ShardStatus::Unassigned,
        ShardStatus::Opening,
        ShardStatus::Ready,
        ShardStatus::Transferring,
        ShardStatus::Offline,
        ShardStatus::Retired,
    ];

    /// The status in snake case, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            ShardStatus::Unassigned => "unassigned",
            ShardStatus::Opening => "opening",
            ShardStatus::Ready => "ready",
            ShardStatus::Transferring => "transferring",
            ShardStatus::Offline => "offline",
            ShardStatus::Retired => "retired",
        }
    }
}

/// A shard, as listings answer it.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardInfo {
    /// The shard.
    pub id: ShardId,
    /// Its version.
    pub version: Version,
    /// Its leader's name.
    pub leader: Option<String>,
    /// Its followers' names.
    pub followers: Vec<String>,
    /// Where it stands.
    pub status: ShardStatus,
    /// Tables it holds.
    pub tables: u32,
    /// The smoothed load its leader reports, and the windows behind it.
    pub load: super::input::ShardLoad,
    /// Load windows behind `load`.
    pub load_windows: u32,
    /// Its busiest tables as its leader reports them (smoothed), those the catalog places in
    /// the shard only.
    pub busiest: Vec<super::input::TableLoad>,
    /// How far behind its leader each follower said it is, in log entries, for those that said
    /// they lag (in `followers` order); the others are in sync.
    pub lagging: Vec<(String, u64)>,
}
