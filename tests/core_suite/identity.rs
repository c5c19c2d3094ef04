//! Node identity and admission: a live incarnation owns its name, a new one takes over only
//! once that lease has ended, and a node gets replicas only after it has settled, so a one-shot
//! sender gets none.

use crate::harness::*;
use shardmeta::core::*;

fn refusal(r: Result<(), MetaError>) -> String {
    match r {
        Err(MetaError::FailedPrecondition(m)) => m,
        other => panic!("expected FAILED_PRECONDITION, got {other:?}"),
    }
}

#[test]
fn a_live_nodes_name_cannot_be_taken_by_another_incarnation_or_endpoint() {
    let (mut h, mut nodes) = steady_cluster(4);
    let led_before = node_info(&mut h, "n1").shards;
    assert!(led_before > 0);
    let stored = h.store.clone();

    let mut rogue = Node::new(1);
    rogue.incarnation = 99;
    rogue.endpoint = "evil:1".into();
    rogue.session = SessionId(500);
    let m = refusal(rogue.heartbeat(&mut h));
    assert!(
        m.contains("\"n1\" is live as incarnation 1 at \"n1:1\"")
            && m.contains("incarnation 99 at \"evil:1\""),
        "{m}"
    );
    // The same incarnation from another endpoint is no better.
    rogue.incarnation = 1;
    let m = refusal(rogue.heartbeat(&mut h));
    assert!(m.contains("refusing endpoint \"evil:1\""), "{m}");
    // Nor another incarnation at the right endpoint (a copy of the node's settings).
    (rogue.incarnation, rogue.endpoint) = (2, "n1:1".into());
    refusal(rogue.heartbeat(&mut h));
    assert_eq!(h.outputs(), vec![], "a refused heartbeat is answered with nothing but the refusal");

    for _ in 0..4 {
        round(&mut h, &mut nodes, 1_000);
    }
    assert_eq!(h.store, stored, "nothing was written: the endpoint did not move");
    let info = node_info(&mut h, "n1");
    assert_eq!((info.endpoint.as_str(), info.shards), ("n1:1", led_before));
    assert!(
        (0..4).all(|s| nodes.iter().filter(|n| n.host.is_leading(ShardId(s), h.now)).count() == 1),
        "the real node kept leading"
    );
}

#[test]
fn a_restarted_node_takes_its_name_back_once_the_old_lease_ended() {
    let (mut h, mut nodes) = steady_cluster(4);
    // Refused at first, taken over after the lease, and settled: the harness checks each.
    restart_elsewhere(&mut h, &mut nodes, 0, "n1:2");
    let info = node_info(&mut h, "n1");
    assert_eq!((info.endpoint.as_str(), info.state), ("n1:2", NodeState::Online));
    // The new incarnation owns the name now: the old one, back from a pause, is refused.
    let mut old = Node::new(1);
    old.session = SessionId(600);
    let m = refusal(old.heartbeat(&mut h));
    assert!(m.contains("is live as incarnation 2 at \"n1:2\""), "{m}");
}

/// A one-shot sender registers, but it is never given a replica, even when a dead node's
/// followers need a new home and it is the only other candidate. A well-behaved node that
/// joins later takes them once it has settled.
#[test]
fn a_one_shot_sender_gets_no_replicas_and_a_settled_node_does() {
    let (mut h, mut nodes) = steady_cluster_of(3, 6, 2);
    let mut one_shot = Node::new(7);
    one_shot.heartbeat(&mut h).unwrap();
    h.settle();
    assert_eq!(node_info(&mut h, "n7").replicas, 0);

    // n3 dies: every shard needs a new follower, n7 is the only other node, and it is online
    // for a lease.
    let mut survivors: Vec<Node> = nodes.drain(..2).collect();
    for _ in 0..30 {
        round(&mut h, &mut survivors, 500);
        assert_eq!(node_info(&mut h, "n7").replicas, 0, "the one-shot sender got a replica");
    }

    let joiner = Node::new(4);
    survivors.push(joiner);
    round(&mut h, &mut survivors, 500);
    assert_eq!(node_info(&mut h, "n4").replicas, 0, "one heartbeat does not admit a node");
    for _ in 0..10 {
        round(&mut h, &mut survivors, 500);
    }
    assert_eq!(node_info(&mut h, "n4").replicas, 6, "a settled node takes the missing followers");
}

/// A process that comes back under a dead node's name once the node's lease is past, claims
/// the shards the node led, and dies again (a crash loop, or a stray copy of the node) renews
/// none of their leases and does not hold back their failover: a restarted node counts as
/// offline until its new incarnation is admitted.
#[test]
fn a_crash_looping_node_renews_no_lease_and_holds_back_no_failover() {
    let (mut h, mut nodes) = steady_cluster_of(3, 6, 1);
    let led: Vec<ShardId> =
        (0..6).map(ShardId).filter(|&s| nodes[0].host.is_leading(s, h.now)).collect();
    assert!(!led.is_empty());
    let died = h.now;
    // n1 dies. Just past a lease it is silent, and its leases are not yet surely over.
    for _ in 0..9 {
        round_without(&mut h, &mut nodes, Some(0), 1_000);
    }
    h.advance(800);
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));

    // Its name speaks once more, claiming every shard it led, and dies again.
    nodes[0].incarnation += 1;
    nodes[0].session = SessionId(700);
    nodes[0].heartbeat(&mut h).unwrap();
    let revoked = h.settle().into_iter().find_map(|o| match o {
        Output::ToNode { session: SessionId(700), message } => message.lease.map(|l| l.revoked),
        _ => None,
    });
    assert_eq!(revoked, Some(led.clone()), "no lease for a restart that has not settled");
    assert_eq!(node_info(&mut h, "n1").state, NodeState::Offline);

    // The failover comes as promptly as without the stray heartbeat.
    let config = h.core.config().clone();
    let bound =
        died + Duration(config.lease_ms + config.clock_drift_ms + 5 * config.heartbeat_interval_ms);
    while h.now < bound {
        round_without(&mut h, &mut nodes, Some(0), 500);
    }
    for s in led {
        assert!(
            nodes[1..].iter().any(|n| n.host.is_leading(s, h.now)),
            "shard {s} has a live leader by {bound:?}"
        );
    }
}
