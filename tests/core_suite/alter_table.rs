//! AlterTable: a compare-and-set on the table version. The new version lands with a shard
//! version bump and reaches every replica as a versioned command; of two alters from one
//! version exactly one wins; every refusal has its code and writes nothing.

use std::collections::BTreeMap;

use crate::harness::*;
use shardmeta::core::*;

fn alter(
    expected_version: u32,
    encoded_schema: Option<Vec<u8>>,
    options: Option<&[(&str, &str)]>,
) -> Request {
    alter_of("t", expected_version, encoded_schema, options)
}

fn alter_of(
    name: &str,
    expected_version: u32,
    encoded_schema: Option<Vec<u8>>,
    options: Option<&[(&str, &str)]>,
) -> Request {
    let options = options.map(|o| o.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    Request::AlterTable(AlterTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: name.into(),
        expected_version,
        encoded_schema,
        options,
    })
}

fn detail(h: &mut Harness, name: &str) -> TableDetail {
    match h.call(Request::GetTables {
        cluster: "c".into(),
        schema: "public".into(),
        tables: vec![name.into()],
    }) {
        Ok(Response::TableDetails { mut tables, .. }) => tables.remove(0),
        other => panic!("{other:?}"),
    }
}

/// Creates a table; the nodes hear of it as it lands.
fn create(
    h: &mut Harness,
    nodes: &mut [Node],
    name: &str,
    partition: Option<PartitionSpec>,
) -> TableInfo {
    let options: BTreeMap<String, String> = [("ttl".to_string(), "7d".to_string())].into();
    let req = CreateTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: name.into(),
        encoded_schema: vec![1],
        options,
        if_not_exists: false,
        partition,
    };
    let id = h.request(Request::CreateTable(req));
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    match answer(&outs, id) {
        Ok(Response::TableCreated { table, .. }) => table,
        other => panic!("{other:?}"),
    }
}

fn answer(outs: &[Output], id: RequestId) -> Result<Response, MetaError> {
    let reply = outs.iter().find_map(|o| match o {
        Output::Reply { request, result } if *request == id => Some(result.clone()),
        _ => None,
    });
    reply.expect("answered")
}

/// The alter commands a batch of outputs carries, as (session, shard, version, table, table version).
fn alter_commands(outs: &[Output]) -> Vec<(SessionId, ShardId, Version, TableId, u32)> {
    let mut found = Vec::new();
    for o in outs {
        if let Output::ToNode { session, message } = o {
            for c in &message.commands {
                if let CommandKind::AlterTable { table, table_version } = c.kind {
                    found.push((*session, c.shard, c.version, table, table_version));
                }
            }
        }
    }
    found
}

#[test]
fn an_alter_lands_with_a_new_table_version_and_reaches_every_replica() {
    let (mut h, mut nodes) = steady_cluster_with(4, 1);
    let t = create(&mut h, &mut nodes, "t", None);
    let before = catalog(&h).shard(t.shard).version;

    let id = h.request(alter(1, Some(vec![7, 7]), None));
    let outs = h.settle();
    let reply = answer(&outs, id);
    let Ok(Response::TableAltered(altered)) = reply else { panic!("{reply:?}") };
    assert_eq!(
        (altered.version, &altered.encoded_schema[..], altered.options["ttl"].as_str()),
        (2, &[7, 7][..], "7d"),
        "options kept"
    );

    // Both replicas hear it at the shard's next version, and take it.
    let commands = alter_commands(&outs);
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands.iter().all(|&(_, shard, version, table, tv)| (shard, version, table, tv)
        == (t.shard, Version(before + 1), t.id, 2)));
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    for n in &nodes {
        assert_eq!(
            n.host.shards()[&t.shard].version,
            Version(before + 1),
            "{} holds the new shard version",
            n.name
        );
    }
    round(&mut h, &mut nodes, 500);
    check(&h, &nodes);

    // Options replaced whole; the schema kept.
    let Ok(Response::TableAltered(again)) =
        h.call(alter(2, None, Some(&[("ttl", "1d"), ("zstd", "on")])))
    else {
        panic!()
    };
    assert_eq!(
        (again.version, &again.encoded_schema[..], again.options.len()),
        (3, &[7, 7][..], 2)
    );

    // It is stored: a new meta leader answers the same.
    let got = detail(&mut h, "t");
    assert_eq!(got, again);
    let snapshot = h.stored();
    h.core = MetaCore::new(CoreConfig::default(), 8);
    h.gain(Term(2), snapshot);
    h.settle();
    assert_eq!(detail(&mut h, "t"), got);
}

#[test]
fn of_two_alters_from_one_version_exactly_one_wins() {
    let (mut h, mut nodes) = steady_cluster(4);
    create(&mut h, &mut nodes, "t", None);
    // Both are decided before either lands.
    let first = h.request(alter(1, Some(vec![1, 1]), None));
    let second = h.request(alter(1, Some(vec![2, 2]), None));
    let outs = h.settle();
    let (a, b) = (answer(&outs, first), answer(&outs, second));
    let wins = [&a, &b].iter().filter(|r| matches!(r, Ok(Response::TableAltered(_)))).count();
    assert_eq!(wins, 1, "{a:?} / {b:?}");
    assert!(matches!(&b, Err(MetaError::Unavailable(m)) if m.contains("being altered")), "{b:?}");
    // The loser retries as told, and learns that it lost.
    let retried = h.call(alter(1, Some(vec![2, 2]), None));
    assert!(
        matches!(&retried, Err(MetaError::Aborted(m)) if m.contains("at version 2")),
        "{retried:?}"
    );
    assert_eq!(&detail(&mut h, "t").encoded_schema[..], &[1, 1]);
}

#[test]
fn a_partitioned_tables_alter_reaches_its_sub_tables_shards() {
    let (mut h, mut nodes) = steady_cluster(4);
    let parent = create(
        &mut h,
        &mut nodes,
        "p",
        Some(PartitionSpec { partition_count: 4, encoded: vec![] }),
    );
    let sub_shards: Vec<ShardId> =
        parent.sub_tables.iter().map(|&s| ShardId(catalog(&h).table(s).shard)).collect();

    let refused = h.call(alter_of("__p_1", 1, Some(vec![9]), None));
    assert!(
        matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("alter that table instead")),
        "{refused:?}"
    );

    let id = h.request(alter_of("p", 1, Some(vec![9]), None));
    let outs = h.settle();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Reply { request, result: Ok(_) } if *request == id)));
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    for shard in sub_shards.iter().chain([&parent.shard]) {
        let version = catalog(&h).shard(*shard).version;
        let leader = nodes.iter().find(|n| n.host.is_leading(*shard, h.now)).expect("led");
        assert_eq!(
            leader.host.shards()[shard].version,
            Version(version),
            "shard {shard} is at its new version on its leader"
        );
    }
    let sub = detail(&mut h, "__p_2");
    assert_eq!(
        (sub.version, &sub.encoded_schema[..]),
        (2, &[9][..]),
        "a sub-table shares its parent's new version"
    );
    round(&mut h, &mut nodes, 500);
    check(&h, &nodes);
}

#[test]
fn bad_alters_are_refused_with_their_code_and_write_nothing() {
    let config =
        CoreConfig { encoded_schema_bytes_max: 10, table_options_max: 2, ..CoreConfig::default() };
    let (mut h, mut nodes) = steady_cluster_configured(config, 2, 4, 0, &[]);
    create(&mut h, &mut nodes, "t", None);
    create(&mut h, &mut nodes, "gone", None);
    let stored = h.store.clone();

    type Case = (Request, fn(&MetaError) -> bool);
    let cases: Vec<Case> = vec![
        (
            alter(1, None, None),
            |e| matches!(e, MetaError::InvalidArgument(m) if m.contains("changes nothing")),
        ),
        (
            alter(1, Some(vec![0; 11]), None),
            |e| matches!(e, MetaError::InvalidArgument(m) if m.contains("limit is 10")),
        ),
        (
            alter(1, None, Some(&[("a", ""), ("b", ""), ("c", "")])),
            |e| matches!(e, MetaError::InvalidArgument(m) if m.contains("3 table options")),
        ),
        (
            alter(1, None, Some(&[("", "x")])),
            |e| matches!(e, MetaError::InvalidArgument(m) if m.contains("empty")),
        ),
        (
            alter(2, Some(vec![1]), None),
            |e| matches!(e, MetaError::Aborted(m) if m.contains("at version 1, not the expected 2")),
        ),
        (alter(0, Some(vec![1]), None), |e| matches!(e, MetaError::Aborted(_))),
        (
            alter_of("nope", 1, Some(vec![1]), None),
            |e| matches!(e, MetaError::NotFound(m) if m.contains("\"nope\"")),
        ),
        (
            Request::AlterTable(AlterTable {
                cluster: "c".into(),
                schema: "nope".into(),
                name: "t".into(),
                expected_version: 1,
                encoded_schema: Some(vec![]),
                options: None,
            }),
            |e| matches!(e, MetaError::NotFound(m) if m.contains("schema")),
        ),
        (
            Request::AlterTable(AlterTable {
                cluster: "nope".into(),
                schema: "public".into(),
                name: "t".into(),
                expected_version: 1,
                encoded_schema: Some(vec![]),
                options: None,
            }),
            |e| matches!(e, MetaError::NotFound(m) if m.contains("cluster")),
        ),
    ];
    for (req, expected) in cases {
        let got = h.call(req.clone());
        assert!(got.as_ref().is_err_and(expected), "{req:?} got {got:?}");
    }
    assert_eq!(h.store, stored, "no refusal wrote anything");

    // An alter behind a drop in flight would bring the table back.
    let drop = h.request(Request::DropTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "gone".into(),
    });
    let behind = h.request(alter_of("gone", 1, Some(vec![1]), None));
    let outs = h.settle();
    assert!(matches!(answer(&outs, drop), Ok(Response::TableDropped { .. })));
    let behind = answer(&outs, behind);
    assert!(
        matches!(&behind, Err(MetaError::Unavailable(m)) if m.contains("being altered or dropped")),
        "{behind:?}"
    );
    assert!(matches!(
        h.call(alter_of("gone", 1, Some(vec![1]), None)),
        Err(MetaError::NotFound(_))
    ));
}
