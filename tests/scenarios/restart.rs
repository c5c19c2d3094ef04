//! A planned restart against a drain of the same node for the same maintenance: the node goes
//! down for a minute once it leads nothing, and comes back. The restart copies no replica and
//! hands the node the same leaders back within two passes of its admission; the drain copies
//! every replica elsewhere, and the balancer brings back what load it judges worth moving.
//! Either way a shard is unled only for a leader handover (no lease is waited out); what the
//! drain costs more of is time with the node's capacity unused, over the two minutes after it
//! is back.

use std::collections::BTreeSet;

use shardmeta::core::*;

use super::world::World;
use super::{replay, seed};

/// What one maintenance cost.
#[derive(Debug)]
struct Cost {
    /// Leader moves that landed (transfers, promotions, reopens), start to end.
    leader_moves: usize,
    /// Replicas placed on a node that did not hold one of the shard: data copied.
    replicas_copied: usize,
    /// Shard-seconds with no node leading the shard by its own lease.
    unled_shard_seconds: u64,
    /// Seconds from the node's admission back to its leaders being where they were (restart),
    /// or to balance (drain).
    back_after: Option<u64>,
    /// From the node's admission on, each second, how many fewer shards it led than before:
    /// the capacity the cluster ran without (a rolling restart's throughput drop).
    away_leader_seconds: u64,
}

fn led(w: &World, node: u32) -> BTreeSet<u32> {
    w.catalog().shards.iter().filter(|s| s.leader == Some(node)).map(|s| s.id).collect()
}

fn node(w: &mut World, name: &str) -> NodeInfo {
    let req = Request::ListNodes { cluster: "c".into(), page: PageRequest::default() };
    match w.h.call(req) {
        Ok(Response::Nodes(page)) => page.items.into_iter().find(|n| n.name == name).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// Runs `seconds` (or until `done`), counting copies and unled shard-seconds as it goes.
fn watch(
    w: &mut World,
    cost: &mut Cost,
    limit: u64,
    mut done: impl FnMut(&mut World) -> bool,
) -> Option<u64> {
    let sets = |w: &World| -> Vec<BTreeSet<u32>> {
        w.catalog().shards.iter().map(|s| s.replicas().collect()).collect()
    };
    for second in 1..=limit {
        let before = sets(w);
        w.step();
        let after = sets(w);
        cost.replicas_copied +=
            before.iter().zip(&after).map(|(b, a)| a.difference(b).count()).sum::<usize>();
        let now = w.h.now;
        let leading: BTreeSet<ShardId> = w
            .nodes
            .iter()
            .zip(&w.up)
            .filter(|(_, up)| **up)
            .flat_map(|(n, _)| n.host.shards().keys().filter(|&&s| n.host.is_leading(s, now)))
            .copied()
            .collect();
        cost.unled_shard_seconds += (after.len() - leading.len()) as u64;
        if done(w) {
            return Some(second);
        }
    }
    None
}

/// n1 of six nodes (60 shards, one follower each) is maintained: `restart` (a planned
/// restart) or a drain; it goes down for 60 s once it leads nothing, and comes back.
fn maintain(restart: bool) -> Cost {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 60, 1, 100.0);
    let r = replay(&w, "a_planned_restart_moves_less_than_a_drain");
    let n1 = w.id_of(0).unwrap();
    let before = led(&w, n1);
    let mut cost = Cost {
        leader_moves: 0,
        replicas_copied: 0,
        unled_shard_seconds: 0,
        back_after: None,
        away_leader_seconds: 0,
    };
    let req = if restart {
        Request::RestartNode { cluster: "c".into(), node: "n1".into(), end: false, window_ms: 0 }
    } else {
        Request::DrainNode { cluster: "c".into(), node: "n1".into(), cancel: false }
    };
    w.h.call(req).unwrap();
    let emptied = watch(&mut w, &mut cost, 300, |w| match restart {
        true => led(w, n1).is_empty(),
        false => node(w, "n1").replicas == 0,
    });
    assert!(emptied.is_some(), "n1 never emptied; {r}");
    w.up[0] = false;
    watch(&mut w, &mut cost, 60, |_| false);
    w.nodes[0].restart();
    w.up[0] = true;
    if !restart {
        let cancel = Request::DrainNode { cluster: "c".into(), node: "n1".into(), cancel: true };
        w.h.call(cancel).unwrap();
    }
    let admitted = watch(&mut w, &mut cost, 60, |w| node(w, "n1").admitted);
    assert!(admitted.is_some(), "n1 never admitted again; {r}");
    let mut away = 0;
    cost.back_after = watch(&mut w, &mut cost, 600, |w| {
        away += before.len().saturating_sub(led(w, n1).len()) as u64;
        match restart {
            true => led(w, n1) == before && node(w, "n1").restart.is_none(),
            false => w.max_over_mean() <= 1.10,
        }
    });
    watch(&mut w, &mut cost, 120, |w| {
        away += before.len().saturating_sub(led(w, n1).len()) as u64;
        false
    });
    cost.away_leader_seconds = away;
    cost.leader_moves = w.moves.len();
    let what = if restart { "planned restart" } else { "drain" };
    w.report(&format!("{what} of 1 of 6 nodes, down 60 s"), cost.back_after, None);
    cost
}

#[test]
fn a_planned_restart_moves_less_than_a_drain() {
    let restart = maintain(true);
    let drain = maintain(false);
    println!("planned restart: {restart:?}\ndrain: {drain:?}");
    assert_eq!(restart.replicas_copied, 0, "a restart copies no replica: {restart:?}");
    assert!(
        restart.back_after.is_some_and(|s| s <= 1),
        "leaders back within a second (two passes) of admission: {restart:?}"
    );
    let moves = |c: &Cost| c.leader_moves + c.replicas_copied;
    assert!(moves(&restart) * 2 <= moves(&drain), "{restart:?} against {drain:?}");
    assert!(restart.away_leader_seconds * 10 <= drain.away_leader_seconds, "{restart:?} {drain:?}");
    // No shard waits out a lease: each leader handover leaves it unled for two heartbeats at
    // most (this world heartbeats once a second and takes no early heartbeat).
    assert!(restart.unled_shard_seconds <= 2 * restart.leader_moves as u64, "{restart:?}");
}
