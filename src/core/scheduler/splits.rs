//! When shards split by themselves, in order of need:
//! 1. **Too big**: a shard above `tables_per_shard_max` tables, or whose leader reports more
//!    than `shard_bytes_max` bytes, halves by table count.
//! 2. **Too hot**: a shard whose trusted load closed `split_windows` windows in a row above the
//!    split line. The line is `split_load_pct` of a node's fair load (the cluster's load over
//!    its placeable nodes), and never below `split_floor_units`: one shard above a node's share
//!    cannot be balanced by moving it. A shard k times over the line sheds a k-th of its load,
//!    and splits again while its remainder is still hot: ⌈k⌉ pieces in all.
//! 3. **Scale-out**: more placeable nodes than shards leaves nodes without work that balancing
//!    could ever give them, so the busiest shards split, one per node short. Only while the
//!    cluster carries at least `split_floor_units`: an idle cluster has no work to give.
//!
//! A shard qualifies only when it is settled (nothing about it pending), led, not in a leader
//! transfer and not held by a procedure, in a dynamic cluster whose scheduler is not paused.
//! Every split after the first waits for its source's load to be learnt afresh
//! ([`LiveCluster::split_load`]), so a shard never splits twice on the same windows.

use crate::core::ids::ShardId;
use crate::core::live::LiveCluster;
use crate::core::model::{ClusterCatalog, Topology};

/// Why a shard should split now.
#[derive(Clone, Debug, PartialEq)]
pub enum SplitNeed {
    /// More tables than `tables_per_shard_max`.
    Tables {
        /// The shard's tables.
        count: usize,
        /// `tables_per_shard_max`.
        max: u32,
    },
    /// More bytes than `shard_bytes_max`, as its leader reports.
    Bytes {
        /// The shard's size, as its leader reports it.
        bytes: u64,
        /// `shard_bytes_max`.
        max: u64,
    },
    /// Above the split line for `windows` windows in a row.
    Load {
        /// The shard's trusted load, in units per second.
        units: f64,
        /// The split line, in units per second.
        line: f64,
        /// Windows in a row above it.
        windows: u32,
    },
    /// Placeable nodes outnumber the shards of a cluster carrying load.
    ScaleOut {
        /// Placeable nodes.
        nodes: usize,
        /// The cluster's shards, those being split included.
        shards: usize,
    },
}

impl SplitNeed {
    /// How many even pieces the shard should end in (this split cuts off one of them).
    pub fn pieces(&self) -> u32 {
        match *self {
            SplitNeed::Load { units, line, .. } => ((units / line).ceil() as u32).max(2),
            SplitNeed::Tables { .. } | SplitNeed::Bytes { .. } | SplitNeed::ScaleOut { .. } => 2,
        }
    }

    /// Whether the tables are chosen by count rather than load.
    pub fn by_count(&self) -> bool {
        matches!(self, SplitNeed::Tables { .. } | SplitNeed::Bytes { .. })
    }

    /// Why, in words for the event log.
    pub fn describe(&self) -> String {
        match self {
            SplitNeed::Tables { count, max } => {
                format!("{count} tables, above tables_per_shard_max {max}")
            }
            SplitNeed::Bytes { bytes, max } => {
                format!("{bytes} bytes, above shard_bytes_max {max}")
            }
            SplitNeed::Load { units, line, windows } => {
                format!("load {units:.0} units/s above the split line {line:.0} for {windows} windows ({} pieces)", self.pieces())
            }
            SplitNeed::ScaleOut { nodes, shards } => {
                format!("scale-out: {nodes} nodes to give work and {shards} shards")
            }
        }
    }
}

/// The split line now: `None` when load splits are off.
pub fn line(cluster: &ClusterCatalog, live: &LiveCluster) -> Option<f64> {
    let s = live.settings();
    if s.split_load_pct == 0 {
        return None;
    }
    let placeable = live.nodes().iter().filter(|(_, n)| n.placeable()).count();
    let total: f64 = led(cluster, live).map(|shard| live.loads().estimate_units(shard)).sum();
    let fair = if placeable > 0 { total / placeable as f64 } else { 0.0 };
    Some((fair * s.split_load_pct as f64 / 100.0).max(s.split_floor_units))
}

/// The shards that should split now, the most needed first, each once; at most `room`.
pub fn due(
    cluster: &ClusterCatalog,
    live: &LiveCluster,
    line: Option<f64>,
    room: usize,
) -> Vec<(ShardId, SplitNeed)> {
    let s = live.settings();
    if room == 0 || s.paused || cluster.record.topology() != Topology::Dynamic {
        return Vec::new();
    }
    let mut due: Vec<(ShardId, SplitNeed)> = Vec::new();
    let eligible: Vec<ShardId> =
        led(cluster, live).filter(|&shard| may_split(cluster, live, shard)).collect();
    for &shard in &eligible {
        let count = cluster.shard_tables[shard.index()].len();
        let bytes = live.loads().smoothed(shard).0.bytes;
        if s.tables_per_shard_max > 0 && count > s.tables_per_shard_max as usize {
            due.push((shard, SplitNeed::Tables { count, max: s.tables_per_shard_max }));
        } else if s.shard_bytes_max > 0 && bytes > s.shard_bytes_max && count >= 2 {
            due.push((shard, SplitNeed::Bytes { bytes, max: s.shard_bytes_max }));
        }
    }
    if let Some(line) = line {
        for &shard in &eligible {
            let windows = live.hot().streak(shard);
            let units = live.loads().trusted(shard).map_or(0.0, |l| l.units());
            if windows >= s.split_windows && units > line && !due.iter().any(|(d, _)| *d == shard) {
                due.push((shard, SplitNeed::Load { units, line, windows }));
            }
        }
    }
    let nodes = placeable_nodes(live);
    let shards = cluster.shards.len() + live.procedures_starting() as usize + due.len();
    if nodes > shards && busy(cluster, live) {
        let mut busiest: Vec<ShardId> = eligible
            .into_iter()
            .filter(|&s| {
                cluster.shard_tables[s.index()].len() >= 2 && !due.iter().any(|(d, _)| *d == s)
            })
            .collect();
        busiest.sort_by(|&a, &b| {
            let (la, lb) = (live.loads().estimate_units(a), live.loads().estimate_units(b));
            lb.total_cmp(&la)
                .then(
                    cluster.shard_tables[b.index()]
                        .len()
                        .cmp(&cluster.shard_tables[a.index()].len()),
                )
                .then(a.cmp(&b))
        });
        due.extend(
            busiest
                .into_iter()
                .take(nodes - shards)
                .map(|shard| (shard, SplitNeed::ScaleOut { nodes, shards })),
        );
    }
    due.truncate(room);
    due
}

fn placeable_nodes(live: &LiveCluster) -> usize {
    live.nodes().iter().filter(|(_, n)| n.placeable()).count()
}

/// Whether the cluster carries enough load for the scale-out rule: an idle one has no work to
/// give new nodes.
fn busy(cluster: &ClusterCatalog, live: &LiveCluster) -> bool {
    led(cluster, live).map(|shard| live.loads().estimate_units(shard)).sum::<f64>()
        >= live.settings().split_floor_units
}

/// How many more shards the scale-out rule may yet split for: placeable nodes beyond the
/// shards, while some shard could split (two tables or more) and the cluster is busy, or may
/// turn out busy once the loads this leader has not heard yet are known. 0 when no scale-out
/// split can come; not whether one is due now (`due` says that).
pub fn scale_out_short(cluster: &ClusterCatalog, live: &LiveCluster) -> u32 {
    let (nodes, shards) =
        (placeable_nodes(live), cluster.shards.len() + live.procedures_starting() as usize);
    let s = live.settings();
    if nodes <= shards || s.paused || cluster.record.topology() != Topology::Dynamic {
        return 0;
    }
    let splittable = led(cluster, live).any(|shard| cluster.shard_tables[shard.index()].len() >= 2);
    let unheard = led(cluster, live).any(|shard| !live.loads().known(shard));
    if splittable && (busy(cluster, live) || unheard) {
        (nodes - shards) as u32
    } else {
        0
    }
}

/// Shards with a leader, as the intent has it.
pub fn led<'a>(
    cluster: &'a ClusterCatalog,
    live: &'a LiveCluster,
) -> impl Iterator<Item = ShardId> + 'a {
    (0..cluster.shards.len() as u32)
        .map(ShardId)
        .filter(move |&s| live.intended(cluster, s).leader.is_some())
}

/// Whether a procedure may take the shard now: settled, not in transfer, not held.
pub(super) fn may_split(cluster: &ClusterCatalog, live: &LiveCluster, shard: ShardId) -> bool {
    live.intent().settled(shard)
        && live.intended(cluster, shard).transfer.is_none()
        && !live.locked(cluster, shard)
}
