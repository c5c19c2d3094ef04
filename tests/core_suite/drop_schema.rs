//! DropSchema: an empty schema goes in one write; one with tables only with cascade, which
//! hides it at once and deletes its tables a transaction at a time, carried on by a new meta
//! leader. Every refusal has its code and writes nothing.

use crate::harness::*;
use shardmeta::core::*;

fn create_schema(h: &mut Harness, name: &str) -> SchemaId {
    match h.call(Request::CreateSchema {
        cluster: "c".into(),
        name: name.into(),
        if_not_exists: false,
    }) {
        Ok(Response::SchemaCreated { id, .. }) => id,
        other => panic!("{other:?}"),
    }
}

fn create_in(schema: &str, name: &str, partition: Option<PartitionSpec>) -> Request {
    Request::CreateTable(CreateTable {
        cluster: "c".into(),
        schema: schema.into(),
        name: name.into(),
        encoded_schema: vec![1],
        options: Default::default(),
        if_not_exists: false,
        partition,
    })
}

fn drop_schema(name: &str, cascade: bool) -> Request {
    Request::DropSchema { cluster: "c".into(), name: name.into(), cascade }
}

fn tables_in(h: &Harness, schema: SchemaId) -> usize {
    catalog(h).tables.in_schema(schema).count()
}

#[test]
fn an_empty_schema_is_dropped_at_once_and_its_name_is_free() {
    let (mut h, _) = steady_cluster(2);
    let sid = create_schema(&mut h, "s");
    assert_eq!(h.call(drop_schema("s", false)), Ok(Response::SchemaDropped { id: sid, tables: 0 }));
    assert!(!catalog(&h).schema_by_name.contains_key("s"));
    assert_ne!(create_schema(&mut h, "s"), sid, "a new schema of that name gets a new id");
}

#[test]
fn a_cascading_drop_deletes_every_table_across_a_meta_failover() {
    let (mut h, mut nodes) = steady_cluster_of(3, 8, 1);
    let sid = create_schema(&mut h, "big");
    for i in 0..6_000 {
        h.request(create_in("big", &format!("t{i}"), None));
    }
    h.request(create_in(
        "big",
        "parted",
        Some(PartitionSpec { partition_count: 32, encoded: vec![] }),
    ));
    h.request(create_in("public", "kept", None));
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    assert_eq!(tables_in(&h, sid), 6_033);

    let refused = h.call(drop_schema("big", false));
    assert!(
        matches!(&refused, Err(MetaError::FailedPrecondition(m)) if m.contains("holds 6033 tables")),
        "{refused:?}"
    );
    assert_eq!(
        h.call(drop_schema("big", true)),
        Ok(Response::SchemaDropped { id: sid, tables: 6_033 })
    );

    // Hidden at once: nothing in it is found or created, and its name is not free yet.
    let get = h.call(Request::GetTables {
        cluster: "c".into(),
        schema: "big".into(),
        tables: vec!["t1".into()],
    });
    assert!(matches!(&get, Err(MetaError::NotFound(m)) if m.contains("being dropped")), "{get:?}");
    assert!(matches!(h.call(create_in("big", "new", None)), Err(MetaError::NotFound(_))));
    let again = h.call(Request::CreateSchema {
        cluster: "c".into(),
        name: "big".into(),
        if_not_exists: true,
    });
    assert!(
        matches!(&again, Err(MetaError::Unavailable(m)) if m.contains("being dropped")),
        "{again:?}"
    );
    assert_eq!(
        h.call(drop_schema("big", true)),
        Ok(Response::SchemaDropped { id: sid, tables: 6_033 }),
        "a repeat says where it is"
    );

    // One tick's worth, then a new meta leader finishes the job from storage.
    round(&mut h, &mut nodes, 600);
    check(&h, &nodes);
    let left = tables_in(&h, sid);
    assert!(left > 0 && left < 6_033, "{left} left after a tick");
    fail_over(&mut h, 2);
    for _ in 0..20 {
        round(&mut h, &mut nodes, 600);
        check(&h, &nodes);
        if !catalog(&h).schema_by_name.contains_key("big") {
            break;
        }
    }
    assert!(
        !catalog(&h).schema_by_name.contains_key("big"),
        "the schema is gone once its tables are"
    );
    assert_eq!(catalog(&h).tables.len(), 1, "only the public table is left");
    for n in &nodes {
        let hosted: usize = n.host.shards().values().map(|s| s.tables.len()).sum();
        assert!(hosted <= 1, "{} still hosts {hosted} tables", n.name);
    }
    create_schema(&mut h, "big");
}

#[test]
fn bad_drops_are_refused_with_their_code_and_write_nothing() {
    let (mut h, _) = steady_cluster(2);
    create_schema(&mut h, "s");
    h.call(create_in("s", "t", None)).unwrap();
    let stored = h.store.clone();
    let public = h.call(drop_schema("public", true));
    assert!(
        matches!(&public, Err(MetaError::FailedPrecondition(m)) if m.contains("public schema")),
        "{public:?}"
    );
    assert!(
        matches!(h.call(drop_schema("nope", true)), Err(MetaError::NotFound(m)) if m.contains("schema \"nope\""))
    );
    let other = Request::DropSchema { cluster: "nope".into(), name: "s".into(), cascade: true };
    assert!(matches!(h.call(other), Err(MetaError::NotFound(m)) if m.contains("cluster")));
    assert!(matches!(h.call(drop_schema("s", false)), Err(MetaError::FailedPrecondition(_))));
    assert_eq!(h.store, stored);

    // A create in flight holds the schema's drop off until it lands.
    let create = h.request(create_in("s", "u", None));
    let dropped = h.request(drop_schema("s", true));
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
    assert!(answer(create).is_ok());
    assert!(
        matches!(answer(dropped), Err(MetaError::Unavailable(m)) if m.contains("being written"))
    );
}

/// Tables dropped from one shard in one change reach its replicas as one incremental command,
/// not as a re-sync carrying every table the shard keeps.
#[test]
fn many_drops_from_one_shard_travel_as_one_command() {
    let (mut h, mut nodes) = steady_cluster(4);
    for i in 0..200 {
        h.request(create_in("public", &format!("k{i}"), None));
    }
    h.request(create_in(
        "public",
        "parted",
        Some(PartitionSpec { partition_count: 32, encoded: vec![] }),
    ));
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    let id = h.request(Request::DropTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "parted".into(),
    });
    let outs = h.settle();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Reply { request, result: Ok(_) } if *request == id)));
    let commands: Vec<&CommandKind> = outs
        .iter()
        .filter_map(|o| if let Output::ToNode { message, .. } = o { Some(message) } else { None })
        .flat_map(|m| m.commands.iter().map(|c| &c.kind))
        .collect();
    let dropped: usize = commands
        .iter()
        .map(|k| if let CommandKind::DropTable { tables } = k { tables.len() } else { 0 })
        .sum();
    assert_eq!(dropped, 33, "{commands:?}");
    assert!(
        !commands.iter().any(|k| matches!(k, CommandKind::Open { .. })),
        "no shard was re-sent whole"
    );
    assert!(commands.len() <= 4, "one command per shard: {}", commands.len());
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    round(&mut h, &mut nodes, 500);
    check(&h, &nodes);
    let hosted: usize =
        nodes.iter().flat_map(|n| n.host.shards().values()).map(|s| s.tables.len()).sum();
    assert_eq!(hosted, 200);
}
