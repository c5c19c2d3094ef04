//! Forgetting nodes: RemoveNode takes an offline node that holds no replicas out of the
//! catalog for good, its name free for a new node, and the registration cap counts only the
//! nodes that are left.

use crate::harness::*;
use shardmeta::core::*;

fn remove(h: &mut Harness, node: &str) -> Result<Response, MetaError> {
    h.call(Request::RemoveNode { cluster: "c".into(), node: node.into() })
}

fn listed(h: &mut Harness) -> Vec<String> {
    match h.call(Request::ListNodes { cluster: "c".into(), page: PageRequest::default() }) {
        Ok(Response::Nodes(ns)) => {
            ns.items.into_iter().map(|n| format!("{}@{}", n.name, n.endpoint)).collect()
        }
        other => panic!("{other:?}"),
    }
}

/// Three nodes with a node cap of three; n3 then dies.
fn cluster_with_a_dead_node() -> (Harness, Vec<Node>) {
    let config = CoreConfig { nodes_per_cluster_max: 3, ..CoreConfig::default() };
    let (mut h, mut nodes) = steady_cluster_configured(config, 3, 6, 0, &[]);
    nodes.truncate(2);
    round(&mut h, &mut nodes, 500);
    (h, nodes)
}

#[test]
fn only_an_offline_node_with_no_replicas_is_removed_and_refusals_write_nothing() {
    let (mut h, mut nodes) = cluster_with_a_dead_node();
    let stored = h.store.clone();
    assert!(
        matches!(remove(&mut h, "ghost"), Err(MetaError::NotFound(m)) if m.contains("\"ghost\""))
    );
    assert!(
        matches!(remove(&mut h, "n1"), Err(MetaError::FailedPrecondition(m)) if m.contains("is online"))
    );
    assert!(
        matches!(remove(&mut h, "n3"), Err(MetaError::FailedPrecondition(m)) if m.contains("is online")),
        "silent for less than a lease"
    );
    for _ in 0..24 {
        round(&mut h, &mut nodes, 500);
        if node_info(&mut h, "n3").state == NodeState::Offline {
            break;
        }
    }
    let held = node_info(&mut h, "n3").replicas;
    if held > 0 {
        let refused = remove(&mut h, "n3");
        assert!(
            matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("still holds")),
            "{refused:?}"
        );
    }
    assert_eq!(h.store, stored, "refusals write nothing");
    rounds_while(&mut h, &mut nodes, |h| node_info(h, "n3").replicas > 0);

    assert_eq!(remove(&mut h, "n3"), Ok(Response::NodeRemoved { name: "n3".into() }));
    assert_eq!(listed(&mut h), ["n1@n1:1", "n2@n2:1"]);
    assert!(matches!(remove(&mut h, "n3"), Err(MetaError::NotFound(_))), "removed once");
}

#[test]
fn a_removed_name_registers_anew_under_the_cap_and_survives_a_meta_failover() {
    let (mut h, mut nodes) = cluster_with_a_dead_node();
    let mut n4 = Node::new(4);
    let full = n4.heartbeat(&mut h);
    assert!(
        matches!(&full, Err(MetaError::ResourceExhausted(m)) if m.contains("remove offline ones")),
        "{full:?}"
    );
    rounds_while(&mut h, &mut nodes, |h| {
        node_info(h, "n3").replicas > 0 || node_info(h, "n3").state == NodeState::Online
    });
    remove(&mut h, "n3").unwrap();

    // The cap counts live records only: n4 now registers, under a new id.
    nodes.push(n4);
    for _ in 0..6 {
        round(&mut h, &mut nodes, 500);
    }
    assert_eq!(listed(&mut h), ["n1@n1:1", "n2@n2:1", "n4@n4:1"]);
    let c = h.core.catalog().unwrap().cluster_by_name("c").unwrap();
    assert_eq!(
        (c.nodes.len(), c.node_by_name.get("n4").map(|id| id.0)),
        (4, Some(3)),
        "n4 has a new id; n3's stays a tombstone"
    );
    // The name n3 is free, but the cluster is full again.
    let full = Node::new(3).heartbeat(&mut h);
    assert!(matches!(&full, Err(MetaError::ResourceExhausted(_))), "{full:?}");

    // A new meta leader loads the tombstone and lists the same nodes.
    let snapshot = h.stored();
    h.core = MetaCore::new(CoreConfig { nodes_per_cluster_max: 3, ..CoreConfig::default() }, 8);
    h.gain(Term(2), snapshot);
    h.settle();
    assert_eq!(listed(&mut h), ["n1@n1:1", "n2@n2:1", "n4@n4:1"]);
}

/// Rounds until `busy` is false (at most 60 of 500 ms).
fn rounds_while(h: &mut Harness, nodes: &mut [Node], mut busy: impl FnMut(&mut Harness) -> bool) {
    for _ in 0..60 {
        if !busy(h) {
            return;
        }
        round(h, nodes, 500);
    }
    panic!("still busy after 60 rounds: {:?}", shard_statuses(h));
}
