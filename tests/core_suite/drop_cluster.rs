//! DropCluster: one write (a range delete and a tombstone) drops a cluster of any size; one with
//! nodes online only with force, after which they are refused; the name is free at once, the
//! id never given again, also by a new meta leader. Refusals have their codes and write nothing.

use crate::harness::*;
use shardmeta::core::model::Topology;
use shardmeta::core::storage::Op;
use shardmeta::core::*;

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        shard_count: 4,
        followers_per_shard: 0,
        topology: Topology::Dynamic,
        min_nodes: 1,
    }
}

fn cluster_id(h: &mut Harness, name: &str) -> ClusterId {
    match h.call(Request::CreateCluster(spec(name))) {
        Ok(Response::Cluster(c)) => c.id,
        other => panic!("{other:?}"),
    }
}

fn drop(name: &str, force: bool) -> Request {
    Request::DropCluster { cluster: name.into(), force }
}

#[test]
fn a_cluster_with_nodes_online_is_dropped_only_with_force_then_its_nodes_are_refused() {
    let (mut h, mut nodes) = steady_cluster(4);
    for i in 0..2_000 {
        h.request(Request::CreateTable(CreateTable {
            cluster: "c".into(),
            schema: "public".into(),
            name: format!("t{i}"),
            encoded_schema: vec![1; 16],
            options: Default::default(),
            if_not_exists: false,
            partition: None,
        }));
    }
    h.settle();
    let cid = catalog(&h).id();
    let stored = h.store.clone();
    let refused = h.call(drop("c", false));
    assert!(
        matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("2 nodes") && m.contains("online")),
        "{refused:?}"
    );
    assert_eq!(h.store, stored, "a refusal writes nothing");

    // A watcher of the cluster is told it is gone.
    let watch = WatchRoutes { cluster: "c".into(), schema: None, from_revision: 0 };
    h.core.handle(h.now, Input::Watch { watch: WatchId(1), request: &watch });
    h.outputs();

    // One write, whatever the cluster holds: its range delete travels alone.
    let id = h.request(drop("c", true));
    let outs = h.outputs();
    let batch = outs
        .iter()
        .find_map(|o| if let Output::Persist(b) = o { Some(b.clone()) } else { None })
        .expect("a write");
    assert!(
        batch.ops.len() == 2 && batch.ops.iter().any(|op| matches!(op, Op::DeletePrefix { .. })),
        "{:?}",
        batch.ops
    );
    h.core.handle(h.now, Input::WriteResult { id: batch.id, result: storage::WriteResult::Ok });
    batch.apply_to(&mut h.store);
    let outs = h.settle();
    assert!(outs.iter().any(|o| matches!(o, Output::Reply { request, result: Ok(Response::ClusterDropped { tables: 2_000, .. }) } if *request == id)), "{outs:?}");
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::EndWatch { watch: WatchId(1), error: MetaError::NotFound(_) }
    )));
    let prefix = format!("/shardmeta/v1/c/{:010}/", cid.0);
    assert!(!h.store.keys().any(|k| k.starts_with(&prefix)), "nothing is left inside it");

    let refused = nodes[0].heartbeat(&mut h);
    assert!(matches!(&refused, Err(MetaError::NotFound(_))), "{refused:?}");

    // The name is free; the id is never given again, also by a new meta leader.
    let again = cluster_id(&mut h, "c");
    assert!(again > cid);
    fail_over(&mut h, 2);
    assert!(h.core.catalog().unwrap().dropped_clusters.contains(&cid));
    assert!(
        matches!(h.call(drop("c", false)), Ok(Response::ClusterDropped { tables: 0, .. })),
        "an empty cluster without nodes goes without force"
    );
    assert!(cluster_id(&mut h, "other") > again);
}

#[test]
fn changes_decided_before_a_drop_land_first_and_none_after() {
    let mut h = Harness::leader();
    cluster_id(&mut h, "a");
    // A create and the drop decided together: the create lands in the write before.
    let create = h.request(Request::CreateSchema {
        cluster: "a".into(),
        name: "s".into(),
        if_not_exists: false,
    });
    let dropped = h.request(drop("a", false));
    let late = h.request(Request::CreateSchema {
        cluster: "a".into(),
        name: "t".into(),
        if_not_exists: false,
    });
    let outs = h.settle();
    let answer = |id| {
        outs.iter()
            .find_map(|o| {
                if let Output::Reply { request, result } = o {
                    (*request == id).then(|| result.clone())
                } else {
                    None
                }
            })
            .unwrap()
    };
    assert!(answer(create).is_ok() && answer(dropped).is_ok());
    assert!(matches!(answer(late), Err(MetaError::NotFound(m)) if m.contains("being dropped")));
    assert!(h.core.catalog().unwrap().clusters.is_empty());
    assert_eq!(
        h.stored().catalog,
        h.core.catalog().unwrap().clone(),
        "what is stored is what the leader holds"
    );
}

#[test]
fn bad_drops_are_refused_with_their_code() {
    let config = CoreConfig {
        default_cluster: Some(spec("default")),
        cluster_ids_max: 3,
        ..CoreConfig::default()
    };
    let mut h = Harness::leader_with(config);
    h.advance(1_000);
    h.settle();
    let default = h.call(drop("default", true));
    assert!(
        matches!(&default, Err(MetaError::FailedPrecondition(m)) if m.contains("default cluster")),
        "{default:?}"
    );
    assert!(matches!(h.call(drop("nope", true)), Err(MetaError::NotFound(_))));
    // Dropped ids count against the ids the service gives.
    cluster_id(&mut h, "x");
    h.call(drop("x", false)).unwrap();
    cluster_id(&mut h, "y");
    let full = h.call(Request::CreateCluster(spec("z")));
    assert!(
        matches!(&full, Err(MetaError::ResourceExhausted(m)) if m.contains("cluster_ids_max")),
        "{full:?}"
    );
}
