//! When shards merge by themselves: two shards whose trusted load has stayed below the merge
//! line (`merge_load_pct` of the split line) for `merge_window_ms` merge, the colder into the
//! other, as long as the cluster keeps at least one shard per placeable node (fewer would
//! leave nodes without work, and the scale-out rule would split them again) and the merged
//! shard stays within `tables_per_shard_max`.
//!
//! Both below a quarter of the split line, the merged shard carries under half of it: it must
//! double before it splits again, and the pieces of a split (each near the line or above half
//! of it) are never cold. That gap is what keeps a load near either line from cycling.

use super::splits;
use crate::core::ids::ShardId;
use crate::core::live::LiveCluster;
use crate::core::model::{ClusterCatalog, Topology};
use crate::core::time::{Duration, Instant};

/// The merge line for a split line: `None` when automatic merges are off.
pub fn line(split_line: Option<f64>, live: &LiveCluster) -> Option<f64> {
    let pct = live.settings().merge_load_pct;
    split_line.filter(|_| pct > 0).map(|line| line * pct as f64 / 100.0)
}

/// Pairs of shards to merge now, the coldest first, and why; at most `room`.
pub fn due(
    cluster: &ClusterCatalog,
    live: &LiveCluster,
    line: Option<f64>,
    now: Instant,
    room: usize,
) -> Vec<(ShardId, ShardId, String)> {
    let s = live.settings();
    let Some(line) = line else { return Vec::new() };
    if room == 0 || s.paused || cluster.record.topology() != Topology::Dynamic {
        return Vec::new();
    }
    let placeable = live.nodes().iter().filter(|(_, n)| n.placeable()).count().max(1);
    let merging = cluster
        .procedures
        .values()
        .filter(|p| p.kind() == crate::core::model::ProcedureKind::Merge)
        .count();
    let active = cluster.shards.iter().filter(|r| !r.retired).count()
        + live.procedures_starting() as usize
        - merging;
    let window = Duration(s.merge_window_ms);
    let mut cold: Vec<(f64, ShardId)> = splits::led(cluster, live)
        .filter(|&shard| splits::may_split(cluster, live, shard))
        .filter(|&shard| live.hot().cold_since(shard).is_some_and(|since| now >= since + window))
        .filter_map(|shard| live.loads().trusted(shard).map(|l| (l.units(), shard)))
        .collect();
    cold.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let max_tables =
        if s.tables_per_shard_max == 0 { usize::MAX } else { s.tables_per_shard_max as usize };
    let tables = |shard: ShardId| cluster.shard_tables[shard.index()].len();
    let mut due = Vec::new();
    let mut pairs = cold.chunks_exact(2);
    for pair in pairs.by_ref() {
        let [(la, a), (lb, b)] = [pair[0], pair[1]];
        if due.len() >= room || active - due.len() <= placeable {
            break;
        }
        if tables(a) + tables(b) > max_tables {
            continue;
        }
        let why = format!(
            "both cold ({la:.0} and {lb:.0} units/s, below the merge line {line:.0}) for {} s",
            window.0 / 1_000
        );
        due.push((a, b, why));
    }
    due
}
