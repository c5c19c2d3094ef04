//! Faults the harness injects. [`Sim::apply`] starts one and returns how to undo it, so that
//! faults can overlap; a node already under a fault is not picked again until it is undone.
//! Each class has a name for the coverage counters; standing conditions (etcd timeouts, packet
//! loss, latency) are set per seed and counted once.

use std::time::Duration;

use madsim::rand::{thread_rng, Rng};
use madsim::task::NodeId;

use crate::cluster::clog_both;
use crate::Sim;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Kill a meta node and restart it (start-up re-runs).
    MetaKill,
    /// Stop a meta node's tasks (a GC pause, a stalled VM) and resume them.
    MetaPause,
    /// Cut a meta node, the leader more often than not, from etcd but not from anyone else.
    MetaEtcdPartition,
    /// Cut one meta node from the other meta nodes.
    MetaMetaPartition,
    DataNodeKill,
    DataNodePause,
    /// Cut a data node from every meta node, both ways.
    NodeMetaPartition,
    /// Cut one direction only: the node's heartbeats get through and meta's replies do not, or
    /// the other way round.
    NodeMetaOneWay,
    /// A command meta sent a data node earlier arrives once more, late, as across a reconnect
    /// ([`crate::cluster::DataNodeView::deliver_late`]).
    LateCommand,
    /// An operator splits a random shard (chosen by load), or merges two random shards: the
    /// procedures then run under whatever other faults the seed injects. Counted when meta
    /// accepts the request.
    Split,
    Merge,
    /// Another process sends one heartbeat under a live data node's name, from another
    /// incarnation and endpoint, claiming to lead every shard. Counted when meta answers.
    Impostor,
    /// A process heartbeats once under a new name and vanishes: it must get no replica.
    OneShot,
    /// An operator begins a planned restart of a data node (the default window, or one of 5 s
    /// that the hold may outlast), and the node is killed up to 2 s later, its leaders gone or
    /// not; the undo starts it again. Counted when meta accepts the request.
    PlannedRestart,
    /// An operator sets a placement rule over the nodes' racks (or clears it): shards then
    /// move to meet it under whatever other faults the seed injects. Counted when meta accepts
    /// the request.
    PlacementRule,
}

impl Fault {
    pub const ALL: [Fault; 15] = [
        Fault::MetaKill,
        Fault::MetaPause,
        Fault::MetaEtcdPartition,
        Fault::MetaMetaPartition,
        Fault::DataNodeKill,
        Fault::DataNodePause,
        Fault::NodeMetaPartition,
        Fault::NodeMetaOneWay,
        Fault::LateCommand,
        Fault::Split,
        Fault::Merge,
        Fault::Impostor,
        Fault::OneShot,
        Fault::PlannedRestart,
        Fault::PlacementRule,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::MetaKill => "meta kill",
            Fault::MetaPause => "meta pause",
            Fault::MetaEtcdPartition => "meta-etcd partition",
            Fault::MetaMetaPartition => "meta-meta partition",
            Fault::DataNodeKill => "data node kill",
            Fault::DataNodePause => "data node pause",
            Fault::NodeMetaPartition => "node-meta partition",
            Fault::NodeMetaOneWay => "node-meta one-way clog",
            Fault::LateCommand => "late command",
            Fault::Split => "shard split",
            Fault::Merge => "shard merge",
            Fault::Impostor => "impostor",
            Fault::OneShot => "one-shot sender",
            Fault::PlannedRestart => "planned restart",
            Fault::PlacementRule => "placement rule",
        }
    }
}

/// One-shot senders' node names: such a node must never hold a replica.
pub const ONE_SHOT_PREFIX: &str = "ghost-";

/// Standing conditions of a seed, counted as fault classes too.
pub const ETCD_TIMEOUTS: &str = "etcd timeouts";
pub const PACKET_LOSS: &str = "packet loss";
pub const LATENCY: &str = "latency";

/// How to end an applied fault.
#[derive(Debug)]
pub enum Undo {
    /// The fault found no free target.
    Nothing,
    RestartMeta(NodeId),
    RestartDataNode(usize),
    Resume(NodeId),
    Unclog {
        target: NodeId,
        links: Vec<(NodeId, NodeId)>,
    },
    /// The fault is over already; the node stays busy until the undo.
    Done(NodeId),
}

impl Undo {
    fn target(&self, sim: &Sim) -> Option<NodeId> {
        match self {
            Undo::Nothing => None,
            Undo::RestartMeta(n)
            | Undo::Resume(n)
            | Undo::Unclog { target: n, .. }
            | Undo::Done(n) => Some(*n),
            Undo::RestartDataNode(i) => Some(sim.nodes[*i].handle.id()),
        }
    }
}

impl Sim {
    fn free(&self, candidates: Vec<NodeId>) -> Option<NodeId> {
        let free: Vec<NodeId> = candidates.into_iter().filter(|n| !self.busy.contains(n)).collect();
        (!free.is_empty()).then(|| free[thread_rng().gen_range(0..free.len())])
    }

    fn free_meta(&self) -> Option<NodeId> {
        self.free(self.metas.iter().map(|m| m.id()).collect())
    }

    fn free_data_node(&self) -> Option<usize> {
        let id = self.free(self.nodes.iter().map(|n| n.handle.id()).collect())?;
        self.nodes.iter().position(|n| n.handle.id() == id)
    }

    /// Starts `fault`; the returned [`Undo`] ends it.
    pub async fn apply(&mut self, fault: Fault) -> Undo {
        let mut rng = thread_rng();
        let undo = match fault {
            Fault::MetaKill => self.free_meta().map(|m| {
                self.handle.kill(m);
                Undo::RestartMeta(m)
            }),
            Fault::MetaPause => self.free_meta().map(|m| {
                self.handle.pause(m);
                Undo::Resume(m)
            }),
            Fault::MetaEtcdPartition => {
                let leader = self
                    .meta_leader()
                    .await
                    .map(|i| self.metas[i].id())
                    .filter(|l| !self.busy.contains(l));
                let m = match leader {
                    Some(l) if rng.gen_bool(0.7) => Some(l),
                    _ => self.free_meta(),
                };
                m.map(|m| {
                    clog_both(&self.net, m, self.etcd.id(), true);
                    Undo::Unclog {
                        target: m,
                        links: vec![(m, self.etcd.id()), (self.etcd.id(), m)],
                    }
                })
            }
            Fault::MetaMetaPartition => self.free_meta().map(|m| {
                let others: Vec<NodeId> =
                    self.metas.iter().map(|n| n.id()).filter(|&o| o != m).collect();
                others.iter().for_each(|&o| clog_both(&self.net, m, o, true));
                Undo::Unclog {
                    target: m,
                    links: others.iter().flat_map(|&o| [(m, o), (o, m)]).collect(),
                }
            }),
            Fault::DataNodeKill => self.free_data_node().map(|i| {
                self.nodes[i].kill(&self.handle, &self.history);
                Undo::RestartDataNode(i)
            }),
            Fault::DataNodePause => self.free_data_node().map(|i| {
                let n = self.nodes[i].handle.id();
                self.handle.pause(n);
                Undo::Resume(n)
            }),
            Fault::NodeMetaPartition | Fault::NodeMetaOneWay => self.free_data_node().map(|i| {
                let n = self.nodes[i].handle.id();
                let metas: Vec<NodeId> = self.metas.iter().map(|m| m.id()).collect();
                let links: Vec<(NodeId, NodeId)> = match (fault, rng.gen_bool(0.5)) {
                    (Fault::NodeMetaPartition, _) => {
                        metas.iter().flat_map(|&m| [(n, m), (m, n)]).collect()
                    }
                    (_, true) => metas.iter().map(|&m| (n, m)).collect(),
                    (_, false) => metas.iter().map(|&m| (m, n)).collect(),
                };
                links.iter().for_each(|&(a, b)| self.net.clog_link(a, b));
                Undo::Unclog { target: n, links }
            }),
            Fault::LateCommand => self
                .free_data_node()
                .filter(|&i| {
                    self.nodes[i].is_up() && self.nodes[i].view.deliver_late(&self.history)
                })
                .map(|i| Undo::Done(self.nodes[i].handle.id())),
            Fault::Split | Fault::Merge => {
                let shards = self.spec.shards;
                let (a, b) = (rng.gen_range(0..shards), rng.gen_range(0..shards));
                if self.resize(fault == Fault::Split, a, b).await {
                    self.count_fault(fault.name());
                }
                None
            }
            Fault::PlannedRestart => match self.free_data_node().filter(|&i| self.nodes[i].is_up())
            {
                Some(i) => {
                    let window_ms = [0, 5_000][rng.gen_range(0..2)];
                    let lead_time = Duration::from_millis(rng.gen_range(0..2_000));
                    let node = self.nodes[i].view.name.clone();
                    if self.begin_restart(node, window_ms).await {
                        tokio::time::sleep(lead_time).await;
                        self.nodes[i].kill(&self.handle, &self.history);
                        Some(Undo::RestartDataNode(i))
                    } else {
                        None
                    }
                }
                None => None,
            },
            Fault::PlacementRule => {
                if self.set_rule(rng.gen_range(0..4)).await {
                    self.count_fault(fault.name());
                }
                None
            }
            Fault::Impostor | Fault::OneShot => {
                let name = match fault {
                    Fault::Impostor => {
                        self.nodes[rng.gen_range(0..self.nodes.len())].view.name.clone()
                    }
                    _ => format!("{ONE_SHOT_PREFIX}{}", rng.gen_range(0..1_000)),
                };
                if self.rogue_heartbeat(name).await {
                    self.count_fault(fault.name());
                }
                None
            }
        };
        let undo = undo.unwrap_or(Undo::Nothing);
        if let Some(t) = undo.target(self) {
            self.busy.push(t);
            self.count_fault(fault.name());
        }
        undo
    }

    /// One heartbeat, to the meta leader, from a process that is not one of the seed's data
    /// nodes: under `name`, from another incarnation and endpoint, claiming to lead every
    /// shard. Then the stream ends. Whether meta answered (a lease, or a refusal).
    async fn rogue_heartbeat(&self, name: String) -> bool {
        use shardmeta::proto::{HeartbeatRequest, ShardReport, ShardRole};
        let (header, shards, incarnation) =
            (crate::frontend::header(), self.spec.shards, thread_rng().gen::<u64>() | 1 << 63);
        let call = move |mut m: shardmeta::client::MetaClient| async move {
            let Ok((_, mut c)) = m.leader().await else { return false };
            let claim = |id| ShardReport {
                id,
                role: ShardRole::Leader as i32,
                version: 1,
                ..Default::default()
            };
            let endpoint = "10.99.0.1:7000".to_string();
            let hb = HeartbeatRequest {
                header,
                node_name: name,
                endpoint,
                incarnation,
                seq: 1,
                shards: (0..shards).map(claim).collect(),
                ..Default::default()
            };
            let Ok(answers) = c.heartbeat(tokio_stream::iter(vec![hb])).await else { return false };
            let answer =
                tokio::time::timeout(Duration::from_secs(2), answers.into_inner().message()).await;
            matches!(answer, Ok(Ok(Some(_))) | Ok(Err(_)))
        };
        self.with_meta(call).await
    }

    /// Asks meta to set rule `k` over the nodes' racks (`r0` to `r3`, by node index): avoid
    /// one rack; keep replicas off one and leaders on two; prefer one for leaders and spread
    /// replicas over racks; or none. Whether it accepted.
    async fn set_rule(&self, k: usize) -> bool {
        use shardmeta::proto::{ConstraintKind as K, PlacementConstraint, PlacementRule};
        let c = |kind: K, values: &[&str]| PlacementConstraint {
            kind: kind as i32,
            key: "rack".into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let rule = match k {
            0 => PlacementRule { replicas: vec![c(K::Avoid, &["r3"])], ..Default::default() },
            1 => PlacementRule {
                replicas: vec![c(K::Require, &["r0", "r1", "r2"])],
                leader: vec![c(K::Require, &["r0", "r1"])],
                ..Default::default()
            },
            2 => PlacementRule {
                leader: vec![c(K::Prefer, &["r0"])],
                spread: "rack".into(),
                ..Default::default()
            },
            _ => PlacementRule::default(),
        };
        let req = shardmeta::proto::SetPlacementRequest {
            header: crate::frontend::header(),
            rule: Some(rule),
            expected_version: None,
        };
        let call = move |mut m: shardmeta::client::MetaClient| async move {
            m.call(|mut c| {
                let req = req.clone();
                async move { c.set_placement(req).await }
            })
            .await
            .map(drop)
        };
        self.with_meta(call).await.is_ok()
    }

    /// Asks meta to begin a planned restart of `node`; whether it accepted.
    async fn begin_restart(&self, node: String, window_ms: u64) -> bool {
        use shardmeta::proto::RestartNodeRequest;
        let header = crate::frontend::header();
        let req = RestartNodeRequest { header, node, end: false, window_ms };
        let call = move |mut m: shardmeta::client::MetaClient| async move {
            m.call(|mut c| {
                let req = req.clone();
                async move { c.restart_node(req).await }
            })
            .await
            .map(drop)
        };
        self.with_meta(call).await.is_ok()
    }

    /// Asks meta to split shard `a` (`split`) or merge `a` and `b`; whether it accepted.
    async fn resize(&self, split: bool, a: u32, b: u32) -> bool {
        use shardmeta::proto::{MergeShardsRequest, SplitShardRequest};
        let header = crate::frontend::header();
        let call = move |mut m: shardmeta::client::MetaClient| async move {
            if split {
                let req = SplitShardRequest { header, shard: a, tables: vec![] };
                m.call(|mut c| {
                    let req = req.clone();
                    async move { c.split_shard(req).await }
                })
                .await
                .map(drop)
            } else {
                let req = MergeShardsRequest { header, shard: a, other: b };
                m.call(|mut c| {
                    let req = req.clone();
                    async move { c.merge_shards(req).await }
                })
                .await
                .map(drop)
            }
        };
        self.with_meta(call).await.is_ok()
    }

    pub fn undo(&mut self, undo: Undo) {
        if let Some(t) = undo.target(self) {
            self.busy.retain(|&b| b != t);
        }
        match undo {
            Undo::Nothing | Undo::Done(_) => {}
            Undo::RestartMeta(m) => self.handle.restart(m),
            Undo::RestartDataNode(i) => self.nodes[i].restart(&self.handle),
            Undo::Resume(n) => self.handle.resume(n),
            Undo::Unclog { links, .. } => {
                links.iter().for_each(|&(a, b)| self.net.unclog_link(a, b))
            }
        }
    }

    /// Applies `fault` for `hold`, then undoes it.
    pub async fn inject(&mut self, fault: Fault, hold: Duration) {
        let undo = self.apply(fault).await;
        tokio::time::sleep(hold).await;
        self.undo(undo);
    }
}
