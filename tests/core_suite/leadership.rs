//! Who serves, through the real core: a follower refuses requests and sends heartbeats to the
//! leader it knows; a leader creates the configured default cluster by itself (and says
//! "retry", not "not found", until it has); and the leader's own consistency check trips at the
//! decision that broke an index.

use crate::harness::*;
use shardmeta::core::model::Topology;
use shardmeta::core::storage::WriteResult;
use shardmeta::core::*;

#[test]
fn follower_refuses_requests_and_heartbeats_as_not_leader() {
    let mut h = Harness::follower();
    let id = h.request(Request::ListClusters { page: PageRequest::default() });
    assert_eq!(h.outputs(), vec![Output::Reply { request: id, result: Err(MetaError::NotLeader) }]);
    assert_eq!(Node::new(1).heartbeat(&mut h), Err(MetaError::NotLeader));
    assert_eq!(h.outputs(), vec![]);
}

/// A follower that knows who leads sends a refused heartbeat stream there, naming the term, while
/// the sighting is trusted; other refusals carry their error.
#[test]
fn a_follower_redirects_refused_heartbeats_to_the_leader_it_knows() {
    let mut h = Harness::follower();
    let mut node = Node::new(1);
    assert_eq!(node.heartbeat(&mut h), Err(MetaError::NotLeader));
    let seen = ObservedLeader {
        endpoint: "m2:7000".into(),
        term: Term(9),
        until: h.now + Duration(1_000),
    };
    h.core.handle(h.now, Input::Leadership(Leadership::Observed { leader: Some(seen) }));
    h.core.handle(
        h.now,
        Input::Heartbeat { session: SessionId(4), heartbeat: &node_heartbeat("n1") },
    );
    let redirect = Redirect { endpoint: "m2:7000".into(), term: Term(9) };
    assert_eq!(
        h.outputs(),
        vec![Output::CloseStream {
            session: SessionId(4),
            redirect: Some(redirect),
            error: MetaError::NotLeader
        }]
    );
    let later = h.now + Duration(1_000);
    h.core.handle(
        later,
        Input::Heartbeat { session: SessionId(4), heartbeat: &node_heartbeat("n1") },
    );
    assert_eq!(
        h.outputs(),
        vec![Output::CloseStream {
            session: SessionId(4),
            redirect: None,
            error: MetaError::NotLeader
        }],
        "a sighting past its deadline sends no one there"
    );
    h.core.handle(h.now, Input::Leadership(Leadership::Observed { leader: None }));
    h.core.handle(
        h.now,
        Input::Heartbeat { session: SessionId(4), heartbeat: &node_heartbeat("n1") },
    );
    assert_eq!(
        h.outputs(),
        vec![Output::CloseStream {
            session: SessionId(4),
            redirect: None,
            error: MetaError::NotLeader
        }]
    );
}

fn node_heartbeat(name: &str) -> Heartbeat {
    Heartbeat {
        cluster: "c".into(),
        node: name.into(),
        endpoint: format!("{name}:1"),
        zone: String::new(),
        labels: Vec::new(),
        incarnation: 1,
        seq: 1,
        stats: NodeStats::default(),
        shards: vec![],
        tables: vec![],
        load_rejections: 0,
        leaving: false,
    }
}

/// A leader configured with a 2-shard default cluster, before its first tick.
fn leader_with_default_cluster() -> Harness {
    let spec = ClusterSpec {
        name: "default".into(),
        shard_count: 2,
        followers_per_shard: 0,
        topology: Topology::Dynamic,
        min_nodes: 1,
    };
    let mut h = Harness::follower();
    h.core = MetaCore::new(CoreConfig { default_cluster: Some(spec), ..CoreConfig::default() }, 7);
    h.gain(Term(1), Default::default());
    h
}

/// The default cluster is the core's to create: on its first tick, and again after a create
/// whose write failed, until it exists.
#[test]
fn a_leader_creates_the_configured_default_cluster_until_it_exists() {
    let mut h = leader_with_default_cluster();
    h.advance(0);
    let Some(Output::Persist(b)) = h.core.poll_output() else {
        panic!("the first tick creates the default cluster")
    };
    h.write_result(b.id, WriteResult::Error);
    assert!(h.outputs().contains(&Output::LoadSnapshot { term: Term(1) }));
    let snapshot = h.stored();
    h.core.handle(h.now, Input::Snapshot { term: Term(1), snapshot });
    h.settle(); // the barrier
    h.advance(1_000);
    h.settle();
    assert!(
        h.core.catalog().unwrap().cluster_by_name("default").is_some(),
        "created on a later tick"
    );
    h.advance(1_000);
    assert_eq!(h.outputs(), vec![], "and only once");
}

/// Until the default cluster exists, requests naming it are told to retry, not that it does not
/// exist: a client that starts with a fresh service would otherwise give up on it. (Seen in CI:
/// a create raced the leader's first tick and got `NOT_FOUND`.)
#[test]
fn the_default_cluster_is_unavailable_not_missing_until_it_is_created() {
    let mut h = leader_with_default_cluster();
    let list = |cluster: &str| Request::ListShards {
        cluster: cluster.into(),
        page: PageRequest::default(),
    };
    assert!(
        matches!(h.call(list("default")), Err(MetaError::Unavailable(_))),
        "before the first tick"
    );
    assert!(matches!(h.call(list("other")), Err(MetaError::NotFound(_))));
    h.advance(0);
    h.settle();
    assert!(matches!(h.call(list("default")), Ok(Response::Shards(_))), "once created");
}

/// The leader checks every derived index against the catalog and intent after each input
/// (debug builds): a load index left stale by a planted bug trips it at the decision that
/// broke it, not at some later placement.
#[test]
#[should_panic(expected = "load index")]
fn a_stale_load_index_trips_the_leaders_own_check() {
    let mut h = Harness::follower();
    h.core = MetaCore::new(
        CoreConfig { planted_bug: Some(PlantedBug::StaleLoadIndex), ..CoreConfig::default() },
        7,
    );
    h.gain(Term(1), Default::default());
    h.create_cluster(4, 0);
    let mut nodes: Vec<Node> = (1..=2).map(Node::new).collect();
    for _ in 0..4 {
        round(&mut h, &mut nodes, 600);
    }
}
