//! What-ifs through the real core: a drain, the loss of a zone, a removal, a planned restart
//! and a rule change rehearsed on a copy, each reported with what would block it, the moves it
//! takes and what it leaves, and nothing written; a drain's prediction is then held to what
//! the real drain does.

use crate::harness::*;
use shardmeta::core::model::{Constraint, ConstraintKind, PlacementRecord};
use shardmeta::core::*;

fn what_if(h: &mut Harness, change: WhatIf) -> Result<WhatIfReport, MetaError> {
    match h.call(Request::WhatIf { cluster: "c".into(), change })? {
        Response::WhatIf(r) => Ok(r),
        other => panic!("{other:?}"),
    }
}

fn node<'a>(r: &'a WhatIfReport, name: &str) -> &'a NodeAfter {
    r.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("{name} in {r:?}"))
}

#[test]
fn a_drain_rehearsed_predicts_the_moves_the_real_drain_makes() {
    let (mut h, mut nodes) = steady_cluster_of(4, 16, 1);
    let before = node_info(&mut h, "n2");
    let stored = h.store.clone();
    let r = what_if(&mut h, WhatIf::Drain("n2".into())).unwrap();
    assert!(h.store == stored, "a what-if writes nothing");
    assert_eq!(r.change, "drain n2");
    assert_eq!(r.refused, None);
    assert!(r.settled, "{r:?}");
    assert_eq!((r.under_replicated, r.leaderless, r.rule_violating), (0, 0, 0), "{r:?}");
    assert_eq!(r.leader_moves, before.shards, "each of its leaders moves once: {r:?}");
    assert_eq!(r.replicas_copied, before.replicas, "each of its replicas is copied once: {r:?}");
    let n2 = node(&r, "n2");
    assert_eq!(
        (n2.leaders, n2.replicas, n2.live),
        ((before.shards, 0), (before.replicas, 0), false)
    );
    assert!(r.took_ms > 0 && !r.moves.is_empty(), "{r:?}");

    // The real drain: the same number of leaders leave, the same number of replicas move.
    let (replicas_before, leaders_before) = (replica_sets(&mut h), leaders(&mut h));
    h.call(Request::DrainNode { cluster: "c".into(), node: "n2".into(), cancel: false }).unwrap();
    for _ in 0..200 {
        round(&mut h, &mut nodes, 1_000);
        if node_info(&mut h, "n2").replicas == 0 {
            break;
        }
    }
    assert_eq!(node_info(&mut h, "n2").replicas, 0);
    let copied = replica_sets(&mut h)
        .iter()
        .zip(&replicas_before)
        .map(|(after, before)| after.iter().filter(|n| !before.contains(n)).count() as u32)
        .sum::<u32>();
    let moved = leaders(&mut h).iter().zip(&leaders_before).filter(|(a, b)| a != b).count();
    assert_eq!(copied, r.replicas_copied);
    assert!(moved as u32 >= before.shards, "{moved} leaders moved");
}

#[test]
fn losing_a_zone_is_rehearsed_as_failovers_and_repair() {
    let (mut h, _nodes) =
        steady_cluster_configured(CoreConfig::default(), 6, 12, 1, &["a", "b", "c"]);
    let r = what_if(&mut h, WhatIf::LoseZone("a".into())).unwrap();
    assert_eq!(r.change, "lose zone a (2 nodes)");
    assert_eq!((r.leaderless, r.under_replicated), (0, 0), "{r:?}");
    let lost: u32 = ["n1", "n4"].iter().map(|n| node(&r, n).leaders.0).sum();
    assert_eq!(r.leader_moves, lost, "each leader in zone a fails over once: {r:?}");
    assert!(["n1", "n4"].iter().all(|n| !node(&r, n).live && node(&r, n).leaders.1 == 0));
    let missing = what_if(&mut h, WhatIf::LoseZone("z".into()));
    assert!(matches!(missing, Err(MetaError::NotFound(m)) if m.contains("zone \"z\"")));
}

#[test]
fn a_removal_or_restart_that_would_be_refused_says_why_and_is_rehearsed_anyway() {
    let (mut h, _nodes) = steady_cluster_of(3, 6, 1);
    let r = what_if(&mut h, WhatIf::Remove("n1".into())).unwrap();
    let refused = r.refused.clone().unwrap_or_default();
    assert!(refused.contains("node \"n1\" is online"), "{r:?}");
    assert_eq!((r.leaderless, r.under_replicated), (0, 0), "the other two hold every shard: {r:?}");
    let r = what_if(&mut h, WhatIf::RestartBegin("n1".into())).unwrap();
    assert_eq!(r.refused, None);
    assert_eq!(node(&r, "n1").leaders.1, 0, "its leaders leave: {r:?}");
    assert_eq!(r.replicas_copied, 0, "its followers stay: {r:?}");
    let unknown = what_if(&mut h, WhatIf::Drain("nope".into()));
    assert!(matches!(unknown, Err(MetaError::NotFound(_))), "{unknown:?}");
}

#[test]
fn a_rule_change_is_rehearsed_with_what_it_cannot_meet() {
    let (mut h, _nodes) = steady_cluster_configured(CoreConfig::default(), 4, 8, 1, &["a", "b"]);
    let rule = |zones: &[&str]| PlacementRecord {
        replicas: vec![Constraint::new(ConstraintKind::Require, "zone", zones)],
        ..Default::default()
    };
    // Zone a has two nodes: every shard fits there, one replica on each.
    let r = what_if(&mut h, WhatIf::Placement(rule(&["a"]))).unwrap();
    assert_eq!(r.rule_violating, 0, "{r:?}");
    assert!(r.replicas_copied > 0);
    assert!(["n2", "n4"].iter().all(|n| node(&r, n).replicas.1 == 0), "{r:?}");
    // Zone c has none: nothing moves, and every shard is reported.
    let r = what_if(&mut h, WhatIf::Placement(rule(&["c"]))).unwrap();
    assert_eq!((r.rule_violating, r.replicas_copied, r.under_replicated), (8, 0, 0), "{r:?}");
    let placement = h.call(Request::GetPlacement { cluster: "c".into() }).unwrap();
    assert!(
        matches!(placement, Response::Placement(p) if p.rule.version == 0),
        "the rule itself is not set"
    );
}

/// Each shard's replicas, as node names.
fn replica_sets(h: &mut Harness) -> Vec<Vec<String>> {
    let statuses = shard_statuses(h).into_iter();
    statuses.map(|s| s.followers.into_iter().chain(s.leader).collect()).collect()
}

fn leaders(h: &mut Harness) -> Vec<Option<String>> {
    shard_statuses(h).into_iter().map(|s| s.leader).collect()
}
