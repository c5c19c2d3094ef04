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
    handle
        .create_node()
        .name("etcd")
        .ip(ip("10.0.0.1"))
        .init(|| async {
            let addr: SocketAddr = ETCD.parse().expect("etcd address");
            etcd_client::SimServer::builder().serve(addr).await.expect("simulated etcd");
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

/// A data node running the real heartbeat loop and `ShardHost`.
pub fn start_data_node(handle: &Handle, i: usize, metas: usize) -> (NodeHandle, Arc<Mutex<ShardHost>>) {
    let host = Arc::new(Mutex::new(ShardHost::new()));
    let shared = host.clone();
    let node = handle
        .create_node()
        .name(format!("node-{i}"))
        .ip(ip(&format!("10.0.2.{}", i + 1)))
        .init(move || {
            let host = shared.clone();
            async move {
                *host.lock().expect("host lock") = ShardHost::new();
                let clock = NodeClock::start();
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
    (node, host)
}
