//! The planner on small hand-built catalogs: one pass, the exact moves it decides.

use super::{Move, MoveReason, Planner};
use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::input::Heartbeat;
use crate::core::leader::runtime::ClusterRuntime;
use crate::core::model::{Catalog, ClusterCatalog, ClusterRecord, NodeRecord, ShardRecord, Topology, TransferRecord};
use crate::core::storage::Mutation;
use crate::core::time::{Duration, Instant};

const C: ClusterId = ClusterId(1);
const T0: Instant = Instant(1_000);

/// A cluster of `nodes` nodes whose shards hold `shards` (unassigned when absent).
fn catalog(nodes: u32, shard_count: u32, followers: u32, shards: &[ShardRecord]) -> Catalog {
    let mut c = Catalog::default();
    let topology = ClusterRecord::topology_code(Topology::Dynamic);
    c.apply(Mutation::PutCluster(ClusterRecord { id: C.0, name: "c".into(), shard_count, followers_per_shard: followers, topology, min_nodes: 1 })).unwrap();
    for id in 0..nodes {
        c.apply(Mutation::PutNode(C, NodeRecord { id, name: format!("n{id}"), endpoint: format!("n{id}:1"), ..Default::default() })).unwrap();
    }
    for s in shards {
        c.apply(Mutation::PutShard(C, s.clone())).unwrap();
    }
    c
}

fn shard(id: u32, version: u64, leader: u32, followers: &[u32]) -> ShardRecord {
    ShardRecord { id, version, leader: Some(leader), followers: followers.to_vec(), ..Default::default() }
}

fn plan(cluster: &ClusterCatalog, rt: &mut ClusterRuntime, now: Instant) -> Vec<Move> {
    Planner::new(cluster, rt, now, &CoreConfig::default()).plan()
}

/// A new leader's runtime after every node of `nodes` has heartbeat once.
fn heard(cluster: &ClusterCatalog, nodes: u32) -> ClusterRuntime {
    let mut rt = ClusterRuntime::new(cluster, T0, &CoreConfig::default());
    for id in 0..nodes {
        rt.heard_from(cluster, NodeId(id), SessionId(id as u64 + 1), &heartbeat(id), T0);
    }
    rt
}

/// Just enough of node `id`'s first heartbeat for the runtime to count the node as heard.
fn heartbeat(id: u32) -> Heartbeat {
    let (node, endpoint) = (format!("n{id}"), format!("n{id}:1"));
    Heartbeat { cluster: "c".into(), node, endpoint, zone: String::new(), incarnation: 1, seq: 1, stats: Default::default(), shards: vec![], tables: vec![], load_rejections: 0 }
}

/// A new leader inherits nodes as alive for a lease of grace, but gives them nothing new until
/// they speak: any of them may have been down all along.
#[test]
fn inherited_nodes_take_no_new_shards_until_they_heartbeat() {
    let catalog = catalog(2, 2, 0, &[]);
    let cluster = catalog.cluster(C);
    let mut rt = ClusterRuntime::new(cluster, T0, &CoreConfig::default());
    assert_eq!(plan(cluster, &mut rt, T0), vec![]);
    rt.heard_from(cluster, NodeId(1), SessionId(2), &heartbeat(1), T0);
    let moves = plan(cluster, &mut rt, T0);
    assert_eq!(moves.iter().map(|m| m.record.leader).collect::<Vec<_>>(), vec![Some(1), Some(1)], "only the node heard from");
}

#[test]
fn unassigned_shards_go_to_the_least_loaded_nodes_in_turn() {
    let catalog = catalog(2, 2, 0, &[]);
    let cluster = catalog.cluster(C);
    let mut rt = heard(cluster, 2);
    let moves = plan(cluster, &mut rt, T0);
    let expected = vec![
        Move { record: ShardRecord { version: 1, ..shard(0, 0, 0, &[]) }, closes: vec![], kept: vec![], reason: MoveReason::Assign },
        Move { record: ShardRecord { version: 1, ..shard(1, 0, 1, &[]) }, closes: vec![], kept: vec![], reason: MoveReason::Assign },
    ];
    assert_eq!(moves, expected);
}

/// The leader's node died and its lease is surely over: the follower leads, and the old leader
/// keeps the follower slot (it may return; with no third node, repair has nowhere better).
#[test]
fn a_dead_leaders_follower_is_promoted_once_the_lease_is_over() {
    let config = CoreConfig::default();
    let catalog = catalog(2, 1, 1, &[shard(0, 3, 0, &[1])]);
    let cluster = catalog.cluster(C);
    let mut rt = heard(cluster, 2);
    rt.set_online(NodeId(0), false);
    assert_eq!(plan(cluster, &mut rt, T0), vec![], "not while the lease may still be held");
    let later = T0 + config.lease() + config.clock_drift() + Duration(1);
    let moves = plan(cluster, &mut rt, later);
    let expected = vec![Move { record: shard(0, 4, 1, &[0]), closes: vec![], kept: vec![NodeId(1), NodeId(0)], reason: MoveReason::PromoteFollower }];
    assert_eq!(moves, expected);
}

/// Two leaders on one node and none on the other: one transfer starts, to the idle node.
#[test]
fn balancing_starts_one_transfer_from_the_busiest_node() {
    let catalog = catalog(2, 2, 1, &[shard(0, 1, 0, &[1]), shard(1, 1, 0, &[1])]);
    let cluster = catalog.cluster(C);
    let mut rt = heard(cluster, 2);
    let moves = plan(cluster, &mut rt, T0);
    let transfer = Some(TransferRecord { from: 0, to: 1 });
    let expected = vec![Move { record: ShardRecord { transfer, ..shard(0, 2, 0, &[1]) }, closes: vec![NodeId(0)], kept: vec![NodeId(0), NodeId(1)], reason: MoveReason::StartTransfer }];
    assert_eq!(moves, expected);
}
