//! Tier-1 tests: one input, the exact outputs.

mod harness;

use std::collections::BTreeMap;

use harness::*;
use shardmeta::core::model::Topology;
use shardmeta::core::storage::{WriteResult, FENCE_KEY};
use shardmeta::core::*;

#[test]
fn follower_refuses_requests_and_heartbeats_as_not_leader() {
    let mut h = Harness::follower();
    let id = h.request(Request::ListClusters { page: PageRequest::default() });
    assert_eq!(h.outputs(), vec![Output::Reply { request: id, result: Err(MetaError::NotLeader) }]);
    assert_eq!(Node::new(1).heartbeat(&mut h), Err(MetaError::NotLeader));
    assert_eq!(h.outputs(), vec![]);
}

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
fn unchanged_heartbeat_renews_leases_and_writes_nothing() {
    let (mut h, mut nodes) = steady_cluster(8);
    h.advance(1_000);
    h.settle();
    nodes[0].heartbeat(&mut h).unwrap();
    let outs = h.outputs();
    let [Output::ToNode { session, message }] = &outs[..] else {
        panic!("exactly one reply: {outs:?}")
    };
    assert_eq!(*session, nodes[0].session);
    assert!(message.commands.is_empty(), "{message:?}");
    let grant = message.lease.as_ref().expect("a heartbeat reply grants leases");
    assert!(grant.revoked.is_empty());
    assert_eq!(grant.duration_ms, LEASE);
}

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
fn bad_requests_get_typed_errors_and_change_nothing() {
    let (mut h, _) = steady_cluster(2);
    let before = h.store.clone();
    let err = |r: Result<Response, MetaError>| r.expect_err("refused");
    assert!(
        matches!(err(h.create_table("", false)), MetaError::InvalidArgument(m) if m.contains("empty"))
    );
    assert!(matches!(err(h.create_table("bad name", false)), MetaError::InvalidArgument(_)));
    assert!(
        matches!(err(h.create_table(&"x".repeat(200), false)), MetaError::InvalidArgument(m) if m.contains("limit"))
    );
    assert!(
        matches!(err(h.create_table("__t_0", false)), MetaError::InvalidArgument(m) if m.contains("reserved"))
    );
    assert_eq!(h.store, before, "refused requests write nothing");

    let created = h.create_table("t", false).unwrap();
    assert!(matches!(err(h.create_table("t", false)), MetaError::AlreadyExists(_)));
    let again = h.create_table("t", true).unwrap();
    let (
        Response::TableCreated { table: a, created: true },
        Response::TableCreated { table: b, created: false },
    ) = (created, again)
    else {
        panic!()
    };
    assert_eq!(a, b, "if-not-exists answers with the existing table");

    let id = h.request(Request::RouteTables {
        cluster: "nope".into(),
        schema: "public".into(),
        tables: vec!["t".into()],
    });
    assert!(
        matches!(&h.outputs()[..], [Output::Reply { request, result: Err(MetaError::NotFound(m)) }] if *request == id && m.contains("nope"))
    );
    let id = h.request(Request::DropTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "missing".into(),
    });
    assert!(
        matches!(&h.outputs()[..], [Output::Reply { request, result: Err(MetaError::NotFound(_)) }] if *request == id)
    );
    let big = CreateTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "big".into(),
        encoded_schema: vec![0; CoreConfig::default().encoded_schema_bytes_max + 1],
        options: BTreeMap::new(),
        if_not_exists: false,
        partition: None,
    };
    let id = h.request(Request::CreateTable(big));
    assert!(
        matches!(&h.outputs()[..], [Output::Reply { request, result: Err(MetaError::InvalidArgument(m)) }] if *request == id && m.contains("bytes"))
    );
}

#[test]
fn misbehaving_heartbeats_are_refused_whole() {
    let (mut h, _) = steady_cluster(2);
    let mut hb = Heartbeat {
        cluster: "c".into(),
        node: "n1".into(),
        endpoint: "n1:1".into(),
        zone: String::new(),
        incarnation: 1,
        seq: 1_000,
        stats: NodeStats::default(),
        shards: vec![],
        tables: vec![],
        load_rejections: 0,
        leaving: false,
    };
    let report = |id| ShardReport {
        id: ShardId(id),
        role: Role::Leader,
        version: Version(1),
        status: ReplicaStatus::Ready,
        load: ShardLoad::default(),
    };
    hb.shards = vec![report(5)];
    assert!(
        matches!(h.heartbeat(SessionId(1), &hb), Err(MetaError::InvalidArgument(m)) if m.contains("shard 5"))
    );
    hb.shards = vec![report(1), report(0)];
    assert!(
        matches!(h.heartbeat(SessionId(1), &hb), Err(MetaError::InvalidArgument(m)) if m.contains("order"))
    );
    hb.cluster = "nope".into();
    assert!(matches!(h.heartbeat(SessionId(1), &hb), Err(MetaError::NotFound(_))));
    hb.cluster = "c".into();
    hb.shards = vec![];
    hb.node = "new".into();
    hb.endpoint = "no port".into();
    assert!(
        matches!(h.heartbeat(SessionId(9), &hb), Err(MetaError::InvalidArgument(m)) if m.contains("endpoint"))
    );
    // A 2 MiB zone once made the next storage transaction too large for etcd.
    hb.endpoint = "new:1".into();
    hb.zone = "z".repeat(2 << 20);
    assert!(
        matches!(h.heartbeat(SessionId(9), &hb), Err(MetaError::InvalidArgument(m)) if m.contains("zone is 2097152 bytes"))
    );
    hb.zone = "zone a".into();
    assert!(
        matches!(h.heartbeat(SessionId(9), &hb), Err(MetaError::InvalidArgument(m)) if m.contains("zone"))
    );
    (hb.node, hb.endpoint) = ("n1".into(), "n1:1".into());
    hb.zone = "z".repeat(2 << 20);
    assert!(
        matches!(h.heartbeat(SessionId(1), &hb), Err(MetaError::InvalidArgument(m)) if m.contains("zone")),
        "nor for a known node"
    );
    assert_eq!(h.outputs(), vec![], "a refused heartbeat changes nothing");
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

/// Creates a table; returns the shard it was placed on.
fn created_on(h: &mut Harness, name: &str) -> ShardId {
    let Ok(Response::TableCreated { table, .. }) = h.create_table(name, false) else {
        panic!("create {name}")
    };
    table.shard
}

/// The commands for `shard` in heartbeat replies (those that grant leases) among `outs`.
fn resync_for(outs: &[Output], shard: ShardId) -> Vec<CommandKind> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToNode { message, .. } if message.lease.is_some() => Some(message),
            _ => None,
        })
        .flat_map(|m| m.commands.iter().filter(|c| c.shard == shard).map(|c| c.kind.clone()))
        .collect()
}

fn leader_of(nodes: &[Node], shard: ShardId, h: &Harness) -> usize {
    nodes.iter().position(|n| n.host.is_leading(shard, h.now)).expect("the shard has a leader")
}

/// A heartbeat sent before a pushed create arrived reports the version just before it. Sending
/// the whole table set would only race the push (and at 100 tables a shard cost a hundred times
/// the create); once the push has had two heartbeat intervals, the lag means it was lost.
#[test]
fn a_heartbeat_racing_a_pushed_create_is_not_answered_with_the_whole_shard() {
    let (mut h, mut nodes) = steady_cluster(2);
    let shard = created_on(&mut h, "t1");
    let holder = leader_of(&nodes, shard, &h);
    // The node never heard the push.
    nodes[holder].heartbeat(&mut h).unwrap();
    assert_eq!(resync_for(&h.outputs(), shard), [], "no re-sync while the push is in flight");

    h.advance(2 * CoreConfig::default().heartbeat_interval_ms + 1);
    h.settle();
    nodes[holder].heartbeat(&mut h).unwrap();
    let lost = resync_for(&h.outputs(), shard);
    assert!(
        matches!(&lost[..], [CommandKind::Open { tables, .. }] if tables.len() == 1),
        "the push was lost: re-sync, {lost:?}"
    );
}

/// Two versions behind is never one push in flight: re-sync at once.
#[test]
fn a_replica_two_versions_behind_is_resynced_at_once() {
    let (mut h, mut nodes) = steady_cluster(1);
    created_on(&mut h, "t1");
    let shard = created_on(&mut h, "t2");
    let holder = leader_of(&nodes, shard, &h);
    nodes[holder].heartbeat(&mut h).unwrap();
    let resync = resync_for(&h.outputs(), shard);
    assert!(
        matches!(&resync[..], [CommandKind::Open { tables, .. }] if tables.len() == 2),
        "{resync:?}"
    );
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
        incarnation: 1,
        seq: 1,
        stats: NodeStats::default(),
        shards: vec![],
        tables: vec![],
        load_rejections: 0,
        leaving: false,
    }
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
