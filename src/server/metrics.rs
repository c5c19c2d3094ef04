//! The meta server's Prometheus metrics, served as OpenMetrics text on the admin port's
//! `/metrics`. One registry per process: the runtime's parts (driver, storage, election) count
//! into it from wherever the event happens, as Prometheus clients usually do.
//!
//! The heartbeat path touches only counters and histograms held directly (atomics): commands
//! are counted per kind in an array filled at start, not through a labelled family's lock.
//! Cluster gauges (nodes, shards, tables, changes pending) are read from the leader's core when
//! scraped ([`Metrics::set_cluster`]), so nothing is kept up to date between scrapes.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::client::metrics::{counters_by, Labels};
use crate::core::storage::{LoadCause, WriteResult};
use crate::core::{ClusterView, CommandKind, MetaError, NodeMessage, Term};

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;
/// (cluster, cause) → (term, count).
type EventCounts = BTreeMap<(String, &'static str), (Term, u64)>;
/// cluster → (term, the newest failover number observed).
type FailoversSeen = BTreeMap<String, (Term, u64)>;

/// The kinds of shard command, as the `kind` label names them.
const COMMAND_KINDS: [&str; 6] =
    ["open", "close", "change_role", "create_table", "drop_table", "alter_table"];

fn command_kind(kind: &CommandKind) -> usize {
    match kind {
        CommandKind::Open { .. } => 0,
        CommandKind::Close => 1,
        CommandKind::ChangeRole { .. } => 2,
        CommandKind::CreateTable { .. } => 3,
        CommandKind::DropTable { .. } => 4,
        CommandKind::AlterTable { .. } => 5,
    }
}

/// 100 µs to about 13 s: from a heartbeat handled in memory to a slow etcd transaction.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

/// A failover takes a lease plus the clock drift at least (10.5 s by default), and more when
/// no node can take the shard at once.
fn failover_seconds() -> Histogram {
    Histogram::new([1.0, 2.0, 5.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0])
}

pub struct Metrics {
    registry: Registry,
    heartbeats: Counter,
    heartbeat_seconds: Histogram,
    commands: [Counter; COMMAND_KINDS.len()],
    leases_granted: Counter,
    leases_withheld: Counter,
    requests: Family<Labels, Counter>,
    request_seconds: Histograms,
    storage_transactions: Family<Labels, Counter>,
    storage_seconds: Histogram,
    storage_ops: Histogram,
    snapshot_loads: Family<Labels, Counter>,
    snapshot_seconds: Histogram,
    snapshot_bytes: Histogram,
    snapshot_keys: Histogram,
    term: Gauge,
    leader: Gauge,
    nodes: Family<Labels, Gauge>,
    shards: Family<Labels, Gauge>,
    procedures: Family<Labels, Gauge>,
    tables: Family<Labels, Gauge>,
    changes_pending: Family<Labels, Gauge>,
    placement_unsatisfied: Family<Labels, Gauge>,
    node_job_remaining: Family<Labels, Gauge>,
    heartbeat_streams: Gauge,
    route_watches: Gauge,
    scheduling_events: Family<Labels, Counter>,
    /// The leader's event counts at the last scrape, per (cluster, cause), with the term of
    /// the log they came from: the counter gains what they gained. Another term's log is
    /// counted from zero.
    events_seen: Mutex<EventCounts>,
    failover_seconds: Histograms,
    failovers_seen: Mutex<FailoversSeen>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut root = Registry::default();
        let r = root.sub_registry_with_prefix("shardmeta");
        let m = Metrics {
            registry: Registry::default(),
            heartbeats: Counter::default(),
            heartbeat_seconds: seconds(),
            commands: Default::default(),
            leases_granted: Counter::default(),
            leases_withheld: Counter::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds),
            storage_transactions: Family::default(),
            storage_seconds: seconds(),
            storage_ops: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            snapshot_loads: Family::default(),
            snapshot_seconds: seconds(),
            snapshot_bytes: Histogram::new(exponential_buckets(1024.0, 4.0, 12)),
            snapshot_keys: Histogram::new(exponential_buckets(16.0, 4.0, 12)),
            term: Gauge::default(),
            leader: Gauge::default(),
            nodes: Family::default(),
            shards: Family::default(),
            procedures: Family::default(),
            tables: Family::default(),
            changes_pending: Family::default(),
            placement_unsatisfied: Family::default(),
            node_job_remaining: Family::default(),
            heartbeat_streams: Gauge::default(),
            route_watches: Gauge::default(),
            scheduling_events: Family::default(),
            events_seen: Mutex::default(),
            failover_seconds: Family::new_with_constructor(failover_seconds),
            failovers_seen: Mutex::default(),
        };
        r.register("heartbeats", "Heartbeats received from data nodes", m.heartbeats.clone());
        r.register(
            "heartbeat_handle_seconds",
            "Time the core took to handle one heartbeat",
            m.heartbeat_seconds.clone(),
        );
        let (commands, held) = counters_by("kind", COMMAND_KINDS);
        r.register("commands_sent", "Shard commands sent to data nodes, by kind", commands);
        r.register(
            "leases_granted",
            "Lease grants sent in answer to heartbeats",
            m.leases_granted.clone(),
        );
        r.register("leases_withheld", "Leader shards a node reported that were refused a lease (the node must stop leading them)", m.leases_withheld.clone());
        r.register(
            "requests",
            "Client and operator requests, by kind and result",
            m.requests.clone(),
        );
        r.register(
            "request_seconds",
            "Time from a request's arrival to its answer, by kind",
            m.request_seconds.clone(),
        );
        r.register(
            "storage_transactions",
            "Storage transactions, by result: ok, conflict (fenced out) or unknown",
            m.storage_transactions.clone(),
        );
        r.register(
            "storage_transaction_seconds",
            "Time one storage transaction took",
            m.storage_seconds.clone(),
        );
        r.register(
            "storage_transaction_ops",
            "Operations in one storage transaction",
            m.storage_ops.clone(),
        );
        r.register(
            "snapshot_loads",
            "Catalog loads from storage, by result (ok, or the cause of the failure)",
            m.snapshot_loads.clone(),
        );
        r.register(
            "snapshot_load_seconds",
            "Time a successful catalog load took",
            m.snapshot_seconds.clone(),
        );
        r.register(
            "snapshot_load_bytes",
            "Key and value bytes a successful catalog load read",
            m.snapshot_bytes.clone(),
        );
        r.register(
            "snapshot_load_keys",
            "Keys a successful catalog load read",
            m.snapshot_keys.clone(),
        );
        r.register("term", "The meta term this node leads in, or 0", m.term.clone());
        r.register("leader", "1 while this meta node leads and serves, else 0", m.leader.clone());
        r.register("nodes", "Data nodes by cluster and state (leader only)", m.nodes.clone());
        r.register("shards", "Shards by cluster and status: unassigned, opening, ready, transferring, offline, retired (leader only)", m.shards.clone());
        r.register(
            "procedures",
            "Procedures in flight by cluster and kind: transfer, split, merge (leader only)",
            m.procedures.clone(),
        );
        r.register("tables", "Tables by cluster (leader only)", m.tables.clone());
        r.register(
            "changes_pending",
            "Changes decided but not yet acknowledged by storage, by cluster (leader only)",
            m.changes_pending.clone(),
        );
        r.register(
            "placement_unsatisfied_shards",
            "Shards the placement rule cannot be met for with the nodes there are, by cluster (leader only)",
            m.placement_unsatisfied.clone(),
        );
        r.register(
            "node_job_remaining",
            "What is left of a node's drain (replicas), slow eviction (leaders) or fill (moves), by cluster, node and job (leader only)",
            m.node_job_remaining.clone(),
        );
        r.register(
            "heartbeat_streams",
            "Heartbeat streams open on this meta node",
            m.heartbeat_streams.clone(),
        );
        r.register(
            "route_watches",
            "Route watches open on this meta node",
            m.route_watches.clone(),
        );
        r.register("scheduling_events", "Scheduling decisions by cluster and cause: failover, assign, repair, drain, load, leader-count, operator, finish, split, merge (counted from the leader's log at each scrape)", m.scheduling_events.clone());
        r.register("failover_seconds", "How long a shard had no writable leader when its leader died: from the dead leader's last lease renewal to the new leader's first lease, by cluster", m.failover_seconds.clone());
        Metrics { registry: root, commands: held, ..m }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    pub fn heartbeat(&self, took: Duration) {
        self.heartbeats.inc();
        self.heartbeat_seconds.observe(took.as_secs_f64());
    }

    pub fn to_node(&self, message: &NodeMessage) {
        for command in &message.commands {
            self.commands[command_kind(&command.kind)].inc();
        }
        if let Some(lease) = &message.lease {
            self.leases_granted.inc();
            self.leases_withheld.inc_by(lease.revoked.len() as u64);
        }
    }

    pub fn request(&self, kind: &'static str, result: Result<(), &MetaError>, took: Duration) {
        let result = match result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("{:?}", crate::convert::status(e.clone()).code()),
        };
        self.requests.get_or_create(&vec![("kind", kind.to_string()), ("result", result)]).inc();
        self.request_seconds
            .get_or_create(&vec![("kind", kind.to_string())])
            .observe(took.as_secs_f64());
    }

    pub fn storage_transaction(&self, result: &WriteResult, ops: usize, took: Duration) {
        let result = match result {
            WriteResult::Ok => "ok",
            WriteResult::Conflict => "conflict",
            WriteResult::Error => "unknown",
        };
        self.storage_transactions.get_or_create(&vec![("result", result.to_string())]).inc();
        self.storage_seconds.observe(took.as_secs_f64());
        self.storage_ops.observe(ops as f64);
    }

    pub fn snapshot_loaded(&self, keys: u64, bytes: u64, took: Duration) {
        self.snapshot_loads.get_or_create(&vec![("result", "ok".to_string())]).inc();
        self.snapshot_seconds.observe(took.as_secs_f64());
        self.snapshot_keys.observe(keys as f64);
        self.snapshot_bytes.observe(bytes as f64);
    }

    pub fn snapshot_failed(&self, cause: LoadCause) {
        self.snapshot_loads
            .get_or_create(&vec![("result", format!("{cause:?}").to_lowercase())])
            .inc();
    }

    /// What the driver sees after each pass: cheap stores, so it can do it every time.
    pub fn set_leadership(&self, term: Option<u64>, serving: bool, streams: usize, watches: usize) {
        self.term.set(term.unwrap_or(0) as i64);
        self.leader.set(serving as i64);
        self.heartbeat_streams.set(streams as i64);
        self.route_watches.set(watches as i64);
    }

    /// Replaces the cluster gauges with what the leader's core says now; a follower clears
    /// them (the leader exports them).
    pub fn set_clusters(&self, views: &[ClusterView]) {
        let mut seen = self.events_seen.lock().expect("events seen lock");
        let mut failovers_seen = self.failovers_seen.lock().expect("failovers seen lock");
        for family in [
            &self.nodes,
            &self.shards,
            &self.procedures,
            &self.tables,
            &self.changes_pending,
            &self.placement_unsatisfied,
            &self.node_job_remaining,
        ] {
            family.clear();
        }
        for v in views {
            let labels = |key: &'static str, value: &str| {
                vec![("cluster", v.cluster.name.clone()), (key, value.to_string())]
            };
            self.nodes.get_or_create(&labels("state", "online")).set(v.nodes_online as i64);
            self.nodes.get_or_create(&labels("state", "offline")).set(v.nodes_offline as i64);
            // Subsets of the online ones.
            self.nodes.get_or_create(&labels("state", "slow")).set(v.nodes_slow as i64);
            let frozen = labels("state", "stats_frozen");
            self.nodes.get_or_create(&frozen).set(v.nodes_stats_frozen as i64);
            let contradicted = labels("state", "stats_contradicted");
            self.nodes.get_or_create(&contradicted).set(v.nodes_stats_contradicted as i64);
            for &(status, n) in &v.shards_by_status {
                self.shards.get_or_create(&labels("status", status)).set(n as i64);
            }
            for &(kind, n) in &v.procedures_by_kind {
                self.procedures.get_or_create(&labels("kind", kind)).set(n as i64);
            }
            let cluster = vec![("cluster", v.cluster.name.clone())];
            self.tables.get_or_create(&cluster).set(v.tables as i64);
            self.changes_pending.get_or_create(&cluster).set(v.changes_pending as i64);
            let unsatisfied = &self.placement_unsatisfied;
            unsatisfied.get_or_create(&cluster).set(v.placement_unsatisfied as i64);
            for (node, job, remaining) in &v.jobs {
                let labels = vec![
                    ("cluster", v.cluster.name.clone()),
                    ("node", node.clone()),
                    ("job", job.to_string()),
                ];
                self.node_job_remaining.get_or_create(&labels).set(*remaining as i64);
            }
            for &(cause, count) in &v.events_by_cause {
                let last = match seen.insert((v.cluster.name.clone(), cause), (v.term, count)) {
                    Some((term, last)) if term == v.term => last,
                    _ => 0,
                };
                let gained = count.saturating_sub(last);
                self.scheduling_events
                    .get_or_create(&vec![
                        ("cluster", v.cluster.name.clone()),
                        ("cause", cause.to_string()),
                    ])
                    .inc_by(gained);
            }
            // Each failover is observed once: those numbered after the last scrape's newest.
            let after =
                match failovers_seen.insert(v.cluster.name.clone(), (v.term, v.failovers.total)) {
                    Some((term, last)) if term == v.term => last,
                    _ => 0,
                };
            let histogram = self.failover_seconds.get_or_create(&cluster);
            for ms in v.failovers.after(after) {
                histogram.observe(ms as f64 / 1_000.0);
            }
        }
    }
}
