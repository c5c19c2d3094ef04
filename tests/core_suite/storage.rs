//! Persist before effect, through the real core: a change is answered only once its write
//! lands, a write of unknown outcome is followed by a reload and a barrier, a fenced-out write
//! ends the term, a request waiting on storage gets its deadline, and a reload that fails is
//! asked for again after a pause (or the term given up when storage cannot be decoded).

use std::collections::BTreeMap;

use crate::harness::*;
use shardmeta::core::model::Topology;
use shardmeta::core::storage::{WriteResult, FENCE_KEY};
use shardmeta::core::*;

#[test]
fn create_is_answered_only_after_its_write_lands() {
    let mut h = Harness::leader();
    let spec = ClusterSpec {
        name: "c".into(),
        shard_count: 4,
        followers_per_shard: 1,
        topology: Topology::Dynamic,
        min_nodes: 1,
    };
    let id = h.request(Request::CreateCluster(spec));
    let outs = h.outputs();
    let [Output::Persist(batch)] = &outs[..] else {
        panic!("one write and nothing else: {outs:?}")
    };
    assert_eq!(batch.ops.len(), 3, "cluster, id ceiling, public schema: {:?}", batch.ops);
    assert_eq!(batch.term, Term(1));
    h.write_result(batch.id, WriteResult::Ok);
    let outs = h.outputs();
    assert!(
        matches!(&outs[..], [Output::Reply { request, result: Ok(Response::Cluster(c)) }] if *request == id && c.name == "c"),
        "{outs:?}"
    );
}

#[test]
fn unknown_write_outcome_reloads_then_writes_a_barrier() {
    let (mut h, _) = steady_cluster(2);
    let id = h.request(Request::CreateTable(CreateTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "t".into(),
        encoded_schema: vec![],
        options: BTreeMap::new(),
        if_not_exists: false,
        partition: None,
    }));
    let outs = h.outputs();
    let [Output::Persist(batch)] = &outs[..] else { panic!("{outs:?}") };
    h.write_result(batch.id, WriteResult::Error);
    let outs = h.outputs();
    assert!(
        matches!(&outs[..], [Output::Reply { request, result: Err(MetaError::Unavailable(_)) }, Output::LoadSnapshot { term: Term(1) }] if *request == id),
        "{outs:?}"
    );
    let snapshot = h.stored();
    h.core.handle(h.now, Input::Snapshot { term: Term(1), snapshot });
    let outs = h.outputs();
    let [Output::Persist(barrier)] = &outs[..] else { panic!("{outs:?}") };
    assert!(barrier.ops.is_empty(), "the barrier only advances the fence");
    assert_eq!(barrier.expected_fence.as_ref(), h.store.get(FENCE_KEY));
    // Until the barrier lands, the leader answers nothing that reads the catalog.
    let id = h.request(Request::ListClusters { page: PageRequest::default() });
    assert!(
        matches!(&h.outputs()[..], [Output::Reply { request, result: Err(MetaError::Unavailable(_)) }] if *request == id)
    );
    h.store.insert(FENCE_KEY.into(), barrier.fence.clone());
    h.write_result(barrier.id, WriteResult::Ok);
    assert!(matches!(h.create_table("t", false), Ok(Response::TableCreated { created: true, .. })));
}

#[test]
fn fenced_out_write_steps_down_and_resigns() {
    let mut h = Harness::leader();
    let id = h.request(Request::CreateCluster(ClusterSpec {
        name: "c".into(),
        shard_count: 1,
        followers_per_shard: 0,
        topology: Topology::Static,
        min_nodes: 1,
    }));
    let Some(Output::Persist(b)) = h.core.poll_output() else { panic!() };
    h.write_result(b.id, WriteResult::Conflict);
    assert_eq!(
        h.outputs(),
        vec![
            Output::Reply { request: id, result: Err(MetaError::NotLeader) },
            Output::Resign { term: Term(1), reason: ResignReason::Fenced }
        ]
    );
    assert!(!h.core.is_leader(h.now));
}

#[test]
fn request_waiting_on_storage_gets_a_deadline_error() {
    let mut h = Harness::leader();
    let id = h.request(Request::CreateCluster(ClusterSpec {
        name: "c".into(),
        shard_count: 1,
        followers_per_shard: 0,
        topology: Topology::Static,
        min_nodes: 1,
    }));
    assert!(matches!(h.outputs()[..], [Output::Persist(_)]));
    let (due, _) = h.core.poll_timeout().expect("a deadline is pending");
    assert!(due <= h.now + Duration(CoreConfig::default().request_timeout_ms));
    h.now = h.now + Duration(CoreConfig::default().request_timeout_ms + 1);
    h.core.handle(h.now, Input::Timeout);
    h.core.handle(h.now, Input::Timeout); // twice is harmless
    assert_eq!(
        h.outputs(),
        vec![Output::Reply { request: id, result: Err(MetaError::DeadlineExceeded) }]
    );
}

#[test]
fn cluster_view_counts_changes_until_storage_acknowledges_them() {
    let mut h = Harness::leader();
    h.create_cluster(4, 0);
    let pending = |h: &mut Harness| {
        let id = h.request(Request::ClusterView { cluster: "c".into() });
        let answer = h.outputs().into_iter().find_map(|o| match o {
            Output::Reply { request, result: Ok(Response::View(v)) } if request == id => {
                Some(v.changes_pending)
            }
            _ => None,
        });
        answer.expect("a view is answered at once")
    };
    assert_eq!(pending(&mut h), 0);
    h.request(Request::CreateSchema {
        cluster: "c".into(),
        name: "s".into(),
        if_not_exists: false,
    });
    let writes = h.outputs();
    assert!(matches!(writes[..], [Output::Persist(_)]), "{writes:?}");
    assert_eq!(pending(&mut h), 1, "the schema is decided, not yet durable");
    let Output::Persist(batch) = &writes[0] else { unreachable!() };
    h.write_result(batch.id, WriteResult::Ok);
    h.outputs();
    assert_eq!(pending(&mut h), 0);
}

/// A leader whose reload fails waits out a pause before it asks again, and gives the term up
/// when storage holds what it cannot decode: it must not keep the election while refusing
/// everything (the runtime used to decide this, on a branch that never ran).
#[test]
fn a_failed_reload_is_asked_for_again_after_a_pause_and_a_corrupt_one_resigns() {
    // Ticks far apart, so that the retry is the next thing due.
    let mut h = Harness::follower();
    h.core = MetaCore::new(CoreConfig { tick_interval_ms: 60_000, ..CoreConfig::default() }, 7);
    h.gain(Term(1), Default::default());
    h.advance(0);
    h.request(Request::CreateCluster(ClusterSpec {
        name: "c".into(),
        shard_count: 1,
        followers_per_shard: 0,
        topology: Topology::Static,
        min_nodes: 1,
    }));
    let Some(Output::Persist(b)) = h.core.poll_output() else { panic!() };
    h.write_result(b.id, WriteResult::Error);
    assert!(h.outputs().contains(&Output::LoadSnapshot { term: Term(1) }));

    h.core.handle(
        h.now,
        Input::SnapshotFailed { term: Term(1), cause: storage::LoadCause::Unavailable },
    );
    assert_eq!(h.outputs(), vec![]);
    let pause = storage::LoadCause::Unavailable.retry_pause(1);
    assert_eq!(h.core.poll_timeout(), Some((h.now + pause, Timer::SnapshotRetry)));
    h.now = h.now + Duration(pause.0 - 1);
    h.core.handle(h.now, Input::Timeout);
    assert_eq!(h.outputs(), vec![], "not before the pause is over");
    h.advance(1);
    assert_eq!(h.outputs(), vec![Output::LoadSnapshot { term: Term(1) }]);

    // A failure for an older term is stale and changes nothing.
    h.core
        .handle(h.now, Input::SnapshotFailed { term: Term(0), cause: storage::LoadCause::Corrupt });
    assert!(h.core.is_leader(h.now));
    h.core
        .handle(h.now, Input::SnapshotFailed { term: Term(1), cause: storage::LoadCause::Corrupt });
    assert_eq!(
        h.outputs(),
        vec![Output::Resign { term: Term(1), reason: ResignReason::Unloadable }]
    );
    assert!(!h.core.is_leader(h.now));
}
