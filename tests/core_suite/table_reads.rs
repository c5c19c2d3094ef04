//! Reading metadata back: GetTables answers what CreateTable stored (a sub-table with its
//! parent's schema), RouteTables on a partitioned table routes its sub-tables too, and every
//! refusal has its code and writes nothing.

use std::collections::BTreeMap;

use crate::harness::*;
use shardmeta::core::*;

fn create(
    h: &mut Harness,
    name: &str,
    encoded_schema: Vec<u8>,
    partition: Option<PartitionSpec>,
) -> TableInfo {
    let options: BTreeMap<String, String> = [("ttl".to_string(), "7d".to_string())].into();
    let req = CreateTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: name.into(),
        encoded_schema,
        options,
        if_not_exists: false,
        partition,
    };
    match h.call(Request::CreateTable(req)) {
        Ok(Response::TableCreated { table, .. }) => table,
        other => panic!("{other:?}"),
    }
}

fn get(h: &mut Harness, tables: &[&str]) -> Result<Vec<TableDetail>, MetaError> {
    let tables = tables.iter().map(|t| t.to_string()).collect();
    match h.call(Request::GetTables { cluster: "c".into(), schema: "public".into(), tables })? {
        Response::TableDetails { tables, .. } => Ok(tables),
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_tables_answers_what_create_stored() {
    let (mut h, _) = steady_cluster(4);
    let plain = create(&mut h, "plain", vec![1, 2, 3], None);
    let rule = PartitionSpec { partition_count: 3, encoded: vec![9, 9] };
    let parted = create(&mut h, "parted", vec![4, 5], Some(rule));

    let got = get(&mut h, &["plain", "parted", "__parted_1"]).unwrap();
    assert_eq!(got[0].info, plain);
    assert_eq!(
        (got[0].version, &got[0].encoded_schema[..], got[0].options["ttl"].as_str()),
        (1, &[1, 2, 3][..], "7d")
    );
    assert_eq!((got[0].partition_rule.as_deref(), got[0].parent), (None, None));
    assert_eq!(got[1].info, parted);
    assert_eq!(
        (got[1].partition_rule.as_deref(), got[1].info.sub_tables.len()),
        (Some(&[9, 9][..]), 3)
    );
    let sub = &got[2];
    assert_eq!((sub.info.id, sub.parent), (parted.sub_tables[1], Some(parted.id)));
    assert_eq!(
        (&sub.encoded_schema[..], sub.options.len(), sub.version),
        (&[4, 5][..], 1, 1),
        "a sub-table carries its parent's schema"
    );

    // Answers survive a meta failover: they come from storage, not from memory alone.
    let snapshot = h.stored();
    h.core = MetaCore::new(CoreConfig::default(), 8);
    h.gain(Term(2), snapshot);
    h.settle();
    assert_eq!(get(&mut h, &["plain", "parted", "__parted_1"]).unwrap(), got);
}

#[test]
fn a_partitioned_tables_route_comes_with_its_sub_tables_routes() {
    let (mut h, _) = steady_cluster(4);
    let parted = create(
        &mut h,
        "parted",
        vec![4],
        Some(PartitionSpec { partition_count: 4, encoded: vec![] }),
    );
    create(&mut h, "plain", vec![], None);
    let req = Request::RouteTables {
        cluster: "c".into(),
        schema: "public".into(),
        tables: vec!["parted".into(), "plain".into()],
    };
    let Ok(Response::Routes { routes, .. }) = h.call(req) else { panic!() };
    let names: Vec<&str> = routes.iter().map(|r| r.table.as_str()).collect();
    assert_eq!(names, ["parted", "__parted_0", "__parted_1", "__parted_2", "__parted_3", "plain"]);
    let ids: Vec<TableId> = routes[1..5].iter().map(|r| r.table_id).collect();
    assert_eq!(ids, parted.sub_tables);
    assert!(
        routes.iter().all(|r| r.leader.is_some()),
        "every sub-table's shard is led: {routes:?}"
    );
}

#[test]
fn bad_gets_are_refused_with_their_code_and_write_nothing() {
    let config = CoreConfig {
        table_details_bytes_max: 1_000,
        tables_per_route_max: 3,
        ..CoreConfig::default()
    };
    let (mut h, _) = steady_cluster_configured(config, 2, 4, 0, &[]);
    create(&mut h, "a", vec![0; 600], None);
    create(&mut h, "b", vec![0; 600], None);
    let stored = h.store.clone();

    assert!(
        matches!(get(&mut h, &["a", "nope"]), Err(MetaError::NotFound(m)) if m.contains("\"nope\"")),
        "all or none"
    );
    let bad_schema = h.call(Request::GetTables {
        cluster: "c".into(),
        schema: "nope".into(),
        tables: vec!["a".into()],
    });
    assert!(matches!(bad_schema, Err(MetaError::NotFound(m)) if m.contains("schema")));
    let bad_cluster = h.call(Request::GetTables {
        cluster: "nope".into(),
        schema: "public".into(),
        tables: vec!["a".into()],
    });
    assert!(matches!(bad_cluster, Err(MetaError::NotFound(m)) if m.contains("cluster")));
    assert!(
        matches!(get(&mut h, &["a", "a", "a", "a"]), Err(MetaError::InvalidArgument(m)) if m.contains("limit is 3"))
    );
    assert!(
        matches!(get(&mut h, &["a", "b"]), Err(MetaError::ResourceExhausted(m)) if m.contains("ask for fewer"))
    );
    assert_eq!(get(&mut h, &["a"]).unwrap().len(), 1);
    assert_eq!(h.store, stored, "reads write nothing");
}
