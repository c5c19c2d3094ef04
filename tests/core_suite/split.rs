//! Shard splits through the real core and `ShardHost`: the steps of the procedure, a meta
//! failover at each of them, a cancel, a step timeout, and the refusals. At every step every
//! table is in exactly one shard of the catalog (S5) and led by at most one node (S1 per
//! table).

use crate::harness::*;
use shardmeta::core::cause::Cause;
use shardmeta::core::model::{ProcedureStep, Topology};
use shardmeta::core::*;

fn split(h: &mut Harness, shard: u32, tables: &[u64]) -> Result<Response, MetaError> {
    h.call(Request::SplitShard {
        cluster: "c".into(),
        shard: ShardId(shard),
        tables: tables.iter().copied().map(TableId).collect(),
    })
}

/// The split's end state: shard 2 exists, holds the moved tables, and is led; every leader's
/// table set is the catalog's.
fn assert_split_done(h: &Harness, nodes: &[Node], moved: &[TableId]) {
    let c = catalog(h);
    assert_eq!(c.shards.len(), 3);
    let in_new: Vec<TableId> = c.shard_tables[2].iter().copied().collect();
    assert_eq!(in_new, moved);
    for n in nodes {
        for (&shard, s) in n.host.shards() {
            if n.host.is_leading(shard, h.now) {
                assert_eq!(
                    s.tables,
                    c.shard_tables[shard.index()],
                    "{} leads shard {shard} with the catalog's tables",
                    n.name
                );
            }
        }
    }
    assert_eq!(
        nodes.iter().filter(|n| n.host.is_leading(ShardId(2), h.now)).count(),
        1,
        "the new shard has one leader"
    );
}

#[test]
fn a_split_moves_tables_to_a_new_shard_with_one_leader_per_table_at_every_step() {
    let (mut h, mut nodes) = tabled_cluster(2);
    let before = catalog(&h).shard_tables[0].len();
    let Ok(Response::Procedure(p)) = split(&mut h, 0, &[]) else { panic!() };
    assert_eq!(
        (p.step, p.new_shard, p.tables as usize),
        (ProcedureStep::AwaitingTablesMoved, ShardId(2), before / 2),
        "{p:?}"
    );
    assert_eq!(procedures(&mut h).len(), 1);
    // Moves, the source's re-open, its report, the new shard let go, assigned, reported, done:
    // one tick or heartbeat each.
    let rounds = run_out(&mut h, &mut nodes);
    assert!(rounds <= 8, "{rounds} rounds of 500 ms");
    let moved: Vec<TableId> = catalog(&h).shard_tables[2].iter().copied().collect();
    assert_eq!(moved.len(), before / 2);
    assert_split_done(&h, &nodes, &moved);
    let Ok(Response::Routes { routes, .. }) = h.call(Request::RouteTables {
        cluster: "c".into(),
        schema: "public".into(),
        tables: (0..12).map(|t| format!("t{t}")).collect(),
    }) else {
        panic!()
    };
    for r in routes.iter().filter(|r| moved.contains(&r.table_id)) {
        assert_eq!(r.shard, ShardId(2), "{r:?}");
        assert!(r.leader.is_some(), "{r:?}");
    }
    let events = events(&mut h);
    let split_events: Vec<&str> =
        events.iter().filter(|e| e.cause == Cause::Split).map(|e| e.text.as_str()).collect();
    assert!(
        split_events.first().is_some_and(|e| e.ends_with("started"))
            && split_events.last().is_some_and(|e| e.contains("done")),
        "{split_events:?}"
    );
}

#[test]
fn a_meta_failover_at_each_step_resumes_the_split() {
    for (term, step) in [
        ProcedureStep::AwaitingTablesMoved,
        ProcedureStep::AwaitingSourceRelease,
        ProcedureStep::AwaitingNewShardOpen,
    ]
    .into_iter()
    .enumerate()
    {
        let (mut h, mut nodes) = tabled_cluster(2);
        let moved_expected = catalog(&h).shard_tables[0].len() / 2;
        split(&mut h, 0, &[]).unwrap();
        if step == ProcedureStep::AwaitingNewShardOpen {
            // The source's leader must report its new version before the new shard is let go.
            tick_to(&mut h, &mut nodes, ProcedureStep::AwaitingSourceRelease);
            report(&mut h, &mut nodes);
        }
        fail_over_at(&mut h, &mut nodes, step, term as u64 + 2);
        let moved: Vec<TableId> = catalog(&h).shard_tables[2].iter().copied().collect();
        assert_eq!(moved.len(), moved_expected, "after a failover at {step:?}");
        assert_split_done(&h, &nodes, &moved);
    }
}

#[test]
fn a_cancel_before_the_new_shard_may_be_led_rolls_back_and_after_is_refused() {
    let (mut h, mut nodes) = tabled_cluster(2);
    let before = catalog(&h).shard_tables[0].clone();
    let Ok(Response::Procedure(p)) = split(&mut h, 0, &[]) else { panic!() };
    tick_to(&mut h, &mut nodes, ProcedureStep::AwaitingSourceRelease);
    let Ok(Response::Procedure(cancelled)) =
        h.call(Request::CancelProcedure { cluster: "c".into(), id: p.id })
    else {
        panic!()
    };
    assert_eq!(cancelled.step, ProcedureStep::RollingBack);
    run_out(&mut h, &mut nodes);
    let c = catalog(&h);
    assert_eq!(c.shard_tables[0], before, "every table is back in shard 0");
    assert!(c.shard_tables[2].is_empty(), "shard 2 stays, empty");
    for _ in 0..4 {
        round(&mut h, &mut nodes, 500);
    }
    check(&h, &nodes);
    let leader =
        nodes.iter().find(|n| n.host.is_leading(ShardId(0), h.now)).expect("shard 0 is led");
    assert_eq!(
        leader.host.shards()[&ShardId(0)].tables,
        before,
        "its leader serves them all again"
    );

    let Ok(Response::Procedure(p)) = split(&mut h, 0, &[]) else { panic!() };
    tick_to(&mut h, &mut nodes, ProcedureStep::AwaitingSourceRelease);
    report(&mut h, &mut nodes);
    tick_to(&mut h, &mut nodes, ProcedureStep::AwaitingNewShardOpen);
    let refused = h.call(Request::CancelProcedure { cluster: "c".into(), id: p.id }).unwrap_err();
    assert!(
        matches!(&refused, MetaError::FailedPrecondition(m) if m.contains("only rolls forward")),
        "{refused:?}"
    );
}

/// A cancel that arrives while the split's next step is being written is refused (retry):
/// judged on the stored step, it would roll back a split whose new shard is about to be led,
/// and move tables back from it while its leader serves them (in-process seed 1592596841:
/// one table led by two nodes). Once that step lands, the cancel is refused for good.
#[test]
fn a_cancel_while_a_step_is_being_written_waits_for_it() {
    let (mut h, mut nodes) = tabled_cluster(2);
    let Ok(Response::Procedure(p)) = split(&mut h, 0, &[]) else { panic!() };
    tick_to(&mut h, &mut nodes, ProcedureStep::AwaitingSourceRelease);
    report(&mut h, &mut nodes);
    // Up to the tick that lets the new shard go: its write is handed out, and not landed.
    let mut step_write = Vec::new();
    for _ in 0..20 {
        h.advance(100);
        step_write = h.outputs();
        if step_write.iter().any(|o| matches!(o, Output::Persist(_))) {
            break;
        }
    }
    assert!(step_write.iter().any(|o| matches!(o, Output::Persist(_))), "the step is written");
    assert_eq!(
        procedures(&mut h)[0].step,
        ProcedureStep::AwaitingSourceRelease,
        "and has not landed"
    );
    let cancel = h.request(Request::CancelProcedure { cluster: "c".into(), id: p.id });
    let mut refusal = None;
    for out in step_write.into_iter().chain(h.outputs()) {
        match out {
            Output::Reply { request, result } if request == cancel => refusal = Some(result),
            Output::Persist(b) => {
                b.apply_to(&mut h.store);
                h.write_result(b.id, shardmeta::core::storage::WriteResult::Ok);
            }
            _ => {}
        }
    }
    let refusal = refusal.expect("the cancel is answered at once").unwrap_err();
    assert!(
        matches!(&refusal, MetaError::Unavailable(m) if m.contains("taking a step")),
        "{refusal:?}"
    );
    h.settle();
    assert_eq!(procedures(&mut h)[0].step, ProcedureStep::AwaitingNewShardOpen, "the step landed");
    let refused = h.call(Request::CancelProcedure { cluster: "c".into(), id: p.id }).unwrap_err();
    assert!(
        matches!(&refused, MetaError::FailedPrecondition(m) if m.contains("only rolls forward")),
        "{refused:?}"
    );
    run_out(&mut h, &mut nodes);
    let moved: Vec<TableId> = catalog(&h).shard_tables[2].iter().copied().collect();
    assert_split_done(&h, &nodes, &moved);
}

/// One node leading two shards, four tables, and a split of shard 0 asked for; shard 0's
/// tables before it.
fn split_on_one_node(
    config: CoreConfig,
) -> (Harness, Vec<Node>, std::collections::BTreeSet<TableId>) {
    let (mut h, mut nodes) = steady_cluster_configured(config, 1, 2, 0, &[]);
    for t in 0..4 {
        h.create_table(&format!("t{t}"), false).unwrap();
    }
    round(&mut h, &mut nodes, 500);
    let before = catalog(&h).shard_tables[0].clone();
    split(&mut h, 0, &[]).unwrap();
    (h, nodes, before)
}

/// A source whose leader is gone and cannot be replaced never reports the new version: after
/// the step timeout the split rolls back.
#[test]
fn a_source_that_never_lets_go_times_out_into_a_rollback() {
    let config = CoreConfig { procedure_step_timeout_ms: 5_000, ..CoreConfig::default() };
    let (mut h, mut nodes, before) = split_on_one_node(config);
    tick_to(&mut h, &mut nodes, ProcedureStep::AwaitingSourceRelease);
    for _ in 0..40 {
        h.advance(500);
        h.settle();
    }
    assert!(catalog(&h).procedures.is_empty(), "{:?}", catalog(&h).procedures);
    assert_eq!(catalog(&h).shard_tables[0], before);
    let events = events(&mut h);
    assert!(events.iter().any(|e| e.text.contains("did not let the tables go")), "{events:?}");
}

/// The overall clock ends a split whatever step it is at: here before its first table moved
/// (as when a busy write queue starves the moves). It rolls back; the tables stay put.
#[test]
fn a_split_out_of_time_in_all_rolls_back() {
    let config = CoreConfig { procedure_timeout_ms: 1, ..CoreConfig::default() };
    let (mut h, mut nodes, before) = split_on_one_node(config);
    for _ in 0..10 {
        round(&mut h, &mut nodes, 500);
        check(&h, &nodes);
    }
    assert!(catalog(&h).procedures.is_empty(), "{:?}", catalog(&h).procedures);
    assert_eq!(catalog(&h).shard_tables[0], before);
    let events = events(&mut h);
    assert!(
        events
            .iter()
            .any(|e| e.text.contains("did not move within 1 ms in all (procedure_timeout_ms)")),
        "{events:?}"
    );
}

#[test]
fn unsafe_splits_are_refused_with_the_reason() {
    let (mut h, mut nodes) = tabled_cluster(2);
    let refused = |r: Result<Response, MetaError>| match r {
        Err(MetaError::FailedPrecondition(m)) | Err(MetaError::NotFound(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(refused(split(&mut h, 9, &[])).contains("shard 9"));
    let in_1: Vec<u64> = catalog(&h).shard_tables[1].iter().map(|t| t.0).collect();
    assert!(refused(split(&mut h, 0, &in_1[..1])).contains("not in shard 0"));
    split(&mut h, 0, &[]).unwrap();
    assert!(refused(split(&mut h, 0, &[])).contains("held by split procedure"));
    let moved = refused(h.call(Request::MoveShard {
        cluster: "c".into(),
        shard: ShardId(0),
        node: "n3".into(),
        reopen: true,
    }));
    assert!(moved.contains("held by split procedure"), "{moved}");
    run_out(&mut h, &mut nodes);

    // One table carrying nearly all of a shard's load: no split can help.
    let hot = *catalog(&h).shard_tables[1].iter().next().unwrap();
    let load = move |_: ShardId| ShardLoad { write_units: 1_000.0, ..Default::default() };
    let busiest = Busiest(hot, load);
    for _ in 0..4 {
        for n in nodes.iter_mut() {
            n.heartbeat_with(&mut h, &busiest).unwrap();
        }
        let outs = h.settle();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
        h.advance(11_000);
        h.settle();
    }
    let why = refused(split(&mut h, 1, &[]));
    assert!(why.contains("unsplittable") && why.contains(&format!("table {hot}")), "{why}");

    let mut static_h = Harness::leader();
    let spec = ClusterSpec {
        name: "c".into(),
        shard_count: 2,
        followers_per_shard: 0,
        topology: Topology::Static,
        min_nodes: 1,
    };
    static_h.call(Request::CreateCluster(spec)).unwrap();
    assert!(refused(split(&mut static_h, 0, &[])).contains("static"));
}

/// Reports `hot` as carrying 95% of its shard's load.
struct Busiest<F>(TableId, F);

impl<F: Fn(ShardId) -> ShardLoad> shardmeta::client::LoadSource for &Busiest<F> {
    fn shard_load(&self, shard: ShardId, _: &std::collections::BTreeSet<TableId>) -> ShardLoad {
        (self.1)(shard)
    }

    fn busiest_tables(
        &self,
        shard: ShardId,
        tables: &std::collections::BTreeSet<TableId>,
        out: &mut Vec<TableLoad>,
    ) {
        if tables.contains(&self.0) {
            out.push(TableLoad { shard, table: self.0, read_units: 0.0, write_units: 950.0 });
        }
    }
}

/// The checker catches a split that lets the new shard be led while the source's leader still
/// serves the tables: here the source's leader hears nothing pushed, only heartbeat answers.
#[test]
fn the_table_checker_catches_a_split_that_skips_the_release() {
    for planted in [None, Some(PlantedBug::SplitWithoutRelease)] {
        let config = CoreConfig { planted_bug: planted, ..CoreConfig::default() };
        let (mut h, mut nodes) = tabled_cluster_with(config, 2);
        let source = nodes.iter().position(|n| n.host.is_leading(ShardId(0), h.now)).unwrap();
        split(&mut h, 0, &[]).unwrap();
        let caught = rounds_with_a_deaf_node(&mut h, &mut nodes, source, false, 40);
        match planted {
            None => assert!(caught.is_none(), "{caught:?}"),
            Some(_) => assert!(
                caught.is_some_and(|v| v.detail.contains("led by both")),
                "the planted bug was not caught"
            ),
        }
    }
}

/// A table created, altered or dropped between two heartbeats gives its shard a new version
/// that its leader reports only at the next one: the shard stays ready meanwhile (it served
/// throughout), where it used to show as opening until then, and under steady DDL, one version
/// ahead of every heartbeat, for good. A split's re-opening of the shard, in contrast, is not
/// ready until the leader reports it.
#[test]
fn ddl_between_heartbeats_leaves_a_shard_ready_and_a_split_reopening_does_not() {
    let (mut h, mut nodes) = tabled_cluster(2);
    assert!(
        shard_statuses(&mut h).iter().all(|s| s.status == ShardStatus::Ready),
        "{:?}",
        shard_statuses(&mut h)
    );
    for t in 12..16 {
        h.create_table(&format!("t{t}"), false).unwrap();
        let not_ready: Vec<_> =
            shard_statuses(&mut h).into_iter().filter(|s| s.status != ShardStatus::Ready).collect();
        assert!(not_ready.is_empty(), "after creating t{t}, before any heartbeat: {not_ready:?}");
    }
    let Ok(Response::Procedure(_)) = split(&mut h, 0, &[]) else { panic!() };
    tick_to(&mut h, &mut nodes, ProcedureStep::AwaitingSourceRelease);
    let source = shard_statuses(&mut h).into_iter().find(|s| s.id == ShardId(0)).unwrap();
    assert_eq!(
        source.status,
        ShardStatus::Opening,
        "re-opened without its moved tables, not reported yet: {source:?}"
    );
    run_out(&mut h, &mut nodes);
}
