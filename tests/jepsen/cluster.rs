//! The cluster under test: 3 etcd members, 3 meta servers and 3 node-agents, each in a network
//! namespace of its own on one bridge (`process::netns`), with the production lease (10 s),
//! election TTL (5 s) and heartbeat (1 s). The test's clients run in the root namespace, which
//! no cut touches: a cut separates the cluster's processes from each other, as a switch failing
//! between racks would, while the workload still reaches every meta.

use std::time::Duration;

use super::process::metas::leader_of;
use super::process::netns::{Host, Lab};
use super::process::{free_port, meta_server_on, node_agent_on, Etcd, Proc, TempDir};

pub const ETCD: usize = 3;
pub const METAS: usize = 3;
pub const NODES: usize = 3;

pub struct Cluster {
    pub lab: Lab,
    pub dir: TempDir,
    pub etcd: Etcd,
    pub metas: Vec<Proc>,
    pub nodes: Vec<Proc>,
    pub meta_endpoints: Vec<String>,
    meta_port: u16,
    node_port: u16,
    meta_env: Vec<(String, String)>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let lab = Lab::new(ETCD + METAS + NODES);
        let dir = TempDir::new("jepsen");
        let etcd = Etcd::start_at(
            dir.path(),
            (0..ETCD).map(|i| lab.place(Cluster::etcd_host(i))).collect(),
            None,
        );
        let meta_env = [
            ("SHARDMETA_ETCD_ENDPOINTS", etcd.endpoints().as_str()),
            ("SHARDMETA_LEASE_MS", "10000"),
            ("SHARDMETA_CLOCK_DRIFT_MS", "500"),
            ("SHARDMETA_HEARTBEAT_INTERVAL_MS", "1000"),
            ("SHARDMETA_TICK_INTERVAL_MS", "500"),
            ("SHARDMETA_DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        let (meta_port, node_port) = (free_port(), free_port());
        let meta_endpoints = (0..METAS)
            .map(|i| format!("{}:{meta_port}", lab.addr(Cluster::meta_host(i))))
            .collect();
        let mut c = Cluster {
            lab,
            dir,
            etcd,
            metas: Vec::new(),
            nodes: Vec::new(),
            meta_endpoints,
            meta_port,
            node_port,
            meta_env,
        };
        c.metas = (0..METAS).map(|i| c.start_meta(i)).collect();
        c.nodes = (0..NODES).map(|i| c.start_node(i)).collect();
        c
    }

    pub fn etcd_host(i: usize) -> Host {
        i
    }

    pub fn meta_host(i: usize) -> Host {
        ETCD + i
    }

    pub fn node_host(i: usize) -> Host {
        ETCD + METAS + i
    }

    pub fn meta_name(i: usize) -> String {
        format!("m{i}")
    }

    pub fn node_name(i: usize) -> String {
        format!("n{i}")
    }

    pub fn start_meta(&self, i: usize) -> Proc {
        let env: Vec<(&str, &str)> =
            self.meta_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        meta_server_on(
            self.dir.path(),
            &Cluster::meta_name(i),
            &self.lab.place(Cluster::meta_host(i)),
            self.meta_port,
            &env,
        )
    }

    pub fn start_node(&self, i: usize) -> Proc {
        let place = self.lab.place(Cluster::node_host(i));
        node_agent_on(
            self.dir.path(),
            &Cluster::node_name(i),
            &place,
            self.node_port,
            &self.meta_endpoints.join(","),
            &[],
            &[],
        )
    }

    /// The meta that serves as leader now, if one does.
    pub async fn meta_leader(&self) -> Option<usize> {
        let leader = tokio::time::timeout(Duration::from_secs(5), leader_of(&self.meta_endpoints))
            .await
            .ok()
            .flatten()?;
        self.meta_endpoints.iter().position(|e| *e == leader)
    }

    /// Host `h` cut from every other host of the cluster.
    pub fn isolate(&self, h: Host) {
        for other in (0..ETCD + METAS + NODES).filter(|&o| o != h) {
            self.lab.cut(h, other);
        }
    }

    pub fn meta_names() -> Vec<String> {
        (0..METAS).map(Cluster::meta_name).collect()
    }

    pub fn node_names() -> Vec<String> {
        (0..NODES).map(Cluster::node_name).collect()
    }
}
