//! Where new tables go, through the real core: by projected load, among ready shards.

use crate::harness::*;
use shardmeta::core::*;

/// Table counts per shard, from the leader's catalog.
fn tables_per_shard(h: &Harness) -> Vec<usize> {
    let c = h.core.catalog().unwrap().cluster_by_name("c").unwrap();
    c.shard_tables.iter().map(|t| t.len()).collect()
}

fn create(h: &mut Harness, name: &str) -> ShardId {
    match h.create_table(name, false) {
        Ok(Response::TableCreated { table, .. }) => table.shard,
        other => panic!("{other:?}"),
    }
}

/// With no load known, a thousand creates spread evenly, and the planner then has nothing to do.
#[test]
fn initial_placement_of_a_thousand_tables_is_even() {
    let (mut h, mut nodes) = steady_cluster_with(16, 1);
    for i in 0..1_000 {
        create(&mut h, &format!("t{i}"));
    }
    let counts = tables_per_shard(&h);
    let (max, mean) = (*counts.iter().max().unwrap() as f64, 1_000.0 / counts.len() as f64);
    assert!(max / mean <= 1.2, "max/mean {:.2}: {counts:?}", max / mean);
    println!("1,000 tables on 16 shards: max/mean {:.3}", max / mean);
    let epoch = h.core.catalog().unwrap().cluster_by_name("c").unwrap().epoch;
    for _ in 0..5 {
        round(&mut h, &mut nodes, 1_000);
    }
    assert_eq!(
        h.core.catalog().unwrap().cluster_by_name("c").unwrap().epoch,
        epoch,
        "no shard moved"
    );
}

/// Shard 0 is hot: once its load is trusted (three 10 s windows), new tables avoid it until
/// the cold shards' projected load catches up.
#[test]
fn new_tables_avoid_a_hot_shard_once_its_load_is_trusted() {
    let (mut h, mut nodes) = steady_cluster(4);
    for n in nodes.iter_mut() {
        n.load = |s| ShardLoad {
            write_units: if s == ShardId(0) { 1_000.0 } else { 10.0 },
            ..Default::default()
        };
    }
    for _ in 0..40 {
        round(&mut h, &mut nodes, 1_000);
    }
    let chosen: Vec<ShardId> = (0..12).map(|i| create(&mut h, &format!("t{i}"))).collect();
    assert!(!chosen.contains(&ShardId(0)), "the hot shard took a table: {chosen:?}");
    let shards = shard_statuses(&mut h);
    assert!(shards[0].load.write_units > 900.0 && shards[0].load_windows >= 3, "{:?}", shards[0]);
}
