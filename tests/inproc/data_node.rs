//! A simulated data node: the real `ShardHost` logic on a drifting clock.

use shardmeta::check::NodeView;
use std::collections::{BTreeMap, BTreeSet};

use shardmeta::client::{LoadSource, NodeIdentity, NodeSession, ShardHost};
use shardmeta::core::*;

pub struct DataNode {
    pub alive: bool,
    pub host: ShardHost,
    /// The heartbeat protocol, as the real node loop runs it; it holds the node's identity.
    pub link: NodeSession,
    pub session: SessionId,
    /// The meta node it heartbeats to.
    pub meta: usize,
    /// Clock rate error in parts per million.
    pub drift_ppm: i64,
    /// What it accepted so far in this incarnation (S3).
    pub view: NodeView,
    /// An early heartbeat is scheduled (the real loop keeps one such timer too).
    pub early_beat: bool,
    /// Until when each shard it follows lags its leader, as drawn when it first followed it
    /// in this incarnation (catching up after an open); shards in sync from the start are
    /// kept with an instant already past.
    pub lag_until: BTreeMap<ShardId, Instant>,
}

/// What a simulated data node reports: a fixed load per shard it leads, and, for a shard it
/// follows, its lag, falling at a hundred log entries a second until it has caught up.
pub struct NodeLoad<'a> {
    pub lag_until: &'a BTreeMap<ShardId, Instant>,
    pub now: Instant,
}

impl LoadSource for NodeLoad<'_> {
    fn shard_load(&self, shard: ShardId, _tables: &BTreeSet<TableId>) -> ShardLoad {
        ShardLoad { write_units: (shard.0 % 7) as f64, ..Default::default() }
    }

    fn follower_lag(&self, shard: ShardId) -> Option<u64> {
        let until = self.lag_until.get(&shard)?;
        (*until > self.now).then(|| until.saturating_since(self.now).0 / 10 + 1)
    }
}

impl DataNode {
    pub fn new(
        index: usize,
        cluster: &str,
        zone: &str,
        labels: Vec<shardmeta::core::model::Label>,
        drift_ppm: i64,
        session: SessionId,
    ) -> DataNode {
        let identity = NodeIdentity {
            cluster: cluster.to_owned(),
            name: format!("node-{index}"),
            endpoint: format!("10.0.0.{index}:7000"),
            zone: zone.to_owned(),
            labels,
            incarnation: 1,
            capacity: 1.0,
        };
        DataNode {
            alive: true,
            host: ShardHost::new(),
            link: NodeSession::new(identity),
            session,
            meta: 0,
            drift_ppm,
            view: NodeView::default(),
            early_beat: false,
            lag_until: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.link.identity().name
    }

    pub fn endpoint(&self) -> &str {
        &self.link.identity().endpoint
    }

    /// Which process of the node this is: it grows with every restart.
    pub fn incarnation(&self) -> u64 {
        self.link.identity().incarnation
    }

    /// The node's own clock.
    pub fn local(&self, now: Instant) -> Instant {
        let t = now.0 as i64;
        Instant((t + t * self.drift_ppm / 1_000_000) as u64)
    }

    pub fn restart(&mut self, session: SessionId) {
        self.alive = true;
        self.host = ShardHost::new();
        let identity =
            NodeIdentity { incarnation: self.incarnation() + 1, ..self.link.identity().clone() };
        self.link = NodeSession::new(identity);
        self.session = session;
        self.view = NodeView::default();
        self.early_beat = false;
        self.lag_until.clear();
    }
}
