//! A simulated data node: the real `ShardHost` logic on a drifting clock.

use shardmeta::check::NodeView;
use shardmeta::client::ShardHost;
use shardmeta::core::*;

pub struct DataNode {
    pub name: String,
    pub endpoint: String,
    pub zone: String,
    pub alive: bool,
    pub incarnation: u64,
    pub host: ShardHost,
    pub session: SessionId,
    /// The meta node it heartbeats to.
    pub meta: usize,
    /// Heartbeats sent since the last message from meta.
    pub unanswered: u32,
    /// Clock rate error in parts per million.
    pub drift_ppm: i64,
    /// What it accepted so far in this incarnation (S3).
    pub view: NodeView,
}

impl DataNode {
    pub fn new(index: usize, zone: &str, drift_ppm: i64, session: SessionId) -> DataNode {
        DataNode {
            name: format!("node-{index}"),
            endpoint: format!("10.0.0.{index}:7000"),
            zone: zone.to_owned(),
            alive: true,
            incarnation: 1,
            host: ShardHost::new(),
            session,
            meta: 0,
            unanswered: 0,
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
        self.session = session;
        self.unanswered = 0;
        self.view = NodeView::default();
    }
}
