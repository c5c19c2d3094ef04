//! The madsim harness: the real server, client and node code on simulated meta, data and etcd
//! nodes. Everything here runs only under `--cfg madsim` (see README); a normal build compiles
//! an empty crate.

#![cfg(madsim)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle};
use shardmeta::client::node::{self, LogExecutor, NodeClock, NodeIdentity};
use shardmeta::client::{MetaClient, ShardHost};
use shardmeta::server::config::{Overrides, ServerConfig};

pub const ETCD: &str = "10.0.0.1:2379";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP literal")
}

/// madsim's simulated etcd, on its own node.
pub fn start_etcd(handle: &Handle) -> NodeHandle {
    start_etcd_with_timeouts(handle, 0.0)
}

/// Simulated etcd that times out this share of requests (the outcome is then unknown to the
/// caller), for the whole run: its data lives in memory, so it is never restarted.
pub fn start_etcd_with_timeouts(handle: &Handle, timeout_rate: f32) -> NodeHandle {
    handle
        .create_node()
        .name("etcd")
        .ip(ip("10.0.0.1"))
        .init(move || async move {
            let addr: SocketAddr = ETCD.parse().expect("etcd address");
            etcd_client::SimServer::builder().timeout_rate(timeout_rate).serve(addr).await.expect("simulated etcd");
        })
        .build()
}

pub fn meta_endpoint(i: usize) -> String {
    format!("10.0.1.{}:7560", i + 1)
}

/// A meta node running the real `server::run`; `init` makes a restart re-run start-up.
pub fn start_meta(handle: &Handle, i: usize) -> NodeHandle {
    handle
        .create_node()
        .name(format!("meta-{i}"))
        .ip(ip(&format!("10.0.1.{}", i + 1)))
        .init(move || async move {
            let env = vec![
                ("SHARDMETA_LEASE_MS".to_string(), "3000".to_string()),
                ("SHARDMETA_HEARTBEAT_INTERVAL_MS".to_string(), "300".to_string()),
                ("SHARDMETA_ELECTION_TTL_MS".to_string(), "2000".to_string()),
            ];
            let flags = Overrides {
                name: Some(format!("m{i}")),
                grpc_addr: Some(meta_endpoint(i)),
                etcd_endpoints: Some(vec![ETCD.to_string()]),
                data_dir: None,
            };
            let config = ServerConfig::load(None, env, flags).expect("simulation config");
            shardmeta::server::run(config, std::future::pending()).await.expect("meta server");
        })
        .build()
}

/// What the harness can see of a data node: its `ShardHost` and its own clock, shared with the
/// node's process so that checkers can ask who leads, by each node's own lease view.
#[derive(Clone)]
pub struct DataNodeView {
    pub name: String,
    pub host: Arc<Mutex<ShardHost>>,
    pub clock: Arc<Mutex<Option<NodeClock>>>,
    /// False while the harness has the node killed: a dead process leads nothing.
    pub alive: Arc<std::sync::atomic::AtomicBool>,
    /// Test-only: how far the node's clock lags when it judges its leases, beyond the drift
    /// meta allows for. It breaks S1 on purpose, to show the checker catches it.
    pub lag_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl DataNodeView {
    /// The shards this node leads right now, by its own clock and leases.
    pub fn leading(&self) -> Vec<shardmeta::core::ShardId> {
        if !self.alive.load(std::sync::atomic::Ordering::SeqCst) {
            return Vec::new();
        }
        let Some(clock) = *self.clock.lock().expect("clock lock") else { return Vec::new() };
        let lag = shardmeta::core::Duration(self.lag_ms.load(std::sync::atomic::Ordering::SeqCst));
        let now = clock.now() - lag;
        let host = self.host.lock().expect("host lock");
        host.shards().keys().copied().filter(|&s| host.is_leading(s, now)).collect()
    }
}

/// A data node running the real heartbeat loop and `ShardHost`.
pub fn start_data_node(handle: &Handle, i: usize, metas: usize) -> (NodeHandle, DataNodeView) {
    let view = DataNodeView {
        name: format!("n{i}"),
        host: Arc::new(Mutex::new(ShardHost::new())),
        clock: Arc::new(Mutex::new(None)),
        alive: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        lag_ms: Arc::default(),
    };
    let shared = view.clone();
    let node = handle
        .create_node()
        .name(format!("node-{i}"))
        .ip(ip(&format!("10.0.2.{}", i + 1)))
        .init(move || {
            let view = shared.clone();
            async move {
                let host = view.host.clone();
                *host.lock().expect("host lock") = ShardHost::new();
                let clock = NodeClock::start();
                *view.clock.lock().expect("clock lock") = Some(clock);
                let meta = MetaClient::new((0..metas).map(meta_endpoint).collect(), Duration::from_secs(2)).expect("endpoints");
                let identity = NodeIdentity {
                    cluster: "default".into(),
                    name: format!("n{i}"),
                    endpoint: format!("10.0.2.{}:7000", i + 1),
                    zone: String::new(),
                    incarnation: clock.wall_ms(shardmeta::core::Instant::ZERO),
                };
                node::run(meta, identity, host, clock, |_| 1.0, LogExecutor, Box::new(|_, _| {})).await;
            }
        })
        .build();
    (node, view)
}
