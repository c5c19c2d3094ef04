//! The core's settings and limits. Every queue, batch and size the core keeps has a named limit
//! here, with its unit last.

use super::error::{MetaError, MetaResult};
use super::input::ClusterSpec;
use super::settings::SchedulerSettings;
use super::time::Duration;
use super::validate;

/// Settings of one [`MetaCore`](super::MetaCore).
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// How long a node lives without a heartbeat, and how long a shard lease lasts.
    pub lease_ms: u64,
    /// Added to every lease wait before a leader shard moves: covers clock drift between meta and
    /// the data nodes over one lease.
    pub clock_drift_ms: u64,
    /// The heartbeat interval nodes are told to keep.
    pub heartbeat_interval_ms: u64,
    /// A request not answered by then gets a deadline error.
    pub request_timeout_ms: u64,
    /// How often the scheduler looks at the cluster.
    pub tick_interval_ms: u64,
    /// Operations in one storage transaction (etcd's default `max-txn-ops`).
    pub txn_ops_max: usize,
    /// Requests waiting for their reply.
    pub requests_pending_max: usize,
    /// Changes waiting to be written, beyond which the scheduler holds back and DDL is refused.
    pub changes_queued_max: usize,
    /// Clusters the service holds at once.
    pub clusters_max: usize,
    /// Cluster ids the service hands out over its life: a dropped cluster keeps its id (never
    /// given again) as a small tombstone, so this bounds what creates and drops leave.
    pub cluster_ids_max: usize,
    /// Nodes registered and not removed.
    pub nodes_per_cluster_max: usize,
    /// Node ids a cluster hands out over its life: a removed node keeps its id (never given
    /// again) as a small tombstone, so this bounds what registrations and removals leave.
    pub node_ids_per_cluster_max: usize,
    /// Heartbeats a node's incarnation must send to this meta leader before it is given new
    /// replicas or leaders, so that a one-shot sender, or a node that keeps restarting, gets none.
    pub node_settle_heartbeats: u32,
    /// Shards of one cluster, splits included.
    pub shards_per_cluster_max: u32,
    /// Followers of one shard, besides its leader.
    pub followers_per_shard_max: u32,
    /// Tables of one cluster, sub-tables included.
    pub tables_per_cluster_max: usize,
    /// Schemas of one cluster.
    pub schemas_per_cluster_max: usize,
    /// Shard reports in one heartbeat.
    pub reports_per_heartbeat_max: usize,
    /// Bytes of a name: a cluster, schema, table or node, and of an endpoint or a zone.
    pub name_len_max: usize,
    /// Bytes of a table's encoded schema, which meta stores without reading it.
    pub encoded_schema_bytes_max: usize,
    /// Options of one table.
    pub table_options_max: usize,
    /// Bytes of one option, its key and value together.
    pub option_bytes_max: usize,
    /// Sub-tables of one partitioned table; they and their shards fit one transaction.
    pub partitions_max: u32,
    /// Table names in one route or get request.
    pub tables_per_route_max: usize,
    /// Encoded-schema bytes in one get-tables answer, so that it fits a gRPC message: ask for
    /// fewer tables past it.
    pub table_details_bytes_max: usize,
    /// Items in a listing page when the request names no size.
    pub list_page_default: u32,
    /// The most items in one listing page: a page is built inside the core's loop, so its size
    /// bounds how long one listing delays heartbeats.
    pub list_page_max: u32,
    /// The most rows one filtered listing page looks at before it answers (possibly with fewer
    /// items than asked, and a token to go on).
    pub list_scan_max: usize,
    /// Shard moves (assignment, failover, repair) decided per scheduler tick.
    pub shard_moves_per_tick_max: usize,
    /// Each cluster's scheduler settings until an operator changes them.
    pub scheduler: SchedulerSettings,
    /// Scheduling events kept per cluster for `metactl events`; older ones are dropped.
    pub events_kept_max: usize,
    /// Route changes kept per cluster for watchers that resume; one resuming from before the
    /// oldest kept is told to resync.
    pub route_log_max: usize,
    /// Route watches open at once on this meta leader.
    pub watchers_max: usize,
    /// Procedures (splits) running at once per cluster; each locks its shards.
    pub procedures_in_flight_max: usize,
    /// The most tables one split moves: the procedure record lists them, and a shard with more
    /// is split again.
    pub split_tables_max: usize,
    /// A procedure step that waits on nodes (a release, an open) gives up after this long, in
    /// ms: it rolls back where it can and finishes where it cannot.
    pub procedure_step_timeout_ms: u64,
    /// A split or merge that has not ended this long after this meta leader first saw it, in
    /// ms, rolls back where it can (one whose table moves are starved by a busy write queue,
    /// say) and finishes where it cannot. A transfer needs no such bound: it ends once the old
    /// leader lets go, or by its lease running out.
    pub procedure_timeout_ms: u64,
    /// Ids reserved in storage at a time, so that most creates write no id counter.
    pub id_block: u64,
    /// How long a node in a planned restart may stay down with its followers kept, when the
    /// operator names no window, in ms: past it, the node counts as lost and its followers are
    /// replaced.
    pub restart_window_default_ms: u64,
    /// The longest restart window an operator may ask for, in ms.
    pub restart_window_max_ms: u64,
    /// The span over which a shard's reported load is averaged before it joins the smoothed
    /// value (see `live::load`).
    pub load_window_ms: u64,
    /// Windows a shard's load must have been seen for before decisions trust it (and again
    /// after the shard moves).
    pub load_windows_trusted: u32,
    /// A cluster the leader creates (with its `public` schema) whenever it leads without it, so
    /// that nodes can join a fresh service without an operator's first call.
    pub default_cluster: Option<ClusterSpec>,
    /// Test-only: a deliberately broken behaviour, to prove the invariant checkers catch it.
    /// It takes effect only with the `planted-bugs` feature (see [`has_bug`](Self::has_bug)).
    #[doc(hidden)]
    pub planted_bug: Option<PlantedBug>,
}

/// Deliberate bugs that tests switch on to show that each invariant checker catches them.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Fail a dead node's shards over without waiting for its lease to end (breaks S1).
    SkipLeaseWait,
    /// Reply to a create before its write is acknowledged (breaks S2 when writes fail).
    ReplyBeforePersist,
    /// Restart the cluster epoch at zero on a meta leader change (breaks S3).
    ResetEpochOnLeaderChange,
    /// Let a follower replica land on the leader's node (breaks S5).
    FollowerOnLeaderNode,
    /// Leave table options out of the stored record (breaks S6).
    DropOptionsOnEncode,
    /// Forget to move a node in the load index when its counts change (breaks the leader's
    /// own consistency check, `Leader::validate`).
    StaleLoadIndex,
    /// Never answer a request at its deadline, only when its work is done (breaks L4 when a
    /// meta process pauses or storage is slow).
    IgnoreDeadlines,
    /// Never move leaders to balance nodes (breaks L3 after a scale-out).
    SkipBalance,
    /// Never take up a won term: the election holder serves nothing (breaks L1).
    IgnoreWonTerm,
    /// Count a lease as over at meta's own expiry, without the clock-drift allowance (breaks S1
    /// when node clocks run slow at the drift bound).
    IgnoreClockDrift,
    /// Never fail a dead leader's shards over (breaks L2 while node crashes last).
    SkipFailover,
    /// Place replicas without regard to zones (breaks S5's zone spread).
    IgnoreZones,
    /// Let a split's new shard be led without waiting for the source shard's leader to let its
    /// tables go (breaks S1 per table).
    SplitWithoutRelease,
    /// Re-open a shard being merged away with its tables, instead of none, so that its leader
    /// keeps serving them after they move to the target (breaks S1 per table).
    MergeWithoutFence,
    /// The balancer forgets which way it moved load between two nodes (B1 catches it).
    ForgetLoadFlows,
    /// Load reports that stopped changing are believed.
    TrustFrozenStats,
    /// Failover promotes followers without regard to how far behind they said they are
    /// (breaks F1 when a follower in sync lives).
    IgnoreFollowerLag,
    /// Place replicas and leaders without regard to the cluster's placement rule (breaks S5's
    /// rule check when a node that fits could take them).
    IgnorePlacementRules,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            lease_ms: 10_000,
            clock_drift_ms: 500,
            heartbeat_interval_ms: 1_000,
            request_timeout_ms: 5_000,
            tick_interval_ms: 500,
            txn_ops_max: 128,
            requests_pending_max: 10_000,
            changes_queued_max: 50_000,
            clusters_max: 64,
            cluster_ids_max: 4_096,
            nodes_per_cluster_max: 4_096,
            node_ids_per_cluster_max: 65_536,
            node_settle_heartbeats: CoreConfig::DEFAULT_SETTLE_HEARTBEATS,
            shards_per_cluster_max: 1 << 20,
            followers_per_shard_max: 4,
            tables_per_cluster_max: 10_000_000,
            schemas_per_cluster_max: 10_000,
            reports_per_heartbeat_max: 1 << 20,
            name_len_max: 128,
            encoded_schema_bytes_max: 256 * 1024,
            table_options_max: 64,
            option_bytes_max: 4 * 1024,
            partitions_max: 32,
            tables_per_route_max: 10_000,
            table_details_bytes_max: 8 << 20,
            list_page_default: 1_000,
            list_page_max: 10_000,
            list_scan_max: 100_000,
            shard_moves_per_tick_max: 4_096,
            scheduler: SchedulerSettings::default(),
            events_kept_max: 1_000,
            route_log_max: 16_384,
            watchers_max: 1_024,
            procedures_in_flight_max: 8,
            split_tables_max: 50_000,
            procedure_step_timeout_ms: 60_000,
            procedure_timeout_ms: 600_000,
            id_block: 1_000,
            restart_window_default_ms: 600_000,
            restart_window_max_ms: 3_600_000,
            load_window_ms: 10_000,
            load_windows_trusted: 3,
            default_cluster: None,
            planted_bug: None,
        }
    }
}

impl CoreConfig {
    /// The default of [`CoreConfig::node_settle_heartbeats`].
    pub const DEFAULT_SETTLE_HEARTBEATS: u32 = 3;

    /// How long a lease granted to a node lasts, from the node's send time.
    pub fn lease(&self) -> Duration {
        Duration(self.lease_ms)
    }

    /// How far a node's clock may run slow against meta's over one lease: meta waits this
    /// much past a lease before it treats the lease as surely over.
    pub fn clock_drift(&self) -> Duration {
        Duration(self.clock_drift_ms)
    }

    /// Whether `bug` is planted. Always false without the `planted-bugs` feature, so release
    /// builds compile every planted branch out.
    pub fn has_bug(&self, bug: PlantedBug) -> bool {
        cfg!(feature = "planted-bugs") && self.planted_bug == Some(bug)
    }

    /// Whether the core checks its derived state after every input (debug builds). A bug
    /// planted for one of the invariant checkers would trip this check first, so it is off
    /// then, except for the bug planted for it.
    pub fn checks_consistency(&self) -> bool {
        cfg!(debug_assertions) && self.planted_bug.is_none_or(|b| b == PlantedBug::StaleLoadIndex)
    }

    /// Refuses settings that make no sense, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("lease_ms", self.lease_ms),
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("tick_interval_ms", self.tick_interval_ms),
            ("id_block", self.id_block),
            ("load_window_ms", self.load_window_ms),
            ("load_windows_trusted", self.load_windows_trusted as u64),
            ("txn_ops_max", self.txn_ops_max as u64),
            ("shard_moves_per_tick_max", self.shard_moves_per_tick_max as u64),
            ("list_page_default", self.list_page_default as u64),
            ("list_page_max", self.list_page_max as u64),
            ("list_scan_max", self.list_scan_max as u64),
            ("events_kept_max", self.events_kept_max as u64),
            ("route_log_max", self.route_log_max as u64),
            ("procedures_in_flight_max", self.procedures_in_flight_max as u64),
            ("split_tables_max", self.split_tables_max as u64),
            ("procedure_step_timeout_ms", self.procedure_step_timeout_ms),
            ("procedure_timeout_ms", self.procedure_timeout_ms),
            ("table_details_bytes_max", self.table_details_bytes_max as u64),
            ("node_settle_heartbeats", self.node_settle_heartbeats as u64),
            ("node_ids_per_cluster_max", self.node_ids_per_cluster_max as u64),
            ("cluster_ids_max", self.cluster_ids_max as u64),
            ("restart_window_default_ms", self.restart_window_default_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be greater than zero"));
        }
        self.scheduler.validate().map_err(|e| format!("scheduler.{e}"))?;
        if self.shards_per_cluster_max > super::model::SHARDS_PER_CLUSTER_CEILING {
            return Err(format!(
                "shards_per_cluster_max ({}) is above the ceiling of {}",
                self.shards_per_cluster_max,
                super::model::SHARDS_PER_CLUSTER_CEILING
            ));
        }
        if self.lease_ms <= self.heartbeat_interval_ms {
            return Err(format!(
                "lease_ms ({}) must be longer than heartbeat_interval_ms ({})",
                self.lease_ms, self.heartbeat_interval_ms
            ));
        }
        // A partitioned table writes its sub-tables, their shards and the id counter at once.
        let partition_ops = 2 * (self.partitions_max as usize + 1) + 2;
        if partition_ops > self.txn_ops_max {
            return Err(format!(
                "partitions_max ({}) needs {partition_ops} operations per transaction, over txn_ops_max ({})",
                self.partitions_max, self.txn_ops_max
            ));
        }
        if self.restart_window_default_ms > self.restart_window_max_ms {
            return Err(format!(
                "restart_window_default_ms ({}) is over restart_window_max_ms ({})",
                self.restart_window_default_ms, self.restart_window_max_ms
            ));
        }
        if self.planted_bug.is_some() && !cfg!(feature = "planted-bugs") {
            return Err("planted_bug needs the planted-bugs feature".into());
        }
        if let Some(spec) = &self.default_cluster {
            self.check_cluster_spec(spec).map_err(|e| format!("default_cluster: {e}"))?;
        }
        Ok(())
    }

    /// What makes a cluster spec acceptable, whoever asks for the cluster.
    pub fn check_cluster_spec(&self, spec: &ClusterSpec) -> MetaResult<()> {
        validate::name("cluster name", &spec.name, self.name_len_max)?;
        if spec.shard_count == 0 || spec.shard_count > self.shards_per_cluster_max {
            return Err(MetaError::InvalidArgument(format!(
                "shard count {} is outside 1..={}",
                spec.shard_count, self.shards_per_cluster_max
            )));
        }
        if spec.followers_per_shard > self.followers_per_shard_max {
            return Err(MetaError::InvalidArgument(format!(
                "{} followers per shard; the limit is {}",
                spec.followers_per_shard, self.followers_per_shard_max
            )));
        }
        if spec.min_nodes == 0 {
            return Err(MetaError::InvalidArgument("min_nodes must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        CoreConfig::default().validate().unwrap();
    }

    #[test]
    fn lease_not_longer_than_heartbeat_is_refused_by_name() {
        let cfg =
            CoreConfig { lease_ms: 1_000, heartbeat_interval_ms: 1_000, ..Default::default() };
        assert!(cfg.validate().unwrap_err().contains("lease_ms"));
    }

    #[test]
    fn too_many_partitions_for_one_transaction_is_refused() {
        let cfg = CoreConfig { partitions_max: 100, ..Default::default() };
        assert!(cfg.validate().unwrap_err().contains("partitions_max"));
    }
}
