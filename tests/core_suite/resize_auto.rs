//! Automatic splits and merges through the real core and `ShardHost`, with each table's load
//! reported by the nodes that lead it: a hot shard is cut into even pieces that the balancer
//! spreads, a shard whose load is one table is reported unsplittable and left alone, a
//! scale-out with more nodes than shards splits shards until every node has work, cold shards
//! merge until each is above the merge line, and a load swinging around the split line never
//! cycles between splits and merges.

use std::collections::{BTreeMap, BTreeSet};

use crate::harness::*;
use shardmeta::client::load_source::LoadSource;
use shardmeta::core::cause::Cause;
use shardmeta::core::*;

/// Each table's write units per second; a shard's load is its tables'.
#[derive(Clone, Default)]
struct TableLoads(BTreeMap<TableId, f64>);

impl LoadSource for TableLoads {
    fn shard_load(&self, _shard: ShardId, tables: &BTreeSet<TableId>) -> ShardLoad {
        ShardLoad {
            write_units: tables.iter().map(|t| self.0.get(t).copied().unwrap_or(0.0)).sum(),
            ..Default::default()
        }
    }

    fn busiest_tables(&self, shard: ShardId, tables: &BTreeSet<TableId>, out: &mut Vec<TableLoad>) {
        let mut all: Vec<TableLoad> = tables
            .iter()
            .map(|&table| TableLoad {
                shard,
                table,
                read_units: 0.0,
                write_units: self.0.get(&table).copied().unwrap_or(0.0),
            })
            .collect();
        all.sort_by(|a, b| b.write_units.total_cmp(&a.write_units).then(a.table.cmp(&b.table)));
        out.extend(all.into_iter().take(TOP_TABLES_PER_SHARD));
    }
}

/// One-second load windows, so that decisions come within seconds.
fn config() -> CoreConfig {
    CoreConfig { load_window_ms: 1_000, ..CoreConfig::default() }
}

/// Every node heartbeats its tables' load and hears what meta sends; then 500 ms pass. Meta's
/// S5 holds at every round.
fn load_round(h: &mut Harness, nodes: &mut [Node], loads: &TableLoads) {
    round_of(h, nodes, loads, 500);
}

/// The same for any load source, then `ms` pass.
fn round_of<L: LoadSource + Clone>(h: &mut Harness, nodes: &mut [Node], loads: &L, ms: u64) {
    for i in 0..nodes.len() {
        nodes[i].heartbeat_with(h, loads.clone()).unwrap();
        let outs = h.settle();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
    }
    h.advance(ms);
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    shardmeta::check::integrity(h.core.catalog().unwrap()).unwrap();
}

/// The load each node leads, by what its shards hold.
fn node_loads(h: &Harness, nodes: &[Node], loads: &TableLoads) -> Vec<f64> {
    nodes
        .iter()
        .map(|n| {
            n.host
                .shards()
                .iter()
                .filter(|(&s, _)| n.host.is_leading(s, h.now))
                .map(|(_, s)| loads.shard_load(ShardId(0), &s.tables).write_units)
                .sum()
        })
        .collect()
}

/// A cluster of `count` nodes and `shards` shards with a follower each, `tables` tables, and
/// the tables of each shard given `shard_load(shard)` in all, evenly.
fn loaded(
    count: u64,
    shards: u32,
    tables: u32,
    shard_load: impl Fn(u32) -> f64,
) -> (Harness, Vec<Node>, TableLoads) {
    loaded_with(config(), count, shards, tables, shard_load)
}

/// The same, with a leader of `config`.
fn loaded_with(
    config: CoreConfig,
    count: u64,
    shards: u32,
    tables: u32,
    shard_load: impl Fn(u32) -> f64,
) -> (Harness, Vec<Node>, TableLoads) {
    let (mut h, mut nodes) = steady_cluster_configured(config, count, shards, 1, &[]);
    for t in 0..tables {
        h.create_table(&format!("t{t}"), false).unwrap();
    }
    round(&mut h, &mut nodes, 500);
    let mut loads = TableLoads::default();
    for (s, tables) in catalog(&h).shard_tables.iter().enumerate() {
        for &t in tables {
            loads.0.insert(t, shard_load(s as u32) / tables.len() as f64);
        }
    }
    (h, nodes, loads)
}

#[test]
fn a_hot_shard_splits_into_even_pieces_that_the_balancer_spreads() {
    // Four nodes each leading one shard. Shard 0 carries 2,700 units, the others 300: a node's
    // fair share is 900, so the split line is the 1,000-unit floor and shard 0 is 2.7 times it.
    let (mut h, mut nodes, loads) = loaded(4, 4, 60, |s| if s == 0 { 2_700.0 } else { 300.0 });
    let hot = nodes.iter().position(|n| n.host.is_leading(ShardId(0), h.now)).unwrap();
    let mut decided = None;
    for i in 0..240 {
        load_round(&mut h, &mut nodes, &loads);
        let c = catalog(&h);
        if decided.is_none() && !c.procedures.is_empty() {
            decided = Some(i);
        }
        let spread = node_loads(&h, &nodes, &loads);
        let mean = spread.iter().sum::<f64>() / spread.len() as f64;
        let all_led = (spread.iter().sum::<f64>() - 3_600.0).abs() < 1e-6;
        if c.procedures.is_empty()
            && c.shards.len() > 4
            && all_led
            && spread[hot] <= 1.1 * mean
            && spread.iter().all(|&l| l <= 1.1 * mean)
        {
            let pieces: Vec<f64> = (0..c.shards.len())
                .filter(|&s| s == 0 || s >= 4)
                .map(|s| loads.shard_load(ShardId(0), &c.shard_tables[s]).write_units)
                .collect();
            println!("decided at round {decided:?}, settled at round {i}: pieces {pieces:?}, node loads {spread:?}");
            assert!(
                (3..=4).contains(&pieces.len()),
                "2.7 times the line: 3 or 4 pieces, not {pieces:?}"
            );
            let (lo, hi) = (
                pieces.iter().copied().fold(f64::MAX, f64::min),
                pieces.iter().copied().fold(0.0, f64::max),
            );
            assert!(hi / lo <= 1.3 / 0.7, "pieces within 0.7–1.3 of each other: {pieces:?}");
            assert!(pieces.iter().all(|&p| p <= 1_000.0), "no piece is above the line");
            let splits = events(&mut h)
                .into_iter()
                .filter(|e| e.cause == Cause::Split && e.text.contains("started"))
                .count();
            assert_eq!(splits, pieces.len() - 1, "one split per new piece");
            return;
        }
    }
    panic!(
        "the hot shard was not split and spread: {:?}, node loads {:?}",
        catalog(&h).shard_tables.iter().map(|t| t.len()).collect::<Vec<_>>(),
        node_loads(&h, &nodes, &loads)
    );
}

#[test]
fn a_shard_whose_load_is_one_table_is_reported_unsplittable_once_and_not_split() {
    let (mut h, mut nodes, mut loads) = loaded(4, 4, 40, |_| 100.0);
    let table = *catalog(&h).shard_tables[0].iter().next().unwrap();
    loads.0.insert(table, 2_700.0); // 90% of shard 0's load, which is 3,000
    for (t, l) in loads.0.iter_mut() {
        if catalog(&h).tables.get(*t).unwrap().shard == 0 && *t != table {
            *l = 300.0 / (catalog(&h).shard_tables[0].len() - 1) as f64;
        }
    }
    for _ in 0..120 {
        load_round(&mut h, &mut nodes, &loads);
    }
    assert_eq!(catalog(&h).shards.len(), 4, "no split");
    let told: Vec<EventInfo> =
        events(&mut h).into_iter().filter(|e| e.text.contains("unsplittable")).collect();
    assert_eq!(told.len(), 1, "reported once while it stays hot: {told:?}");
    assert!(told[0].text.contains(&format!("table {table} carries")), "{}", told[0].text);
    let Ok(Response::Plan(plan)) = h.call(Request::PlanScheduler { cluster: "c".into() }) else {
        panic!()
    };
    assert!(
        plan.iter().any(|m| m.shard == ShardId(0) && m.text.contains("unsplittable")),
        "the plan says why: {plan:?}"
    );
}

#[test]
fn a_scale_out_beyond_the_shard_count_splits_shards_until_every_node_has_work() {
    let (mut h, mut nodes, loads) = loaded(4, 8, 160, |_| 900.0);
    for _ in 0..10 {
        load_round(&mut h, &mut nodes, &loads);
    }
    nodes.extend((5..=16).map(Node::new));
    for i in 0..600 {
        load_round(&mut h, &mut nodes, &loads);
        let spread = node_loads(&h, &nodes, &loads);
        let mean = spread.iter().sum::<f64>() / spread.len() as f64;
        let max = spread.iter().copied().fold(0.0, f64::max);
        let all_led = (spread.iter().sum::<f64>() - 8.0 * 900.0).abs() < 1e-6;
        if catalog(&h).procedures.is_empty() && all_led && max <= 1.1 * mean {
            println!("4 -> 16 nodes with 8 shards: settled at round {i} ({} s) with {} shards, max/mean {:.2}", i / 2, catalog(&h).shards.len(), max / mean);
            assert!(spread.iter().all(|&l| l > 0.0), "every node has work: {spread:?}");
            return;
        }
    }
    let spread = node_loads(&h, &nodes, &loads);
    panic!("no even spread: {} shards, node loads {spread:?}", catalog(&h).shards.len());
}

#[test]
fn two_hundred_cold_shards_merge_until_each_is_above_the_merge_line_and_none_splits_again() {
    // 400 tables of 5 units on 200 shards: the split line is the 1,000-unit floor, the merge
    // line a quarter of it. Cold for 5 s (not 5 minutes) is enough here.
    let mut config = config();
    config.scheduler.merge_load_pct = 25;
    config.scheduler.merge_window_ms = 5_000;
    let (mut h, mut nodes) = steady_cluster_configured(config, 4, 200, 1, &[]);
    for t in 0..400 {
        h.create_table(&format!("t{t}"), false).unwrap();
    }
    let loads = TableLoads(catalog(&h).tables.iter().map(|(id, _)| (id, 5.0)).collect());
    let active = |h: &Harness| catalog(h).shards.iter().filter(|s| !s.retired).count();
    let mut settled = 0;
    for i in 0..2_000 {
        load_round(&mut h, &mut nodes, &loads);
        let c = catalog(&h);
        let pieces: Vec<f64> = (0..c.shards.len())
            .filter(|&s| !c.shards[s].retired)
            .map(|s| loads.shard_load(ShardId(0), &c.shard_tables[s]).write_units)
            .collect();
        // Two shards below the line would merge: done when at most one is.
        if c.procedures.is_empty() && pieces.iter().filter(|&&l| l < 250.0).count() <= 1 {
            settled += 1;
            if settled == 40 {
                println!(
                    "200 cold shards: {} left after {} s, loads {pieces:?}",
                    active(&h),
                    i / 2
                );
                break;
            }
        } else {
            settled = 0;
        }
    }
    assert_eq!(settled, 40, "still merging: {} shards", active(&h));
    assert!(active(&h) >= 4, "at least one shard per node");
    let events = events(&mut h);
    assert!(events.iter().all(|e| e.cause != Cause::Split), "no merged shard splits again");
    let merges =
        events.iter().filter(|e| e.cause == Cause::Merge && e.text.ends_with("started")).count();
    assert_eq!(merges, 200 - active(&h), "one merge per retired shard");
}

#[test]
fn a_load_swinging_around_the_split_line_for_a_day_never_cycles_between_split_and_merge() {
    // Shard 0's 40 tables swing between 0.7 and 1.3 times the 1,000-unit split line every 20
    // minutes, for 24 simulated hours, with the default windows (10 s), merges on at 25% and
    // the default merge window (5 min).
    // The other shards carry 300 units each, above the merge line (250): any merge would be of
    // the split's pieces.
    let mut config = CoreConfig::default();
    config.scheduler.merge_load_pct = 25;
    let (mut h, mut nodes, mut loads) = loaded_with(config, 4, 4, 160, |_| 300.0);
    let hot: Vec<TableId> = catalog(&h).shard_tables[0].iter().copied().collect();
    let (mut splits, mut merges) = (0, 0);
    let mut last_seq = 0;
    for second in (0..24 * 3_600).step_by(2) {
        let high = (second / 600) % 2 == 1;
        let per_table = if high { 1_300.0 } else { 700.0 } / hot.len() as f64;
        for t in &hot {
            loads.0.insert(*t, per_table);
        }
        round_of(&mut h, &mut nodes, &loads, 2_000);
        if second % 600 == 0 {
            let Ok(Response::Events { events, last }) =
                h.call(Request::ListEvents { cluster: "c".into(), after: last_seq, limit: 0 })
            else {
                panic!()
            };
            last_seq = last;
            splits += events
                .iter()
                .filter(|e| e.cause == Cause::Split && e.text.ends_with("started"))
                .count();
            merges += events
                .iter()
                .filter(|e| e.cause == Cause::Merge && e.text.ends_with("started"))
                .count();
        }
    }
    println!("24 h of a load swinging ±30% around the split line: {splits} splits, {merges} merges, {} shards", catalog(&h).shards.len());
    assert!(splits >= 1, "the load above the line splits the shard");
    assert_eq!(merges, 0, "no split is merged back, so none is split again");
}

/// Each table is `.0` bytes: a shard reports the sum, and no load.
#[derive(Clone)]
struct Sized(u64);

impl LoadSource for Sized {
    fn shard_load(&self, _shard: ShardId, tables: &BTreeSet<TableId>) -> ShardLoad {
        ShardLoad { bytes: self.0 * tables.len() as u64, ..Default::default() }
    }
}

#[test]
fn a_shard_above_the_size_limit_halves_until_every_piece_is_within_it() {
    // 24 tables of 1 GiB on 2 shards, at most 5 GiB a shard: each halves, and halves again.
    let gib = 1 << 30;
    let mut config = config();
    config.scheduler.shard_bytes_max = 5 * gib;
    let (mut h, mut nodes) = steady_cluster_configured(config, 3, 2, 1, &[]);
    for t in 0..24 {
        h.create_table(&format!("t{t}"), false).unwrap();
    }
    for _ in 0..200 {
        round_of(&mut h, &mut nodes, &Sized(gib), 500);
    }
    let c = catalog(&h);
    let sizes: Vec<usize> = c.shard_tables.iter().map(|t| t.len()).collect();
    assert!(
        c.procedures.is_empty()
            && sizes.iter().all(|&n| n <= 5)
            && sizes.iter().sum::<usize>() == 24,
        "{sizes:?}"
    );
    assert!(events(&mut h).iter().any(|e| e.text.contains("above shard_bytes_max")));
    println!(
        "24 GiB in 2 shards, at most 5 GiB a shard: {} shards of {sizes:?} tables",
        sizes.len()
    );
}
