//! What enters the core: heartbeats, requests, leadership changes and storage results.

use crate::core::settings::SchedulerSettings;
use std::collections::BTreeMap;

use crate::core::storage::{LoadCause, Snapshot, WriteResult};

use super::ids::*;
use super::model::{Label, PlacementRecord, Topology};
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
    Heartbeat {
        /// The stream it came over.
        session: SessionId,
        /// What the node said.
        heartbeat: &'a Heartbeat,
    },
    /// A request; its reply comes out as [`Output::Reply`] with the same id, now or later, and
    /// never later than the request timeout. Ids must be unique among pending requests.
    ///
    /// [`Output::Reply`]: super::Output::Reply
    Request {
        /// The driver's number for it, unique among pending requests.
        id: RequestId,
        /// What is asked.
        request: &'a Request,
    },
    /// A route watch opens on stream `watch`: its first update answers at once, then one
    /// follows each landed route change, as [`Output::ToWatcher`], until
    /// [`Output::EndWatch`] or [`Input::Unwatch`]. Ids must be unique among open watches.
    ///
    /// [`Output::ToWatcher`]: super::Output::ToWatcher
    /// [`Output::EndWatch`]: super::Output::EndWatch
    Watch {
        /// The driver's number for the stream, unique among open watches.
        watch: WatchId,
        /// What to watch, and from where.
        request: &'a WatchRoutes,
    },
    /// The watcher went away.
    Unwatch {
        /// The watch that ended.
        watch: WatchId,
    },
    /// The outcome of [`Output::Persist`] batch `id`.
    ///
    /// [`Output::Persist`]: super::Output::Persist
    WriteResult {
        /// The batch.
        id: WriteId,
        /// Landed, fenced out, or unknown.
        result: WriteResult,
    },
    /// The snapshot asked for by [`Output::LoadSnapshot`].
    ///
    /// [`Output::LoadSnapshot`]: super::Output::LoadSnapshot
    Snapshot {
        /// The term it was asked for.
        term: Term,
        /// What storage held.
        snapshot: Snapshot,
    },
    /// The snapshot asked for by [`Output::LoadSnapshot`] did not load. The core asks again
    /// after a pause that grows with each failure, or gives the term up if storage holds what
    /// it cannot decode.
    ///
    /// [`Output::LoadSnapshot`]: super::Output::LoadSnapshot
    SnapshotFailed {
        /// The term it was asked for.
        term: Term,
        /// Why it did not load.
        cause: LoadCause,
    },
    /// The instant [`MetaCore::poll_timeout`] named has come; early or twice is harmless.
    ///
    /// [`MetaCore::poll_timeout`]: super::MetaCore::poll_timeout
    Timeout,
}

/// A shard's role on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// It leads the shard: it serves writes under a lease.
    Leader,
    /// It holds a replica and follows the leader.
    Follower,
}

/// How far a node has got with a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaStatus {
    /// Still loading the shard; it cannot serve yet.
    Opening,
    /// Open at the reported version.
    Ready,
}

/// What a node reports about itself in each heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeStats {
    /// CPU use, 0 to 1 per core.
    pub cpu: f64,
    /// The operating system's load average.
    pub load: f64,
    /// Read units served over the last interval, all shards together.
    pub read_units: u64,
    /// Write units served over the last interval, all shards together.
    pub write_units: u64,
    /// Tables it serves.
    pub table_count: u32,
    /// Shards it holds a replica of.
    pub shard_count: u32,
    /// Bytes read per second, all shards together.
    pub read_bytes_per_sec: u64,
    /// Bytes written per second, all shards together.
    pub write_bytes_per_sec: u64,
    /// How much work the node can take relative to others (0: 1); see [`NodeStats::capacity`].
    pub capacity: f64,
    /// Raised by the node's stats sampler with every new sample of its load figures; 0 when
    /// it does not count (see `LiveNode::stats_frozen`).
    pub stats_sample: u64,
    /// The round trip of its previous heartbeat as it measured it, in µs (0: not measured).
    pub heartbeat_rtt_us: u32,
    /// Its requests' latency over the last interval as it measured it, in µs (0: none).
    pub request_latency_us: u32,
    /// The disk space its shards may use, in bytes (0: not declared, and no disk line holds).
    pub disk_capacity_bytes: u64,
    /// The disk space in use, in bytes.
    pub disk_used_bytes: u64,
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
    /// Read units per second (a unit is a 4 KiB read).
    pub read_units: f64,
    /// Write units per second (a unit is a 1 KiB write).
    pub write_units: f64,
    /// CPU time, in milliseconds per second.
    pub cpu_ms: f64,
    /// The shard's approximate size on disk.
    pub bytes: u64,
    /// The shard's approximate row count.
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
    /// The shard the node serves it in.
    pub shard: ShardId,
    /// The table.
    pub table: TableId,
    /// Read units per second.
    pub read_units: f64,
    /// Write units per second.
    pub write_units: f64,
}

/// What a node holds of one shard, in a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShardReport {
    /// The shard.
    pub id: ShardId,
    /// Whether it leads the shard or follows.
    pub role: Role,
    /// The shard version it holds.
    pub version: Version,
    /// Whether it is open yet.
    pub status: ReplicaStatus,
    /// What the shard cost it, if it leads it.
    pub load: ShardLoad,
    /// If it follows and is not in sync, how far behind its leader it is, in log entries (the
    /// data node's own measure); `None` when in sync, or when it leads.
    pub lag: Option<u64>,
}

/// One heartbeat from a data node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heartbeat {
    /// The cluster the node belongs to.
    pub cluster: String,
    /// The node's name: its identity, with the incarnation.
    pub node: String,
    /// Where it serves clients.
    pub endpoint: String,
    /// Its failure domain; empty for none.
    pub zone: String,
    /// Its other labels, by key, each key once (see `validate::labels`).
    pub labels: Vec<Label>,
    /// Chosen afresh each time the node process starts.
    pub incarnation: u64,
    /// Grows with every heartbeat of one incarnation.
    pub seq: u64,
    /// What it says about itself.
    pub stats: NodeStats,
    /// Every shard it holds a replica of, in id order.
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

/// A cluster to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Its name, unique among clusters.
    pub name: String,
    /// How many shards it starts with.
    pub shard_count: u32,
    /// Followers each shard gets, besides its leader.
    pub followers_per_shard: u32,
    /// Whether shards follow the nodes (dynamic) or stay put (static).
    pub topology: Topology,
    /// Shards are assigned once this many nodes are online.
    pub min_nodes: u32,
}

/// How a table is partitioned: into this many sub-tables, by a rule meta stores without reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSpec {
    /// How many sub-tables.
    pub partition_count: u32,
    /// The partition rule, opaque to meta.
    pub encoded: Vec<u8>,
}

/// A table to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTable {
    /// The cluster, by name.
    pub cluster: String,
    /// The schema, by name.
    pub schema: String,
    /// The table's name in its schema.
    pub name: String,
    /// The table schema as the database encodes it; opaque to meta.
    pub encoded_schema: Vec<u8>,
    /// The table's options.
    pub options: BTreeMap<String, String>,
    /// An existing table of that name is an answer, not an error.
    pub if_not_exists: bool,
    /// Set for a partitioned table.
    pub partition: Option<PartitionSpec>,
}

/// Replaces a table's encoded schema, its options, or both, if the table is still at
/// `expected_version` (a compare-and-set: of two alters from one version, one wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterTable {
    /// The cluster, by name.
    pub cluster: String,
    /// The schema, by name.
    pub schema: String,
    /// The table, by name.
    pub name: String,
    /// The table version the change was made from.
    pub expected_version: u32,
    /// `None` keeps the current one.
    pub encoded_schema: Option<Vec<u8>>,
    /// `None` keeps the current ones; `Some` replaces them all.
    pub options: Option<BTreeMap<String, String>>,
}

/// Opens a watch on a cluster's routes (see [`Input::Watch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRoutes {
    /// The cluster, by name.
    pub cluster: String,
    /// Only this schema's tables (shard changes come whatever the schema).
    pub schema: Option<String>,
    /// Resume after this revision, the last one the watcher saw; 0: start now.
    pub from_revision: u64,
}

/// A request from a client or operator. Every request but the cluster-wide ones names its cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Creates a cluster.
    CreateCluster(ClusterSpec),
    /// Lists clusters, a page at a time.
    ListClusters {
        /// Which page.
        page: PageRequest,
    },
    /// One cluster's counts: nodes, shards, tables, changes waiting for storage.
    ClusterView {
        /// The cluster, by name.
        cluster: String,
    },
    /// Drops a cluster with everything in it; one with nodes online only with `force`.
    DropCluster {
        /// The cluster, by name.
        cluster: String,
        /// Drop it even while its nodes are online.
        force: bool,
    },
    /// Creates a schema.
    CreateSchema {
        /// The cluster, by name.
        cluster: String,
        /// Its name.
        name: String,
        /// An existing one of that name is an answer, not an error.
        if_not_exists: bool,
    },
    /// Drops a schema; one that holds tables only with `cascade`, which drops them too.
    DropSchema {
        /// The cluster, by name.
        cluster: String,
        /// Its name.
        name: String,
        /// Drop its tables too.
        cascade: bool,
    },
    /// Creates a table (a partitioned one with its sub-tables).
    CreateTable(CreateTable),
    /// Drops a table (a partitioned one with its sub-tables).
    DropTable {
        /// The cluster, by name.
        cluster: String,
        /// The schema, by name.
        schema: String,
        /// Its name.
        name: String,
    },
    /// Changes a table, if it is still at the version given.
    AlterTable(AlterTable),
    /// Routes of the named tables; a partitioned table's route is followed by its sub-tables'.
    RouteTables {
        /// The cluster, by name.
        cluster: String,
        /// The schema, by name.
        schema: String,
        /// The tables, by name or id.
        tables: Vec<String>,
    },
    /// Everything stored about the named tables, for a frontend that plans over them.
    GetTables {
        /// The cluster, by name.
        cluster: String,
        /// The schema, by name.
        schema: String,
        /// The tables, by name or id.
        tables: Vec<String>,
    },
    /// Lists a cluster's nodes, a page at a time.
    ListNodes {
        /// The cluster, by name.
        cluster: String,
        /// Which page.
        page: PageRequest,
    },
    /// Moves every replica off the node and places nothing new on it; `cancel` ends that.
    DrainNode {
        /// The cluster, by name.
        cluster: String,
        /// The node, by name.
        node: String,
        /// End the drain instead.
        cancel: bool,
    },
    /// Marks the node slow (`slow`), or takes the mark off, which also forgives slowness its
    /// figures showed (see `live::slow`).
    MarkNodeSlow {
        /// The cluster, by name.
        cluster: String,
        /// The node, by name.
        node: String,
        /// Mark it, or unmark it.
        slow: bool,
    },
    /// Begins a planned restart of the node (its leaders leave by transfer, its followers stay
    /// and are not replaced while it is down, for up to the window; its leaders return when it
    /// is back), or with `end`, ends one early: its leaders return if it is up, and ordinary
    /// repair resumes if it is down.
    RestartNode {
        /// The cluster, by name.
        cluster: String,
        /// The node, by name.
        node: String,
        /// End the restart instead.
        end: bool,
        /// How long the node may stay down with its followers kept, in milliseconds; 0 for
        /// `CoreConfig::restart_window_default_ms`. At most `restart_window_max_ms`.
        window_ms: u64,
    },
    /// Forgets an offline node that holds no replicas: its name is free for a new node.
    RemoveNode {
        /// The cluster, by name.
        cluster: String,
        /// The node, by name.
        node: String,
    },
    /// Lists a cluster's shards, a page at a time.
    ListShards {
        /// The cluster, by name.
        cluster: String,
        /// Which page.
        page: PageRequest,
    },
    /// `schema: None` lists every schema.
    ListTables {
        /// The cluster, by name.
        cluster: String,
        /// The schema, by name.
        schema: Option<String>,
        /// Which page.
        page: PageRequest,
    },
    /// The scheduler's settings, and the cluster's load as it sees it now.
    SchedulerStatus {
        /// The cluster, by name.
        cluster: String,
    },
    /// Replaces the cluster's scheduler settings (pause and resume set `paused`); stored, so a
    /// new meta leader keeps them.
    SetScheduler {
        /// The cluster, by name.
        cluster: String,
        /// The new settings, all of them.
        settings: SchedulerSettings,
    },
    /// The cluster's placement rule, and how many shards it cannot be met for now.
    GetPlacement {
        /// The cluster, by name.
        cluster: String,
    },
    /// Replaces the cluster's placement rule (its `version` is ignored: the stored one is one
    /// above the last). Shards move to meet it within the move budgets.
    SetPlacement {
        /// The cluster, by name.
        cluster: String,
        /// The new rule, all of it; no constraints and an empty spread to go back to the default.
        rule: PlacementRecord,
        /// Refuse unless the rule in force is at this version (0: none was ever set), so that two
        /// operators editing the rule do not undo each other.
        expected_version: Option<u64>,
    },
    /// A what-if: the change rehearsed on a copy of the cluster, as passes of the scheduler
    /// would carry it out, with what it would leave. Nothing changes.
    WhatIf {
        /// The cluster, by name.
        cluster: String,
        /// What to rehearse.
        change: WhatIf,
    },
    /// A dry run: the moves a scheduling pass would decide now, each with its reason. Nothing
    /// changes.
    PlanScheduler {
        /// The cluster, by name.
        cluster: String,
    },
    /// Scheduling events numbered after `after`, oldest first, at most `limit`.
    ListEvents {
        /// The cluster, by name.
        cluster: String,
        /// The last event number already read; 0 for all.
        after: u64,
        /// The most events to answer.
        limit: u32,
    },
    /// Moves a shard's leader to `node` by a transfer: `reopen: false` asks for a follower to
    /// take over, `reopen: true` for the shard to open on a node without a replica.
    MoveShard {
        /// The cluster, by name.
        cluster: String,
        /// The shard.
        shard: ShardId,
        /// The node, by name.
        node: String,
        /// Open the shard on a node without a replica, not a follower.
        reopen: bool,
    },
    /// Splits a shard in two: `tables` move to a new shard (none named: chosen by load, so
    /// that the pieces carry about the same).
    SplitShard {
        /// The cluster, by name.
        cluster: String,
        /// The shard.
        shard: ShardId,
        /// The tables, by name or id.
        tables: Vec<TableId>,
    },
    /// Merges two shards: the one with fewer tables moves into the other and is retired.
    MergeShards {
        /// The cluster, by name.
        cluster: String,
        /// The two shards.
        shards: [ShardId; 2],
    },
    /// The procedures in flight, each at its step.
    ListProcedures {
        /// The cluster, by name.
        cluster: String,
    },
    /// Stops a procedure, rolling it back where that is safe.
    CancelProcedure {
        /// The cluster, by name.
        cluster: String,
        /// The procedure.
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
            Request::MarkNodeSlow { .. } => "mark_node_slow",
            Request::RestartNode { .. } => "restart_node",
            Request::RemoveNode { .. } => "remove_node",
            Request::ListShards { .. } => "list_shards",
            Request::ListTables { .. } => "list_tables",
            Request::SchedulerStatus { .. } => "scheduler_status",
            Request::SetScheduler { .. } => "set_scheduler",
            Request::PlanScheduler { .. } => "plan_scheduler",
            Request::GetPlacement { .. } => "get_placement",
            Request::WhatIf { .. } => "what_if",
            Request::SetPlacement { .. } => "set_placement",
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
            | Request::GetPlacement { .. }
            | Request::WhatIf { .. }
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
            | Request::MarkNodeSlow { .. }
            | Request::RestartNode { .. }
            | Request::RemoveNode { .. }
            | Request::SetScheduler { .. }
            | Request::SetPlacement { .. }
            | Request::MoveShard { .. }
            | Request::SplitShard { .. }
            | Request::MergeShards { .. }
            | Request::CancelProcedure { .. } => true,
        }
    }
}

/// A change a what-if rehearses.
#[derive(Clone, Debug, PartialEq)]
pub enum WhatIf {
    /// `DrainNode` of this node.
    Drain(String),
    /// The node gone for good, as `RemoveNode` would have it once it is offline and empty
    /// (the rehearsal takes it offline now: what its failure would do).
    Remove(String),
    /// `RestartNode` beginning a planned restart of this node.
    RestartBegin(String),
    /// `SetPlacement` with this rule.
    Placement(PlacementRecord),
    /// Every node in this zone offline at once.
    LoseZone(String),
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
    Gained {
        /// The term won.
        term: Term,
        /// Until when leadership surely holds, unless renewed.
        valid_until: Instant,
        /// What storage held.
        snapshot: Snapshot,
    },
    /// The election lease was renewed: leadership surely holds until `valid_until`.
    Renewed {
        /// The term renewed.
        term: Term,
        /// Until when leadership now surely holds.
        valid_until: Instant,
    },
    /// Leadership ended (lease lost, resigned, or another node won).
    Lost,
    /// Another meta node leads, as the election last saw it (`None`: no other leader is known).
    /// A refused heartbeat stream is redirected there while the sighting is trusted.
    Observed {
        /// The leader seen, if any.
        leader: Option<ObservedLeader>,
    },
}

/// A meta node the election names leader of `term`, trusted until `until` (on the clock of the
/// core it is handed to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedLeader {
    /// Where it serves.
    pub endpoint: String,
    /// The term it leads in.
    pub term: Term,
    /// How long the sighting is trusted.
    pub until: Instant,
}
