//! Placement rules through the real core: replicas and leaders go where the rule says, a rule
//! change moves shards there within the move budgets, a rule that cannot be met is placed as
//! well as it can be and reported without looping, and rule requests are checked.

use crate::harness::*;
use shardmeta::core::model::{Constraint, ConstraintKind::*, Label, PlacementRecord};
use shardmeta::core::*;

/// A cluster of `shards` shards over nodes with these zones and labels, the rule set (if any)
/// before they join, run until every shard has a leader.
fn cluster(
    nodes: &[(&str, &[(&str, &str)])],
    shards: u32,
    followers: u32,
    rule: Option<PlacementRecord>,
) -> (Harness, Vec<Node>) {
    let mut h = Harness::leader_with(CoreConfig::default());
    h.create_cluster_of(shards, followers, nodes.len() as u32);
    if let Some(rule) = rule {
        set(&mut h, rule, None).unwrap();
    }
    let mut all: Vec<Node> = (1..=nodes.len() as u64).map(Node::new).collect();
    for (n, (zone, labels)) in all.iter_mut().zip(nodes) {
        n.zone = zone.to_string();
        n.labels = labels.iter().map(|(k, v)| Label::new(k, v)).collect();
    }
    for _ in 0..5 + h.core.config().node_settle_heartbeats {
        round(&mut h, &mut all, 600);
    }
    (h, all)
}

fn set(
    h: &mut Harness,
    rule: PlacementRecord,
    expected: Option<u64>,
) -> Result<PlacementInfo, MetaError> {
    let req = Request::SetPlacement { cluster: "c".into(), rule, expected_version: expected };
    match h.call(req)? {
        Response::Placement(p) => Ok(p),
        other => panic!("{other:?}"),
    }
}

fn placement(h: &mut Harness) -> PlacementInfo {
    match h.call(Request::GetPlacement { cluster: "c".into() }) {
        Ok(Response::Placement(p)) => p,
        other => panic!("{other:?}"),
    }
}

fn rule(replicas: Vec<Constraint>, leader: Vec<Constraint>) -> PlacementRecord {
    PlacementRecord { replicas, leader, ..Default::default() }
}

/// Node names holding a replica of any shard, and those leading one.
fn holders(h: &mut Harness) -> (Vec<String>, Vec<String>) {
    let (mut replicas, mut leaders) = (Vec::new(), Vec::new());
    for s in shard_statuses(h) {
        leaders.extend(s.leader.clone());
        replicas.extend(s.followers.into_iter().chain(s.leader));
    }
    for v in [&mut replicas, &mut leaders] {
        v.sort();
        v.dedup();
    }
    (replicas, leaders)
}

fn events(h: &mut Harness) -> Vec<String> {
    match h.call(Request::ListEvents { cluster: "c".into(), after: 0, limit: 0 }) {
        Ok(Response::Events { events, .. }) => events.into_iter().map(|e| e.text).collect(),
        other => panic!("{other:?}"),
    }
}

const SSD: &[(&str, &str)] = &[("disk", "ssd")];
const HDD: &[(&str, &str)] = &[("disk", "hdd")];

#[test]
fn replicas_and_leaders_go_only_where_the_rule_says() {
    let nodes = [("a", SSD), ("b", SSD), ("c", SSD), ("a", HDD), ("b", HDD), ("c", HDD)];
    let r = rule(
        vec![Constraint::new(Require, "disk", &["ssd"])],
        vec![Constraint::new(Avoid, "zone", &["c"])],
    );
    let (mut h, _nodes) = cluster(&nodes, 12, 2, Some(r));
    let (replicas, leaders) = holders(&mut h);
    assert_eq!(replicas, ["n1", "n2", "n3"], "ssd nodes only");
    assert_eq!(leaders, ["n1", "n2"], "not zone c");
    for s in shard_statuses(&mut h) {
        assert_eq!(s.followers.len(), 2, "{s:?}");
    }
    assert_eq!(placement(&mut h).unsatisfied, 0);
}

#[test]
fn a_rule_change_moves_shards_within_budgets_and_spread_over_its_label() {
    let rack = |r| [("disk", "ssd"), ("rack", r)];
    let (r1, r2, r3) = (rack("r1"), rack("r2"), rack("r3"));
    let nodes: [(&str, &[(&str, &str)]); 6] =
        [("a", &r1), ("a", &r2), ("a", &r3), ("a", &r1), ("a", &r2), ("a", HDD)];
    let (mut h, mut nodes) = cluster(&nodes, 16, 2, None);
    assert!(holders(&mut h).0.contains(&"n6".to_string()), "no rule: every node holds some");
    let mut r = rule(vec![Constraint::new(Avoid, "disk", &["hdd"])], Vec::new());
    r.spread = "rack".into();
    let info = set(&mut h, r, Some(0)).unwrap();
    assert_eq!(info.rule.version, 1);
    // The moves spend the nodes' budgets: not all in the first pass.
    round(&mut h, &mut nodes, 500);
    assert!(holders(&mut h).0.contains(&"n6".to_string()), "not all at once");
    for _ in 0..400 {
        round(&mut h, &mut nodes, 1_000);
    }
    assert!(!holders(&mut h).0.contains(&"n6".to_string()), "{:?}", shard_statuses(&mut h));
    let racks = |s: &ShardInfo| {
        let mut r: Vec<String> = s
            .followers
            .iter()
            .chain(&s.leader)
            .map(|n| ["r1", "r2", "r3", "r1", "r2"][n[1..].parse::<usize>().unwrap() - 1].into())
            .collect();
        r.sort();
        r.dedup();
        r.len()
    };
    for s in shard_statuses(&mut h) {
        assert_eq!(racks(&s), 3, "spread over racks: {s:?}");
    }
    let said = events(&mut h);
    assert!(
        said.iter()
            .any(|e| e
                .starts_with("placement rule v1 set: replicas avoid disk=hdd; spread over rack")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|e| e.contains("n6 may not hold a replica under the rule")),
        "{said:?}"
    );
}

#[test]
fn a_rule_that_cannot_be_met_is_placed_as_well_as_it_can_be_and_reported_without_looping() {
    let nodes = [("a", SSD), ("b", HDD), ("c", HDD)];
    let r = rule(vec![Constraint::new(Require, "disk", &["ssd"])], Vec::new());
    let (mut h, mut nodes) = cluster(&nodes, 4, 1, Some(r));
    // Durability first: each shard has its follower, on an hdd node.
    for s in shard_statuses(&mut h) {
        assert_eq!((s.leader.as_deref(), s.followers.len()), (Some("n1"), 1), "{s:?}");
    }
    let info = placement(&mut h);
    assert_eq!(info.unsatisfied, 4, "{info:?}");
    assert!(info.example.starts_with("shard 0: n"), "{}", info.example);
    let said = events(&mut h);
    assert!(
        said.iter().any(|e| e.starts_with("the placement rule cannot be met for 4 shards")),
        "{said:?}"
    );
    // Nothing moves, and nothing is logged again, however long it runs.
    let (stored, logged) = (h.store.clone(), said.len());
    for _ in 0..30 {
        round(&mut h, &mut nodes, 1_000);
    }
    assert_eq!(events(&mut h).len(), logged);
    assert!(h.store == stored, "nothing written");

    // A second ssd node joins: the followers move to it (and the balancer hands it half the
    // leaders), and the rule is met.
    let mut more = Node::new(4);
    more.zone = "b".into();
    more.labels = vec![Label::new("disk", "ssd")];
    nodes.push(more);
    for _ in 0..60 {
        round(&mut h, &mut nodes, 1_000);
    }
    for s in shard_statuses(&mut h) {
        let mut replicas: Vec<String> = s.followers.iter().chain(&s.leader).cloned().collect();
        replicas.sort();
        assert_eq!(replicas, ["n1", "n4"], "{s:?}");
    }
    assert_eq!(placement(&mut h).unsatisfied, 0);
    assert!(events(&mut h).iter().any(|e| e == "the placement rule is met for every shard again"));
}

#[test]
fn a_leader_rule_moves_leaders_to_a_follower_that_may_lead() {
    let nodes = [("a", SSD), ("b", SSD), ("c", SSD)];
    let (mut h, mut nodes) = cluster(&nodes, 9, 1, None);
    assert_eq!(holders(&mut h).1.len(), 3, "no rule: every node leads some");
    set(&mut h, rule(Vec::new(), vec![Constraint::new(Require, "zone", &["a", "b"])]), None)
        .unwrap();
    for _ in 0..200 {
        round(&mut h, &mut nodes, 1_000);
    }
    assert_eq!(holders(&mut h).1, ["n1", "n2"], "{:?}", shard_statuses(&mut h));
    assert_eq!(placement(&mut h).unsatisfied, 0);
}

#[test]
fn rule_requests_are_checked() {
    let (mut h, _nodes) = cluster(&[("a", SSD), ("b", SSD)], 2, 1, None);
    let cases: Vec<(PlacementRecord, &str)> = vec![
        (
            rule(
                vec![Constraint { kind: 7, key: "disk".into(), values: vec!["ssd".into()] }],
                vec![],
            ),
            "kind 7 is unknown",
        ),
        (rule(vec![Constraint::new(Require, "disk", &[])], vec![]), "names 0 values"),
        (
            rule(vec![Constraint::new(Require, "disk", &["ssd", "ssd"])], vec![]),
            "names \"ssd\" twice",
        ),
        (rule(vec![Constraint::new(Require, "di sk", &["ssd"])], vec![]), "label key"),
        (rule(vec![Constraint::new(Require, "disk", &["s sd"])], vec![]), "value"),
        (
            rule(vec![Constraint::new(Prefer, "disk", &["ssd"]); 9], vec![]),
            "9 replica constraints; the limit is 8",
        ),
        (
            rule(
                vec![Constraint::new(Require, "disk", &["ssd"])],
                vec![Constraint::new(Avoid, "disk", &["ssd"])],
            ),
            "no value of label \"disk\" meets every require and avoid",
        ),
        (
            rule(
                vec![Constraint::new(Require, "zone", &["a"])],
                vec![Constraint::new(Require, "zone", &["b"])],
            ),
            "no value of label \"zone\"",
        ),
        (PlacementRecord { spread: "r ack".into(), ..Default::default() }, "spread label key"),
    ];
    let stored = h.store.clone();
    for (r, want) in cases {
        match set(&mut h, r.clone(), None) {
            Err(MetaError::InvalidArgument(m)) => assert!(m.contains(want), "{m} (wanted {want})"),
            other => panic!("{r:?}: {other:?}"),
        }
    }
    assert_eq!(h.store, stored, "nothing written");
    let ok = rule(vec![Constraint::new(Prefer, "disk", &["ssd"])], vec![]);
    assert_eq!(set(&mut h, ok.clone(), Some(0)).unwrap().rule.version, 1);
    let stale = set(&mut h, ok.clone(), Some(0));
    assert!(
        matches!(&stale, Err(MetaError::FailedPrecondition(m)) if m == "the placement rule is at version 1, not 0: read it again and retry"),
        "{stale:?}"
    );
    assert_eq!(set(&mut h, ok, Some(1)).unwrap().rule.version, 2);
    let missing = h.call(Request::GetPlacement { cluster: "nope".into() });
    assert!(matches!(missing, Err(MetaError::NotFound(_))), "{missing:?}");
}
