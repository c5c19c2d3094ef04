//! A split at the mission's scale: a shard of 100,000 tables, loaded from storage by a new
//! meta leader, is above `tables_per_shard_max` (50,000) and splits in two by itself, through
//! the real core and `ShardHost`. It halves the tables in bounded writes, keeps every table in
//! exactly one shard at every round, and ends with both shards led with the catalog's tables,
//! neither of them split again.

use std::time::Instant as Clock;

use crate::harness::*;
use shardmeta::core::model::Mutation;
use shardmeta::core::model::{
    ClusterRecord, NodeRecord, SchemaRecord, ShardRecord, TableRecord, Topology,
};
use shardmeta::core::*;

const TABLES: u64 = 100_000;

/// Cluster `c`: 2 shards on nodes n1 and n2 (each following the other's), every table in
/// shard 0.
fn stored() -> Vec<Mutation> {
    let c = ClusterId(1);
    let topology = ClusterRecord::topology_code(Topology::Dynamic);
    let cluster = ClusterRecord {
        id: 1,
        name: "c".into(),
        shard_count: 2,
        followers_per_shard: 1,
        topology,
        min_nodes: 1,
        dropped: false,
    };
    let mut ms = vec![
        Mutation::PutCluster(cluster),
        Mutation::PutIdCeiling(c, TABLES + 1_000),
        Mutation::PutSchema(c, SchemaRecord { id: 0, name: "public".into(), dropping: false }),
    ];
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
    ms.push(Mutation::PutShard(
        c,
        ShardRecord {
            id: 0,
            version: 1,
            leader: Some(0),
            followers: vec![1],
            transfer: None,
            ..Default::default()
        },
    ));
    ms.push(Mutation::PutShard(
        c,
        ShardRecord {
            id: 1,
            version: 1,
            leader: Some(1),
            followers: vec![0],
            transfer: None,
            ..Default::default()
        },
    ));
    ms.extend((1..=TABLES).map(|id| {
        Mutation::PutTable(
            c,
            TableRecord {
                id,
                schema: 0,
                name: format!("t{id:06}"),
                shard: 0,
                ..Default::default()
            },
        )
    }));
    ms
}

#[test]
fn a_shard_of_100k_tables_splits_in_half_by_itself_in_bounded_writes() {
    let config = CoreConfig::default();
    let (mut h, mut nodes) = leading_from(config.clone(), &stored(), 2, 3);
    assert!(nodes[0].host.is_leading(ShardId(0), h.now), "n1 leads shard 0");

    let started = Clock::now();
    let catalog = |h: &Harness| h.core.catalog().unwrap().cluster_by_name("c").unwrap().clone();
    let mut waited = 0;
    let p = loop {
        if let Some(p) = catalog(&h).procedures.values().next().cloned() {
            break p;
        }
        waited += 1;
        assert!(waited <= 20, "the split never started by itself");
        round(&mut h, &mut nodes, 500);
    };
    assert_eq!((p.shard, p.tables.len() as u64), (0, TABLES / 2));
    assert!(p.why.contains("tables_per_shard_max"), "{}", p.why);
    let (mut rounds, mut writes) = (0, 0);
    while !catalog(&h).procedures.is_empty() {
        rounds += 1;
        assert!(
            rounds <= 60,
            "the split did not end: {:?}",
            catalog(&h).procedures.values().next().map(|p| p.step)
        );
        for n in nodes.iter_mut() {
            n.heartbeat(&mut h).unwrap();
        }
        h.advance(500);
        let outs = h.settle();
        writes += outs.len();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
        assert_eq!(h.core.catalog().unwrap().integrity_error(), None, "S5 at round {rounds}");
    }
    let took = started.elapsed();
    for _ in 0..3 {
        round(&mut h, &mut nodes, 500);
    }
    let c = catalog(&h);
    assert_eq!(
        (c.shard_tables[0].len() as u64, c.shard_tables[2].len() as u64),
        (TABLES / 2, TABLES / 2)
    );
    assert!(
        c.procedures.is_empty() && c.shards.len() == 3,
        "halves at the limit are not split again"
    );
    for s in [0, 2] {
        let leader = nodes
            .iter()
            .find(|n| n.host.is_leading(ShardId(s), h.now))
            .unwrap_or_else(|| panic!("shard {s} is led"));
        assert_eq!(
            leader.host.shards()[&ShardId(s)].tables,
            c.shard_tables[s as usize],
            "shard {s}'s leader serves the catalog's tables"
        );
    }
    let per_write = config.txn_ops_max / 2;
    println!(
        "split of {TABLES} tables: {} tables moved in {} writes of {per_write}, {rounds} rounds of 500 ms; {took:?} in all ({writes} outputs)",
        TABLES / 2,
        (TABLES / 2).div_ceil(per_write as u64)
    );
}
