//! Durable records: exactly what storage holds. They derive `prost::Message` so that the stored
//! encoding is compact and can grow fields without breaking old data. The in-memory catalog is
//! built only from these, which is what makes restart equivalence (S6) hold by construction.

use std::collections::BTreeMap;

use crate::core::cause::Cause;

/// How a cluster's shards follow its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topology {
    /// Shards are given to joining nodes, failed over and rebalanced.
    Dynamic,
    /// The assignment is kept: a follower may be promoted; otherwise a shard reopens in place.
    Static,
}

/// A cluster, as stored.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ClusterRecord {
    /// Never given to another cluster, even after a drop.
    #[prost(uint32, tag = "1")]
    pub id: u32,
    /// Unique among clusters that exist.
    #[prost(string, tag = "2")]
    pub name: String,
    /// How many shards it has (ids 0 up to this, less one); only a split grows it.
    #[prost(uint32, tag = "3")]
    pub shard_count: u32,
    /// Followers each shard gets, besides its leader.
    #[prost(uint32, tag = "4")]
    pub followers_per_shard: u32,
    /// 0 dynamic, 1 static.
    #[prost(uint32, tag = "5")]
    pub topology: u32,
    /// Online nodes needed before the first shards are assigned.
    #[prost(uint32, tag = "6")]
    pub min_nodes: u32,
    /// A tombstone: the cluster was dropped with everything in it. Only the id is kept, so that
    /// it is never given again; the name is free.
    #[prost(bool, tag = "7")]
    pub dropped: bool,
}

impl ClusterRecord {
    /// Its topology; an unknown code reads as dynamic.
    pub fn topology(&self) -> Topology {
        if self.topology == 1 {
            Topology::Static
        } else {
            Topology::Dynamic
        }
    }

    /// How `t` is stored.
    pub fn topology_code(t: Topology) -> u32 {
        match t {
            Topology::Dynamic => 0,
            Topology::Static => 1,
        }
    }
}

/// A schema, as stored.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SchemaRecord {
    /// From the cluster's id allocator, shared with tables.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Unique in the cluster.
    #[prost(string, tag = "2")]
    pub name: String,
    /// A cascading drop is deleting its tables: it takes no new ones, and it is deleted once
    /// they are gone.
    #[prost(bool, tag = "3")]
    pub dropping: bool,
}

/// How a partitioned table's rows are split among its sub-tables.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PartitionRecord {
    /// The partition rule, opaque to meta.
    #[prost(bytes = "vec", tag = "1")]
    pub encoded: Vec<u8>,
    /// The sub-tables' ids, in partition order.
    #[prost(uint64, repeated, tag = "2")]
    pub sub_tables: Vec<u64>,
}

/// A table, as stored.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TableRecord {
    /// From the cluster's id allocator.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The schema it belongs to.
    #[prost(uint64, tag = "2")]
    pub schema: u64,
    /// Unique in its schema.
    #[prost(string, tag = "3")]
    pub name: String,
    /// The shard that holds it.
    #[prost(uint32, tag = "4")]
    pub shard: u32,
    /// The table schema as the database encodes it; opaque to meta.
    #[prost(bytes = "vec", tag = "5")]
    pub encoded_schema: Vec<u8>,
    /// The table's options, as the client set them.
    #[prost(btree_map = "string, string", tag = "6")]
    pub options: BTreeMap<String, String>,
    /// Set on a sub-table: its partitioned parent.
    #[prost(uint64, optional, tag = "7")]
    pub parent: Option<u64>,
    /// Set on a partitioned table.
    #[prost(message, optional, tag = "8")]
    pub partition: Option<PartitionRecord>,
    /// 1 at creation; each change to the encoded schema or options bumps it, so a client can
    /// tell a stale copy and compare-and-set on it.
    #[prost(uint32, tag = "9")]
    pub version: u32,
}

/// A leader transfer in progress: the shard's side of a transfer procedure. While it is set,
/// the old leader gets no lease for the shard; once the old leader has reported the shard
/// closed or its lease has surely ended, the new leader takes over. It is the shard's placement
/// (who may lead it), so the heartbeat path reads it from the shard; the procedure record it
/// names holds the lock and is what operators list and cancel. Both are written, and deleted,
/// in one transaction.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct TransferRecord {
    /// The node that leads the shard now and must let it go.
    #[prost(uint32, tag = "1")]
    pub from: u32,
    /// The follower that takes it over.
    #[prost(uint32, tag = "2")]
    pub to: u32,
    /// The id of its [`ProcedureKind::Transfer`] procedure.
    #[prost(uint64, tag = "3")]
    pub procedure: u64,
}

/// A shard's placement, as stored.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ShardRecord {
    /// Its index in the cluster.
    #[prost(uint32, tag = "1")]
    pub id: u32,
    /// Raised by every change to the shard's tables or placement; nodes refuse older commands.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    /// The node that leads it; `None` while unassigned.
    #[prost(uint32, optional, tag = "3")]
    pub leader: Option<u32>,
    /// The nodes that hold a follower replica.
    #[prost(uint32, repeated, tag = "4")]
    pub followers: Vec<u32>,
    /// A leader transfer in progress.
    #[prost(message, optional, tag = "5")]
    pub transfer: Option<TransferRecord>,
    /// Merged away: it holds no table and no replica, and its id is never used again (the
    /// shard count never shrinks).
    #[prost(bool, tag = "6")]
    pub retired: bool,
}

impl ShardRecord {
    /// Shard `id` with no replicas, at version 0.
    pub fn unassigned(id: u32) -> ShardRecord {
        ShardRecord { id, ..Default::default() }
    }

    /// Every node that holds a replica, leader first.
    pub fn replicas(&self) -> impl Iterator<Item = u32> + '_ {
        self.leader.into_iter().chain(self.followers.iter().copied())
    }

    /// What any placement must look like, whatever the nodes: replicas on distinct nodes, and
    /// no followers or transfer without a leader. The loader refuses records that break it,
    /// and S5 checks the catalog against it.
    pub fn shape_error(&self) -> Option<String> {
        let mut replicas: Vec<u32> = self.replicas().collect();
        replicas.sort_unstable();
        if replicas.windows(2).any(|w| w[0] == w[1]) {
            return Some(format!("shard {} has two replicas on one node: {replicas:?}", self.id));
        }
        if self.leader.is_none() && (!self.followers.is_empty() || self.transfer.is_some()) {
            return Some(format!("shard {} has followers or a transfer but no leader", self.id));
        }
        if self.retired && self.leader.is_some() {
            return Some(format!("shard {} is retired but has replicas", self.id));
        }
        None
    }
}

/// A data node, as stored.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NodeRecord {
    /// Dense per cluster; never given again once removed.
    #[prost(uint32, tag = "1")]
    pub id: u32,
    /// Unique among the cluster's nodes not removed.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Where it serves, as it last said.
    #[prost(string, tag = "3")]
    pub endpoint: String,
    /// Its failure domain, as it last said; empty for none.
    #[prost(string, tag = "4")]
    pub zone: String,
    /// The operator is taking the node out: it gets no new replicas, and the ones it has move
    /// away. Kept across restarts of the node and of meta until the operator cancels it.
    #[prost(bool, tag = "5")]
    pub draining: bool,
    /// The operator removed the node (`RemoveNode`): the record keeps its id, which is never
    /// given again, and nothing else; the name is free for a new node.
    #[prost(bool, tag = "6")]
    pub removed: bool,
    /// The operator marked the node slow: it takes no new replicas or leaders, and its leaders
    /// leave it, until the operator unmarks it (see `live::slow`).
    #[prost(bool, tag = "7")]
    pub slow_marked: bool,
    /// Its labels as it last said, by key (at most `validate::LABELS_PER_NODE_MAX`): what
    /// placement can tell nodes apart by besides the zone (see [`NodeRecord::labels_with_zone`]).
    #[prost(message, repeated, tag = "8")]
    pub labels: Vec<Label>,
    /// The operator began a planned restart of the node (`RestartNode`): see [`RestartRecord`].
    #[prost(message, optional, tag = "9")]
    pub restart: Option<RestartRecord>,
}

/// A planned restart: the node's leaders leave it by transfer while the process that is to
/// restart still runs; its followers stay, and while it is down no follower of it is replaced,
/// for up to the window; when a new process of the node is back, the same leaders return to it.
/// The record goes when they are back, when the window passes with the node down, or when the
/// operator ends the restart.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RestartRecord {
    /// The incarnation that is to restart: a heartbeat from another one is the node back.
    #[prost(uint64, tag = "1")]
    pub incarnation: u64,
    /// How long the node may stay down with its followers kept, in milliseconds. Each meta
    /// leader counts it from the node's last heartbeat it heard (or from its own start).
    #[prost(uint64, tag = "2")]
    pub window_ms: u64,
    /// The shards the node led when the restart began, in id order: they return to it.
    #[prost(uint32, repeated, tag = "3")]
    pub leaders: Vec<u32>,
}

/// A label a node reports about itself (`disk=ssd`, `rack=r12`): a key and a value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Label {
    /// What the label says something about, named like a name (`disk`, `rack`).
    #[prost(string, tag = "1")]
    pub key: String,
    /// What it says (`ssd`, `r12`).
    #[prost(string, tag = "2")]
    pub value: String,
}

impl Label {
    /// The label `key=value`.
    pub fn new(key: &str, value: &str) -> Label {
        Label { key: key.into(), value: value.into() }
    }
}

/// The label key that names a node's zone: a node reports its zone in a field of its own,
/// and may not report a label of this key.
pub const ZONE_LABEL: &str = "zone";

impl NodeRecord {
    /// The value of its label `key` (`zone`: its zone); empty when it has none.
    pub fn label(&self, key: &str) -> &str {
        if key == ZONE_LABEL {
            return &self.zone;
        }
        match self.labels.binary_search_by(|l| l.key.as_str().cmp(key)) {
            Ok(i) => &self.labels[i].value,
            Err(_) => "",
        }
    }

    /// Its labels with its zone among them (as `zone`, when it has one), by key: everything
    /// placement can tell it apart by.
    pub fn labels_with_zone(&self) -> Vec<Label> {
        let mut all = self.labels.clone();
        if !self.zone.is_empty() {
            all.push(Label::new(ZONE_LABEL, &self.zone));
            all.sort_by(|a, b| a.key.cmp(&b.key));
        }
        all
    }
}

/// A cluster's scheduler settings as an operator last set them (`SchedulerSettings`); absent
/// until the first change, when the configured defaults apply.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct SchedulerRecord {
    /// See `SchedulerSettings`, which names every field here with its unit.
    #[prost(bool, tag = "1")]
    pub paused: bool,
    /// See `SchedulerSettings::overfull_pct`.
    #[prost(uint32, tag = "2")]
    pub overfull_pct: u32,
    /// See `SchedulerSettings::load_floor_units`.
    #[prost(double, tag = "3")]
    pub load_floor_units: f64,
    /// See `SchedulerSettings::moves_per_pass_max`.
    #[prost(uint32, tag = "4")]
    pub moves_per_pass_max: u32,
    /// See `SchedulerSettings::moves_per_node_per_pass_max`.
    #[prost(uint32, tag = "5")]
    pub moves_per_node_per_pass_max: u32,
    /// See `SchedulerSettings::moves_in_flight_max`.
    #[prost(uint32, tag = "6")]
    pub moves_in_flight_max: u32,
    /// See `SchedulerSettings::shard_cooldown_ms`.
    #[prost(uint64, tag = "7")]
    pub shard_cooldown_ms: u64,
    /// See `SchedulerSettings::shard_share_min_permille`.
    #[prost(uint32, tag = "8")]
    pub shard_share_min_permille: u32,
    // Optional: records stored before automatic splits lack them, and read as the defaults.
    /// See `SchedulerSettings::split_load_pct`.
    #[prost(uint32, optional, tag = "9")]
    pub split_load_pct: Option<u32>,
    /// See `SchedulerSettings::split_floor_units`.
    #[prost(double, optional, tag = "10")]
    pub split_floor_units: Option<f64>,
    /// See `SchedulerSettings::split_windows`.
    #[prost(uint32, optional, tag = "11")]
    pub split_windows: Option<u32>,
    /// See `SchedulerSettings::tables_per_shard_max`.
    #[prost(uint32, optional, tag = "12")]
    pub tables_per_shard_max: Option<u32>,
    /// See `SchedulerSettings::merge_load_pct`.
    #[prost(uint32, optional, tag = "13")]
    pub merge_load_pct: Option<u32>,
    /// See `SchedulerSettings::merge_window_ms`.
    #[prost(uint64, optional, tag = "14")]
    pub merge_window_ms: Option<u64>,
    /// See `SchedulerSettings::shard_bytes_max`.
    #[prost(uint64, optional, tag = "15")]
    pub shard_bytes_max: Option<u64>,
    /// See `SchedulerSettings::pair_cooldown_ms`.
    #[prost(uint64, optional, tag = "16")]
    pub pair_cooldown_ms: Option<u64>,
    /// See `SchedulerSettings::overfull_windows`.
    #[prost(uint32, optional, tag = "17")]
    pub overfull_windows: Option<u32>,
    /// See `SchedulerSettings::moves_in_per_node_per_min`.
    #[prost(uint32, optional, tag = "18")]
    pub moves_in_per_node_per_min: Option<u32>,
    /// See `SchedulerSettings::moves_out_per_node_per_min`.
    #[prost(uint32, optional, tag = "19")]
    pub moves_out_per_node_per_min: Option<u32>,
    /// See `SchedulerSettings::slow_ratio_pct`.
    #[prost(uint32, optional, tag = "20")]
    pub slow_ratio_pct: Option<u32>,
    /// See `SchedulerSettings::slow_windows`.
    #[prost(uint32, optional, tag = "21")]
    pub slow_windows: Option<u32>,
    /// See `SchedulerSettings::disk_high_water_pct`.
    #[prost(uint32, optional, tag = "22")]
    pub disk_high_water_pct: Option<u32>,
    /// See `SchedulerSettings::cpu_weight_pct`.
    #[prost(uint32, optional, tag = "23")]
    pub cpu_weight_pct: Option<u32>,
}

/// A single counter value (epoch, id ceiling).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct CounterRecord {
    /// The counter.
    #[prost(uint64, tag = "1")]
    pub value: u64,
}

/// The write chain: every batch compares this record with the value it expects and advances it,
/// so that a batch lands at most once and only right after the batch before it.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct FenceRecord {
    /// The election term of the leader that wrote the last batch.
    #[prost(uint64, tag = "1")]
    pub term: u64,
    /// The number of that batch in its term.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
}

/// A multi-step operation in progress, stored so that a new meta leader resumes it where the
/// last one stopped (see `leader::procedure`). Deleted when it ends; its id comes from
/// the cluster's id allocator and is never reused.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ProcedureRecord {
    /// From the cluster's id allocator.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// [`ProcedureKind`] as a number.
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// [`ProcedureStep`] as a number.
    #[prost(uint32, tag = "3")]
    pub step: u32,
    /// The shard it works on: a split's source, the shard a merge empties and retires, or the
    /// shard whose leader a transfer moves.
    #[prost(uint32, tag = "4")]
    pub shard: u32,
    /// A split's new shard; a merge's target, which takes the tables of `shard`; for a
    /// transfer, `shard` again.
    #[prost(uint32, tag = "5")]
    pub new_shard: u32,
    /// The tables it moves (a split's share for the new shard), bounded by
    /// `split_tables_max`.
    #[prost(uint64, repeated, tag = "6")]
    pub tables: Vec<u64>,
    /// Why it started, for `metactl procedure list` and the event log.
    #[prost(string, tag = "7")]
    pub why: String,
    /// The share of the source's load the tables carry, in thousandths, as estimated when the
    /// split was chosen: where the two shards' load estimates start once the source lets go.
    #[prost(uint32, tag = "8")]
    pub share_permille: u32,
    /// A transfer's cause ([`Cause::code`]; 0 in records stored before causes were), so that
    /// a checker, or a new meta leader, can tell a move for balance from a drain's.
    #[prost(uint32, tag = "9")]
    pub cause: u32,
}

/// What a procedure does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProcedureKind {
    /// A shard's tables, some of them, into a new shard.
    Split = 1,
    /// One shard's tables into another, the emptied one retired.
    Merge = 2,
    /// A leader transfer; its `shard` is the shard, and the shard's record names the nodes.
    Transfer = 3,
}

/// Where a procedure stands; each step is named for what it waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProcedureStep {
    /// The catalog moves the tables to the new shard, a batch per write.
    AwaitingTablesMoved = 1,
    /// The source shard's new version (without the moved tables) is out; its leader must
    /// report it before any node may serve the tables in the new shard.
    AwaitingSourceRelease = 2,
    /// The new shard is assigned; its leader must report it open.
    AwaitingNewShardOpen = 3,
    /// Cancelled: the moved tables go back to the source shard.
    RollingBack = 4,
    /// A merge's target has its new version (with the tables) out; its leader must report it
    /// before the emptied shard is retired.
    AwaitingTargetOpen = 5,
    /// A transfer's old leader must let the shard go (or its lease run out) before the new
    /// leader may take it.
    AwaitingLeaderRelease = 6,
}

impl ProcedureKind {
    /// Every kind, in code order.
    pub const ALL: [ProcedureKind; 3] =
        [ProcedureKind::Split, ProcedureKind::Merge, ProcedureKind::Transfer];

    /// The kind stored as `code`, if it is one.
    pub fn from_code(code: u32) -> Option<ProcedureKind> {
        ProcedureKind::ALL.into_iter().find(|k| *k as u32 == code)
    }

    /// Whether a procedure of this kind ever stands at `step` (the loader refuses one that does not).
    pub fn has_step(self, step: ProcedureStep) -> bool {
        use ProcedureStep::*;
        match self {
            ProcedureKind::Split => matches!(
                step,
                AwaitingTablesMoved | AwaitingSourceRelease | AwaitingNewShardOpen | RollingBack
            ),
            ProcedureKind::Merge => matches!(
                step,
                AwaitingSourceRelease | AwaitingTablesMoved | AwaitingTargetOpen | RollingBack
            ),
            ProcedureKind::Transfer => step == AwaitingLeaderRelease,
        }
    }

    /// Its name, as `metactl procedure list` shows it.
    pub fn name(self) -> &'static str {
        match self {
            ProcedureKind::Split => "split",
            ProcedureKind::Merge => "merge",
            ProcedureKind::Transfer => "transfer",
        }
    }
}

impl ProcedureStep {
    /// The step stored as `code`, if it is one.
    pub fn from_code(code: u32) -> Option<ProcedureStep> {
        [
            Self::AwaitingTablesMoved,
            Self::AwaitingSourceRelease,
            Self::AwaitingNewShardOpen,
            Self::RollingBack,
            Self::AwaitingTargetOpen,
            Self::AwaitingLeaderRelease,
        ]
        .into_iter()
        .find(|s| *s as u32 == code)
    }

    /// Its name, as `metactl procedure list` shows it.
    pub fn name(self) -> &'static str {
        match self {
            ProcedureStep::AwaitingTablesMoved => "AwaitingTablesMoved",
            ProcedureStep::AwaitingSourceRelease => "AwaitingSourceRelease",
            ProcedureStep::AwaitingNewShardOpen => "AwaitingNewShardOpen",
            ProcedureStep::RollingBack => "RollingBack",
            ProcedureStep::AwaitingTargetOpen => "AwaitingTargetOpen",
            ProcedureStep::AwaitingLeaderRelease => "AwaitingLeaderRelease",
        }
    }
}

impl ProcedureRecord {
    /// A leader transfer of `shard`, which it alone locks.
    pub fn transfer(id: u64, shard: u32, cause: Cause, why: String) -> ProcedureRecord {
        let (kind, step) =
            (ProcedureKind::Transfer as u32, ProcedureStep::AwaitingLeaderRelease as u32);
        let cause = cause.code();
        ProcedureRecord {
            id,
            kind,
            step,
            shard,
            new_shard: shard,
            why,
            cause,
            ..Default::default()
        }
    }

    /// Why it started, when its record says (see `cause`).
    pub fn cause(&self) -> Option<Cause> {
        Cause::from_code(self.cause)
    }

    /// Its kind (the loader refused unknown codes).
    pub fn kind(&self) -> ProcedureKind {
        ProcedureKind::from_code(self.kind).expect("the loader refuses unknown kinds")
    }

    /// Its step (the loader refused unknown codes).
    pub fn step(&self) -> ProcedureStep {
        ProcedureStep::from_code(self.step).expect("the loader refuses unknown steps")
    }
}
