//! The madsim harness: the real server, client and node code on simulated etcd, meta, data,
//! frontend and auditor nodes. Everything here runs only under `--cfg madsim` (see README); a
//! normal build compiles an empty crate.
//!
//! A test builds a [`Sim`] from a [`Spec`], starts frontends, injects [`Fault`]s, calls
//! [`Sim::assert_safe`] after each one, heals, checks liveness with [`Sim::assert_live`] and
//! returns [`Sim::finish`]'s [`Report`]. [`runner::run_seeds`] runs it over a range of seeds,
//! prints the replay command of a failing seed and sums the coverage.

#![cfg(madsim)]

pub mod auditor;
pub mod capture;
pub mod cluster;
pub mod faults;
pub mod frontend;
pub mod history;
mod liveness;
pub mod runner;
pub mod told;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use shardmeta::check::LeaderMoves;
use shardmeta::client::{HostCounters, MetaClient};

pub use cluster::{DataNode, SimLoad, Spec};
pub use faults::Fault;
pub use frontend::Workload;

use auditor::Audit;
use capture::{Capture, Captured};
use cluster::*;
use frontend::FrontendStats;
use history::History;

/// Everything a seed exercised, summed over seeds by the runner.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    pub faults: BTreeMap<&'static str, u64>,
    pub moves: LeaderMoves,
    pub host: HostCounters,
    pub log: Captured,
    pub frontend: FrontendStats,
    pub storage_reads: u64,
    /// Moves the scheduler made for load, as the final meta leader's event log lists them: by
    /// transfer to a follower, and by reopen.
    pub load_moves: LoadMoves,
    /// Failovers that passed over a follower known to lag, and that promoted one because none
    /// in sync was heard (F1).
    pub laggards_passed_over: u64,
    pub laggards_promoted: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct LoadMoves {
    pub transfers: u64,
    pub reopens: u64,
}

impl Coverage {
    pub fn add(&mut self, o: &Coverage) {
        for (k, v) in &o.faults {
            *self.faults.entry(k).or_default() += v;
        }
        self.moves.add(&o.moves);
        self.host.add(&o.host);
        for (a, b) in self.log.counts.iter_mut().zip(o.log.counts) {
            *a += b;
        }
        let (f, g) = (&mut self.frontend, &o.frontend);
        f.creates += g.creates;
        f.drops += g.drops;
        f.writes_accepted += g.writes_accepted;
        f.writes_refused += g.writes_refused;
        f.hangs += g.hangs;
        self.storage_reads += o.storage_reads;
        self.load_moves.transfers += o.load_moves.transfers;
        self.load_moves.reopens += o.load_moves.reopens;
        self.laggards_passed_over += o.laggards_passed_over;
        self.laggards_promoted += o.laggards_promoted;
    }

    /// Each recovery path with how often it happened.
    pub fn recovery_paths(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("follower promotion", self.moves.promoted),
            ("reopen elsewhere", self.moves.reopened),
            ("forward", self.log.count("forward")),
            ("redirect", self.log.count("redirect")),
            ("stale-term rejection", self.host.stale_term_rejections),
            ("stale-version rejection", self.host.stale_version_rejections),
            ("lease-expiry self-fence", self.host.lease_expiries),
            ("load-driven transfer", self.load_moves.transfers),
            ("load-driven reopen", self.load_moves.reopens),
            ("lagging follower passed over", self.laggards_passed_over),
            ("lagging follower promoted, none in sync", self.laggards_promoted),
        ]
    }
}

/// What one seed did, for the runner.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub coverage: Coverage,
    /// A hash of every event in the history and their number: equal for equal seeds.
    pub trace_hash: u64,
    pub events: u64,
    pub simulated: Duration,
}

/// One simulated deployment under test.
pub struct Sim {
    pub handle: Handle,
    pub net: Arc<NetSim>,
    pub spec: Spec,
    pub etcd: NodeHandle,
    pub metas: Vec<NodeHandle>,
    pub nodes: Vec<DataNode>,
    pub history: History,
    pub audit: Arc<Mutex<Audit>>,
    frontend_stats: Arc<Mutex<FrontendStats>>,
    faults: BTreeMap<&'static str, u64>,
    /// Nodes under a fault now; faults pick other targets.
    busy: Vec<madsim::task::NodeId>,
    /// Stops the frontends.
    stop: Arc<AtomicBool>,
    /// Runs the harness's own calls to meta.
    client: NodeHandle,
    frontends: usize,
    started: tokio::time::Instant,
    capture: Capture,
    _logs: tracing::subscriber::DefaultGuard,
    /// Error-level log lines the test expects (substrings); any other fails the seed.
    pub expected_errors: Vec<&'static str>,
    load_moves: Mutex<LoadMoves>,
    /// Why the cluster last looked unsettled to the liveness check.
    last_unquiet: Mutex<String>,
}

impl Sim {
    pub async fn start(spec: Spec) -> Sim {
        let capture = Capture::default();
        let logs = capture.install();
        let handle = Handle::current();
        let history = History::default();
        let etcd = start_etcd(&handle, spec.etcd_timeout_rate);
        let metas = (0..spec.metas).map(|i| start_meta(&handle, i, &spec)).collect();
        let nodes = (0..spec.data_nodes)
            .map(|i| start_data_node(&handle, i, spec.metas, spec.load, &history))
            .collect();
        let audit: Arc<Mutex<Audit>> = Arc::default();
        let (h, a) = (history.clone(), audit.clone());
        handle
            .create_node()
            .name("auditor")
            .ip("10.0.9.1".parse().expect("ip"))
            .init(move || auditor::run(h.clone(), a.clone()))
            .build();
        let client =
            handle.create_node().name("harness").ip("10.0.9.2".parse().expect("ip")).build();
        let mut faults = BTreeMap::new();
        if spec.etcd_timeout_rate > 0.0 {
            faults.insert(faults::ETCD_TIMEOUTS, 1);
        }
        Sim {
            handle,
            net: NetSim::current(),
            spec,
            etcd,
            metas,
            nodes,
            history,
            audit,
            frontend_stats: Arc::default(),
            faults,
            busy: Vec::new(),
            stop: Arc::default(),
            client,
            frontends: 0,
            started: tokio::time::Instant::now(),
            capture,
            _logs: logs,
            expected_errors: Vec::new(),
            load_moves: Mutex::default(),
            last_unquiet: Mutex::default(),
        }
    }

    /// Packet loss and latency until [`Sim::heal_network`].
    pub fn degrade_network(&mut self, loss: f64, latency: Option<Duration>) {
        if loss > 0.0 {
            self.count_fault(faults::PACKET_LOSS);
        }
        if latency.is_some() {
            self.count_fault(faults::LATENCY);
        }
        self.net.update_config(|c| {
            c.packet_loss_rate = loss;
            if let Some(max) = latency {
                c.send_latency = Duration::from_millis(1)..max;
            }
        });
    }

    pub fn heal_network(&self) {
        self.net.update_config(|c| {
            c.packet_loss_rate = 0.0;
            c.send_latency = Duration::from_millis(1)..Duration::from_millis(10);
        });
    }

    pub fn count_fault(&mut self, name: &'static str) {
        *self.faults.entry(name).or_default() += 1;
    }

    /// Starts `n` more frontend nodes running `workload` until [`Sim::stop_frontends`].
    pub fn start_frontends(&mut self, n: usize, workload: Workload) {
        for _ in 0..n {
            let id = self.frontends;
            self.frontends += 1;
            let (metas, h, stop, stats) = (
                self.spec.metas,
                self.history.clone(),
                self.stop.clone(),
                self.frontend_stats.clone(),
            );
            self.handle
                .create_node()
                .name(format!("frontend-{id}"))
                .ip(format!("10.0.3.{}", id + 1).parse().expect("ip"))
                .init(move || {
                    frontend::run(id, metas, workload, h.clone(), stop.clone(), stats.clone())
                })
                .build();
        }
    }

    pub fn stop_frontends(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Adds a data node; returns its index.
    pub fn add_data_node(&mut self) -> usize {
        let i = self.nodes.len();
        self.nodes.push(start_data_node(
            &self.handle,
            i,
            self.spec.metas,
            self.spec.load,
            &self.history,
        ));
        i
    }

    /// Runs `f` with a meta client on the harness's own node.
    pub async fn with_meta<T: Send + 'static, F>(
        &self,
        f: impl FnOnce(MetaClient) -> F + Send + 'static,
    ) -> T
    where
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let endpoints = meta_endpoints(self.spec.metas);
        self.client
            .spawn(async move {
                f(MetaClient::new(endpoints, Duration::from_secs(3)).expect("endpoints")).await
            })
            .await
            .expect("harness task")
    }

    /// Drains data nodes as an operator would: asks until meta accepts each drain, then waits
    /// until storage shows every one of them holding nothing. Panics if that takes longer than
    /// `within`.
    pub async fn drain(&self, nodes: &[usize], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let names: Vec<String> = nodes.iter().map(|&i| self.nodes[i].view.name.clone()).collect();
        for name in &names {
            loop {
                let req = shardmeta::proto::DrainNodeRequest {
                    header: frontend::header(),
                    node: name.clone(),
                    cancel: false,
                };
                let call = |mut m: MetaClient| async move {
                    m.call(|mut c| {
                        let req = req.clone();
                        async move { c.drain_node(req).await }
                    })
                    .await
                };
                match self.with_meta(call).await {
                    Ok(r) if r.node.as_ref().is_some_and(|n| n.draining) => break,
                    other => assert!(
                        tokio::time::Instant::now() < deadline,
                        "draining {name} was not accepted: {other:?}"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let drained = |c: &shardmeta::core::model::ClusterCatalog| {
            names.iter().all(|name| {
                c.node_by_name
                    .get(name)
                    .is_some_and(|&id| c.node(id).draining && c.node_shards[id.index()].is_empty())
            })
        };
        while !self.audit.lock().expect("audit lock").catalog.as_ref().is_some_and(drained) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{names:?} still hold shards {within:?} after their drain began"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Writes to etcd behind meta's back (`None` deletes the key): for tests that plant a
    /// broken catalog and expect the storage auditor to catch it.
    pub async fn tamper(&self, key: String, value: Option<Vec<u8>>) {
        self.client
            .spawn(async move {
                let mut kv = etcd_client::Client::connect([cluster::ETCD], None)
                    .await
                    .expect("etcd")
                    .kv_client();
                match value {
                    Some(v) => kv.put(key, v, None).await.map(drop),
                    None => kv.delete(key, None).await.map(drop),
                }
                .expect("tampering with etcd");
            })
            .await
            .expect("harness task");
    }

    /// The index of the meta node that serves as leader now, if any answers.
    pub async fn meta_leader(&self) -> Option<usize> {
        let leader = self
            .with_meta(|mut m| async move {
                // Only a node that names itself leads; a lookup may settle on a forwarder.
                let (endpoint, mut client) = m.leader().await.ok()?;
                let named = client
                    .get_leader(shardmeta::proto::GetLeaderRequest {})
                    .await
                    .ok()?
                    .into_inner()
                    .leader;
                (named == endpoint).then_some(endpoint)
            })
            .await?;
        (0..self.spec.metas).find(|&i| meta_endpoint(i) == leader)
    }

    /// Every safety check so far: the history oracle, the storage auditor, hung calls and
    /// unexpected error logs.
    pub fn check(&self) -> Result<(), String> {
        self.history.check()?;
        if let Some(v) = self.audit.lock().expect("audit lock").violation.clone() {
            return Err(v);
        }
        let hangs = self.frontend_stats.lock().expect("stats lock").hangs;
        if hangs > 0 {
            return Err(format!("L4 NoHang violated: {hangs} frontend calls neither answered nor failed within {:?}", frontend::CALL_BOUND));
        }
        let captured = self.capture.peek();
        if let Some(e) =
            captured.errors.iter().find(|e| !self.expected_errors.iter().any(|x| e.contains(x)))
        {
            return Err(format!("unexpected error log: {e}"));
        }
        Ok(())
    }

    /// Meta elections won so far.
    pub fn elections(&self) -> u64 {
        self.capture.peek().count("meta election won")
    }

    pub fn assert_safe(&self) {
        if let Err(v) = self.check() {
            panic!("{v}");
        }
    }

    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// The seed's report; the last safety check included.
    pub fn finish(self) -> Report {
        self.assert_safe();
        let audit = self.audit.lock().expect("audit lock").clone();
        let (trace_hash, events) = self.history.trace_hash();
        let coverage = Coverage {
            faults: self.faults.clone(),
            moves: audit.moves,
            host: self.nodes.iter().fold(HostCounters::default(), |mut sum, n| {
                sum.add(&n.view.counters());
                sum
            }),
            log: self.capture.take(),
            frontend: *self.frontend_stats.lock().expect("stats lock"),
            storage_reads: audit.reads,
            load_moves: *self.load_moves.lock().expect("load moves lock"),
            laggards_passed_over: audit.laggards_passed_over,
            laggards_promoted: audit.laggards_promoted,
        };
        Report { coverage, trace_hash, events, simulated: self.started.elapsed() }
    }
}
