//! The scheduler at the mission's scale, through the real planner: 100,000 shards on 1,000
//! nodes. A meta leader takes over a cluster that load balancing left with uneven leader
//! counts (half the nodes lead 150 light shards, half 50 heavy ones, the same load each): it
//! must make no move while it learns the loads, nor once it knows them, and a pass that finds
//! nothing to do must stay far below 100 ms.

use shardmeta::core::live::LiveCluster;
use shardmeta::core::model::Mutation;
use shardmeta::core::model::{Catalog, ClusterRecord, NodeRecord, ShardRecord, Topology};
use shardmeta::core::scheduler::Planner;
use shardmeta::core::*;

const NODES: u32 = 1_000;
const C: ClusterId = ClusterId(1);

/// Shard `s`'s leader and its load: nodes below 500 lead 150 shards of 60 units, the others 50
/// of 180 (9,000 units per node either way).
fn layout() -> Vec<(u32, f64)> {
    let mut shards = Vec::new();
    for node in 0..NODES {
        let (count, units) = if node < NODES / 2 { (150, 60.0) } else { (50, 180.0) };
        shards.extend((0..count).map(|_| (node, units)));
    }
    shards
}

#[test]
fn a_new_leader_at_100k_shards_makes_no_spurious_move() {
    let config = CoreConfig::default();
    let shards = layout();
    let mut catalog = Catalog::default();
    let topology = ClusterRecord::topology_code(Topology::Dynamic);
    let record = ClusterRecord {
        id: C.0,
        name: "c".into(),
        shard_count: shards.len() as u32,
        followers_per_shard: 1,
        topology,
        min_nodes: 1,
        dropped: false,
    };
    catalog.apply(Mutation::PutCluster(record)).unwrap();
    for id in 0..NODES {
        catalog
            .apply(Mutation::PutNode(
                C,
                NodeRecord {
                    id,
                    name: format!("n{id}"),
                    endpoint: format!("n{id}:1"),
                    ..Default::default()
                },
            ))
            .unwrap();
    }
    for (s, &(leader, _)) in shards.iter().enumerate() {
        let record = ShardRecord {
            id: s as u32,
            version: 1,
            leader: Some(leader),
            followers: vec![(leader + 1 + s as u32 % 7) % NODES],
            transfer: None,
            ..Default::default()
        };
        catalog.apply(Mutation::PutShard(C, record)).unwrap();
    }
    let cluster = catalog.cluster(C);
    let mut now = Instant(1_000);
    let mut live = LiveCluster::new(cluster, now, &config);
    for id in 0..NODES {
        let hb = Heartbeat {
            cluster: "c".into(),
            node: format!("n{id}"),
            endpoint: format!("n{id}:1"),
            zone: String::new(),
            labels: Vec::new(),
            incarnation: 1,
            seq: 1,
            stats: NodeStats::default(),
            shards: vec![],
            tables: vec![],
            load_rejections: 0,
            leaving: false,
        };
        live.heard_from(cluster, NodeId(id), SessionId(id as u64 + 1), &hb, now);
    }
    let pass = |live: &mut LiveCluster, now: Instant, phase: &str| {
        let started = std::time::Instant::now();
        let moves = Planner::new(cluster, live, now, &config).plan();
        let took = started.elapsed();
        println!("{phase}: {} moves, pass took {took:?}", moves.len());
        assert!(moves.is_empty(), "{phase}: {:?}", &moves[..moves.len().min(3)]);
        took
    };
    pass(&mut live, now, "just took over, no load known");
    // Loads every second; the first window closes after 10 s, trust after 30 s.
    for second in 1..=45 {
        now = now + Duration(1_000);
        for (s, &(_, units)) in shards.iter().enumerate() {
            let jitter = 1.0 + 0.1 * (((s as u64 * 7 + second) % 11) as f64 / 10.0 - 0.5);
            live.record_load(
                cluster,
                (NodeId(0), ShardId(s as u32)),
                &ShardLoad { write_units: units * jitter, ..Default::default() },
                now,
            );
        }
        if second == 15 {
            pass(&mut live, now, "loads known, not yet trusted");
        }
    }
    let took = pass(&mut live, now, "loads trusted, even by load");
    assert!(took < std::time::Duration::from_millis(100), "an idle pass took {took:?}");
}
