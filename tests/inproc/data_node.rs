//! A simulated data node: the real `ShardHost` logic on a drifting clock.

use shardmeta::check::NodeView;
use shardmeta::client::{NodeIdentity, NodeSession, ShardHost};
use shardmeta::core::*;

pub struct DataNode {
    pub name: String,
    pub endpoint: String,
    pub alive: bool,
    pub incarnation: u64,
    pub host: ShardHost,
    /// The heartbeat protocol, as the real node loop runs it.
    pub link: NodeSession,
    pub session: SessionId,
    /// The meta node it heartbeats to.
    pub meta: usize,
    /// Clock rate error in parts per million.
    pub drift_ppm: i64,
    /// What it accepted so far in this incarnation (S3).
    pub view: NodeView,
}

impl DataNode {
    pub fn new(index: usize, cluster: &str, zone: &str, drift_ppm: i64, session: SessionId) -> DataNode {
        let (name, endpoint) = (format!("node-{index}"), format!("10.0.0.{index}:7000"));
        let identity = NodeIdentity { cluster: cluster.to_owned(), name: name.clone(), endpoint: endpoint.clone(), zone: zone.to_owned(), incarnation: 1 };
        DataNode {
            name,
            endpoint,
            alive: true,
            incarnation: 1,
            host: ShardHost::new(),
            link: NodeSession::new(identity),
            session,
            meta: 0,
            drift_ppm,
            view: NodeView::default(),
        }
    }

    /// The node's own clock.
    pub fn local(&self, now: Instant) -> Instant {
        let t = now.0 as i64;
        Instant((t + t * self.drift_ppm / 1_000_000) as u64)
    }

    pub fn restart(&mut self, session: SessionId) {
        self.alive = true;
        self.incarnation += 1;
        self.host = ShardHost::new();
        let identity = NodeIdentity { incarnation: self.incarnation, ..self.link.identity().clone() };
        self.link = NodeSession::new(identity);
        self.session = session;
        self.view = NodeView::default();
    }
}
