//! The harness behind the `heartbeat` fuzz target, shared with a seeded smoke test: heartbeats
//! of any shape, decoded by the real proto decoder, go to a core leading a live cluster. There
//! must be no panic (the core also checks its derived state after every input in debug
//! builds), the catalog must keep its integrity (S5), and no storage write may exceed what the
//! store takes.

use std::collections::BTreeMap;

use prost::Message;

use crate::core::model::Topology;
use crate::core::storage::{Op, Verdict, WriteBatch, WriteResult, FENCE_KEY};
use crate::core::{
    ClusterSpec, CoreConfig, Duration, Input, Instant, Leadership, MetaCore, Output, Request,
    RequestId, SessionId, Term,
};
use crate::proto;

/// etcd's default request limit (`--max-request-bytes`): a transaction larger than this fails.
pub const STORE_REQUEST_BYTES_MAX: usize = 3 << 19;

/// A meta leader over cluster `c` (8 shards, one follower each) on three settled nodes, with an
/// in-memory store that lands every batch after checking it.
pub struct LiveCluster {
    pub core: MetaCore,
    pub now: Instant,
    store: BTreeMap<String, Vec<u8>>,
    next_request: u64,
    /// Heartbeats that passed the driver's conversion and reached the core.
    pub delivered: u64,
}

impl LiveCluster {
    pub fn new() -> LiveCluster {
        let mut core = MetaCore::new(CoreConfig::default(), 0);
        let now = Instant(1_000);
        core.handle(
            now,
            Input::Leadership(Leadership::Gained {
                term: Term(1),
                valid_until: Instant(u64::MAX / 2),
                snapshot: Default::default(),
            }),
        );
        let mut live =
            LiveCluster { core, now, store: BTreeMap::new(), next_request: 1, delivered: 0 };
        let spec = ClusterSpec {
            name: "c".into(),
            shard_count: 8,
            followers_per_shard: 1,
            topology: Topology::Dynamic,
            min_nodes: 3,
        };
        live.request(Request::CreateCluster(spec));
        for round in 1..=8 {
            for node in 0..3 {
                live.heartbeat(SessionId(node + 1), &node_heartbeat(node, round));
            }
            live.advance(500);
        }
        live
    }

    fn request(&mut self, request: Request) {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.core.handle(self.now, Input::Request { id, request: &request });
        self.settle();
    }

    /// Hands in one heartbeat as the driver would, then lands what it wrote.
    pub fn heartbeat(&mut self, session: SessionId, request: &proto::HeartbeatRequest) {
        if let Ok(heartbeat) = crate::convert::heartbeat(request.clone()) {
            self.delivered += 1;
            self.core.handle(self.now, Input::Heartbeat { session, heartbeat: &heartbeat });
        }
        self.settle();
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now + Duration(ms);
        self.core.handle(self.now, Input::Timeout);
        self.settle();
    }

    /// Lands every batch the core writes, checking each against the store's limits, and then
    /// the catalog's integrity.
    fn settle(&mut self) {
        loop {
            let mut batches = Vec::new();
            while let Some(out) = self.core.poll_output() {
                if let Output::Persist(batch) = out {
                    batches.push(batch);
                }
            }
            if batches.is_empty() {
                break;
            }
            for b in batches {
                check_fits_the_store(&b, self.core.config());
                let current = self.store.get(FENCE_KEY).map(Vec::as_slice);
                assert_eq!(b.judge(true, current), Verdict::Land, "the fence chain is kept");
                b.apply_to(&mut self.store);
                self.core
                    .handle(self.now, Input::WriteResult { id: b.id, result: WriteResult::Ok });
            }
        }
        if let Some(catalog) = self.core.catalog() {
            if let Err(v) = super::integrity(catalog) {
                panic!("a heartbeat broke the catalog's integrity: {v}");
            }
        }
    }
}

impl Default for LiveCluster {
    fn default() -> Self {
        LiveCluster::new()
    }
}

fn check_fits_the_store(b: &WriteBatch, config: &CoreConfig) {
    assert!(
        b.ops.len() < config.txn_ops_max,
        "a batch of {} operations, over txn_ops_max ({})",
        b.ops.len(),
        config.txn_ops_max
    );
    let bytes: usize = b
        .ops
        .iter()
        .map(|op| op.key().len() + if let Op::Put { value, .. } = op { value.len() } else { 0 })
        .sum();
    assert!(
        bytes + b.fence.len() <= STORE_REQUEST_BYTES_MAX,
        "a batch of {bytes} bytes, over the store's request limit"
    );
}

/// A well-formed heartbeat from node `n{node}` (incarnation 1) with sequence number `seq`.
pub fn node_heartbeat(node: u64, seq: u64) -> proto::HeartbeatRequest {
    proto::HeartbeatRequest {
        header: Some(proto::RequestHeader { cluster: "c".into() }),
        node_name: format!("n{node}"),
        endpoint: format!("10.0.0.{node}:7000"),
        zone: format!("z{}", node % 2),
        labels: [("rack".into(), format!("r{}", node % 3))].into(),
        incarnation: 1,
        seq,
        ..Default::default()
    }
}

/// Splits fuzz input into heartbeats: each chunk starts with a byte choosing the session (one
/// of eight), a byte of milliseconds to advance first, and a length byte; the chunk decodes as
/// a `HeartbeatRequest` (most do not, and are skipped as the driver would refuse them).
pub fn run(live: &mut LiveCluster, data: &[u8]) {
    let mut rest = data;
    while rest.len() >= 3 {
        let (session, wait, len) =
            (rest[0] % 8, rest[1] as u64 * 20, (rest[2] as usize).min(rest.len() - 3));
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        if wait > 0 {
            live.advance(wait);
        }
        if let Ok(request) = proto::HeartbeatRequest::decode(body) {
            live.heartbeat(SessionId(100 + session as u64), &request);
        }
    }
}
