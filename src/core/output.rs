//! What leaves the core. Every variant says what the driver must do with it.

use super::error::MetaError;
use super::ids::*;
use super::input::Role;
use super::model::Topology;
use super::storage::WriteBatch;
use crate::core::cause::Cause;
use crate::core::settings::SchedulerSettings;

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Execute this transaction atomically, failing it unless the writer still holds
    /// `batch.term`, then report with [`Input::WriteResult`](super::Input::WriteResult). At most
    /// one batch is in flight.
    Persist(WriteBatch),
    /// Send on the node's heartbeat stream `session`; drop it if that stream is gone (the core
    /// re-sends whatever still matters on a later heartbeat).
    ToNode { session: SessionId, message: NodeMessage },
    /// Answer request `request`.
    Reply { request: RequestId, result: Result<Response, MetaError> },
    /// The heartbeat on stream `session` was refused, and nothing changed: end the stream by
    /// naming `redirect`, the meta node to go to, or else with `error`.
    CloseStream { session: SessionId, redirect: Option<Redirect>, error: MetaError },
    /// A write's outcome is unknown: read every key under the storage root and hand it in as
    /// [`Input::Snapshot`](super::Input::Snapshot). Nothing is written until then.
    LoadSnapshot { term: Term },
    /// Resign the election for `term`; the core already acts as a follower.
    Resign { term: Term, reason: ResignReason },
    /// Send on route watch `watch`. A watcher too slow to take it must be cut off (ended with
    /// a status that says so, then [`Input::Unwatch`](super::Input::Unwatch)), never buffered
    /// without bound.
    ToWatcher { watch: WatchId, update: RouteUpdate },
    /// End route watch `watch` with `error`; the core has forgotten it.
    EndWatch { watch: WatchId, error: MetaError },
}

/// Where a refused heartbeat stream is sent: the meta node the election names leader, and its
/// term, so that a data node can refuse to be sent back to an older leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub endpoint: String,
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
    pub changes: Vec<RouteChange>,
}

/// One route change. Each names the whole new state of what it is about, so applying one twice,
/// or after a newer read, leaves the watcher right once the later changes are applied too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteChange {
    /// A table was created in, or moved to, `shard`.
    Table {
        schema: String,
        name: String,
        id: TableId,
        shard: ShardId,
    },
    TableDropped {
        schema: String,
        name: String,
        id: TableId,
    },
    /// A shard's version, leader or followers changed (or a replica's endpoint moved).
    Shard {
        shard: ShardId,
        version: Version,
        leader: Option<Endpoint>,
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
    pub term: Term,
    pub epoch: Epoch,
    /// Present only in the reply to a heartbeat.
    pub lease: Option<LeaseGrant>,
    pub commands: Vec<ShardCommand>,
    pub heartbeat_interval_ms: u64,
}

/// Leases for the leader shards that a heartbeat reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The heartbeat this grant answers; the lease counts from the node's clock when it sent it.
    pub seq: u64,
    pub duration_ms: u64,
    /// Reported leader shards that get no lease: the node must stop leading them now.
    pub revoked: Vec<ShardId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardCommand {
    pub shard: ShardId,
    pub version: Version,
    pub term: Term,
    pub kind: CommandKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Open the shard in `role` with exactly these tables (also a full re-sync).
    Open {
        role: Role,
        tables: Vec<TableId>,
    },
    Close,
    /// Incremental: only valid on top of `version - 1`; the table set is unchanged.
    ChangeRole {
        role: Role,
    },
    /// Incremental: only valid on top of `version - 1`.
    CreateTable {
        table: TableId,
    },
    /// Incremental: only valid on top of `version - 1`. One change can drop many tables of a
    /// shard (a cascading drop): they come in one command, not as a re-sync of every table left.
    DropTable {
        tables: Vec<TableId>,
    },
    /// Incremental: only valid on top of `version - 1`. The table's encoded schema or options
    /// changed; `table_version` is its new version (read it with `GetTables`).
    AlterTable {
        table: TableId,
        table_version: u32,
    },
}

/// A successful reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    Cluster(ClusterInfo),
    Clusters(Page<ClusterInfo>),
    View(ClusterView),
    ClusterDropped {
        id: ClusterId,
        tables: u64,
    },
    SchemaCreated {
        id: SchemaId,
        created: bool,
    },
    /// The schema is gone, or (`tables` > 0) hidden, with those tables being deleted after.
    SchemaDropped {
        id: SchemaId,
        tables: u64,
    },
    TableCreated {
        table: TableInfo,
        created: bool,
    },
    TableDropped {
        id: TableId,
    },
    /// The table at its new version.
    TableAltered(TableDetail),
    Routes {
        epoch: Epoch,
        routes: Vec<TableRoute>,
    },
    TableDetails {
        epoch: Epoch,
        tables: Vec<TableDetail>,
    },
    Nodes(Page<NodeInfo>),
    /// A node after a drain or its cancellation.
    Node(NodeInfo),
    NodeRemoved {
        name: String,
    },
    Shards(Page<ShardInfo>),
    Tables(Page<TableInfo>),
    Scheduler(SchedulerStatus),
    /// What a pass would do now (`PlanScheduler`).
    Plan(Vec<PlannedMove>),
    Events {
        events: Vec<EventInfo>,
        last: u64,
    },
    /// An operator's move, decided and stored.
    Moved(PlannedMove),
    /// A procedure started or changed.
    Procedure(ProcedureInfo),
    Procedures(Vec<ProcedureInfo>),
}

/// A procedure in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcedureInfo {
    pub id: u64,
    pub kind: crate::core::model::ProcedureKind,
    pub step: crate::core::model::ProcedureStep,
    pub shard: ShardId,
    pub new_shard: ShardId,
    /// Tables it moves.
    pub tables: u32,
    pub why: String,
    /// How long it has been at its step, as this meta leader saw it (0: not seen yet).
    pub step_age_ms: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerStatus {
    pub settings: SchedulerSettings,
    /// Load over capacity, across placeable nodes.
    pub mean_utilization: f64,
    pub nodes: Vec<NodeLoad>,
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
}

/// A placeable node as the balancer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeLoad {
    pub name: String,
    /// Load units per second of the shards it is meant to lead.
    pub load: f64,
    pub capacity: f64,
    /// The balancer may judge it now (its loads are trusted and no move touched it lately).
    pub judged: bool,
    pub overfull: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedMove {
    pub shard: ShardId,
    pub cause: Cause,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventInfo {
    pub seq: u64,
    /// How long ago, by meta's clock.
    pub age_ms: u64,
    pub cause: Cause,
    pub shard: Option<ShardId>,
    pub text: String,
}

/// One page of a listing, in id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The last id this page looked at, when more may follow: pass it as the next request's
    /// [`PageRequest::after`](crate::core::PageRequest). A page can hold fewer than asked (a
    /// filter that matched little within the scan limit) and still have a next one.
    pub next: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    pub id: ClusterId,
    pub name: String,
    pub shard_count: u32,
    pub followers_per_shard: u32,
    pub topology: Topology,
    pub min_nodes: u32,
    pub epoch: Epoch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    pub cluster: ClusterInfo,
    pub term: Term,
    pub nodes_online: u32,
    pub nodes_offline: u32,
    pub shards_ready: u32,
    pub shards_unassigned: u32,
    pub tables: u32,
    /// Changes to this cluster the leader has decided but storage has not yet acknowledged:
    /// zero means the catalog in storage is everything the leader has decided.
    pub changes_pending: u32,
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
    pub const KEPT_MAX: usize = 1_024;

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub id: TableId,
    pub schema: String,
    pub name: String,
    pub shard: ShardId,
    pub sub_tables: Vec<TableId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub endpoint: String,
}

/// Everything meta stores about a table. A sub-table shares its parent's encoded schema and
/// options, and is answered with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDetail {
    pub info: TableInfo,
    /// 1 at creation, bumped by every change to the encoded schema or options.
    pub version: u32,
    pub encoded_schema: Vec<u8>,
    pub options: std::collections::BTreeMap<String, String>,
    /// A partitioned table's partition rule, opaque to meta.
    pub partition_rule: Option<Vec<u8>>,
    /// A sub-table's partitioned parent.
    pub parent: Option<TableId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRoute {
    pub table: String,
    pub table_id: TableId,
    pub shard: ShardId,
    pub version: Version,
    pub leader: Option<Endpoint>,
    pub followers: Vec<Endpoint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Online,
    Offline,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub endpoint: String,
    pub zone: String,
    pub state: NodeState,
    /// The node is being drained (or is drained): it takes no new replicas.
    pub draining: bool,
    /// Leader shards on the node.
    pub shards: u32,
    /// Replicas (leader or follower) on the node; a drained node has none.
    pub replicas: u32,
    pub stats: super::input::NodeStats,
    /// Load values in its heartbeats that had to be clamped.
    pub load_rejections: u64,
    /// Online, and its incarnation has sent the settle count of heartbeats to this leader: it
    /// may take new replicas.
    pub admitted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardStatus {
    Unassigned,
    /// Assigned; the leader has not yet reported it ready at this version.
    Opening,
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

#[derive(Clone, Debug, PartialEq)]
pub struct ShardInfo {
    pub id: ShardId,
    pub version: Version,
    pub leader: Option<String>,
    pub followers: Vec<String>,
    pub status: ShardStatus,
    pub tables: u32,
    /// The smoothed load its leader reports, and the windows behind it.
    pub load: super::input::ShardLoad,
    pub load_windows: u32,
    /// Its busiest tables as its leader reports them (smoothed), those the catalog places in
    /// the shard only.
    pub busiest: Vec<super::input::TableLoad>,
}
