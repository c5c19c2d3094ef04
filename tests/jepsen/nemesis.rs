//! The faults a run injects, one at a time, each for a window of seconds, then healed: the
//! process faults (kill -9, SIGSTOP, an etcd member wiped and rejoined), the network faults
//! (symmetric, one-way, majority/minority cuts, a meta cut from etcd but not from its nodes),
//! and the operator's own disturbances (moves, splits, merges, drains) racing the workload.

use std::time::Duration;

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use shardmeta::client::MetaClient;
use shardmeta::proto;

use super::cluster::{Cluster, ETCD, METAS, NODES};
use super::process::node_kill::header;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    MetaLeaderKill,
    MetaLeaderStop,
    MetaFollowerKill,
    EtcdKill,
    EtcdStop,
    EtcdWipe,
    NodeKill,
    NodeStop,
    EtcdIsolated,
    LeaderCutFromEtcd,
    LeaderIsolated,
    LeaderDeafToEtcd,
    EtcdDeafToLeader,
    MinorityWithLeader,
    MinorityWithoutLeader,
    NodeCutFromMetas,
    Move,
    Split,
    Merge,
    Drain,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::MetaLeaderKill => "meta leader kill -9",
            Fault::MetaLeaderStop => "meta leader SIGSTOP",
            Fault::MetaFollowerKill => "meta follower kill -9",
            Fault::EtcdKill => "etcd member kill -9",
            Fault::EtcdStop => "etcd member SIGSTOP",
            Fault::EtcdWipe => "etcd member wiped, rejoined",
            Fault::NodeKill => "node kill -9",
            Fault::NodeStop => "node SIGSTOP past its lease",
            Fault::EtcdIsolated => "etcd member cut from all",
            Fault::LeaderCutFromEtcd => "meta leader cut from etcd only",
            Fault::LeaderIsolated => "meta leader cut from all",
            Fault::LeaderDeafToEtcd => "one way: meta leader drops etcd",
            Fault::EtcdDeafToLeader => "one way: etcd drops meta leader",
            Fault::MinorityWithLeader => "split, meta leader in the minority",
            Fault::MinorityWithoutLeader => "split, meta leader in the majority",
            Fault::NodeCutFromMetas => "node cut from metas past its lease",
            Fault::Move => "operator move",
            Fault::Split => "operator split",
            Fault::Merge => "operator merge",
            Fault::Drain => "operator drain",
        }
    }

    /// Faults that leave the meta service without its leader for a while: their DDL gap is
    /// bounded by the election TTL, not by the 95% availability goal.
    pub fn deposes_leader(self) -> bool {
        matches!(
            self,
            Fault::MetaLeaderKill
                | Fault::MetaLeaderStop
                | Fault::LeaderCutFromEtcd
                | Fault::LeaderIsolated
                | Fault::LeaderDeafToEtcd
                | Fault::EtcdDeafToLeader
                | Fault::MinorityWithLeader
        )
    }

    /// Faults that hit the meta leader and nothing else: a shard without a leased leader
    /// through one of them is meta's doing. (A split with the meta leader in the minority cuts
    /// a node off too, whose shards must fail over.)
    pub fn only_meta_leader(self) -> bool {
        self.deposes_leader() && self != Fault::MinorityWithLeader
    }

    /// Faults of one etcd member with quorum kept: the goal is no meta election at all.
    pub fn one_etcd_member(self) -> bool {
        matches!(self, Fault::EtcdKill | Fault::EtcdStop | Fault::EtcdWipe | Fault::EtcdIsolated)
    }

    /// How long the fault lasts: node faults outlast the node's lease (10 s), so that its
    /// shards fail over.
    fn window(self, rng: &mut ChaCha8Rng) -> Duration {
        let (from, to) = match self {
            Fault::NodeStop | Fault::NodeCutFromMetas => (12, 16),
            Fault::Move | Fault::Split | Fault::Merge | Fault::Drain => (8, 12),
            _ => (6, 14),
        };
        Duration::from_secs(from + rng.next_u64() % (to - from + 1))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    Crash,
    Partition,
    Operator,
}

impl Mix {
    pub const ALL: [Mix; 3] = [Mix::Crash, Mix::Partition, Mix::Operator];

    pub fn name(self) -> &'static str {
        match self {
            Mix::Crash => "crash",
            Mix::Partition => "partition",
            Mix::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Mix> {
        Mix::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The operator mix also kills the meta leader and a node: a procedure must survive the
    /// failover of the meta that runs it and of the node it waits on.
    pub fn faults(self) -> &'static [Fault] {
        use Fault::*;
        match self {
            Mix::Crash => &[
                MetaLeaderKill,
                MetaLeaderStop,
                MetaFollowerKill,
                EtcdKill,
                EtcdStop,
                EtcdWipe,
                NodeKill,
                NodeStop,
            ],
            Mix::Partition => &[
                EtcdIsolated,
                LeaderCutFromEtcd,
                LeaderIsolated,
                LeaderDeafToEtcd,
                EtcdDeafToLeader,
                MinorityWithLeader,
                MinorityWithoutLeader,
                NodeCutFromMetas,
            ],
            Mix::Operator => {
                &[Move, Split, Merge, Drain, Move, Split, Merge, Drain, MetaLeaderKill, NodeKill]
            }
        }
    }
}

/// A fault injected.
pub struct Injected {
    /// How long to leave it.
    pub window: Duration,
    /// What it hit.
    pub target: String,
    /// The refusal, if it was an operator request and was refused.
    pub refused: Option<String>,
    /// It paused the member that led etcd.
    pub paused_etcd_leader: bool,
}

/// What undoes a fault.
enum Undo {
    Nothing,
    RestartMeta(usize),
    ContMeta(usize),
    RestartEtcd(usize),
    ContEtcd(usize),
    RestartNode(usize),
    ContNode(usize),
    Heal,
    Undrain(String),
}

fn pick(rng: &mut ChaCha8Rng, n: usize) -> usize {
    rng.next_u32() as usize % n
}

pub struct Nemesis {
    pub rng: ChaCha8Rng,
    meta: MetaClient,
    undo: Option<Undo>,
}

impl Nemesis {
    pub fn new(rng: ChaCha8Rng, endpoints: Vec<String>) -> Nemesis {
        Nemesis {
            rng,
            meta: MetaClient::new(endpoints, Duration::from_secs(4)).unwrap(),
            undo: None,
        }
    }

    /// Injects `fault`.
    pub async fn inject(&mut self, c: &mut Cluster, fault: Fault) -> Injected {
        let window = fault.window(&mut self.rng);
        let leader = c.meta_leader().await;
        // A leader fault with no leader to hit (an election under way) hits a follower instead.
        let leader_or_any = leader.unwrap_or_else(|| pick(&mut self.rng, METAS));
        let mut refused = None;
        let mut paused_etcd_leader = false;
        let (target, undo) = match fault {
            Fault::MetaLeaderKill => {
                c.metas[leader_or_any].kill9();
                (Cluster::meta_name(leader_or_any), Undo::RestartMeta(leader_or_any))
            }
            Fault::MetaLeaderStop => {
                c.metas[leader_or_any].signal("STOP");
                (Cluster::meta_name(leader_or_any), Undo::ContMeta(leader_or_any))
            }
            Fault::MetaFollowerKill => {
                let i = (leader_or_any + 1 + pick(&mut self.rng, METAS - 1)) % METAS;
                c.metas[i].kill9();
                (Cluster::meta_name(i), Undo::RestartMeta(i))
            }
            Fault::EtcdKill => {
                let i = pick(&mut self.rng, ETCD);
                c.etcd.members[i].kill9();
                (format!("e{i}"), Undo::RestartEtcd(i))
            }
            Fault::EtcdStop => {
                let i = pick(&mut self.rng, ETCD);
                paused_etcd_leader = c.etcd.leader().await == Some(i);
                c.etcd.members[i].signal("STOP");
                (
                    format!("e{i}{}", if paused_etcd_leader { " (etcd's leader)" } else { "" }),
                    Undo::ContEtcd(i),
                )
            }
            Fault::EtcdWipe => {
                let i = pick(&mut self.rng, ETCD);
                if let Err(e) = c.etcd.wipe_and_rejoin(i).await {
                    refused = Some(e);
                    c.etcd.restart(i);
                }
                (format!("e{i}"), Undo::Nothing)
            }
            Fault::NodeKill => {
                let i = pick(&mut self.rng, NODES);
                c.nodes[i].kill9();
                (Cluster::node_name(i), Undo::RestartNode(i))
            }
            Fault::NodeStop => {
                let i = pick(&mut self.rng, NODES);
                c.nodes[i].signal("STOP");
                (Cluster::node_name(i), Undo::ContNode(i))
            }
            Fault::EtcdIsolated => {
                let i = pick(&mut self.rng, ETCD);
                c.isolate(Cluster::etcd_host(i));
                (format!("e{i}"), Undo::Heal)
            }
            Fault::LeaderCutFromEtcd => {
                for e in 0..ETCD {
                    c.lab.cut(Cluster::meta_host(leader_or_any), Cluster::etcd_host(e));
                }
                (Cluster::meta_name(leader_or_any), Undo::Heal)
            }
            Fault::LeaderIsolated => {
                c.isolate(Cluster::meta_host(leader_or_any));
                (Cluster::meta_name(leader_or_any), Undo::Heal)
            }
            Fault::LeaderDeafToEtcd => {
                for e in 0..ETCD {
                    c.lab.cut_one_way(Cluster::etcd_host(e), Cluster::meta_host(leader_or_any));
                }
                (Cluster::meta_name(leader_or_any), Undo::Heal)
            }
            Fault::EtcdDeafToLeader => {
                for e in 0..ETCD {
                    c.lab.cut_one_way(Cluster::meta_host(leader_or_any), Cluster::etcd_host(e));
                }
                (Cluster::meta_name(leader_or_any), Undo::Heal)
            }
            Fault::MinorityWithLeader | Fault::MinorityWithoutLeader => {
                // One etcd member, one meta and one node on the minority side.
                let (e, n) = (pick(&mut self.rng, ETCD), pick(&mut self.rng, NODES));
                let m = match fault {
                    Fault::MinorityWithLeader => leader_or_any,
                    _ => (leader_or_any + 1 + pick(&mut self.rng, METAS - 1)) % METAS,
                };
                let minority =
                    [Cluster::etcd_host(e), Cluster::meta_host(m), Cluster::node_host(n)];
                for a in minority {
                    for b in (0..ETCD + METAS + NODES).filter(|h| !minority.contains(h)) {
                        c.lab.cut(a, b);
                    }
                }
                (format!("e{e} m{m} n{n}"), Undo::Heal)
            }
            Fault::NodeCutFromMetas => {
                let i = pick(&mut self.rng, NODES);
                for m in 0..METAS {
                    c.lab.cut(Cluster::node_host(i), Cluster::meta_host(m));
                }
                (Cluster::node_name(i), Undo::Heal)
            }
            Fault::Move | Fault::Split | Fault::Merge | Fault::Drain => {
                let (target, outcome, undo) = self.operate(fault).await;
                refused = outcome.err();
                (target, undo)
            }
        };
        self.undo = Some(undo);
        Injected { window, target, refused, paused_etcd_leader }
    }

    /// An operator request, as `metactl` sends it.
    async fn operate(&mut self, fault: Fault) -> (String, Result<(), String>, Undo) {
        let shards: Vec<proto::ShardInfo> = self
            .meta
            .list_all(proto::ListShardsRequest { header: header(), ..Default::default() })
            .await
            .unwrap_or_default();
        let ready: Vec<&proto::ShardInfo> = shards
            .iter()
            .filter(|s| s.status == proto::ShardStatus::Ready as i32 && !s.leader.is_empty())
            .collect();
        if ready.len() < 2 {
            return ("-".into(), Err("fewer than two shards ready".into()), Undo::Nothing);
        }
        let shard = ready[pick(&mut self.rng, ready.len())];
        let h = header();
        match fault {
            Fault::Move => {
                let to = match shard.followers.first() {
                    Some(f) => (f.clone(), false),
                    None => (Cluster::node_name(pick(&mut self.rng, NODES)), true),
                };
                let req = proto::MoveShardRequest {
                    header: h,
                    shard: shard.id,
                    node: to.0.clone(),
                    reopen: to.1,
                };
                let r = self
                    .meta
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.move_shard(req).await }
                    })
                    .await;
                (
                    format!("shard {} to {}", shard.id, to.0),
                    r.map(drop).map_err(|e| e.message().to_owned()),
                    Undo::Nothing,
                )
            }
            Fault::Split => {
                let fullest = ready.iter().max_by_key(|s| s.tables).expect("two ready");
                let req =
                    proto::SplitShardRequest { header: h, shard: fullest.id, tables: Vec::new() };
                let r = self
                    .meta
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.split_shard(req).await }
                    })
                    .await;
                (
                    format!("shard {}", fullest.id),
                    r.map(drop).map_err(|e| e.message().to_owned()),
                    Undo::Nothing,
                )
            }
            Fault::Merge => {
                let mut by_tables = ready.clone();
                by_tables.sort_by_key(|s| (s.tables, s.id));
                let (a, b) = (by_tables[0].id, by_tables[1].id);
                let req = proto::MergeShardsRequest { header: h, shard: a, other: b };
                let r = self
                    .meta
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.merge_shards(req).await }
                    })
                    .await;
                (
                    format!("shards {a} and {b}"),
                    r.map(drop).map_err(|e| e.message().to_owned()),
                    Undo::Nothing,
                )
            }
            _ => {
                let node = Cluster::node_name(pick(&mut self.rng, NODES));
                let req = proto::DrainNodeRequest { header: h, node: node.clone(), cancel: false };
                let r = self
                    .meta
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.drain_node(req).await }
                    })
                    .await;
                let undo = if r.is_ok() { Undo::Undrain(node.clone()) } else { Undo::Nothing };
                (node, r.map(drop).map_err(|e| e.message().to_owned()), undo)
            }
        }
    }

    /// Undoes the fault injected last; an error names what could not be undone.
    pub async fn heal(&mut self, c: &mut Cluster) -> Result<(), String> {
        match self.undo.take() {
            None | Some(Undo::Nothing) => {}
            Some(Undo::RestartMeta(i)) => c.metas[i] = c.start_meta(i),
            Some(Undo::ContMeta(i)) => c.metas[i].signal("CONT"),
            Some(Undo::RestartEtcd(i)) => c.etcd.restart(i),
            Some(Undo::ContEtcd(i)) => c.etcd.members[i].signal("CONT"),
            Some(Undo::RestartNode(i)) => c.nodes[i] = c.start_node(i),
            Some(Undo::ContNode(i)) => c.nodes[i].signal("CONT"),
            Some(Undo::Heal) => c.lab.heal(),
            Some(Undo::Undrain(node)) => {
                // The drain is cancelled whatever happens meanwhile, or the next drain finds
                // too few nodes to take the shards.
                let req =
                    proto::DrainNodeRequest { header: header(), node: node.clone(), cancel: true };
                for _ in 0..20 {
                    if self
                        .meta
                        .call(|mut c| {
                            let req = req.clone();
                            async move { c.drain_node(req).await }
                        })
                        .await
                        .is_ok()
                    {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                return Err(format!("the drain of {node} could not be cancelled"));
            }
        }
        Ok(())
    }
}
