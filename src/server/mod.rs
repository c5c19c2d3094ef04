//! The production runtime: a thin layer that translates and does IO. Every decision stays in
//! the core; the driver (`driver`) feeds it, the gRPC service (`grpc`) talks to clients and data
//! nodes, the storage adapters (`storage`) execute its writes, and the election decides which
//! meta node's core leads.

pub mod config;
pub mod convert;
pub mod driver;
pub mod grpc;
pub mod storage;

use std::future::Future;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use self::config::ServerConfig;
use self::driver::{Driver, ElectionCommand, Input};
use self::storage::embedded::EmbeddedStore;
use self::storage::Storage;
use crate::core::{Instant, Leadership, Term};
use crate::proto::meta_server::MetaServer;

/// Which meta node leads, as this node knows it: for `GetLeader`, redirects and forwarding.
#[derive(Clone)]
pub struct LeaderView {
    me: String,
    leader: Arc<RwLock<Option<(String, Term)>>>,
}

impl LeaderView {
    pub fn new(me: String) -> LeaderView {
        LeaderView { me, leader: Arc::default() }
    }

    pub fn set(&self, leader: Option<(String, Term)>) {
        *self.leader.write().expect("leader view lock") = leader;
    }

    pub fn get(&self) -> Option<(String, Term)> {
        self.leader.read().expect("leader view lock").clone()
    }

    /// The leader's endpoint when it is another node.
    pub fn other_leader(&self) -> Option<String> {
        self.get().map(|(e, _)| e).filter(|e| *e != self.me)
    }
}

/// A seed for the core: different per process, so that meta nodes do not tick in lockstep.
fn seed(name: &str) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    name.bytes().fold(nanos ^ std::process::id() as u64, |h, b| h.rotate_left(5) ^ b as u64)
}

/// Runs a meta node until `shutdown` completes.
pub async fn run(config: ServerConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), String> {
    let addr = config.listen_addr()?;
    let core_config = config.core()?;
    let leader = LeaderView::new(config.advertised());
    let (election_tx, mut election_rx) = mpsc::unbounded_channel();
    if !config.etcd_endpoints.is_empty() {
        return Err("etcd mode is not available in this build yet; leave etcd_endpoints empty for the embedded store".into());
    }
    let store = EmbeddedStore::open(&config.data_dir)?;
    let term = store.term();
    tracing::info!(path = %store.path().display(), ?term, "embedded store opened");
    let storage = Arc::new(Storage::Embedded(store));
    let (driver, handle) = Driver::new(core_config.clone(), seed(&config.name), storage.clone(), election_tx, config.default_cluster_spec()?, leader.clone());
    tokio::spawn(driver.run());

    // One meta node on its own store leads for as long as it runs.
    let snapshot = storage.snapshot().await?;
    leader.set(Some((config.advertised(), term)));
    let gained = Leadership::Gained { term, valid_until: Instant(u64::MAX / 2), snapshot };
    handle.tx.send(Input::Leadership(gained)).await.map_err(|_| "driver stopped".to_string())?;
    tokio::spawn(async move {
        while let Some(ElectionCommand::Resign(term)) = election_rx.recv().await {
            // Only another writer on the same file could fence us out, and the file is locked.
            tracing::error!(?term, "the embedded store refused a write of the only leader");
        }
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<MetaServer<grpc::MetaService>>().await;
    let service = grpc::MetaService::new(handle, leader, core_config.request_timeout_ms, config.message_bytes_max);
    let meta = MetaServer::new(service)
        .max_decoding_message_size(config.message_bytes_max)
        .max_encoding_message_size(config.message_bytes_max);
    tracing::info!(%addr, name = %config.name, "serving");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(meta)
        .serve_with_shutdown(addr, shutdown)
        .await
        .map_err(|e| format!("gRPC server on {addr}: {e}"))
}
