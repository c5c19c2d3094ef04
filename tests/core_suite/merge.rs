//! Shard merges through the real core and `ShardHost`: the steps of the procedure, a meta
//! failover at each of them, a cancel, and the refusals. At every step every table is in
//! exactly one shard of the catalog (S5) and led by at most one node (S1 per table); at the end
//! the emptied shard is retired, holds nothing, and its id is never used again.

use crate::harness::*;
use shardmeta::core::cause::Cause;
use shardmeta::core::config::PlantedBug;
use shardmeta::core::model::{ProcedureKind, ProcedureStep, Topology};
use shardmeta::core::*;

fn merge(h: &mut Harness, a: u32, b: u32) -> Result<Response, MetaError> {
    h.call(Request::MergeShards { cluster: "c".into(), shards: [ShardId(a), ShardId(b)] })
}

/// A merge whose start's pushes (the emptied shard re-opened without tables) reach the nodes.
fn merge_heard(h: &mut Harness, nodes: &mut [Node], a: u32, b: u32) -> Result<Response, MetaError> {
    let id =
        h.request(Request::MergeShards { cluster: "c".into(), shards: [ShardId(a), ShardId(b)] });
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    outs.into_iter()
        .find_map(|o| match o {
            Output::Reply { request, result } if request == id => Some(result),
            _ => None,
        })
        .expect("every request is answered")
}

/// The merge's end state: `from` is retired and empty, with no replica on any node; `into`
/// holds `tables` and its leader serves them.
fn assert_merged(
    h: &mut Harness,
    nodes: &mut [Node],
    from: u32,
    into: u32,
    tables: &std::collections::BTreeSet<TableId>,
) {
    for _ in 0..3 {
        round(h, nodes, 500);
    }
    check(h, nodes);
    let events: Vec<String> = events(h).into_iter().map(|e| e.text).collect();
    let c = catalog(h);
    assert!(c.shards[from as usize].retired, "{events:#?}");
    assert!(
        c.shards[from as usize].retired && c.shard_tables[from as usize].is_empty(),
        "shard {from} retired: {:?}",
        c.shards[from as usize]
    );
    assert_eq!(&c.shard_tables[into as usize], tables);
    assert!(
        nodes.iter().all(|n| !n.host.shards().contains_key(&ShardId(from))),
        "no node holds the retired shard"
    );
    let leader =
        nodes.iter().find(|n| n.host.is_leading(ShardId(into), h.now)).expect("the target is led");
    assert_eq!(
        &leader.host.shards()[&ShardId(into)].tables,
        tables,
        "its leader serves every table"
    );
}

#[test]
fn a_merge_moves_every_table_and_retires_the_emptied_shard_for_good() {
    let (mut h, mut nodes) = tabled_cluster(3);
    let c = catalog(&h);
    let both: std::collections::BTreeSet<TableId> =
        c.shard_tables[0].union(&c.shard_tables[1]).copied().collect();
    let Ok(Response::Procedure(p)) = merge(&mut h, 0, 1) else { panic!() };
    assert_eq!(
        (p.kind, p.step, p.shard, p.new_shard),
        (ProcedureKind::Merge, ProcedureStep::AwaitingSourceRelease, ShardId(1), ShardId(0)),
        "ties: the higher id empties"
    );
    let rounds = run_out(&mut h, &mut nodes);
    assert!(rounds <= 12, "{rounds} rounds of 500 ms");
    assert_merged(&mut h, &mut nodes, 1, 0, &both);

    // Routes name the target; new tables never go to the retired shard; a split takes a new id.
    let Ok(Response::Routes { routes, .. }) = h.call(Request::RouteTables {
        cluster: "c".into(),
        schema: "public".into(),
        tables: (0..12).map(|t| format!("t{t}")).collect(),
    }) else {
        panic!()
    };
    assert!(routes.iter().all(|r| r.shard != ShardId(1) && r.leader.is_some()), "{routes:?}");
    for t in 12..24 {
        h.create_table(&format!("t{t}"), false).unwrap();
    }
    assert!(catalog(&h).shard_tables[1].is_empty(), "the retired shard takes no table");
    let Ok(Response::Procedure(split)) =
        h.call(Request::SplitShard { cluster: "c".into(), shard: ShardId(0), tables: vec![] })
    else {
        panic!()
    };
    assert_eq!(split.new_shard, ShardId(3), "a retired id is never reused");
    run_out(&mut h, &mut nodes);
    let refused = merge(&mut h, 1, 2).unwrap_err();
    assert!(
        matches!(&refused, MetaError::FailedPrecondition(m) if m.contains("retired")),
        "{refused:?}"
    );
    let events = events(&mut h);
    let merge_events: Vec<&str> =
        events.iter().filter(|e| e.cause == Cause::Merge).map(|e| e.text.as_str()).collect();
    assert!(
        merge_events.first().is_some_and(|e| e.ends_with("started"))
            && merge_events.last().is_some_and(|e| e.contains("retired")),
        "{merge_events:?}"
    );
}

#[test]
fn a_meta_failover_at_each_step_resumes_the_merge() {
    let steps = [
        ProcedureStep::AwaitingSourceRelease,
        ProcedureStep::AwaitingTablesMoved,
        ProcedureStep::AwaitingTargetOpen,
    ];
    for (term, step) in steps.into_iter().enumerate() {
        let (mut h, mut nodes) = tabled_cluster(3);
        let c = catalog(&h);
        let both: std::collections::BTreeSet<TableId> =
            c.shard_tables[0].union(&c.shard_tables[2]).copied().collect();
        merge_heard(&mut h, &mut nodes, 2, 0).unwrap();
        if step != ProcedureStep::AwaitingSourceRelease {
            // The emptied shard's leader reports that it let its tables go.
            report(&mut h, &mut nodes);
        }
        fail_over_at(&mut h, &mut nodes, step, term as u64 + 2);
        assert_merged(&mut h, &mut nodes, 2, 0, &both);
    }
}

#[test]
fn a_cancel_before_tables_move_rolls_back_and_after_is_refused() {
    let (mut h, mut nodes) = tabled_cluster(3);
    let before = catalog(&h).shard_tables.clone();
    let Ok(Response::Procedure(p)) = merge(&mut h, 0, 1) else { panic!() };
    let Ok(Response::Procedure(cancelled)) =
        h.call(Request::CancelProcedure { cluster: "c".into(), id: p.id })
    else {
        panic!()
    };
    assert_eq!(cancelled.step, ProcedureStep::RollingBack);
    run_out(&mut h, &mut nodes);
    for _ in 0..3 {
        round(&mut h, &mut nodes, 500);
    }
    check(&h, &nodes);
    assert_eq!(catalog(&h).shard_tables, before, "nothing moved");
    assert!(!catalog(&h).shards[1].retired);
    let leader =
        nodes.iter().find(|n| n.host.is_leading(ShardId(1), h.now)).expect("shard 1 is led");
    assert_eq!(
        leader.host.shards()[&ShardId(1)].tables,
        before[1],
        "its leader serves its tables again"
    );

    let Ok(Response::Procedure(p)) = merge_heard(&mut h, &mut nodes, 0, 1) else { panic!() };
    report(&mut h, &mut nodes);
    tick_to(&mut h, &mut nodes, ProcedureStep::AwaitingTablesMoved);
    let refused = h.call(Request::CancelProcedure { cluster: "c".into(), id: p.id }).unwrap_err();
    assert!(
        matches!(&refused, MetaError::FailedPrecondition(m) if m.contains("only rolls forward")),
        "{refused:?}"
    );
    run_out(&mut h, &mut nodes);
}

#[test]
fn unsafe_merges_are_refused_with_the_reason() {
    let (mut h, mut nodes) = tabled_cluster(3);
    let precondition = |r: Result<Response, MetaError>, what: &str| match r {
        Err(MetaError::FailedPrecondition(m)) if m.contains(what) => {}
        other => panic!("want a refusal naming {what:?}, got {other:?}"),
    };
    precondition(merge(&mut h, 1, 1), "itself");
    assert!(matches!(merge(&mut h, 0, 9), Err(MetaError::NotFound(_))));
    merge(&mut h, 0, 1).unwrap();
    precondition(merge(&mut h, 1, 2), "held by merge procedure");
    precondition(
        h.call(Request::SplitShard { cluster: "c".into(), shard: ShardId(0), tables: vec![] }),
        "held by merge procedure",
    );
    run_out(&mut h, &mut nodes);

    let mut h = Harness::leader();
    let spec = ClusterSpec {
        name: "c".into(),
        shard_count: 2,
        followers_per_shard: 0,
        topology: Topology::Static,
        min_nodes: 1,
    };
    h.call(Request::CreateCluster(spec)).unwrap();
    let refused = merge(&mut h, 0, 1).unwrap_err();
    assert!(
        matches!(&refused, MetaError::FailedPrecondition(m) if m.contains("static")),
        "{refused:?}"
    );
}

/// The emptied shard's leader hears only heartbeat answers, never pushes, so a leader that
/// was not told to let go keeps serving. Without the fence it still serves the tables once
/// the target's leader does, and the table checker must see it.
#[test]
fn the_table_checker_catches_a_merge_that_skips_the_fence() {
    for planted in [None, Some(PlantedBug::MergeWithoutFence)] {
        let config = CoreConfig { planted_bug: planted, ..CoreConfig::default() };
        let (mut h, mut nodes) = tabled_cluster_with(config, 3);
        let source = nodes.iter().position(|n| n.host.is_leading(ShardId(1), h.now)).unwrap();
        assert!(
            !nodes[source].host.is_leading(ShardId(0), h.now),
            "the two shards have different leaders"
        );
        merge(&mut h, 0, 1).unwrap();
        let caught = rounds_with_a_deaf_node(&mut h, &mut nodes, source, true, 40);
        assert!(catalog(&h).shards[1].retired, "the merge ended either way");
        match planted {
            None => assert!(caught.is_none(), "{caught:?}"),
            Some(_) => assert!(
                caught.is_some_and(|v| v.detail.contains("led by both")),
                "the planted bug was not caught"
            ),
        }
    }
}
