//! Heartbeats through the real core: one that matches the catalog renews leases and writes
//! nothing, one racing a pushed change is not answered with the whole shard, a replica two
//! versions behind is re-synced at once, and a misbehaving one is refused whole.

use crate::harness::*;
use shardmeta::core::*;

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

#[test]
fn misbehaving_heartbeats_are_refused_whole() {
    let (mut h, _) = steady_cluster(2);
    let mut hb = Heartbeat {
        cluster: "c".into(),
        node: "n1".into(),
        endpoint: "n1:1".into(),
        zone: String::new(),
        labels: Vec::new(),
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
        lag: None,
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

/// A node's labels are stored in its record with the zone beside them, listed with the zone
/// among them, changed when the node says otherwise, and kept across a meta failover; labels
/// that break the rules refuse the whole heartbeat with a short message and change nothing.
#[test]
fn labels_are_stored_listed_with_the_zone_and_bad_ones_refused() {
    let (mut h, mut nodes) = steady_cluster(2);
    let label = |k: &str, v: &str| model::Label::new(k, v);
    nodes[0].zone = "a".into();
    nodes[0].labels = vec![label("disk", "ssd"), label("rack", "r1")];
    round(&mut h, &mut nodes, 1_000);
    let listed = |h: &mut Harness| node_info(h, "n1").labels;
    let with_zone = vec![label("disk", "ssd"), label("rack", "r1"), label("zone", "a")];
    assert_eq!(listed(&mut h), with_zone);

    nodes[0].labels[1].value = "r2".into();
    round(&mut h, &mut nodes, 1_000);
    assert_eq!(listed(&mut h)[1], label("rack", "r2"), "a changed label is stored");

    let refused = |nodes: &mut [Node], h: &mut Harness, labels: Vec<model::Label>| {
        let kept = std::mem::replace(&mut nodes[0].labels, labels);
        let answer = nodes[0].heartbeat(h);
        nodes[0].labels = kept;
        match answer {
            Err(MetaError::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        }
    };
    let many = (0..17).map(|i| label(&format!("k{i:02}"), "v")).collect();
    assert_eq!(refused(&mut nodes, &mut h, many), "17 labels; the limit is 16");
    let zone = refused(&mut nodes, &mut h, vec![label("zone", "b")]);
    assert!(zone.contains("reserved"), "{zone}");
    let twice = refused(&mut nodes, &mut h, vec![label("a", "1"), label("a", "2")]);
    assert!(twice.contains("given twice"), "{twice}");
    let huge = "v".repeat(1 << 20);
    let long = refused(&mut nodes, &mut h, vec![label("disk", &huge)]);
    assert!(long.len() < 300 && long.contains("must be 1 to 128 bytes"), "{long}");
    let spaced = refused(&mut nodes, &mut h, vec![label("disk", "s s")]);
    assert!(spaced.contains("' '"), "{spaced}");
    let key = refused(&mut nodes, &mut h, vec![label("9x", "v")]);
    assert!(key.contains("label key"), "{key}");
    round(&mut h, &mut nodes, 1_000);
    assert_eq!(listed(&mut h)[1], label("rack", "r2"), "nothing changed");

    // A new meta leader reads them from storage.
    let mut next = Harness::leader();
    next.gain(Term(99), h.stored());
    let read = node_info(&mut next, "n1").labels;
    assert_eq!(read, [label("disk", "ssd"), label("rack", "r2"), label("zone", "a")]);
}
