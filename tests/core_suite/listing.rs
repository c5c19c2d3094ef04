//! Listings page through a catalog of any size: every item exactly once, in id order, and no
//! page larger than the limit, whatever the catalog holds.

use crate::harness::*;
use shardmeta::core::*;

fn table_page(
    h: &mut Harness,
    schema: Option<&str>,
    size: u32,
    after: Option<u64>,
) -> Page<TableInfo> {
    let page = PageRequest { size, after };
    match h.call(Request::ListTables {
        cluster: "c".into(),
        schema: schema.map(String::from),
        page,
    }) {
        Ok(Response::Tables(p)) => p,
        other => panic!("{other:?}"),
    }
}

/// Follows `next` to the end; returns every id seen and the largest page.
fn follow(h: &mut Harness, schema: Option<&str>, size: u32) -> (Vec<u64>, usize) {
    let (mut ids, mut largest, mut after) = (Vec::new(), 0, None);
    loop {
        let page = table_page(h, schema, size, after);
        largest = largest.max(page.items.len());
        ids.extend(page.items.iter().map(|t| t.id.0));
        match page.next {
            Some(next) => after = Some(next),
            None => return (ids, largest),
        }
    }
}

#[test]
fn tables_page_in_id_order_each_exactly_once() {
    let mut h = Harness::leader();
    h.create_cluster(4, 0);
    for i in 0..2_500 {
        h.create_table(&format!("t{i}"), false).unwrap();
    }
    let (ids, largest) = follow(&mut h, None, 0);
    assert_eq!(ids.len(), 2_500);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "id order, no repeats");
    assert_eq!(largest, CoreConfig::default().list_page_default as usize);
    let (capped, largest) = follow(&mut h, None, u32::MAX);
    assert_eq!(
        (capped, largest),
        (ids, 2_500),
        "a huge page size is capped at the maximum, which holds all 2,500"
    );
}

#[test]
fn a_schema_filter_pages_by_scan_limit_and_misses_nothing() {
    let mut h = Harness::leader();
    h.create_cluster(4, 0);
    let Ok(Response::SchemaCreated { .. }) = h.call(Request::CreateSchema {
        cluster: "c".into(),
        name: "rare".into(),
        if_not_exists: false,
    }) else {
        panic!()
    };
    h.core = {
        // A small scan limit, so that the filtered listing needs short pages to get through.
        let mut core = MetaCore::new(CoreConfig { list_scan_max: 100, ..Default::default() }, 7);
        core.handle(
            h.now,
            Input::Leadership(Leadership::Gained {
                term: Term(2),
                valid_until: Instant(u64::MAX / 2),
                snapshot: h.stored(),
            }),
        );
        core
    };
    h.settle();
    for i in 0..1_000 {
        h.create_table(&format!("t{i}"), false).unwrap();
    }
    let rare = CreateTable {
        cluster: "c".into(),
        schema: "rare".into(),
        name: "needle".into(),
        encoded_schema: vec![],
        options: Default::default(),
        if_not_exists: false,
        partition: None,
    };
    let Ok(Response::TableCreated { table, .. }) = h.call(Request::CreateTable(rare)) else {
        panic!()
    };
    let (ids, _) = follow(&mut h, Some("rare"), 10);
    assert_eq!(ids, [table.id.0]);
    let first = table_page(&mut h, Some("rare"), 10, None);
    assert!(
        first.items.is_empty() && first.next.is_some(),
        "a page that found nothing within its scan still goes on: {first:?}"
    );
}

#[test]
fn shards_and_nodes_page_too() {
    let (mut h, _nodes) = steady_cluster_of(5, 300, 0);
    let shard_page = |h: &mut Harness, after| match h
        .call(Request::ListShards { cluster: "c".into(), page: PageRequest { size: 128, after } })
    {
        Ok(Response::Shards(p)) => p,
        other => panic!("{other:?}"),
    };
    let first = shard_page(&mut h, None);
    assert_eq!((first.items.len(), first.next), (128, Some(127)));
    let third = shard_page(&mut h, Some(255));
    assert_eq!((third.items.len(), third.next, third.items[0].id), (44, None, ShardId(256)));
    let nodes = match h.call(Request::ListNodes {
        cluster: "c".into(),
        page: PageRequest { size: 2, after: Some(3) },
    }) {
        Ok(Response::Nodes(p)) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!((nodes.items.len(), nodes.next), (1, None));
}

/// Reports each led shard's tables, busiest first, plus a table the catalog does not know.
struct TablesAndAStranger;

impl shardmeta::client::LoadSource for TablesAndAStranger {
    fn shard_load(&self, _: ShardId, tables: &std::collections::BTreeSet<TableId>) -> ShardLoad {
        ShardLoad { write_units: 10.0 * tables.len() as f64, ..Default::default() }
    }

    fn busiest_tables(
        &self,
        shard: ShardId,
        tables: &std::collections::BTreeSet<TableId>,
        out: &mut Vec<TableLoad>,
    ) {
        out.push(TableLoad { shard, table: TableId(999_999), read_units: 0.0, write_units: 500.0 });
        out.extend(tables.iter().rev().map(|&table| TableLoad {
            shard,
            table,
            read_units: 1.0,
            write_units: table.0 as f64,
        }));
    }
}

/// The busiest tables a leader reports reach the shard listing: the catalog's tables of that
/// shard only, in the leader's order.
#[test]
fn shards_list_the_busiest_tables_their_leaders_report() {
    let (mut h, mut nodes) = steady_cluster_of(2, 2, 0);
    for t in 0..6 {
        h.create_table(&format!("t{t}"), false).unwrap();
    }
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    for _ in 0..3 {
        for n in nodes.iter_mut() {
            n.heartbeat_with(&mut h, TablesAndAStranger).unwrap();
        }
        let outs = h.settle();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
        h.advance(1_000);
    }
    let Ok(Response::Shards(page)) =
        h.call(Request::ListShards { cluster: "c".into(), page: PageRequest::default() })
    else {
        panic!()
    };
    let catalog = h.core.catalog().unwrap().cluster_by_name("c").unwrap();
    for s in &page.items {
        let mut held: Vec<TableId> = catalog.shard_tables[s.id.index()].iter().copied().collect();
        held.reverse();
        let listed: Vec<TableId> = s.busiest.iter().map(|t| t.table).collect();
        assert_eq!(listed, held, "shard {}: {:?}", s.id, s.busiest);
    }
    assert!(page.items.iter().any(|s| !s.busiest.is_empty()), "{page:?}");
}
