//! A small harness for tier-1 core tests: it stands in for the driver with an in-memory store
//! that applies every batch, and for data nodes with the real `ShardHost`.

// Each test file uses its own part of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;

use shardmeta::client::{LoadSource, NodeIdentity, ShardHost};
use shardmeta::core::model::Topology;
use shardmeta::core::storage::{Verdict, WriteResult, FENCE_KEY};
use shardmeta::core::*;

mod procedures;
#[allow(unused_imports)] // only the procedure tests use them
pub use procedures::*;

pub const LEASE: u64 = 10_000;

pub struct Harness {
    pub core: MetaCore,
    pub now: Instant,
    pub store: BTreeMap<String, Vec<u8>>,
    dispatch: Dispatch<()>,
    /// Outputs taken from the core to look for a heartbeat's refusal, not yet handed out.
    held: Vec<Output>,
}

impl Harness {
    /// What a meta leader would load from the store now.
    pub fn stored(&self) -> shardmeta::core::storage::Snapshot {
        shardmeta::core::storage::Snapshot::load(
            self.store.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        )
        .expect("the store holds what the core wrote")
    }

    pub fn follower() -> Harness {
        Harness::follower_with(CoreConfig::default())
    }

    pub fn follower_with(config: CoreConfig) -> Harness {
        Harness {
            core: MetaCore::new(config, 7),
            now: Instant(1_000),
            store: BTreeMap::new(),
            dispatch: Dispatch::default(),
            held: Vec::new(),
        }
    }

    pub fn leader() -> Harness {
        Harness::leader_with(CoreConfig::default())
    }

    pub fn leader_with(config: CoreConfig) -> Harness {
        let mut h = Harness::follower_with(config);
        h.gain(Term(1), Default::default());
        h
    }

    /// This core wins `term` with `snapshot`, its lease good for ever.
    pub fn gain(&mut self, term: Term, snapshot: shardmeta::core::storage::Snapshot) {
        self.core.handle(
            self.now,
            Input::Leadership(Leadership::Gained {
                term,
                valid_until: Instant(u64::MAX / 2),
                snapshot,
            }),
        );
    }

    pub fn outputs(&mut self) -> Vec<Output> {
        let mut outs = Collect(std::mem::take(&mut self.held));
        self.dispatch.drain(&mut self.core, &mut outs);
        outs.0
    }

    pub fn write_result(&mut self, id: WriteId, result: WriteResult) {
        self.core.handle(self.now, Input::WriteResult { id, result });
    }

    /// Hands in a heartbeat; `Err` if the core refused it (and closed the stream).
    pub fn heartbeat(
        &mut self,
        session: SessionId,
        heartbeat: &Heartbeat,
    ) -> Result<(), MetaError> {
        self.core.handle(self.now, Input::Heartbeat { session, heartbeat });
        let mut refusal = Ok(());
        let mut outs = Collect(Vec::new());
        self.dispatch.drain(&mut self.core, &mut outs);
        for o in outs.0 {
            match o {
                Output::CloseStream { session: s, error, .. } if s == session => {
                    refusal = Err(error)
                }
                o => self.held.push(o),
            }
        }
        refusal
    }

    pub fn request(&mut self, req: Request) -> RequestId {
        self.dispatch.request(&mut self.core, self.now, (), &req)
    }

    /// Lands every batch the core writes, until it writes no more; returns the other outputs.
    pub fn settle(&mut self) -> Vec<Output> {
        let mut others = Vec::new();
        loop {
            let outs = self.outputs();
            if outs.is_empty() {
                return others;
            }
            for o in outs {
                match o {
                    Output::Persist(b) => {
                        let current = self.store.get(FENCE_KEY).map(Vec::as_slice);
                        assert_eq!(b.judge(true, current), Verdict::Land, "the chain is kept");
                        b.apply_to(&mut self.store);
                        self.write_result(b.id, WriteResult::Ok);
                    }
                    other => others.push(other),
                }
            }
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now + Duration(ms);
        self.core.handle(self.now, Input::Timeout);
    }

    pub fn create_cluster(&mut self, shards: u32, followers: u32) {
        self.create_cluster_of(shards, followers, 2);
    }

    /// Cluster `c`, whose shards are first assigned once `min_nodes` nodes are online.
    pub fn create_cluster_of(&mut self, shards: u32, followers: u32, min_nodes: u32) {
        let spec = ClusterSpec {
            name: "c".into(),
            shard_count: shards,
            followers_per_shard: followers,
            topology: Topology::Dynamic,
            min_nodes,
        };
        self.request(Request::CreateCluster(spec));
        let replies = self.settle();
        assert!(
            matches!(replies[..], [Output::Reply { result: Ok(Response::Cluster(_)), .. }]),
            "{replies:?}"
        );
    }

    pub fn create_table(&mut self, name: &str, if_not_exists: bool) -> Result<Response, MetaError> {
        self.call(Request::CreateTable(CreateTable {
            cluster: "c".into(),
            schema: "public".into(),
            name: name.into(),
            encoded_schema: vec![1, 2, 3],
            options: BTreeMap::new(),
            if_not_exists,
            partition: None,
        }))
    }

    /// Sends a request, lands every write, and returns its answer.
    pub fn call(&mut self, req: Request) -> Result<Response, MetaError> {
        let id = self.request(req);
        self.settle()
            .into_iter()
            .find_map(|o| match o {
                Output::Reply { request, result } if request == id => Some(result),
                _ => None,
            })
            .expect("every request is answered")
    }
}

/// A data node in the harness: the real ShardHost, answering at the harness clock.
pub struct Node {
    pub name: String,
    pub host: ShardHost,
    pub session: SessionId,
    pub endpoint: String,
    /// What the node reports for each shard it leads.
    pub load: fn(ShardId) -> ShardLoad,
    pub zone: String,
    pub labels: Vec<shardmeta::core::model::Label>,
    pub incarnation: u64,
    pub capacity: f64,
}

impl Node {
    pub fn new(i: u64) -> Node {
        let (name, endpoint) = (format!("n{i}"), format!("n{i}:1"));
        Node {
            name,
            host: ShardHost::new(),
            session: SessionId(i),
            endpoint,
            load: |_| ShardLoad::default(),
            zone: String::new(),
            labels: Vec::new(),
            incarnation: 1,
            capacity: 1.0,
        }
    }

    pub fn heartbeat(&mut self, h: &mut Harness) -> Result<(), MetaError> {
        self.heartbeat_with(h, self.load)
    }

    /// A heartbeat reporting `load` for each shard.
    pub fn heartbeat_with(
        &mut self,
        h: &mut Harness,
        load: impl LoadSource,
    ) -> Result<(), MetaError> {
        let reports = self.host.heartbeat(h.now, &load);
        let identity = NodeIdentity {
            cluster: "c".into(),
            name: self.name.clone(),
            endpoint: self.endpoint.clone(),
            zone: self.zone.clone(),
            labels: self.labels.clone(),
            incarnation: self.incarnation,
            capacity: self.capacity,
        };
        let mut hb = identity.heartbeat(reports);
        hb.stats.stats_sample = load.stats_sample();
        hb.stats.request_latency_us = load.request_latency_us();
        [hb.stats.disk_capacity_bytes, hb.stats.disk_used_bytes] = load.disk_bytes();
        h.heartbeat(self.session, &hb)
    }

    /// The process restarts: nothing hosted, a new incarnation on a new stream.
    pub fn restart(&mut self) {
        self.host = ShardHost::new();
        self.incarnation += 1;
        self.session = SessionId(self.session.0 + 1_000_000);
    }

    pub fn receive(&mut self, outs: &[Output]) {
        for o in outs {
            if let Output::ToNode { session, message } = o {
                if *session == self.session {
                    self.host.on_message(message);
                }
            }
        }
    }
}

/// A leader that loaded `stored` (puts only: a catalog built directly, at a scale requests would
/// take long to reach), with nodes n1..=n`count` heartbeating for `rounds` rounds.
pub fn leading_from(
    config: CoreConfig,
    stored: &[shardmeta::core::model::Mutation],
    count: u64,
    rounds: usize,
) -> (Harness, Vec<Node>) {
    use shardmeta::core::storage::Op;
    let mut h = Harness::follower_with(config.clone());
    h.store.extend(stored.iter().map(|m| match m.to_op() {
        Op::Put { key, value } => (key, value),
        op => panic!("a stored catalog is puts only: {op:?}"),
    }));
    h.gain(Term(1), h.stored());
    let mut nodes: Vec<Node> = (1..=count).map(Node::new).collect();
    for _ in 0..rounds {
        round(&mut h, &mut nodes, 500);
    }
    (h, nodes)
}

/// A leader with a cluster of `shards` shards on two nodes that lead them all under lease.
pub fn steady_cluster(shards: u32) -> (Harness, Vec<Node>) {
    steady_cluster_with(shards, 0)
}

pub fn steady_cluster_with(shards: u32, followers: u32) -> (Harness, Vec<Node>) {
    steady_cluster_of(2, shards, followers)
}

/// A leader with a cluster of `shards` shards spread over `count` nodes, all under lease.
pub fn steady_cluster_of(count: u64, shards: u32, followers: u32) -> (Harness, Vec<Node>) {
    steady_cluster_configured(CoreConfig::default(), count, shards, followers, &[])
}

/// The same, with a leader of `config`, and node `i` (from 0) in zone `zones[i % len]` when
/// `zones` names any.
pub fn steady_cluster_configured(
    config: CoreConfig,
    count: u64,
    shards: u32,
    followers: u32,
    zones: &[&str],
) -> (Harness, Vec<Node>) {
    // A node takes shards once it has sent the settle count of heartbeats.
    let rounds = 5 + config.node_settle_heartbeats;
    let mut h = Harness::leader_with(config);
    // Assignment waits for every node, so that followers spread over all of them.
    h.create_cluster_of(shards, followers, count as u32);
    let mut nodes: Vec<Node> = (1..=count).map(Node::new).collect();
    if !zones.is_empty() {
        for (i, n) in nodes.iter_mut().enumerate() {
            n.zone = zones[i % zones.len()].to_string();
        }
    }
    for _ in 0..rounds {
        round(&mut h, &mut nodes, 600);
    }
    for s in 0..shards {
        assert_eq!(
            nodes.iter().filter(|n| n.host.is_leading(ShardId(s), h.now)).count(),
            1,
            "shard {s} has one leader"
        );
    }
    (h, nodes)
}

/// Every node in `nodes` heartbeats and hears what meta sends; then `ms` pass.
pub fn round(h: &mut Harness, nodes: &mut [Node], ms: u64) {
    round_without(h, nodes, None, ms);
}

/// A round in which node `silent`, if any, does not heartbeat.
pub fn round_without(h: &mut Harness, nodes: &mut [Node], silent: Option<usize>, ms: u64) {
    for i in (0..nodes.len()).filter(|&i| Some(i) != silent) {
        nodes[i].heartbeat(h).unwrap();
        let outs = h.settle();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
    }
    h.advance(ms);
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
}

/// Node `i` restarts at `endpoint` while the others keep heartbeating. Its old incarnation
/// owns its name until that lease ends, so the new one is refused until then; then it takes
/// over and settles.
pub fn restart_elsewhere(h: &mut Harness, nodes: &mut [Node], i: usize, endpoint: &str) {
    nodes[i].restart();
    nodes[i].endpoint = endpoint.into();
    let refused = nodes[i].heartbeat(h);
    assert!(
        matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("is live as incarnation")),
        "{refused:?}"
    );
    let lease = h.core.config().lease_ms;
    for _ in 0..lease / 1_000 + 1 {
        round_without(h, nodes, Some(i), 1_000);
    }
    for _ in 0..h.core.config().node_settle_heartbeats {
        round(h, nodes, 500);
    }
}

/// Node `name` of cluster `c`, as listed.
pub fn node_info(h: &mut Harness, name: &str) -> NodeInfo {
    match h.call(Request::ListNodes { cluster: "c".into(), page: PageRequest::default() }) {
        Ok(Response::Nodes(ns)) => {
            ns.items.into_iter().find(|n| n.name == name).expect("the node is listed")
        }
        other => panic!("{other:?}"),
    }
}

pub fn shard_statuses(h: &mut Harness) -> Vec<ShardInfo> {
    let id = h.request(Request::ListShards { cluster: "c".into(), page: PageRequest::default() });
    match h.outputs().into_iter().next() {
        Some(Output::Reply { request, result: Ok(Response::Shards(s)) }) if request == id => {
            s.items
        }
        other => panic!("{other:?}"),
    }
}

/// The harness's effects: every output kept as it came, for tests to look at.
struct Collect(Vec<Output>);

impl Effects for Collect {
    type Caller = ();

    fn persist(&mut self, batch: storage::WriteBatch) {
        self.0.push(Output::Persist(batch));
    }

    fn to_node(&mut self, session: SessionId, message: NodeMessage) {
        self.0.push(Output::ToNode { session, message });
    }

    fn close_stream(&mut self, session: SessionId, redirect: Option<Redirect>, error: MetaError) {
        self.0.push(Output::CloseStream { session, redirect, error });
    }

    fn reply(&mut self, request: RequestId, _: (), result: Result<Response, MetaError>) {
        self.0.push(Output::Reply { request, result });
    }

    fn load_snapshot(&mut self, term: Term) {
        self.0.push(Output::LoadSnapshot { term });
    }

    fn resign(&mut self, term: Term, reason: ResignReason) {
        self.0.push(Output::Resign { term, reason });
    }

    fn to_watcher(&mut self, watch: WatchId, update: RouteUpdate) {
        self.0.push(Output::ToWatcher { watch, update });
    }

    fn end_watch(&mut self, watch: WatchId, error: MetaError) {
        self.0.push(Output::EndWatch { watch, error });
    }
}
