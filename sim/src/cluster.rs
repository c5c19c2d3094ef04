//! The simulated deployment: madsim's etcd on its own node, 3–5 meta nodes running the real
//! `server::run`, 4–64 data nodes running the real heartbeat loop, `ShardHost` and write
//! service, and a client node for checks. Every node is built with `init`, so a restart re-runs
//! its start-up from scratch.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use shardmeta::client::node::{self, NodeClock, NodeIdentity, ShardExecutor};
use shardmeta::client::{
    HostCounters, LeaseTracker, MetaClient, ShardHost, TableLeaseTracker, WriteService,
};
use shardmeta::core::model::Label;
use shardmeta::core::{Epoch, Instant, NodeMessage, PlantedBug, ShardCommand, ShardId};
use shardmeta::server::config::{Overrides, ServerConfig};
use tracing::Instrument;

use crate::history::{now_ms, History, Ms};
use crate::told::catch_up_ms;

pub const ETCD: &str = "10.0.0.1:2379";
pub const CLUSTER: &str = "default";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP literal")
}

/// The shape of one simulated deployment.
#[derive(Clone, Debug)]
pub struct Spec {
    pub metas: usize,
    pub data_nodes: usize,
    pub shards: u32,
    pub followers: u32,
    /// Nodes the default cluster waits for before assigning shards.
    pub min_nodes: usize,
    /// Share of etcd requests that time out (their outcome is then unknown).
    pub etcd_timeout_rate: f32,
    /// What data nodes report (see [`SimLoad`]).
    pub load: SimLoad,
    /// A bug planted in every meta node, for the checkers' own tests.
    pub planted: Option<PlantedBug>,
}

/// The load data nodes report for the shards they lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimLoad {
    /// Below the balancing floor: the scheduler evens out leader counts.
    Flat,
    /// Every fifth shard 8× hotter, well above the floor, and CPU a unit uneven by shard: the
    /// scheduler balances by load, CPU weighed in.
    Skewed,
    /// Every fifth shard rises from 100 to 800 units and falls back, with a period of
    /// [`PERIOD_WINDOWS`] load windows: the balancer must place the shards once and not chase
    /// the cycle (B1).
    Periodic,
}

/// The period of [`SimLoad::Periodic`], in load windows.
pub const PERIOD_WINDOWS: u64 = 6;

impl SimLoad {
    /// Whether the scheduler balances by load (not by leader counts).
    pub fn by_load(self) -> bool {
        self != SimLoad::Flat
    }
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            metas: 3,
            data_nodes: 8,
            shards: 16,
            followers: 1,
            min_nodes: 8,
            etcd_timeout_rate: 0.0,
            load: SimLoad::Flat,
            planted: None,
        }
    }
}

/// Timing of the simulated meta service: short, so that many faults fit in a seed.
pub const LEASE_MS: u64 = 3_000;
pub const HEARTBEAT_MS: u64 = 300;
/// The simulated etcd ages leases once a second, so a leader trusts its lease for a second less
/// than the TTL (`server::election`): at 2 s that left 800 ms after each renewal, and lost
/// packets on a slow network cost meta elections.
pub const ELECTION_TTL_MS: u64 = 3_000;
pub const CLOCK_DRIFT_MS: u64 = 500;
/// Loads are trusted after 3 windows, and a node is judged again 3 windows after a move.
pub const LOAD_WINDOW_MS: u64 = 1_000;

/// A simulated data node's load source: the figures of [`shard_load`], sampled at every
/// heartbeat, which its sample counter (the sampling time) says; and for each shard it follows,
/// its lag while it catches up (see [`catch_up_ms`]), noted for F1 as it is reported.
struct SampledLoad {
    load: SimLoad,
    clock: NodeClock,
    node: String,
    lifetime: u64,
    /// Until when each shard it has followed in this lifetime lags, in wall milliseconds.
    lag_until: Mutex<BTreeMap<ShardId, Ms>>,
    history: History,
}

impl shardmeta::client::LoadSource for SampledLoad {
    fn shard_load(
        &self,
        shard: shardmeta::core::ShardId,
        _tables: &std::collections::BTreeSet<shardmeta::core::TableId>,
    ) -> shardmeta::core::ShardLoad {
        shard_load(self.load, shard, self.clock.wall_ms(self.clock.now()))
    }

    fn stats_sample(&self) -> u64 {
        self.clock.wall_ms(self.clock.now())
    }

    fn follower_lag(&self, shard: ShardId) -> Option<u64> {
        let now = self.clock.wall_ms(self.clock.now());
        let until = *self
            .lag_until
            .lock()
            .expect("lag lock")
            .entry(shard)
            .or_insert_with(|| now + catch_up_ms(&self.node, self.lifetime, shard));
        // A hundred log entries a second to catch up.
        let lag = (until > now).then(|| (until - now) / 10 + 1);
        self.history.told.reported(&self.node, now, shard, lag);
        lag
    }
}

/// What a data node reports for a shard it leads at `wall_ms` (see [`SimLoad`]).
pub fn shard_load(
    load: SimLoad,
    shard: shardmeta::core::ShardId,
    wall_ms: u64,
) -> shardmeta::core::ShardLoad {
    let hot = shard.0.is_multiple_of(5);
    let units = match (load, hot) {
        (SimLoad::Flat, _) => 1.0,
        (SimLoad::Skewed | SimLoad::Periodic, false) => 100.0,
        (SimLoad::Skewed, true) => 800.0,
        (SimLoad::Periodic, true) => {
            let period = (PERIOD_WINDOWS * LOAD_WINDOW_MS) as f64;
            let phase = (wall_ms as f64 / period * std::f64::consts::TAU).cos();
            100.0 + 700.0 * (0.5 - 0.5 * phase)
        }
    };
    // Skewed load costs uneven CPU a unit (0.5 to 2 ms by shard), so that the balancer weighs
    // CPU time with units through the real runtime; the other loads report none.
    let cpu_ms = match load {
        SimLoad::Skewed => units * (0.5 + 0.5 * f64::from(shard.0 % 4)),
        SimLoad::Flat | SimLoad::Periodic => 0.0,
    };
    shardmeta::core::ShardLoad { write_units: units, cpu_ms, ..Default::default() }
}

pub fn meta_endpoint(i: usize) -> String {
    format!("10.0.1.{}:7560", i + 1)
}

pub fn meta_endpoints(n: usize) -> Vec<String> {
    (0..n).map(meta_endpoint).collect()
}

pub fn node_endpoint(i: usize) -> String {
    format!("10.0.2.{}:7000", i + 1)
}

/// madsim's simulated etcd. Its data lives in memory, so it is never killed.
pub fn start_etcd(handle: &Handle, timeout_rate: f32) -> NodeHandle {
    handle
        .create_node()
        .name("etcd")
        .ip(ip("10.0.0.1"))
        .init(move || async move {
            let addr: SocketAddr = ETCD.parse().expect("etcd address");
            etcd_client::SimServer::builder()
                .timeout_rate(timeout_rate)
                .serve(addr)
                .await
                .expect("simulated etcd");
        })
        .build()
}

/// A meta node running the real `server::run`; Ctrl-C makes it resign and exit.
pub fn start_meta(handle: &Handle, i: usize, spec: &Spec) -> NodeHandle {
    let env: Vec<(String, String)> = [
        ("LEASE_MS", LEASE_MS.to_string()),
        ("HEARTBEAT_INTERVAL_MS", HEARTBEAT_MS.to_string()),
        ("ELECTION_TTL_MS", ELECTION_TTL_MS.to_string()),
        ("CLOCK_DRIFT_MS", CLOCK_DRIFT_MS.to_string()),
        ("LOAD_WINDOW_MS", LOAD_WINDOW_MS.to_string()),
        // Seeds are short: a 2 min cooldown would defer moves past the quiet window.
        ("SCHEDULER_SHARD_COOLDOWN_MS", (3 * LOAD_WINDOW_MS).to_string()),
        ("DEFAULT_CLUSTER_SHARD_COUNT", spec.shards.to_string()),
        ("DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD", spec.followers.to_string()),
        ("DEFAULT_CLUSTER_MIN_NODES", spec.min_nodes.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("SHARDMETA_{k}"), v))
    .collect();
    let spec_planted = spec.planted;
    handle
        .create_node()
        .name(format!("meta-{i}"))
        .ip(ip(&format!("10.0.1.{}", i + 1)))
        .init(move || {
            let env = env.clone();
            let planted = spec_planted;
            async move {
                let flags = Overrides {
                    name: Some(format!("m{i}")),
                    grpc_addr: Some(meta_endpoint(i)),
                    // madsim has no HTTP server to run the admin port on.
                    admin_addr: Some(String::new()),
                    etcd_endpoints: Some(vec![ETCD.to_string()]),
                    data_dir: None,
                };
                let config = ServerConfig {
                    planted_bug: planted,
                    ..ServerConfig::load(None, env, flags).expect("simulation config")
                };
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                shardmeta::server::run(config, shutdown).await.expect("meta server");
            }
        })
        .build()
}

/// What the harness sees of a data node, shared with the node's process.
#[derive(Clone)]
pub struct DataNodeView {
    pub name: String,
    pub host: Arc<Mutex<ShardHost>>,
    pub clock: Arc<Mutex<Option<NodeClock>>>,
    /// False while the harness has the node killed: a dead process leads nothing.
    pub alive: Arc<AtomicBool>,
    /// Counters of earlier lifetimes (a restart starts a fresh host).
    pub retired: Arc<Mutex<HostCounters>>,
    /// The last commands the node accepted in this lifetime, for late deliveries.
    pub accepted: Arc<Mutex<VecDeque<ShardCommand>>>,
}

/// How many accepted commands a node keeps for late deliveries.
const ACCEPTED_KEPT: usize = 64;

/// The node's executor in the simulation: it keeps the commands it is handed.
struct Recorder(Arc<Mutex<VecDeque<ShardCommand>>>);

impl ShardExecutor for Recorder {
    fn execute(&mut self, command: &ShardCommand) {
        let mut kept = self.0.lock().expect("accepted lock");
        if kept.len() == ACCEPTED_KEPT {
            kept.pop_front();
        }
        kept.push_back(command.clone());
    }
}

impl DataNodeView {
    fn new(name: String) -> DataNodeView {
        DataNodeView {
            name,
            host: Arc::new(Mutex::new(ShardHost::new())),
            clock: Arc::default(),
            alive: Arc::new(AtomicBool::new(true)),
            retired: Arc::default(),
            accepted: Arc::default(),
        }
    }

    /// Hands the host, once more, the oldest command it accepted in this lifetime, as a
    /// transport would that delivers a message late, across a reconnect. madsim's streams never
    /// do that (a dropped stream drops its messages), so the harness does it where the real
    /// transport hands messages over. The host must refuse it: by term if meta's leader changed
    /// since, by version otherwise. Returns false if there was nothing to deliver.
    pub fn deliver_late(&self, history: &History) -> bool {
        let Some(command) = self.accepted.lock().expect("accepted lock").front().cloned() else {
            return false;
        };
        let message = NodeMessage {
            term: command.term,
            epoch: Epoch(0),
            lease: None,
            commands: vec![command],
            heartbeat_interval_ms: 0,
        };
        let mut host = self.host.lock().expect("host lock");
        let applied = host.on_message(&message);
        assert!(applied.is_empty(), "{} applied a command twice: {applied:?}", self.name);
        history.view(&self.name, host.view());
        true
    }

    /// The shards this node leads right now, by its own clock and leases.
    pub fn leading(&self) -> Vec<ShardId> {
        if !self.alive.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let Some(clock) = *self.clock.lock().expect("clock lock") else { return Vec::new() };
        let now = clock.now();
        let host = self.host.lock().expect("host lock");
        host.shards().keys().copied().filter(|&s| host.is_leading(s, now)).collect()
    }

    /// Whether meta answered one of the node's heartbeats sent within `within`, by the node's
    /// own clock: a live node out of contact longer than a lease is one meta will declare dead.
    pub fn in_contact(&self, within: Duration) -> bool {
        let Some(clock) = *self.clock.lock().expect("clock lock") else { return false };
        let answered = self.host.lock().expect("host lock").answered_at();
        answered.is_some_and(|t| clock.now().0 <= t.0 + within.as_millis() as u64)
    }

    /// Protective paths taken over every lifetime.
    pub fn counters(&self) -> HostCounters {
        let mut all = *self.retired.lock().expect("counters lock");
        all.add(&self.host.lock().expect("host lock").counters);
        all
    }
}

pub struct DataNode {
    pub handle: NodeHandle,
    pub view: DataNodeView,
}

/// A data node: the real heartbeat loop and write service, with its lease log, accepted writes
/// and every change of its view going into the history.
pub fn start_data_node(
    handle: &Handle,
    i: usize,
    metas: usize,
    sim_load: SimLoad,
    history: &History,
) -> DataNode {
    let view = DataNodeView::new(format!("n{i}"));
    let (shared, history) = (view.clone(), history.clone());
    let node = handle
        .create_node()
        .name(format!("node-{i}"))
        .ip(ip(&format!("10.0.2.{}", i + 1)))
        .init(move || {
            let (view, history) = (shared.clone(), history.clone());
            async move {
                let host = view.host.clone();
                {
                    let mut h = host.lock().expect("host lock");
                    view.retired.lock().expect("counters lock").add(&h.counters);
                    *h = ShardHost::new();
                }
                view.accepted.lock().expect("accepted lock").clear();
                let clock = NodeClock::start();
                *view.clock.lock().expect("clock lock") = Some(clock);
                let meta = MetaClient::new(meta_endpoints(metas), Duration::from_secs(2))
                    .expect("endpoints");
                let identity = NodeIdentity {
                    cluster: CLUSTER.into(),
                    name: view.name.clone(),
                    endpoint: node_endpoint(i),
                    zone: String::new(),
                    // Through the real gRPC layer and into etcd's node records.
                    labels: vec![Label::new("rack", &format!("r{}", i % 4))],
                    incarnation: clock.wall_ms(Instant::ZERO),
                    capacity: 1.0,
                };
                let observer = observer(view.clone(), clock, history.clone());
                let recorder = Recorder(view.accepted.clone());
                // The span names the node in SIM_LOG output, where every node shares one log.
                let span = tracing::info_span!("node", name = %view.name);
                let load = SampledLoad {
                    load: sim_load,
                    clock,
                    node: view.name.clone(),
                    lifetime: identity.incarnation,
                    lag_until: Mutex::default(),
                    history: history.clone(),
                };
                tokio::task::spawn(
                    node::run(meta, identity, host.clone(), clock, load, recorder, observer)
                        .instrument(span),
                );
                let name = view.name.clone();
                let on_write = Box::new(move |shard, version, at| {
                    history.write(&name, shard, version, clock.wall_ms(at))
                });
                let addr: SocketAddr = node_endpoint(i).parse().expect("node address");
                tonic::transport::Server::builder()
                    .add_service(shardmeta::proto::node_server::NodeServer::new(WriteService::new(
                        host, clock, on_write,
                    )))
                    .serve(addr)
                    .await
                    .expect("write service");
            }
        })
        .build();
    DataNode { handle: node, view }
}

/// Records lease changes, per shard and per table, and the node's view after every change to
/// its host.
fn observer(view: DataNodeView, clock: NodeClock, history: History) -> node::Observer {
    let (mut shards, mut tables) = (LeaseTracker::default(), TableLeaseTracker::default());
    Box::new(move |host: &ShardHost, now: Instant| {
        for event in shards.observe(host, now) {
            history.lease(&view.name, event, |at| clock.wall_ms(at));
        }
        for event in tables.observe(host, now) {
            history.table_lease(&view.name, event, |at| clock.wall_ms(at));
        }
        let seen = host.view();
        if let Some(sent) = host.answered_at() {
            let (sent, now) = (clock.wall_ms(sent), clock.wall_ms(now));
            history.told.answered(&view.name, seen.term, sent, now);
        }
        history.view(&view.name, seen);
    })
}

impl DataNode {
    pub fn kill(&self, handle: &Handle, history: &History) {
        self.view.alive.store(false, Ordering::SeqCst);
        // What the dead process received is gone with it: nothing of it is delivered late to
        // the next lifetime, nor to this host before the restart replaces it.
        self.view.accepted.lock().expect("accepted lock").clear();
        handle.kill(self.handle.id());
        history.node_died(&self.view.name, now_ms());
    }

    pub fn restart(&self, handle: &Handle) {
        handle.restart(self.handle.id());
        self.view.alive.store(true, Ordering::SeqCst);
    }
}

/// Cuts both directions between two nodes, or heals them.
pub fn clog_both(net: &NetSim, a: madsim::task::NodeId, b: madsim::task::NodeId, clogged: bool) {
    if clogged {
        net.clog_link(a, b);
        net.clog_link(b, a);
    } else {
        net.unclog_link(a, b);
        net.unclog_link(b, a);
    }
}

impl DataNode {
    /// Whether the node's process is running (the harness has not killed it).
    pub fn is_up(&self) -> bool {
        self.view.alive.load(Ordering::SeqCst)
    }
}
