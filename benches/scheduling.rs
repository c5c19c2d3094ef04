//! Scheduling throughput of the sans-IO core, in-process (no network, no storage):
//! - heartbeat ingest per shard report, 1k nodes and 1M shards, unchanged and changed;
//! - create-table (placement) at 10k shards and 1k nodes;
//! - assigning 10k shards with two followers each over 1k labelled nodes, with and without a
//!   placement rule (its cost must stay within 2×);
//! - failover planning for a node with 10k shards;
//! - snapshot loading per table (decode and index), 100k tables with 256-byte schemas;
//! - split planning: which of a shard's 100k tables move.
//!
//! A counting allocator reports allocations per unchanged heartbeat (the target is zero).
//! Run: `cargo bench --bench scheduling`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shardmeta::core::model::{
    ClusterCatalog, Constraint, ConstraintKind, Label, PlacementRecord, Topology,
};
use shardmeta::core::scheduler::Planner;
use shardmeta::core::storage::WriteResult;
use shardmeta::core::*;

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CLUSTER: &str = "bench";

/// Lands every batch at once; returns the outputs that are not writes.
fn land(core: &mut MetaCore, now: Instant) -> usize {
    let mut others = 0;
    while let Some(o) = core.poll_output() {
        match o {
            Output::Persist(b) => {
                core.handle(now, Input::WriteResult { id: b.id, result: WriteResult::Ok })
            }
            Output::CloseStream { error, .. } => panic!("a bench heartbeat was refused: {error}"),
            _ => others += 1,
        }
    }
    others
}

fn heartbeat(node: usize, seq: u64, shards: Vec<ShardReport>) -> Heartbeat {
    Heartbeat {
        cluster: CLUSTER.into(),
        node: format!("node-{node}"),
        endpoint: format!("10.0.{}.{}:7000", node / 256, node % 256),
        zone: String::new(),
        labels: Vec::new(),
        incarnation: 1,
        seq,
        stats: NodeStats::default(),
        shards,
        tables: Vec::new(),
        load_rejections: 0,
        leaving: false,
    }
}

/// A leader with one cluster of `shards` shards assigned over `nodes` nodes.
fn cluster(shards: u32, nodes: usize, followers: u32) -> (MetaCore, Instant) {
    cluster_of(shards, nodes, followers, 1, |_| (String::new(), Vec::new()))
}

/// The same, assigned once `min_nodes` are online, each node with the zone and labels `about`
/// gives it.
fn cluster_of(
    shards: u32,
    nodes: usize,
    followers: u32,
    min_nodes: u32,
    about: impl Fn(usize) -> (String, Vec<Label>),
) -> (MetaCore, Instant) {
    let config = CoreConfig {
        shard_moves_per_tick_max: 1 << 20,
        changes_queued_max: 1 << 22,
        ..CoreConfig::default()
    };
    let mut core = MetaCore::new(config, 1);
    let mut now = Instant(1);
    core.handle(
        now,
        Input::Leadership(Leadership::Gained {
            term: Term(1),
            valid_until: Instant(u64::MAX / 2),
            snapshot: Default::default(),
        }),
    );
    let spec = ClusterSpec {
        name: CLUSTER.into(),
        shard_count: shards,
        followers_per_shard: followers,
        topology: Topology::Dynamic,
        min_nodes,
    };
    core.handle(now, Input::Request { id: RequestId(1), request: &Request::CreateCluster(spec) });
    land(&mut core, now);
    // Registration, then the settle count of heartbeats, after which the nodes take shards.
    for seq in 1..=1 + CoreConfig::DEFAULT_SETTLE_HEARTBEATS as u64 {
        for n in 0..nodes {
            let (zone, labels) = about(n);
            let hb = Heartbeat { zone, labels, ..heartbeat(n, seq, vec![]) };
            core.handle(now, Input::Heartbeat { session: SessionId(n as u64), heartbeat: &hb });
        }
        land(&mut core, now);
    }
    for _ in 0..4 {
        now = now + Duration(1_000);
        core.handle(now, Input::Timeout);
        land(&mut core, now);
    }
    (core, now)
}

/// Each node's reports, exactly as the catalog has them.
fn reports(core: &MetaCore, nodes: usize) -> Vec<Vec<ShardReport>> {
    let c = core.catalog().unwrap().cluster_by_name(CLUSTER).unwrap();
    let mut out = vec![Vec::new(); nodes];
    for s in &c.shards {
        for r in s.replicas() {
            let role = if s.leader == Some(r) { Role::Leader } else { Role::Follower };
            out[r as usize].push(ShardReport {
                id: ShardId(s.id),
                role,
                version: Version(s.version),
                status: ReplicaStatus::Ready,
                load: ShardLoad { write_units: 1.0, ..Default::default() },
                lag: None,
            });
        }
    }
    out
}

/// The next node's heartbeat (a fresh seq, as a live node sends), with its reply drained.
fn ingest_next(core: &mut MetaCore, beats: &mut [Heartbeat], next: &mut usize, now: Instant) {
    let n = *next % beats.len();
    *next += 1;
    let hb = &mut beats[n];
    hb.seq += 1;
    core.handle(now, Input::Heartbeat { session: SessionId(n as u64), heartbeat: hb });
    while let Some(o) = core.poll_output() {
        black_box(o);
    }
}

fn heartbeat_ingest(c: &mut Criterion) {
    const NODES: usize = 1_000;
    const SHARDS: u32 = 1_000_000;
    let (mut core, now) = cluster(SHARDS, NODES, 0);
    let mut beats: Vec<Heartbeat> =
        reports(&core, NODES).into_iter().enumerate().map(|(n, r)| heartbeat(n, 10, r)).collect();
    let per_node = beats[0].shards.len() as u64;

    // Allocations of the unchanged path, outside criterion: one warm-up round, one counted.
    let mut next = 0usize;
    (0..NODES).for_each(|_| ingest_next(&mut core, &mut beats, &mut next, now));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    (0..NODES).for_each(|_| ingest_next(&mut core, &mut beats, &mut next, now));
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!("heartbeat_ingest/unchanged: {allocs} allocations over {NODES} heartbeats of {per_node} reports");

    let mut group = c.benchmark_group("heartbeat_ingest_1k_nodes_1m_shards");
    group.throughput(Throughput::Elements(per_node));
    group.bench_function("unchanged", |b| {
        b.iter(|| ingest_next(&mut core, &mut beats, &mut next, now))
    });
    // Changed: new load figures on every report with its 8 busiest tables, and 1% of the shards
    // a version behind, which costs a re-sync command each.
    for hb in beats.iter_mut() {
        hb.tables = hb
            .shards
            .iter()
            .flat_map(|r| {
                (0..TOP_TABLES_PER_SHARD as u64).map(move |t| TableLoad {
                    shard: r.id,
                    table: TableId(t),
                    read_units: 1.0,
                    write_units: t as f64,
                })
            })
            .collect();
        for (i, r) in hb.shards.iter_mut().enumerate() {
            r.load = ShardLoad {
                read_units: i as f64,
                write_units: 2.0 * i as f64,
                cpu_ms: 1.0,
                bytes: 1 << 20,
                rows: 1_000,
            };
            if i % 100 == 0 {
                r.version = Version(r.version.0.saturating_sub(1));
            }
        }
    }
    group.bench_function("changed", |b| {
        b.iter(|| ingest_next(&mut core, &mut beats, &mut next, now))
    });
    group.finish();
}

fn table_placement(c: &mut Criterion) {
    let (mut core, now) = cluster(10_000, 1_000, 0);
    let mut i = 0u64;
    c.bench_function("create_table_10k_shards_1k_nodes", |b| {
        b.iter(|| {
            i += 1;
            let req = Request::CreateTable(CreateTable {
                cluster: CLUSTER.into(),
                schema: "public".into(),
                name: format!("t{i}"),
                encoded_schema: vec![0; 64],
                options: Default::default(),
                if_not_exists: false,
                partition: None,
            });
            core.handle(now, Input::Request { id: RequestId(1 + i), request: &req });
            land(&mut core, now)
        })
    });
}

/// One pass assigning 10k shards, two followers each, over 1k nodes in three zones, ten racks
/// and a quarter on hdd: with no rule, and with one that keeps replicas off hdd, prefers zone a
/// for leaders and spreads replicas over racks. Both passes place every shard; the ratio of
/// their times is the rule's cost.
fn rule_placement(c: &mut Criterion) {
    let about = |n: usize| {
        let disk = if n % 4 == 3 { "hdd" } else { "ssd" };
        let labels = vec![Label::new("disk", disk), Label::new("rack", &format!("r{}", n % 10))];
        (["a", "b", "c"][n % 3].to_string(), labels)
    };
    // Never enough nodes during set-up: every shard stays unassigned for the measured pass.
    let (core, now) = cluster_of(10_000, 1_000, 2, 1_001, about);
    let config = CoreConfig { shard_moves_per_tick_max: 1 << 20, ..CoreConfig::default() };
    let cid = core.catalog().unwrap().cluster_by_name(CLUSTER).unwrap().id();
    let live = core.live_cluster(cid).unwrap().clone();
    let mut plain = core.catalog().unwrap().cluster(cid).clone();
    plain.record.min_nodes = 1;
    let rule = PlacementRecord {
        replicas: vec![Constraint::new(ConstraintKind::Avoid, "disk", &["hdd"])],
        leader: vec![Constraint::new(ConstraintKind::Prefer, "zone", &["a"])],
        spread: "rack".into(),
        ..Default::default()
    };
    let ruled = ClusterCatalog { placement: Some(rule), ..plain.clone() };
    let mut group = c.benchmark_group("assign_10k_shards_1k_nodes");
    group.sample_size(10);
    let mut ruled_live = live.clone();
    ruled_live.refit(&ruled, &config);
    for (name, catalog, live) in [("no_rule", &plain, &live), ("rule", &ruled, &ruled_live)] {
        let moves = Planner::new(catalog, &mut live.clone(), now, &config).plan();
        let on_hdd = moves.iter().flat_map(|m| m.record.replicas()).filter(|&r| r % 4 == 3);
        println!("{name}: {} shards assigned, {} replicas on hdd", moves.len(), on_hdd.count());
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || live.clone(),
                |live| black_box(Planner::new(catalog, live, now, &config).plan()),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn failover_planning(c: &mut Criterion) {
    // Ten nodes with 10k leader shards each and one follower per shard; node 0 dies.
    let (mut core, mut now) = cluster(100_000, 10, 1);
    let beats: Vec<Vec<ShardReport>> = reports(&core, 10);
    for (n, r) in beats.into_iter().enumerate().skip(1) {
        core.handle(
            now,
            Input::Heartbeat { session: SessionId(n as u64), heartbeat: &heartbeat(n, 20, r) },
        );
    }
    land(&mut core, now);
    now = now + Duration(CoreConfig::default().lease_ms + CoreConfig::default().clock_drift_ms + 1);
    let config = CoreConfig { shard_moves_per_tick_max: 1 << 20, ..CoreConfig::default() };
    let cid = core.catalog().unwrap().cluster_by_name(CLUSTER).unwrap().id();
    let catalog = core.catalog().unwrap().cluster(cid).clone();
    let mut live = core.live_cluster(cid).unwrap().clone();
    live.set_online(NodeId(0), false);
    let dead_leads = catalog.shards.iter().filter(|s| s.leader == Some(0)).count();
    let moves = Planner::new(&catalog, &mut live.clone(), now, &config).plan().len();
    println!("failover_planning: node 0 led {dead_leads} shards; one pass plans {moves} moves");
    c.bench_function("failover_planning_node_with_10k_shards", |b| {
        b.iter_batched_ref(
            || live.clone(),
            |live| black_box(Planner::new(&catalog, live, now, &config).plan()),
            BatchSize::LargeInput,
        )
    });
}

/// One balance pass over `shards` shards on 1,000 nodes with trusted loads: an even cluster,
/// where the pass finds nothing to do, and a skewed one, where the shards of even nodes run 3×
/// hotter than those of odd ones (the pass moves as many as the in-flight limit allows).
fn balance_pass(c: &mut Criterion, shards: u32) {
    let (core, now) = cluster(shards, 1_000, 1);
    let config = CoreConfig::default();
    let cid = core.catalog().unwrap().cluster_by_name(CLUSTER).unwrap().id();
    let catalog = core.catalog().unwrap().cluster(cid).clone();
    let with_loads = |skewed: bool| {
        let mut live = core.live_cluster(cid).unwrap().clone();
        let mut at = now;
        for _ in 0..4 {
            at = at + Duration(config.load_window_ms);
            for s in &catalog.shards {
                let hot = skewed && s.leader.is_some_and(|l| l % 2 == 0);
                let units = if hot {
                    150.0
                } else if skewed {
                    50.0
                } else {
                    100.0
                };
                live.record_load(
                    &catalog,
                    (NodeId(s.leader.unwrap_or(0)), ShardId(s.id)),
                    &ShardLoad { write_units: units, ..Default::default() },
                    at,
                );
            }
        }
        (live, at)
    };
    let mut group = c.benchmark_group(format!("balance_pass_{}k_shards_1k_nodes", shards / 1_000));
    group.sample_size(10);
    for (name, skewed) in [("even", false), ("skewed", true)] {
        let (live, at) = with_loads(skewed);
        let moves = Planner::new(&catalog, &mut live.clone(), at, &config).plan();
        println!("balance_pass {shards} shards, {name}: {} moves", moves.len());
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || live.clone(),
                |live| black_box(Planner::new(&catalog, live, at, &config).plan()),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn balance_passes(c: &mut Criterion) {
    balance_pass(c, 10_000);
    balance_pass(c, 100_000);
}

/// The stored pairs of one cluster with `tables` tables, in snapshot order.
fn stored_catalog(tables: u64) -> Vec<(String, Vec<u8>)> {
    use shardmeta::core::model::{ClusterRecord, Mutation, SchemaRecord, TableRecord};
    use shardmeta::core::storage::Op;
    let c = ClusterId(1);
    let cluster =
        ClusterRecord { id: 1, name: CLUSTER.into(), shard_count: 10_000, ..Default::default() };
    let mut ms = vec![
        Mutation::PutCluster(cluster),
        Mutation::PutIdCeiling(c, tables + 1_000),
        Mutation::PutSchema(c, SchemaRecord { id: 0, name: "public".into(), dropping: false }),
    ];
    ms.extend((1..=tables).map(|id| {
        let t = TableRecord {
            id,
            schema: 0,
            name: format!("table_{id:08}"),
            shard: (id % 10_000) as u32,
            encoded_schema: vec![id as u8; 256],
            ..Default::default()
        };
        Mutation::PutTable(c, t)
    }));
    ms.iter()
        .map(|m| match m.to_op() {
            Op::Put { key, value } => (key, value),
            Op::Delete { .. } | Op::DeletePrefix { .. } => unreachable!("only puts"),
        })
        .collect()
}

fn snapshot_load(c: &mut Criterion) {
    use shardmeta::core::storage::SnapshotLoader;
    const TABLES: u64 = 100_000;
    let pairs = stored_catalog(TABLES);
    let mut group = c.benchmark_group("snapshot_load_100k_tables");
    group.throughput(Throughput::Elements(TABLES));
    group.sample_size(10);
    group.bench_function("decode_and_index", |b| {
        b.iter(|| {
            let mut loader = SnapshotLoader::default();
            for (k, v) in &pairs {
                loader.feed(k, v).unwrap();
            }
            black_box(loader.finish().unwrap())
        })
    });
    group.finish();
}

/// Choosing which of a shard's 100k tables a split moves: the busiest 8 known, the rest
/// sharing the remaining load.
fn split_planning(c: &mut Criterion) {
    use shardmeta::core::scheduler::split_choice;
    let tables: std::collections::BTreeSet<TableId> = (0..100_000).map(TableId).collect();
    let busiest: Vec<(TableId, f64)> =
        (0..8).map(|i| (TableId(i * 997), 1_000.0 - 100.0 * i as f64)).collect();
    c.bench_function("split_planning_100k_tables", |b| {
        b.iter(|| {
            split_choice::choose(
                ShardId(0),
                black_box(&tables),
                busiest.iter().copied(),
                50_000.0,
                2,
                50_000,
            )
            .expect("splittable")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = heartbeat_ingest, table_placement, rule_placement, failover_planning, balance_passes, snapshot_load, split_planning
}
criterion_main!(benches);
