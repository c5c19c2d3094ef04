//! The production runtime: a thin layer that translates and does IO. Every decision stays in
//! the core; the driver (`driver`) feeds it, the gRPC service (`grpc`) talks to clients and data
//! nodes, the storage adapters (`storage`) execute its writes, and the election decides which
//! meta node's core leads.

#[cfg(not(madsim))]
pub mod admin;
pub mod auth;
pub mod config;
pub mod driver;
pub mod election;
pub mod grpc;
pub mod health;
pub mod leader_view;
pub mod metrics;
pub mod security;
#[cfg(all(unix, not(madsim)))]
pub mod signals;
pub mod storage;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use self::config::ServerConfig;
use self::driver::{Clock, Driver, ElectionCommand, Inbound};
use self::election::EtcdElection;
pub use self::leader_view::LeaderView;
use self::storage::embedded::EmbeddedStore;
use self::storage::etcd::EtcdStore;
use self::storage::Storage;
use crate::core::{Duration as CoreDuration, Instant, Leadership};
use crate::proto::meta_server::MetaServer;

/// A seed for the core: different per process, so that meta nodes do not tick in lockstep.
fn seed(name: &str) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Under simulation the clock is the seed's and every node shares the process: the real
    // process id would make runs of one seed differ.
    let pid = if cfg!(madsim) { 0 } else { std::process::id() as u64 };
    name.bytes().fold(nanos ^ pid, |h, b| h.rotate_left(5) ^ b as u64)
}

/// A stopping meta node exits within this of the signal, whatever its clients do.
pub const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(5);
/// Of which resigning (and learning the successor, for redirects) may take this much.
const RESIGN_BOUND: std::time::Duration = std::time::Duration::from_millis(2_500);

/// Runs a meta node until `shutdown` completes, then stops within [`SHUTDOWN_BOUND`]: it stops
/// accepting, resigns, ends every heartbeat stream (sending it to the successor where there is
/// one) and route watch, and waits for calls in flight, up to the bound.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let addr = config.listen_addr()?;
    let core_config = config.core()?;
    let security = security::Security::load(&config)?;
    tracing::info!(security = %security.describe(), "security settings read");
    let leader =
        LeaderView::new(config.advertised(), Clock::start(), CoreDuration(config.election_ttl_ms));
    let (election_tx, election_rx) = mpsc::unbounded_channel();
    let (storage, election): (Arc<Storage>, Option<EtcdStore>) = if config.etcd_endpoints.is_empty()
    {
        let store = EmbeddedStore::open(&config.data_dir)?;
        tracing::info!(path = %store.path().display(), term = ?store.term(), "embedded store opened");
        (Arc::new(Storage::Embedded(store)), None)
    } else {
        let client = connect_etcd(&config.etcd_endpoints, &security).await?;
        let store = EtcdStore::new(
            client,
            etcd_members(&config.etcd_endpoints, &security).await?,
            std::time::Duration::from_millis(core_config.request_timeout_ms),
        );
        (Arc::new(Storage::Etcd(Box::new(store.clone()))), Some(store))
    };
    let (driver, handle) = Driver::new(
        core_config.clone(),
        seed(&config.name),
        storage.clone(),
        election_tx.clone(),
        leader.clone(),
    );
    tokio::task::spawn(driver.run());

    let elected = match (election, &*storage) {
        (Some(store), _) => {
            let election = EtcdElection {
                client: connect_etcd(&config.etcd_endpoints, &security).await?,
                members: etcd_members(&config.etcd_endpoints, &security).await?,
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
            let snapshot = storage
                .snapshot()
                .await
                .map_err(|e| format!("cannot load {}: {e}", store.path().display()))?;
            let valid_until = Instant(u64::MAX / 2);
            leader.lead(term, valid_until);
            let gained = Leadership::Gained { term, valid_until, snapshot };
            handle
                .tx
                .send(Inbound::Leadership(gained))
                .await
                .map_err(|_| "driver stopped".to_string())?;
            tokio::task::spawn(embedded_election(election_rx))
        }
        (None, _) => unreachable!("embedded or etcd"),
    };

    let health = health::Health::new(leader.clone());
    let driver = handle.clone();
    let service = grpc::MetaService::new(
        handle,
        leader,
        &security,
        core_config.request_timeout_ms,
        config.message_bytes_max,
    );
    let meta = MetaServer::new(service)
        .max_decoding_message_size(config.message_bytes_max)
        .max_encoding_message_size(config.message_bytes_max);
    #[cfg(not(madsim))]
    let admin_stop = match config.admin_listen_addr()? {
        Some(admin_addr) => {
            let listener = tokio::net::TcpListener::bind(admin_addr)
                .await
                .map_err(|e| format!("admin_addr {admin_addr}: {e}"))?;
            tracing::info!(%admin_addr, "serving the admin HTTP API");
            let call_timeout =
                std::time::Duration::from_millis(core_config.request_timeout_ms + 1_000);
            let api =
                admin::api::Api::new(config.advertised(), call_timeout, security.dial.clone())?;
            let admin = admin::Admin {
                driver: driver.clone(),
                health: health.clone(),
                name: config.name.clone(),
                api,
            };
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::task::spawn(admin::serve(listener, admin, async {
                let _ = stopped.await;
            }));
            Some(stop)
        }
        None => None,
    };
    let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
    let builder = tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_millis(core_config.request_timeout_ms + 2_000));
    #[cfg(not(madsim))]
    let builder = match security.serve.clone() {
        Some(tls) => builder
            .tls_config(tls)
            .map_err(|e| format!("tls: {}", crate::client::credentials::transport_error(&e)))?,
        None => builder,
    };
    // The standard health service and reflection are real tonic only; madsim's server cannot
    // host them.
    #[cfg(not(madsim))]
    let builder = {
        let mut builder = builder;
        let health_service = tonic_health::pb::health_server::HealthServer::new(health.clone());
        // grpcurl asks v1 first and falls back to v1alpha; older tools know only v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let v1 = reflection().build_v1().map_err(|e| format!("gRPC reflection: {e}"))?;
        let v1alpha = reflection().build_v1alpha().map_err(|e| format!("gRPC reflection: {e}"))?;
        builder.add_service(health_service).add_service(v1).add_service(v1alpha)
    };
    #[cfg(madsim)]
    let mut builder = builder;
    let server = builder.add_service(meta).serve_with_shutdown(addr, async {
        let _ = stopped.await;
    });
    tracing::info!(%addr, name = %config.name, "serving");
    let mut server = tokio::task::spawn(server);
    tokio::select! {
        biased; // a fixed order: see `client::node`
        served = &mut server => return served.map_err(|e| format!("gRPC server on {addr}: {e}"))?.map_err(|e| format!("gRPC server on {addr}: {e}")),
        () = shutdown => {}
    }
    let deadline = tokio::time::Instant::now() + SHUTDOWN_BOUND;
    health.stopping();
    let _ = stop_accepting.send(());
    #[cfg(not(madsim))]
    if let Some(stop) = admin_stop {
        let _ = stop.send(());
    }
    // Resign first, so that a follower takes over without waiting for the lease to end, and the
    // heartbeat streams ended next can be sent to it.
    let _ = driver.tx.send(Inbound::Resigning).await;
    let _ = election_tx.send(ElectionCommand::Shutdown);
    let _ = tokio::time::timeout(RESIGN_BOUND, elected).await;
    let (done, ended) = tokio::sync::oneshot::channel();
    if driver.tx.send(Inbound::Stop { done }).await.is_ok() {
        let _ = ended.await;
    }
    match tokio::time::timeout(
        deadline.saturating_duration_since(tokio::time::Instant::now()),
        server,
    )
    .await
    {
        Ok(served) => served
            .map_err(|e| format!("gRPC server on {addr}: {e}"))?
            .map_err(|e| format!("gRPC server on {addr}: {e}")),
        Err(_) => {
            tracing::warn!(bound = ?SHUTDOWN_BOUND, "connections still open at the shutdown bound; exiting without them");
            Ok(())
        }
    }
}

/// The embedded store's "election": the only meta node leads; storage cannot fence it out
/// because the file is locked to this process.
async fn embedded_election(mut commands: mpsc::UnboundedReceiver<ElectionCommand>) {
    while let Some(cmd) = commands.recv().await {
        match cmd {
            ElectionCommand::Resign(term) => {
                tracing::error!(?term, "the embedded store refused a write of the only leader")
            }
            ElectionCommand::Shutdown => return,
        }
    }
}

/// One client per etcd endpoint, for calls that must move on from a member that does not answer
/// instead of waiting on a balancer to notice it (renewals, writes).
async fn etcd_members(
    endpoints: &[String],
    security: &security::Security,
) -> Result<Vec<etcd_client::Client>, String> {
    let mut members = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        members.push(connect_etcd(std::slice::from_ref(endpoint), security).await?);
    }
    Ok(members)
}

/// Connects to etcd, retrying for a while: meta nodes often start together with etcd.
async fn connect_etcd(
    endpoints: &[String],
    security: &security::Security,
) -> Result<etcd_client::Client, String> {
    #[cfg(not(madsim))]
    let options = {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(2))
            .with_timeout(std::time::Duration::from_secs(5));
        Some(match &security.etcd {
            Some(tls) => options.with_tls(tls.clone()),
            None => options,
        })
    };
    #[cfg(madsim)]
    let (options, _) = (None, security);
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
