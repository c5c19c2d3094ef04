//! Route watches in the core: the first update answers at once, every landed route change
//! follows in order (table created, dropped, shard led elsewhere after a failover), a resume
//! from the last revision seen misses nothing, and a resume the log cannot serve is told to
//! resync. Refusals end the watch with their code.

use crate::harness::*;
use shardmeta::core::storage::WriteResult;
use shardmeta::core::*;

fn watch(h: &mut Harness, id: u64, schema: Option<&str>, from_revision: u64) -> Vec<Output> {
    let request =
        WatchRoutes { cluster: "c".into(), schema: schema.map(String::from), from_revision };
    h.core.handle(h.now, Input::Watch { watch: WatchId(id), request: &request });
    h.outputs()
}

/// The updates for watch `id` among `outs`, and how it ended, if it did.
fn updates(outs: &[Output], id: u64) -> (Vec<RouteUpdate>, Option<MetaError>) {
    let mut got = Vec::new();
    let mut ended = None;
    for o in outs {
        match o {
            Output::ToWatcher { watch, update } if *watch == WatchId(id) => {
                got.push(update.clone())
            }
            Output::EndWatch { watch, error } if *watch == WatchId(id) => {
                ended = Some(error.clone())
            }
            _ => {}
        }
    }
    (got, ended)
}

fn changes(us: &[RouteUpdate]) -> Vec<RouteChange> {
    us.iter().flat_map(|u| u.changes.clone()).collect()
}

/// Creates table `name`; what meta sent meanwhile.
fn create(h: &mut Harness, nodes: &mut [Node], name: &str) -> Vec<Output> {
    h.request(Request::CreateTable(CreateTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: name.into(),
        encoded_schema: vec![],
        options: Default::default(),
        if_not_exists: false,
        partition: None,
    }));
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    outs
}

fn rounds_collecting(
    h: &mut Harness,
    nodes: &mut [Node],
    silent: Option<usize>,
    rounds: usize,
) -> Vec<Output> {
    let mut all = Vec::new();
    for _ in 0..rounds {
        for i in (0..nodes.len()).filter(|&i| Some(i) != silent) {
            nodes[i].heartbeat(h).unwrap();
            let outs = h.settle();
            nodes.iter_mut().for_each(|n| n.receive(&outs));
            all.extend(outs);
        }
        h.advance(1_000);
        let outs = h.settle();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
        all.extend(outs);
    }
    all
}

#[test]
fn a_watch_sees_creates_drops_and_a_failover_in_order() {
    let (mut h, mut nodes) = steady_cluster_of(3, 3, 1);
    let (first, ended) = updates(&watch(&mut h, 1, None, 0), 1);
    assert_eq!(ended, None);
    assert!(
        matches!(&first[..], [RouteUpdate { resync: true, changes, .. }] if changes.is_empty()),
        "{first:?}"
    );
    let start = first[0].revision;

    let (created, _) = updates(&create(&mut h, &mut nodes, "t"), 1);
    let table_shard = match &changes(&created)[..] {
        [RouteChange::Table { name, shard, .. }, RouteChange::Shard { shard: s, version, .. }]
            if name == "t" && shard == s =>
        {
            assert_eq!(*version, Version(catalog(&h).shard(*s).version));
            *shard
        }
        other => panic!("{other:?}"),
    };
    assert!(created[0].revision > start);

    // The node leading the table's shard dies: once its lease is over, the watch hears of the
    // shard's new leader.
    let victim = nodes.iter().position(|n| n.host.is_leading(table_shard, h.now)).unwrap();
    let outs = rounds_collecting(&mut h, &mut nodes, Some(victim), 14);
    let (moved, _) = updates(&outs, 1);
    let leader_now =
        catalog(&h).shard(table_shard).leader.map(|l| catalog(&h).node(NodeId(l)).name.clone());
    assert_ne!(leader_now.as_deref(), Some(nodes[victim].name.as_str()), "failed over");
    let last_seen = changes(&moved).into_iter().rev().find_map(|c| match c {
        RouteChange::Shard { shard, leader, .. } if shard == table_shard => {
            Some(leader.map(|l| l.name))
        }
        _ => None,
    });
    assert_eq!(last_seen, Some(leader_now), "the watch ends on the shard's leader now");
    let revisions: Vec<u64> = created.iter().chain(&moved).map(|u| u.revision).collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "revisions grow: {revisions:?}");

    let id = h.request(Request::DropTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "t".into(),
    });
    let outs = h.settle();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Reply { request, result: Ok(_) } if *request == id)));
    assert!(
        matches!(&changes(&updates(&outs, 1).0)[..], [RouteChange::TableDropped { name, .. }, RouteChange::Shard { .. }] if name == "t")
    );
}

#[test]
fn a_resume_misses_nothing_and_one_the_log_cannot_serve_resyncs() {
    let config = CoreConfig { route_log_max: 5, ..CoreConfig::default() };
    let (mut h, mut nodes) = steady_cluster_configured(config, 2, 4, 0, &[]);
    let (first, _) = updates(&watch(&mut h, 1, None, 0), 1);
    let (seen, _) = updates(&create(&mut h, &mut nodes, "a"), 1);
    let resume_at = seen.last().unwrap().revision;
    h.core.handle(h.now, Input::Unwatch { watch: WatchId(1) });

    // While no one watches, two more tables come.
    let mut missed = Vec::new();
    for name in ["b", "c"] {
        assert!(
            updates(&create(&mut h, &mut nodes, name), 1).0.is_empty(),
            "an ended watch hears nothing"
        );
        missed.push(name);
    }
    let (resumed, ended) = updates(&watch(&mut h, 2, None, resume_at), 2);
    assert_eq!(ended, None);
    assert!(!resumed[0].resync, "{resumed:?}");
    let names: Vec<String> = changes(&resumed)
        .into_iter()
        .filter_map(|c| if let RouteChange::Table { name, .. } = c { Some(name) } else { None })
        .collect();
    assert_eq!(names, missed, "the resume carries exactly what was missed");

    // Resuming from the start needs 6 changes; the log keeps 5.
    let (too_old, _) = updates(&watch(&mut h, 3, None, first[0].revision), 3);
    assert!(too_old[0].resync && too_old[0].changes.is_empty(), "{too_old:?}");

    // A schema filter: another schema's tables are not sent, shard changes are.
    h.call(Request::CreateSchema {
        cluster: "c".into(),
        name: "other".into(),
        if_not_exists: false,
    })
    .unwrap();
    let (_, ended) = updates(&watch(&mut h, 4, Some("other"), 0), 4);
    assert_eq!(ended, None);
    let outs = create(&mut h, &mut nodes, "d");
    assert!(changes(&updates(&outs, 4).0).iter().all(|c| matches!(c, RouteChange::Shard { .. })));
    assert!(changes(&updates(&outs, 2).0)
        .iter()
        .any(|c| matches!(c, RouteChange::Table { name, .. } if name == "d")));

    // A new meta leader has its own log: a resume from the old term resyncs, and the old
    // leader's watches were ended when it stepped down.
    let last = updates(&outs, 2).0.last().unwrap().revision;
    h.core.handle(h.now, Input::Leadership(Leadership::Lost));
    let (_, ended) = updates(&h.outputs(), 2);
    assert!(matches!(ended, Some(MetaError::Unavailable(m)) if m.contains("leadership moved")));
    let snapshot = h.stored();
    h.core = MetaCore::new(CoreConfig::default(), 9);
    h.gain(Term(2), snapshot);
    h.settle();
    let (after, _) = updates(&watch(&mut h, 5, None, last), 5);
    assert!(
        after[0].resync && after[0].revision > last,
        "revisions grow across leaders too: {after:?}"
    );
}

#[test]
fn a_reload_resyncs_every_watcher() {
    let (mut h, mut nodes) = steady_cluster(2);
    updates(&watch(&mut h, 1, None, 0), 1);
    // A create whose write has an unknown outcome: the leader reloads the catalog whole.
    h.request(Request::CreateTable(CreateTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "x".into(),
        encoded_schema: vec![],
        options: Default::default(),
        if_not_exists: false,
        partition: None,
    }));
    let batch = h
        .outputs()
        .into_iter()
        .find_map(|o| if let Output::Persist(b) = o { Some(b) } else { None })
        .unwrap();
    h.write_result(batch.id, WriteResult::Error);
    assert!(h.outputs().iter().any(|o| matches!(o, Output::LoadSnapshot { .. })));
    let snapshot = h.stored();
    h.core.handle(h.now, Input::Snapshot { term: Term(1), snapshot });
    let (got, _) = updates(&h.settle(), 1);
    assert!(matches!(&got[..], [RouteUpdate { resync: true, .. }]), "{got:?}");
    round(&mut h, &mut nodes, 500);
}

#[test]
fn bad_watches_end_with_their_code() {
    let config = CoreConfig { watchers_max: 2, ..CoreConfig::default() };
    let (mut h, _) = steady_cluster_configured(config, 2, 2, 0, &[]);
    let unknown = WatchRoutes { cluster: "nope".into(), schema: None, from_revision: 0 };
    h.core.handle(h.now, Input::Watch { watch: WatchId(1), request: &unknown });
    assert!(
        matches!(updates(&h.outputs(), 1), (u, Some(MetaError::NotFound(m))) if u.is_empty() && m.contains("cluster"))
    );
    assert!(
        matches!(updates(&watch(&mut h, 2, Some("nope"), 0), 2).1, Some(MetaError::NotFound(m)) if m.contains("schema"))
    );
    watch(&mut h, 3, None, 0);
    watch(&mut h, 4, None, 0);
    assert!(matches!(
        updates(&watch(&mut h, 5, None, 0), 5).1,
        Some(MetaError::ResourceExhausted(_))
    ));
    // Closing one frees its place.
    h.core.handle(h.now, Input::Unwatch { watch: WatchId(3) });
    assert_eq!(updates(&watch(&mut h, 6, None, 0), 6).1, None);

    let mut follower = Harness::follower();
    let (_, ended) = updates(&watch(&mut follower, 7, None, 0), 7);
    assert_eq!(ended, Some(MetaError::NotLeader));
}
