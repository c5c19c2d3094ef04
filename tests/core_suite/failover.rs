//! Failover through the real core: a dead node's shards move only once every lease on them has
//! surely ended, a promoted follower gets a role change (not the table set), and a moved shard
//! is opening until its new leader reports it.

use crate::harness::*;
use shardmeta::core::*;

#[test]
fn dead_nodes_shards_move_only_after_its_lease_surely_ended() {
    let (mut h, mut nodes) = steady_cluster(4);
    let dead_shards: Vec<ShardId> = nodes[1].host.shards().keys().copied().collect();
    assert!(!dead_shards.is_empty());
    // Node 1's last heartbeat is answered now; then it goes silent while node 0 keeps going.
    for i in 0..2 {
        nodes[i].heartbeat(&mut h).unwrap();
        let outs = h.settle();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
    }
    let last_heard = h.now;
    let mut moved_at = None;
    for step in 0..30 {
        h.advance(500);
        nodes[0].heartbeat(&mut h).unwrap();
        let outs = h.settle();
        nodes[0].receive(&outs);
        if moved_at.is_none()
            && dead_shards.iter().any(|&s| nodes[0].host.shards().contains_key(&s))
        {
            moved_at = Some(h.now);
        }
        for &s in &dead_shards {
            assert!(
                !(nodes[0].host.is_leading(s, h.now) && nodes[1].host.is_leading(s, h.now)),
                "S1 at step {step}"
            );
        }
    }
    let moved = moved_at.expect("the dead node's shards fail over");
    let drift = CoreConfig::default().clock_drift_ms;
    let waited = moved.saturating_since(last_heard).as_millis();
    assert!(waited > LEASE + drift, "moved {waited} ms after the last lease grant");
    assert!(waited <= LEASE + drift + 2_000, "failover took {waited} ms");
    for &s in &dead_shards {
        assert!(nodes[0].host.is_leading(s, h.now), "shard {s} is led again");
    }
}

#[test]
fn promotion_sends_a_role_change_not_the_table_set() {
    let (mut h, mut nodes) = steady_cluster_with(2, 1);
    let led_by_1: Vec<ShardId> = nodes[1]
        .host
        .shards()
        .iter()
        .filter(|(_, s)| s.role == Role::Leader)
        .map(|(&id, _)| id)
        .collect();
    assert!(!led_by_1.is_empty());
    let mut commands = Vec::new();
    for _ in 0..30 {
        h.advance(500);
        nodes[0].heartbeat(&mut h).unwrap();
        let outs = h.settle();
        for o in &outs {
            if let Output::ToNode { message, .. } = o {
                commands.extend(
                    message.commands.iter().filter(|c| led_by_1.contains(&c.shard)).cloned(),
                );
            }
        }
        nodes[0].receive(&outs);
    }
    assert!(
        commands.iter().any(|c| c.kind == CommandKind::ChangeRole { role: Role::Leader }),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|c| matches!(c.kind, CommandKind::Open { .. })),
        "the follower kept its tables: {commands:?}"
    );
    for s in led_by_1 {
        assert!(nodes[0].host.is_leading(s, h.now), "shard {s} promoted on node 0");
    }
}

#[test]
fn a_moved_shard_is_opening_until_its_new_leader_reports() {
    let (mut h, mut nodes) = steady_cluster(4);
    let dead: Vec<ShardId> = nodes[1].host.shards().keys().copied().collect();
    let mut checked = false;
    for _ in 0..40 {
        h.advance(500);
        let outs = h.settle();
        nodes[0].receive(&outs);
        let moved: Vec<ShardInfo> = shard_statuses(&mut h)
            .into_iter()
            .filter(|s| dead.contains(&s.id) && s.leader.as_deref() == Some("n1"))
            .collect();
        if !moved.is_empty() {
            // The old leader's last report must not make the new placement look ready.
            assert!(moved.iter().all(|s| s.status == ShardStatus::Opening), "{moved:?}");
            nodes[0].heartbeat(&mut h).unwrap();
            let outs = h.settle();
            nodes[0].receive(&outs);
            let after: Vec<ShardInfo> = shard_statuses(&mut h)
                .into_iter()
                .filter(|s| moved.iter().any(|m| m.id == s.id))
                .collect();
            assert!(after.iter().all(|s| s.status == ShardStatus::Ready), "{after:?}");
            checked = true;
            break;
        }
        nodes[0].heartbeat(&mut h).unwrap();
        let outs = h.settle();
        nodes[0].receive(&outs);
    }
    assert!(checked, "the dead node's shards moved");
}
