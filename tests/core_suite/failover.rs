//! Failover through the real core: a dead node's shards move only once every lease on them has
//! surely ended, a promoted follower gets a role change (not the table set), a moved shard is
//! opening until its new leader reports it, and a follower in sync is promoted over one that
//! lags.

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

/// Each node's followers lag by the entries given for their shard (none: in sync).
struct Lags(std::collections::BTreeMap<ShardId, u64>);

impl shardmeta::client::LoadSource for Lags {
    fn shard_load(&self, _: ShardId, _: &std::collections::BTreeSet<TableId>) -> ShardLoad {
        ShardLoad::default()
    }
    fn follower_lag(&self, shard: ShardId) -> Option<u64> {
        self.0.get(&shard).copied()
    }
}

/// One shard, led on one of three nodes and followed on the other two, which say they lag by
/// `lags` (in node order, the leader's ignored); the leader dies. The leader, who is promoted,
/// and the event that says why.
fn promoted_among(lags: [Option<u64>; 3]) -> (usize, usize, String) {
    let (mut h, mut nodes) = steady_cluster_of(3, 1, 2);
    let shard = ShardId(0);
    let leader = (0..3).find(|&i| nodes[i].host.is_leading(shard, h.now)).expect("a leader");
    let lag_of = |i: usize| Lags(lags[i].map(|l| (shard, l)).into_iter().collect());
    for step in 0..40 {
        for i in (0..3).filter(|&i| step == 0 || i != leader) {
            nodes[i].heartbeat_with(&mut h, lag_of(i)).unwrap();
            let outs = h.settle();
            nodes.iter_mut().for_each(|n| n.receive(&outs));
        }
        if step == 0 {
            // The shard listing shows what the followers said, in follower order.
            let listed = shard_statuses(&mut h).remove(0);
            let said: Vec<(String, u64)> = listed
                .followers
                .iter()
                .filter_map(|f| Some((f.clone(), lags[f[1..].parse::<usize>().ok()? - 1]?)))
                .collect();
            assert_eq!(listed.lagging, said, "{listed:?}");
        }
        h.advance(500);
    }
    let now = h.now;
    let new = (0..3).find(|&i| i != leader && nodes[i].host.is_leading(shard, now));
    let events = match h.call(Request::ListEvents { cluster: "c".into(), after: 0, limit: 100 }) {
        Ok(Response::Events { events, .. }) => events,
        other => panic!("{other:?}"),
    };
    let failover = events.into_iter().rev().find(|e| e.cause == cause::Cause::Failover);
    (leader, new.expect("a follower took over"), failover.expect("a failover event").text)
}

/// Failover promotes a follower in sync over one that lags, whichever node leads; with only
/// laggards alive, the one least behind, and the event says how far behind it was.
#[test]
fn failover_promotes_a_follower_in_sync_else_the_least_behind() {
    for slow in 0..3 {
        let mut lags = [None; 3];
        lags[slow] = Some(500);
        let (leader, new, why) = promoted_among(lags);
        if leader != slow {
            assert_ne!(new, slow, "n{} lags, the other is in sync: {why}", slow + 1);
        }
        assert!(!why.contains("behind"), "{why}");
    }
    let lags = [500, 20, 900];
    let (leader, new, why) = promoted_among(lags.map(Some));
    let least = (0..3).filter(|&i| i != leader).min_by_key(|&i| lags[i]).unwrap();
    assert_eq!(new, least, "{why}");
    let expected =
        format!("n{} is {} entries behind, and no follower in sync lives", new + 1, lags[new]);
    assert!(why.ends_with(&expected), "{why}");
}
