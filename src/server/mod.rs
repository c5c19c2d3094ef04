//! The production runtime: a thin layer that translates and does IO. Every decision stays in
//! the core; the driver (`driver`) feeds it, the gRPC service (`grpc`) talks to clients and data
//! nodes, the storage adapters (`storage`) execute its writes, and the election decides which
//! meta node's core leads.

pub mod config;
pub mod driver;
pub mod election;
pub mod grpc;
pub mod storage;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use self::config::ServerConfig;
use self::driver::{Driver, ElectionCommand, Input};
use self::election::EtcdElection;
use self::storage::embedded::EmbeddedStore;
use self::storage::etcd::EtcdStore;
use self::storage::Storage;
use crate::core::{Instant, Leadership, Term};
use crate::proto::meta_server::MetaServer;

/// Which meta node leads, as this node knows it: for `GetLeader`, redirects and forwarding.
#[derive(Clone)]
pub struct LeaderView {
    me: String,
    leader: Arc<RwLock<Option<(String, Term)>>>,
    /// Bumped on every write, so that the driver's loop can tell "maybe changed" without
    /// taking the lock or copying the endpoint on every pass.
    writes: Arc<AtomicU64>,
}

impl LeaderView {
    pub fn new(me: String) -> LeaderView {
        LeaderView { me, leader: Arc::default(), writes: Arc::default() }
    }

    pub fn set(&self, leader: Option<(String, Term)>) {
        *self.leader.write().expect("leader view lock") = leader;
        self.writes.fetch_add(1, Ordering::Release);
    }

    /// How many times the view was written; unchanged means the view is too.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    pub fn get(&self) -> Option<(String, Term)> {
        self.leader.read().expect("leader view lock").clone()
    }

    /// Stops naming this node as leader once it stepped down: a node cut off from etcd cannot
    /// learn who leads now, and must not keep sending clients to itself.
    pub fn forget_me(&self) {
        let mut leader = self.leader.write().expect("leader view lock");
        if leader.as_ref().is_some_and(|(e, _)| *e == self.me) {
            *leader = None;
            self.writes.fetch_add(1, Ordering::Release);
        }
    }

    /// The leader's endpoint when it is another node.
    pub fn other_leader(&self) -> Option<String> {
        self.get().map(|(e, _)| e).filter(|e| *e != self.me)
    }
}

/// A seed for the core: different per process, so that meta nodes do not tick in lockstep.
fn seed(name: &str) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // Under simulation the clock is the seed's and every node shares the process: the real
    // process id would make runs of one seed differ.
    let pid = if cfg!(madsim) { 0 } else { std::process::id() as u64 };
    name.bytes().fold(nanos ^ pid, |h, b| h.rotate_left(5) ^ b as u64)
}

/// Runs a meta node until `shutdown` completes.
pub async fn run(config: ServerConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), String> {
    let addr = config.listen_addr()?;
    let core_config = config.core()?;
    let leader = LeaderView::new(config.advertised());
    let (election_tx, election_rx) = mpsc::unbounded_channel();
    let (storage, election): (Arc<Storage>, Option<EtcdStore>) = if config.etcd_endpoints.is_empty() {
        let store = EmbeddedStore::open(&config.data_dir)?;
        tracing::info!(path = %store.path().display(), term = ?store.term(), "embedded store opened");
        (Arc::new(Storage::Embedded(store)), None)
    } else {
        let client = connect_etcd(&config.etcd_endpoints).await?;
        let store = EtcdStore::new(client, std::time::Duration::from_millis(core_config.request_timeout_ms));
        (Arc::new(Storage::Etcd(Box::new(store.clone()))), Some(store))
    };
    let (driver, handle) = Driver::new(core_config.clone(), seed(&config.name), storage.clone(), election_tx.clone(), leader.clone());
    tokio::task::spawn(driver.run());

    let elected = match (election, &*storage) {
        (Some(store), _) => {
            let election = EtcdElection {
                client: connect_etcd(&config.etcd_endpoints).await?,
                store,
                value: format!("{}@{}", config.name, config.advertised()),
                ttl: std::time::Duration::from_millis(config.election_ttl_ms),
                driver: handle.tx.clone(),
                clock: handle.clock,
                leader: leader.clone(),
            };
            tokio::task::spawn(election.run(election_rx))
        }
        (None, Storage::Embedded(store)) => {
            // One meta node on its own store leads for as long as it runs.
            let term = store.term();
            let snapshot = storage.snapshot().await.map_err(|e| format!("cannot load {}: {e}", store.path().display()))?;
            leader.set(Some((config.advertised(), term)));
            let gained = Leadership::Gained { term, valid_until: Instant(u64::MAX / 2), snapshot };
            handle.tx.send(Input::Leadership(gained)).await.map_err(|_| "driver stopped".to_string())?;
            tokio::task::spawn(embedded_election(election_rx))
        }
        (None, _) => unreachable!("embedded or etcd"),
    };

    let service = grpc::MetaService::new(handle, leader, core_config.request_timeout_ms, config.message_bytes_max);
    let meta = MetaServer::new(service)
        .max_decoding_message_size(config.message_bytes_max)
        .max_encoding_message_size(config.message_bytes_max);
    tracing::info!(%addr, name = %config.name, "serving");
    let stop = async move {
        shutdown.await;
        // Resign first, so that a follower takes over without waiting for the lease to end.
        let _ = election_tx.send(ElectionCommand::Shutdown);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), elected).await;
    };
    let mut builder = tonic::transport::Server::builder().timeout(std::time::Duration::from_millis(core_config.request_timeout_ms + 2_000));
    // The standard health service is real tonic only; madsim's server cannot host it.
    #[cfg(not(madsim))]
    let builder = {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<MetaServer<grpc::MetaService>>().await;
        builder.add_service(health_service)
    };
    builder.add_service(meta).serve_with_shutdown(addr, stop).await.map_err(|e| format!("gRPC server on {addr}: {e}"))
}

/// The embedded store's "election": the only meta node leads; storage cannot fence it out
/// because the file is locked to this process.
async fn embedded_election(mut commands: mpsc::UnboundedReceiver<ElectionCommand>) {
    while let Some(cmd) = commands.recv().await {
        match cmd {
            ElectionCommand::Resign(term) => tracing::error!(?term, "the embedded store refused a write of the only leader"),
            ElectionCommand::Shutdown => return,
        }
    }
}

/// Connects to etcd, retrying for a while: meta nodes often start together with etcd.
async fn connect_etcd(endpoints: &[String]) -> Result<etcd_client::Client, String> {
    #[cfg(not(madsim))]
    let options = Some(
        etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(2))
            .with_timeout(std::time::Duration::from_secs(5)),
    );
    #[cfg(madsim)]
    let options = None;
    let mut last = String::new();
    for _ in 0..20 {
        match etcd_client::Client::connect(endpoints, options.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(format!("cannot reach etcd at {}: {last}", endpoints.join(",")))
}
