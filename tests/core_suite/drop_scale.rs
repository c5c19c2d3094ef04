//! Drops at the mission's scale, through the real core and `ShardHost`: a cascading drop of a
//! schema of a million tables, loaded from storage by a new meta leader, deletes them all in
//! bounded writes while every shard stays led and the catalog whole; then the cluster is
//! dropped in one write and a new meta leader loads what is left.

use std::time::Instant as Clock;

use crate::harness::*;
use shardmeta::core::model::Mutation;
use shardmeta::core::model::{
    ClusterRecord, NodeRecord, SchemaRecord, ShardRecord, TableRecord, Topology,
};
use shardmeta::core::*;

const TABLES: u64 = 1_000_000;
const SHARDS: u32 = 8;
const KEPT: u64 = 10;

/// Cluster `c`: 8 shards over n1 and n2; a million tables in schema `big`, ten in `public`.
fn stored() -> Vec<Mutation> {
    let c = ClusterId(1);
    let topology = ClusterRecord::topology_code(Topology::Dynamic);
    let cluster = ClusterRecord {
        id: 1,
        name: "c".into(),
        shard_count: SHARDS,
        followers_per_shard: 0,
        topology,
        min_nodes: 1,
        dropped: false,
    };
    let mut ms =
        vec![Mutation::PutCluster(cluster), Mutation::PutIdCeiling(c, TABLES + KEPT + 1_000)];
    ms.push(Mutation::PutSchema(c, SchemaRecord { id: 0, name: "public".into(), dropping: false }));
    ms.push(Mutation::PutSchema(c, SchemaRecord { id: 1, name: "big".into(), dropping: false }));
    for id in 0..2 {
        ms.push(Mutation::PutNode(
            c,
            NodeRecord {
                id,
                name: format!("n{}", id + 1),
                endpoint: format!("n{}:1", id + 1),
                ..Default::default()
            },
        ));
    }
    for s in 0..SHARDS {
        ms.push(Mutation::PutShard(
            c,
            ShardRecord { id: s, version: 1, leader: Some(s % 2), ..Default::default() },
        ));
    }
    let table = |id: u64, schema: u64| TableRecord {
        id,
        schema,
        name: format!("t{id:07}"),
        shard: (id % SHARDS as u64) as u32,
        ..Default::default()
    };
    ms.extend((2..2 + TABLES).map(|id| Mutation::PutTable(c, table(id, 1))));
    ms.extend((2 + TABLES..2 + TABLES + KEPT).map(|id| Mutation::PutTable(c, table(id, 0))));
    ms
}

#[test]
fn a_schema_of_a_million_tables_drops_in_bounded_writes_then_its_cluster_in_one() {
    let (mut h, mut nodes) = leading_from(CoreConfig::default(), &stored(), 2, 6);
    assert!(
        (0..SHARDS).all(|s| nodes.iter().any(|n| n.host.is_leading(ShardId(s), h.now))),
        "every shard is led"
    );

    let started = Clock::now();
    let dropped =
        h.call(Request::DropSchema { cluster: "c".into(), name: "big".into(), cascade: true });
    assert_eq!(dropped, Ok(Response::SchemaDropped { id: SchemaId(1), tables: TABLES }));
    let mut rounds = 0;
    while catalog(&h).schema_by_name.contains_key("big") {
        rounds += 1;
        assert!(rounds <= 450, "the drop did not end: {} tables left", catalog(&h).tables.len());
        round(&mut h, &mut nodes, 500);
        if rounds % 50 == 0 {
            assert_eq!(h.core.catalog().unwrap().integrity_error(), None, "S5 at round {rounds}");
        }
    }
    let took = started.elapsed();
    assert_eq!(catalog(&h).tables.len() as u64, KEPT);
    assert!(
        (0..SHARDS).all(|s| nodes.iter().any(|n| n.host.is_leading(ShardId(s), h.now))),
        "every shard stayed led"
    );
    let hosted: usize =
        nodes.iter().flat_map(|n| n.host.shards().values()).map(|s| s.tables.len()).sum();
    assert_eq!(hosted as u64, KEPT, "the nodes let the dropped tables go");
    println!("a million tables dropped in {rounds} rounds of 500 ms ({:.0} s of meta time), {took:?} here", rounds as f64 * 0.5);
    // About 4,000 tables a tick (64 writes of 63): 250 ticks, a little over two minutes of meta
    // time at a tick every 475 to 525 ms (a round of 500 ms misses one now and then).
    assert!(rounds <= 400, "{rounds} rounds");

    // The cluster goes in one write, and a new leader loads the tombstone.
    let write = h.request(Request::DropCluster { cluster: "c".into(), force: true });
    let outs = h.outputs();
    let batch = outs
        .iter()
        .find_map(|o| if let Output::Persist(b) = o { Some(b.clone()) } else { None })
        .expect("one write");
    assert_eq!(batch.ops.len(), 2, "{:?}", batch.ops);
    h.core.handle(h.now, Input::WriteResult { id: batch.id, result: storage::WriteResult::Ok });
    batch.apply_to(&mut h.store);
    assert!(h
        .settle()
        .iter()
        .any(|o| matches!(o, Output::Reply { request, result: Ok(_) } if *request == write)));
    let keys: Vec<&String> = h.store.keys().collect();
    assert_eq!(
        keys,
        ["/shardmeta/v1/clusters/0000000001", "/shardmeta/v1/fence"],
        "a tombstone and the fence are all that is left"
    );
    let loaded = h.stored();
    assert!(
        loaded.catalog.clusters.is_empty()
            && loaded.catalog.dropped_clusters.contains(&ClusterId(1))
    );
}
