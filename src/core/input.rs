//! What enters the core: heartbeats, requests, leadership changes and storage results.

use crate::core::settings::SchedulerSettings;
use std::collections::BTreeMap;

use crate::core::storage::{LoadCause, Snapshot, WriteResult};

use super::ids::*;
use super::model::Topology;
use super::time::Instant;

/// Everything that enters the core, one variant per kind of event; see [`MetaCore::handle`].
/// Heartbeats and requests are lent, so that a driver can keep (or re-send) them without a copy.
///
/// [`MetaCore::handle`]: super::MetaCore::handle
#[derive(Clone, Debug, PartialEq)]
pub enum Input<'a> {
    /// The election's word.
    Leadership(Leadership),
    /// A heartbeat on stream `session`. A refusal (not leader, unknown cluster, malformed
    /// reports) changes nothing and closes the stream: [`Output::CloseStream`].
    ///
    /// [`Output::CloseStream`]: super::Output::CloseStream
    Heartbeat { session: SessionId, heartbeat: &'a Heartbeat },
    /// A request; its reply comes out as [`Output::Reply`] with the same id, now or later, and
    /// never later than the request timeout. Ids must be unique among pending requests.
    ///
    /// [`Output::Reply`]: super::Output::Reply
    Request { id: RequestId, request: &'a Request },
    /// A route watch opens on stream `watch`: its first update answers at once, then one
    /// follows each landed route change, as [`Output::ToWatcher`], until
    /// [`Output::EndWatch`] or [`Input::Unwatch`]. Ids must be unique among open watches.
    ///
    /// [`Output::ToWatcher`]: super::Output::ToWatcher
    /// [`Output::EndWatch`]: super::Output::EndWatch
    Watch { watch: WatchId, request: &'a WatchRoutes },
    /// The watcher went away.
    Unwatch { watch: WatchId },
    /// The outcome of [`Output::Persist`] batch `id`.
    ///
    /// [`Output::Persist`]: super::Output::Persist
    WriteResult { id: WriteId, result: WriteResult },
    /// The snapshot asked for by [`Output::LoadSnapshot`].
    ///
    /// [`Output::LoadSnapshot`]: super::Output::LoadSnapshot
    Snapshot { term: Term, snapshot: Snapshot },
    /// The snapshot asked for by [`Output::LoadSnapshot`] did not load. The core asks again
    /// after a pause that grows with each failure, or gives the term up if storage holds what
    /// it cannot decode.
    ///
    /// [`Output::LoadSnapshot`]: super::Output::LoadSnapshot
    SnapshotFailed { term: Term, cause: LoadCause },
    /// The instant [`MetaCore::poll_timeout`] named has come; early or twice is harmless.
    ///
    /// [`MetaCore::poll_timeout`]: super::MetaCore::poll_timeout
    Timeout,
}

/// A shard's role on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Leader,
    Follower,
}

/// How far a node has got with a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaStatus {
    Opening,
    Ready,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeStats {
    pub cpu: f64,
    pub load: f64,
    pub read_units: u64,
    pub write_units: u64,
    pub table_count: u32,
    pub shard_count: u32,
    pub read_bytes_per_sec: u64,
    pub write_bytes_per_sec: u64,
    /// How much work the node can take relative to others (0: 1); see [`NodeStats::capacity`].
    pub capacity: f64,
}

impl NodeStats {
    /// The node's capacity, at least a small positive weight: nodes balance by load divided by
    /// capacity, so a node of capacity 2 is full at twice the load of a node of capacity 1.
    pub fn capacity(&self) -> f64 {
        if self.capacity > 0.0 {
            self.capacity
        } else {
            1.0
        }
    }
}

/// What one shard cost its node over the last heartbeat interval, as the node measured it.
/// Units follow the seeds: a read unit (RCU) is a 4 KiB read, a write unit (WCU) a 1 KiB write.
/// Every value is finite and in `0..=LOAD_VALUE_MAX` once it reaches the core (the gRPC layer
/// clamps what a node sends, see [`crate::core::validate::load_value`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShardLoad {
    pub read_units: f64,
    pub write_units: f64,
    /// CPU time, in milliseconds per second.
    pub cpu_ms: f64,
    pub bytes: u64,
    pub rows: u64,
}

impl ShardLoad {
    /// The one number placement and balancing compare: request units per second (reads plus
    /// writes). CPU time and size are kept beside it, for display and for choosing splits.
    pub fn units(&self) -> f64 {
        self.read_units + self.write_units
    }
}

/// One of a shard's busiest tables, from a heartbeat (a bounded list per shard).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableLoad {
    pub shard: ShardId,
    pub table: TableId,
    pub read_units: f64,
    pub write_units: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShardReport {
    pub id: ShardId,
    pub role: Role,
    pub version: Version,
    pub status: ReplicaStatus,
    pub load: ShardLoad,
}

/// One heartbeat from a data node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heartbeat {
    pub cluster: String,
    pub node: String,
    pub endpoint: String,
    pub zone: String,
    /// Chosen afresh each time the node process starts.
    pub incarnation: u64,
    /// Grows with every heartbeat of one incarnation.
    pub seq: u64,
    pub stats: NodeStats,
    pub shards: Vec<ShardReport>,
    /// The busiest tables of the reported shards, flat, at most [`TOP_TABLES_PER_SHARD`] per shard.
    pub tables: Vec<TableLoad>,
    /// Load values the gRPC layer had to clamp in this heartbeat (NaN, negative, too large).
    pub load_rejections: u32,
    /// The node's last heartbeat: it stopped leading and gave up its leases, and goes away.
    pub leaving: bool,
}

/// Busiest tables read per shard report; the rest are ignored.
pub const TOP_TABLES_PER_SHARD: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    pub shard_count: u32,
    pub followers_per_shard: u32,
    pub topology: Topology,
    /// Shards are assigned once this many nodes are online.
    pub min_nodes: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSpec {
    pub partition_count: u32,
    pub encoded: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTable {
    pub cluster: String,
    pub schema: String,
    pub name: String,
    pub encoded_schema: Vec<u8>,
    pub options: BTreeMap<String, String>,
    pub if_not_exists: bool,
    pub partition: Option<PartitionSpec>,
}

/// Replaces a table's encoded schema, its options, or both, if the table is still at
/// `expected_version` (a compare-and-set: of two alters from one version, one wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterTable {
    pub cluster: String,
    pub schema: String,
    pub name: String,
    pub expected_version: u32,
    /// `None` keeps the current one.
    pub encoded_schema: Option<Vec<u8>>,
    /// `None` keeps the current ones; `Some` replaces them all.
    pub options: Option<BTreeMap<String, String>>,
}

/// Opens a watch on a cluster's routes (see [`Input::Watch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRoutes {
    pub cluster: String,
    /// Only this schema's tables (shard changes come whatever the schema).
    pub schema: Option<String>,
    /// Resume after this revision, the last one the watcher saw; 0: start now.
    pub from_revision: u64,
}

/// A request from a client or operator. Every request but the cluster-wide ones names its cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    CreateCluster(ClusterSpec),
    ListClusters {
        page: PageRequest,
    },
    ClusterView {
        cluster: String,
    },
    /// Drops a cluster with everything in it; one with nodes online only with `force`.
    DropCluster {
        cluster: String,
        force: bool,
    },
    CreateSchema {
        cluster: String,
        name: String,
        if_not_exists: bool,
    },
    /// Drops a schema; one that holds tables only with `cascade`, which drops them too.
    DropSchema {
        cluster: String,
        name: String,
        cascade: bool,
    },
    CreateTable(CreateTable),
    DropTable {
        cluster: String,
        schema: String,
        name: String,
    },
    AlterTable(AlterTable),
    /// Routes of the named tables; a partitioned table's route is followed by its sub-tables'.
    RouteTables {
        cluster: String,
        schema: String,
        tables: Vec<String>,
    },
    /// Everything stored about the named tables, for a frontend that plans over them.
    GetTables {
        cluster: String,
        schema: String,
        tables: Vec<String>,
    },
    ListNodes {
        cluster: String,
        page: PageRequest,
    },
    /// Moves every replica off the node and places nothing new on it; `cancel` ends that.
    DrainNode {
        cluster: String,
        node: String,
        cancel: bool,
    },
    /// Forgets an offline node that holds no replicas: its name is free for a new node.
    RemoveNode {
        cluster: String,
        node: String,
    },
    ListShards {
        cluster: String,
        page: PageRequest,
    },
    /// `schema: None` lists every schema.
    ListTables {
        cluster: String,
        schema: Option<String>,
        page: PageRequest,
    },
    /// The scheduler's settings, and the cluster's load as it sees it now.
    SchedulerStatus {
        cluster: String,
    },
    /// Replaces the cluster's scheduler settings (pause and resume set `paused`); stored, so a
    /// new meta leader keeps them.
    SetScheduler {
        cluster: String,
        settings: SchedulerSettings,
    },
    /// A dry run: the moves a scheduling pass would decide now, each with its reason. Nothing
    /// changes.
    PlanScheduler {
        cluster: String,
    },
    /// Scheduling events numbered after `after`, oldest first, at most `limit`.
    ListEvents {
        cluster: String,
        after: u64,
        limit: u32,
    },
    /// Moves a shard's leader to `node` by a transfer: `reopen: false` asks for a follower to
    /// take over, `reopen: true` for the shard to open on a node without a replica.
    MoveShard {
        cluster: String,
        shard: ShardId,
        node: String,
        reopen: bool,
    },
    /// Splits a shard in two: `tables` move to a new shard (none named: chosen by load, so
    /// that the pieces carry about the same).
    SplitShard {
        cluster: String,
        shard: ShardId,
        tables: Vec<TableId>,
    },
    /// Merges two shards: the one with fewer tables moves into the other and is retired.
    MergeShards {
        cluster: String,
        shards: [ShardId; 2],
    },
    ListProcedures {
        cluster: String,
    },
    /// Stops a procedure, rolling it back where that is safe.
    CancelProcedure {
        cluster: String,
        id: u64,
    },
}

impl Request {
    /// The request's name in snake case, as metrics and logs label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::CreateCluster { .. } => "create_cluster",
            Request::ListClusters { .. } => "list_clusters",
            Request::ClusterView { .. } => "cluster_view",
            Request::DropCluster { .. } => "drop_cluster",
            Request::CreateSchema { .. } => "create_schema",
            Request::DropSchema { .. } => "drop_schema",
            Request::CreateTable { .. } => "create_table",
            Request::DropTable { .. } => "drop_table",
            Request::AlterTable { .. } => "alter_table",
            Request::RouteTables { .. } => "route_tables",
            Request::GetTables { .. } => "get_tables",
            Request::ListNodes { .. } => "list_nodes",
            Request::DrainNode { .. } => "drain_node",
            Request::RemoveNode { .. } => "remove_node",
            Request::ListShards { .. } => "list_shards",
            Request::ListTables { .. } => "list_tables",
            Request::SchedulerStatus { .. } => "scheduler_status",
            Request::SetScheduler { .. } => "set_scheduler",
            Request::PlanScheduler { .. } => "plan_scheduler",
            Request::ListEvents { .. } => "list_events",
            Request::MoveShard { .. } => "move_shard",
            Request::SplitShard { .. } => "split_shard",
            Request::MergeShards { .. } => "merge_shards",
            Request::ListProcedures { .. } => "list_procedures",
            Request::CancelProcedure { .. } => "cancel_procedure",
        }
    }

    /// Whether the request changes the catalog or the cluster (DDL, operations), rather than
    /// only reading: the first needs the admin token where tokens are on.
    pub fn changes_state(&self) -> bool {
        match self {
            Request::ListClusters { .. }
            | Request::ClusterView { .. }
            | Request::RouteTables { .. }
            | Request::GetTables { .. }
            | Request::ListNodes { .. }
            | Request::ListShards { .. }
            | Request::ListTables { .. }
            | Request::SchedulerStatus { .. }
            | Request::PlanScheduler { .. }
            | Request::ListEvents { .. }
            | Request::ListProcedures { .. } => false,
            Request::CreateCluster { .. }
            | Request::DropCluster { .. }
            | Request::CreateSchema { .. }
            | Request::DropSchema { .. }
            | Request::CreateTable { .. }
            | Request::DropTable { .. }
            | Request::AlterTable { .. }
            | Request::DrainNode { .. }
            | Request::RemoveNode { .. }
            | Request::SetScheduler { .. }
            | Request::MoveShard { .. }
            | Request::SplitShard { .. }
            | Request::MergeShards { .. }
            | Request::CancelProcedure { .. } => true,
        }
    }
}

/// Which page of a listing to answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items; 0 means `list_page_default`, and above `list_page_max` means
    /// `list_page_max`.
    pub size: u32,
    /// Start after the item with this id (the previous page's `next`); `None` starts at the
    /// beginning.
    pub after: Option<u64>,
}

/// What the election tells the core.
#[derive(Clone, Debug, PartialEq)]
pub enum Leadership {
    /// This node won `term`. `snapshot` is what storage held, read and decoded after winning
    /// (a store whose snapshot does not load gives the term up instead).
    Gained { term: Term, valid_until: Instant, snapshot: Snapshot },
    /// The election lease was renewed: leadership surely holds until `valid_until`.
    Renewed { term: Term, valid_until: Instant },
    /// Leadership ended (lease lost, resigned, or another node won).
    Lost,
    /// Another meta node leads, as the election last saw it (`None`: no other leader is known).
    /// A refused heartbeat stream is redirected there while the sighting is trusted.
    Observed { leader: Option<ObservedLeader> },
}

/// A meta node the election names leader of `term`, trusted until `until` (on the clock of the
/// core it is handed to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedLeader {
    pub endpoint: String,
    pub term: Term,
    pub until: Instant,
}
