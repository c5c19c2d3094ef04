//! Draining a node: its replicas leave by transfer and follower repair while it stays up, it
//! gets nothing new, the mark survives restarts, and cancelling the drain makes it usable again.

use crate::harness::*;
use shardmeta::client::NodeIdentity;
use shardmeta::core::model::Topology;
use shardmeta::core::*;

fn drain(h: &mut Harness, node: &str, cancel: bool) -> Result<NodeInfo, MetaError> {
    match h.call(Request::DrainNode { cluster: "c".into(), node: node.into(), cancel })? {
        Response::Node(info) => Ok(info),
        other => panic!("{other:?}"),
    }
}

/// S1 among the harness's nodes: no shard has two nodes that both believe they lead it.
fn assert_one_leader_at_most(h: &Harness, nodes: &[Node], shards: u32) {
    for s in 0..shards {
        let leading: Vec<&str> = nodes
            .iter()
            .filter(|n| n.host.is_leading(ShardId(s), h.now))
            .map(|n| n.name.as_str())
            .collect();
        assert!(leading.len() <= 1, "shard {s} is led by {leading:?}");
    }
}

/// Runs rounds of heartbeats among `nodes` until `done` holds; returns how many it took.
fn rounds_until(
    h: &mut Harness,
    nodes: &mut [Node],
    shards: u32,
    mut done: impl FnMut(&mut Harness) -> bool,
) -> usize {
    for round_no in 1..=60 {
        round(h, nodes, 500);
        assert_one_leader_at_most(h, nodes, shards);
        if done(h) {
            return round_no;
        }
    }
    panic!("not done after 60 rounds: {:?}", shard_statuses(h));
}

#[test]
fn a_drained_node_hands_everything_over_while_it_stays_up() {
    let (mut h, mut nodes) = steady_cluster_of(3, 12, 1);
    let before = node_info(&mut h, "n1");
    assert!(before.shards > 0 && before.replicas > before.shards, "{before:?}");
    let info = drain(&mut h, "n1", false).unwrap();
    assert!(info.draining, "{info:?}");
    rounds_until(&mut h, &mut nodes, 12, |h| node_info(h, "n1").replicas == 0);
    assert!(
        nodes[0].host.shards().is_empty(),
        "n1 closed every replica: {:?}",
        nodes[0].host.shards()
    );
    // Balancing between the two that remain may follow; then everything is ready.
    rounds_until(&mut h, &mut nodes, 12, |h| {
        shard_statuses(h).iter().all(|s| s.status == ShardStatus::Ready)
    });
    for s in shard_statuses(&mut h) {
        assert_eq!(s.followers.len(), 1, "{s:?}");
        assert!(
            s.leader.as_deref() != Some("n1") && !s.followers.contains(&"n1".to_owned()),
            "{s:?}"
        );
    }
    let (n2, n3) = (node_info(&mut h, "n2"), node_info(&mut h, "n3"));
    assert!(n2.shards.abs_diff(n3.shards) <= 1, "the leaders left balanced: {n2:?} {n3:?}");
}

#[test]
fn a_draining_node_gets_nothing_new_until_the_drain_is_cancelled() {
    let (mut h, mut nodes) = steady_cluster_of(3, 6, 1);
    drain(&mut h, "n1", false).unwrap();
    rounds_until(&mut h, &mut nodes, 6, |h| node_info(h, "n1").replicas == 0);
    // n3 dies: its shards fail over to n2 alone, and their follower slots stay empty rather
    // than land on the draining node.
    let mut alive: Vec<Node> = nodes.drain(..2).collect();
    rounds_until(&mut h, &mut alive, 6, |h| node_info(h, "n2").shards == 6);
    for _ in 0..5 {
        round(&mut h, &mut alive, 500);
    }
    assert_eq!(node_info(&mut h, "n1").replicas, 0);
    assert!(drain(&mut h, "n1", true).is_ok_and(|n| !n.draining));
    rounds_until(&mut h, &mut alive, 6, |h| {
        let (n1, n2) = (node_info(h, "n1"), node_info(h, "n2"));
        n1.replicas == 6 && n1.shards.abs_diff(n2.shards) <= 1
    });
}

#[test]
fn drain_requests_are_checked_and_repeats_write_nothing() {
    let (mut h, mut nodes) = steady_cluster_of(3, 4, 1);
    assert!(
        matches!(drain(&mut h, "nope", false), Err(MetaError::NotFound(m)) if m.contains("node"))
    );
    let unknown_cluster =
        h.call(Request::DrainNode { cluster: "nope".into(), node: "n1".into(), cancel: false });
    assert!(matches!(unknown_cluster, Err(MetaError::NotFound(m)) if m.contains("cluster")));
    assert!(drain(&mut h, "n1", false).unwrap().draining);
    let stored = h.store.clone();
    assert!(drain(&mut h, "n1", false).unwrap().draining, "a repeat is answered");
    assert!(!drain(&mut h, "n2", true).unwrap().draining, "cancelling no drain is answered");
    assert_eq!(h.store, stored, "repeats write nothing");
    // One follower per shard needs two nodes that take replicas.
    let refused = drain(&mut h, "n2", false);
    assert!(
        matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("needs 2")),
        "{refused:?}"
    );
    assert_eq!(h.store, stored, "a refused drain writes nothing");
    round(&mut h, &mut nodes, 500);

    let spec = ClusterSpec {
        name: "s".into(),
        shard_count: 1,
        followers_per_shard: 0,
        topology: Topology::Static,
        min_nodes: 1,
    };
    h.call(Request::CreateCluster(spec)).unwrap();
    let refused =
        h.call(Request::DrainNode { cluster: "s".into(), node: "n1".into(), cancel: false });
    assert!(
        matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("static")),
        "{refused:?}"
    );
}

#[test]
fn the_drain_mark_survives_a_new_endpoint_and_a_meta_failover() {
    let (mut h, mut nodes) = steady_cluster_of(3, 6, 1);
    drain(&mut h, "n1", false).unwrap();
    restart_elsewhere(&mut h, &mut nodes, 0, "n1:2");
    let info = node_info(&mut h, "n1");
    assert!(info.draining && info.endpoint == "n1:2", "{info:?}");

    // A new meta leader loads what is stored and carries on draining.
    let snapshot = h.stored();
    h.core = MetaCore::new(CoreConfig::default(), 8);
    h.gain(Term(2), snapshot);
    h.settle();
    assert!(node_info(&mut h, "n1").draining);
    rounds_until(&mut h, &mut nodes, 6, |h| node_info(h, "n1").replicas == 0);
}

#[test]
fn a_node_moving_while_another_registers_keeps_node_ids_dense() {
    let (mut h, mut nodes) = steady_cluster(2);
    nodes[0].restart();
    nodes[0].endpoint = "n1:2".into();
    h.advance(LEASE + 1);
    nodes[0].heartbeat(&mut h).unwrap();
    // The endpoint change is being written when n3 registers: n3 must still get id 2.
    Node::new(3).heartbeat(&mut h).unwrap();
    h.settle();
    let names: Vec<String> =
        match h.call(Request::ListNodes { cluster: "c".into(), page: PageRequest::default() }) {
            Ok(Response::Nodes(ns)) => {
                ns.items.into_iter().map(|n| format!("{}@{}", n.name, n.endpoint)).collect()
            }
            other => panic!("{other:?}"),
        };
    assert_eq!(names, ["n1@n1:2", "n2@n2:1", "n3@n3:1"]);
}

/// A node that gives up its leases and says it is leaving (a data node asked to stop) has its
/// shards led elsewhere within a round or two, not after its leases run out; the incarnation is
/// heard no more, and a restart rejoins.
#[test]
fn a_leaving_node_hands_its_shards_over_without_waiting_for_its_leases() {
    let (mut h, mut nodes) = steady_cluster_of(3, 6, 1);
    let busiest = (0..3).max_by_key(|&i| node_info(&mut h, &nodes[i].name).shards).unwrap();
    let mut leaver = nodes.remove(busiest);
    let led = node_info(&mut h, &leaver.name).shards;
    assert!(led > 0);
    leaver.host.release_leases();
    let reports = leaver.host.heartbeat(h.now, &leaver.load);
    let identity = NodeIdentity {
        cluster: "c".into(),
        name: leaver.name.clone(),
        endpoint: leaver.endpoint.clone(),
        zone: String::new(),
        labels: Vec::new(),
        incarnation: leaver.incarnation,
        capacity: 1.0,
    };
    h.heartbeat(leaver.session, &Heartbeat { leaving: true, ..identity.heartbeat(reports) })
        .unwrap();
    let answer = h.settle();
    let to_leaver = answer
        .iter()
        .find(|o| matches!(o, Output::ToNode { session, .. } if *session == leaver.session));
    assert!(
        matches!(to_leaver, Some(Output::ToNode { message, .. }) if message.lease.is_none() && message.commands.is_empty()),
        "{to_leaver:?}"
    );
    assert_eq!(node_info(&mut h, &leaver.name).state, NodeState::Offline);

    let lease_rounds = (CoreConfig::default().lease_ms / 500) as usize;
    let name = leaver.name.clone();
    let rounds = rounds_until(&mut h, &mut nodes, 6, |h| {
        node_info(h, &name).shards == 0
            && shard_statuses(h).iter().all(|s| s.status == ShardStatus::Ready)
    });
    println!(
        "{led} shards led elsewhere {rounds} rounds of 500 ms after the node said it was leaving"
    );
    assert!(rounds <= 4 && rounds < lease_rounds, "{rounds} rounds: the handover waited");

    // The incarnation that left is not heard again; a restart is, and is online once admitted.
    leaver.heartbeat(&mut h).unwrap();
    assert!(
        h.settle()
            .iter()
            .all(|o| !matches!(o, Output::ToNode { session, .. } if *session == leaver.session)),
        "a left incarnation gets no answer"
    );
    leaver.restart();
    for beat in 0..CoreConfig::default().node_settle_heartbeats {
        assert_eq!(
            node_info(&mut h, &name).state,
            NodeState::Offline,
            "online after {beat} heartbeats"
        );
        leaver.heartbeat(&mut h).unwrap();
        h.settle();
        h.advance(500);
    }
    assert_eq!(node_info(&mut h, &name).state, NodeState::Online);
}
