//! Planned restarts through the real core: the node's leaders leave by transfer while its
//! followers stay, nothing of it is repaired while it is down within the window, the same
//! leaders return when a new process is back, and the restart ends by itself; a window that
//! passes with the node down hands its followers to repair; bad requests are refused and
//! repeats write nothing.

use std::collections::BTreeSet;

use crate::harness::*;
use shardmeta::core::*;

fn restart(h: &mut Harness, node: &str, end: bool, window_ms: u64) -> Result<NodeInfo, MetaError> {
    let req = Request::RestartNode { cluster: "c".into(), node: node.into(), end, window_ms };
    match h.call(req)? {
        Response::Node(info) => Ok(info),
        other => panic!("{other:?}"),
    }
}

fn events(h: &mut Harness) -> Vec<String> {
    match h.call(Request::ListEvents { cluster: "c".into(), after: 0, limit: 0 }) {
        Ok(Response::Events { events, .. }) => events.into_iter().map(|e| e.text).collect(),
        other => panic!("{other:?}"),
    }
}

/// Each shard's replicas, as a set of node names: what a follower move changes.
fn replica_sets(h: &mut Harness) -> Vec<BTreeSet<String>> {
    shard_statuses(h)
        .into_iter()
        .map(|s| s.followers.into_iter().chain(s.leader).collect())
        .collect()
}

fn led_by(h: &mut Harness, node: &str) -> BTreeSet<ShardId> {
    let shards = shard_statuses(h).into_iter();
    shards.filter(|s| s.leader.as_deref() == Some(node)).map(|s| s.id).collect()
}

/// Rounds of `ms` among `nodes` (node `silent` quiet) until `done`; how many it took.
fn rounds_until(
    h: &mut Harness,
    nodes: &mut [Node],
    silent: Option<usize>,
    ms: u64,
    mut done: impl FnMut(&mut Harness) -> bool,
) -> usize {
    for n in 1..=120 {
        round_without(h, nodes, silent, ms);
        if done(h) {
            return n;
        }
    }
    panic!("not done after 120 rounds: {:?}", shard_statuses(h));
}

#[test]
fn a_planned_restart_keeps_followers_in_place_and_brings_the_same_leaders_back() {
    let (mut h, mut nodes) = steady_cluster_of(4, 16, 1);
    let replicas = replica_sets(&mut h);
    let led = led_by(&mut h, "n1");
    assert!(led.len() >= 3, "{led:?}");
    let info = restart(&mut h, "n1", false, 60_000).unwrap();
    let r = info.restart.expect("under way");
    assert_eq!((r.phase, r.window_ms, r.leaders), ("leaving", 60_000, led.len() as u32));

    // Its leaders leave by transfer; it keeps every replica, as a follower.
    rounds_until(&mut h, &mut nodes, None, 500, |h| node_info(h, "n1").shards == 0);
    assert_eq!(replica_sets(&mut h), replicas, "leaders left, no replica moved");
    // Begun again with another window: the leaders to give back stay those it led.
    let again = restart(&mut h, "n1", false, 90_000).unwrap().restart.expect("under way");
    assert_eq!((again.window_ms, again.leaders), (90_000, led.len() as u32));
    round(&mut h, &mut nodes, 500);

    // Down for 30 s, three leases: nothing is repaired, no leader is needed.
    for _ in 0..60 {
        round_without(&mut h, &mut nodes, Some(0), 500);
    }
    let down = node_info(&mut h, "n1");
    assert_eq!((down.state, down.restart.map(|r| r.phase)), (NodeState::Offline, Some("down")));
    assert_eq!(replica_sets(&mut h), replicas, "no follower replaced while it was down");

    // A new process: once admitted, the same shards return to it within a few passes.
    nodes[0].restart();
    let back = rounds_until(&mut h, &mut nodes, None, 500, |h| node_info(h, "n1").admitted);
    let returned = rounds_until(&mut h, &mut nodes, None, 500, |h| led_by(h, "n1") == led);
    assert!(returned <= 4, "{} leaders back {returned} rounds after admission", led.len());
    rounds_until(&mut h, &mut nodes, None, 500, |h| node_info(h, "n1").restart.is_none());
    assert_eq!(replica_sets(&mut h), replicas, "not one follower moved, start to end");
    let said = events(&mut h);
    let back_event =
        format!("n1 is back from its restart and leads {0} of its {0} shards again", led.len());
    assert!(said.iter().any(|e| e == &back_event), "{said:?}");
    assert!(said.iter().any(|e| e.starts_with("an operator began a restart of n1")), "{said:?}");
    assert!(back > 0);
}

#[test]
fn a_restart_window_that_passes_with_the_node_down_hands_its_followers_to_repair() {
    let (mut h, mut nodes) = steady_cluster_of(4, 8, 1);
    restart(&mut h, "n1", false, 15_000).unwrap();
    rounds_until(&mut h, &mut nodes, None, 500, |h| node_info(h, "n1").shards == 0);
    let held = node_info(&mut h, "n1").replicas;
    assert!(held > 0);
    // 14 s down: still held. Past the window (counted from its last heartbeat): repaired.
    for _ in 0..28 {
        round_without(&mut h, &mut nodes, Some(0), 500);
    }
    assert_eq!(node_info(&mut h, "n1").replicas, held, "within the window");
    rounds_until(&mut h, &mut nodes, Some(0), 500, |h| node_info(h, "n1").replicas == 0);
    let info = node_info(&mut h, "n1");
    assert!(info.restart.is_none(), "{info:?}");
    let said = events(&mut h);
    let passed = "n1 stayed down past its restart window of 15 s: its followers are replaced";
    assert!(said.iter().any(|e| e == passed), "{said:?}");
}

/// A restart begun and never carried out (forgotten, or begun after the process had already
/// restarted) ends once the same process has run for a whole window: the node takes shards
/// again instead of waiting for ever.
#[test]
fn a_restart_not_carried_out_within_its_window_ends_by_itself() {
    let (mut h, mut nodes) = steady_cluster_of(4, 8, 1);
    restart(&mut h, "n1", false, 20_000).unwrap();
    rounds_until(&mut h, &mut nodes, None, 500, |h| node_info(h, "n1").shards == 0);
    for _ in 0..30 {
        round(&mut h, &mut nodes, 500);
    }
    assert!(node_info(&mut h, "n1").restart.is_some(), "15 s in: still waiting");
    rounds_until(&mut h, &mut nodes, None, 500, |h| node_info(h, "n1").restart.is_none());
    let said = events(&mut h);
    let ended = "n1 did not restart within its restart window of 20 s: it takes shards again";
    assert!(said.iter().any(|e| e == ended), "{said:?}");
    rounds_until(&mut h, &mut nodes, None, 1_000, |h| node_info(h, "n1").shards > 0);
}

#[test]
fn restart_requests_are_checked_and_repeats_write_nothing() {
    let (mut h, mut nodes) = steady_cluster_of(4, 4, 1);
    let refused = restart(&mut h, "nope", false, 0);
    assert!(matches!(&refused, Err(MetaError::NotFound(m)) if m.contains("node")), "{refused:?}");
    let refused = restart(&mut h, "n1", false, 3_600_001);
    assert!(
        matches!(&refused, Err(MetaError::InvalidArgument(m)) if m == "a restart window of 3600001 ms is over the maximum of 3600000 ms"),
        "{refused:?}"
    );
    let stored = h.store.clone();
    assert!(restart(&mut h, "n2", true, 0).unwrap().restart.is_none(), "ending none is answered");
    assert_eq!(h.store, stored, "and writes nothing");

    let begun = restart(&mut h, "n1", false, 0).unwrap().restart.expect("begun");
    assert_eq!(begun.window_ms, 600_000, "the default window");
    round(&mut h, &mut nodes, 500);
    let stored = h.store.clone();
    assert_eq!(restart(&mut h, "n1", false, 0).unwrap().restart.map(|r| r.phase), Some("leaving"));
    assert_eq!(h.store, stored, "a repeat writes nothing");
    assert!(restart(&mut h, "n1", true, 0).unwrap().restart.is_none());
    round(&mut h, &mut nodes, 500);
    assert!(node_info(&mut h, "n1").restart.is_none(), "ended");

    // A node that is not running has no process to restart; a draining one is not coming back.
    for _ in 0..12 {
        round_without(&mut h, &mut nodes, Some(2), 1_000);
    }
    let refused = restart(&mut h, "n3", false, 0);
    assert!(
        matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("is not running")),
        "{refused:?}"
    );
    let drain = Request::DrainNode { cluster: "c".into(), node: "n2".into(), cancel: false };
    h.call(drain).unwrap();
    let refused = restart(&mut h, "n2", false, 0);
    assert!(
        matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("is draining")),
        "{refused:?}"
    );
}
