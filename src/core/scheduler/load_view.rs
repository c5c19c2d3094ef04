//! Each placeable node's load and utilization in one pass, as the load balancer judges them
//! (see [`super::rebalance`] for the rules that read it).
//!
//! **Two views, both relative.** A node's *ratio* is its utilization over the mean, once with
//! the shards' smoothed loads (what is true now) and once with their long-run loads (see
//! `live::load`). A node is as full as the lower of its two ratios when it would give load
//! away, and as full as the higher when it would take some: load moves only where both views
//! agree that it should, so that a cycle of rising and falling load, which the long run hardly
//! sees, moves nothing at its peaks or troughs.

use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::live::{planned, LiveCluster};
use crate::core::model::ClusterCatalog;
use crate::core::settings::SchedulerSettings;
use crate::core::time::{Duration, Instant};

/// A placeable node's standing in one pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeStanding {
    /// Load units per second of the shards it is meant to lead.
    pub load: f64,
    /// The same over the long run.
    pub slow: f64,
    /// The capacity it reported (1 when it reported none).
    pub capacity: f64,
    /// Whether the balancer may judge it now (see the module notes).
    pub judged: bool,
    /// Its load reports stopped changing (`LiveNode::stats_frozen`): it is not judged.
    pub stats_frozen: bool,
    /// Its load reports contradict what other nodes reported of the same shards
    /// (`live::contrast`): it is not judged.
    pub stats_contradicted: bool,
    pub(super) moves_in: u32,
    pub(super) moves_out: u32,
}

impl NodeStanding {
    /// Its load over its capacity.
    pub fn utilization(&self) -> f64 {
        self.load / self.capacity
    }
}

/// Every node's standing (`None` for nodes that are not placeable) and the mean utilization.
#[derive(Clone, Debug)]
pub struct LoadView {
    /// Each node's standing by node id; `None` for a node that is not placeable.
    pub nodes: Vec<Option<NodeStanding>>,
    /// The placeable nodes' load over their capacity, all together.
    pub mean: f64,
    /// The same over the long run.
    pub slow_mean: f64,
    /// The most any placeable node carries.
    pub peak_load: f64,
    /// Every shard led by a placeable node has a known load (one window seen, by this leader).
    pub all_known: bool,
}

impl LoadView {
    /// The view of `cluster` now, moves in flight counted as done.
    pub fn of(
        cluster: &ClusterCatalog,
        live: &LiveCluster,
        now: Instant,
        config: &CoreConfig,
    ) -> LoadView {
        let settle =
            Duration(config.load_window_ms.saturating_mul(config.load_windows_trusted as u64));
        let mut nodes: Vec<Option<NodeStanding>> = live
            .nodes()
            .iter()
            .map(|(id, n)| {
                let stats_frozen = n.stats_frozen(now, config);
                let stats_contradicted = live.contrasts().contradicted(id);
                let judged = !live.recent().node_settling(id, now, settle)
                    && !stats_frozen
                    && !stats_contradicted;
                n.placeable().then_some(NodeStanding {
                    stats_frozen,
                    stats_contradicted,
                    load: 0.0,
                    slow: 0.0,
                    capacity: n.stats.capacity(),
                    judged,
                    moves_in: 0,
                    moves_out: 0,
                })
            })
            .collect();
        let mut all_known = true;
        for i in 0..cluster.shards.len() {
            let shard = ShardId(i as u32);
            let Some(leader) = planned(live.intended(cluster, shard)).leader else { continue };
            let Some(Some(node)) = nodes.get_mut(leader as usize) else { continue };
            node.load += live.loads().estimate_units(shard);
            node.slow += live.loads().slow_units(shard);
            node.judged &= live.loads().trusted(shard).is_some() && live.intent().settled(shard);
            all_known &= live.loads().known(shard);
        }
        let placed = nodes.iter().flatten();
        let (load, slow, capacity) = placed
            .clone()
            .fold((0.0, 0.0, 0.0), |(l, s, c), n| (l + n.load, s + n.slow, c + n.capacity));
        let peak_load = placed.map(|n| n.load).fold(0.0, f64::max);
        let per_capacity = |x: f64| if capacity > 0.0 { x / capacity } else { 0.0 };
        LoadView {
            nodes,
            mean: per_capacity(load),
            slow_mean: per_capacity(slow),
            peak_load,
            all_known,
        }
    }

    /// A node standing so: its utilization over the mean, now and over the long run.
    fn ratios(&self, s: &NodeStanding) -> [f64; 2] {
        let over = |x: f64, mean: f64| if mean > 0.0 { x / s.capacity / mean } else { 0.0 };
        [over(s.load, self.mean), over(s.slow, self.slow_mean)]
    }

    /// How full a node is when it would give load away: the lower of its two ratios (0 for a
    /// node that is not placeable).
    pub fn giving(&self, node: u32) -> f64 {
        self.get(node).map_or(0.0, |s| {
            let [now, long] = self.ratios(s);
            now.min(long)
        })
    }

    /// How full a node is when it would take load: the higher of its two ratios.
    pub fn taking(&self, node: u32) -> f64 {
        self.get(node).map_or(f64::MAX, |s| {
            let [now, long] = self.ratios(s);
            now.max(long)
        })
    }

    /// The higher of the two ratios `node` would have with a shard of `load` (`slow` over the
    /// long run) more.
    pub(super) fn taking_with(&self, node: u32, load: f64, slow: f64) -> f64 {
        self.get(node).map_or(f64::MAX, |s| {
            let more = NodeStanding { load: s.load + load, slow: s.slow + slow, ..*s };
            let [now, long] = self.ratios(&more);
            now.max(long)
        })
    }

    pub(super) fn get(&self, node: u32) -> Option<&NodeStanding> {
        self.nodes.get(node as usize).and_then(Option::as_ref)
    }

    /// Whether a node standing so is over the overfull line in both views (judged or not).
    pub(super) fn over_line(&self, s: &NodeStanding, settings: &SchedulerSettings) -> bool {
        let [now, long] = self.ratios(s);
        now.min(long) > settings.overfull_ratio() && s.load > settings.load_floor_units
    }

    /// Judged nodes over the overfull line, the most utilized first.
    pub fn overfull(&self, settings: &SchedulerSettings) -> Vec<u32> {
        let mut over: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&n| self.get(n).is_some_and(|s| s.judged && self.over_line(s, settings)))
            .collect();
        over.sort_by(|&a, &b| self.giving(b).total_cmp(&self.giving(a)).then(a.cmp(&b)));
        over
    }

    /// While no node is overfull and some judged node that `pulling` accepts (it has stood there
    /// long enough) is below mean × (1 − `overfull_pct`) in both views, the judged nodes above
    /// the mean in both, which then shed to it: a new node gets load even when no old one is
    /// over the line.
    pub fn pull_sources(
        &self,
        settings: &SchedulerSettings,
        pulling: impl Fn(u32) -> bool,
    ) -> Vec<u32> {
        let judged =
            || (0..self.nodes.len() as u32).filter(|&n| self.get(n).is_some_and(|s| s.judged));
        // An overfull node that is only waiting for fresh windows will shed to the empty nodes
        // itself: pulls would fill them first and leave it stuck.
        let overfull = self.nodes.iter().flatten().any(|s| self.over_line(s, settings));
        if overfull || !judged().any(|n| self.taking(n) < settings.pull_ratio() && pulling(n)) {
            return Vec::new();
        }
        judged()
            .filter(|&n| {
                self.giving(n) > 1.0
                    && self.get(n).is_some_and(|s| s.load > settings.load_floor_units)
            })
            .collect()
    }

    pub(super) fn utilization(&self, node: u32) -> f64 {
        self.get(node).map_or(0.0, NodeStanding::utilization)
    }

    /// Whether `node` may take a shard of `load` (`slow` over the long run) in this pass: it is
    /// below `below` and stays within `cap` (ratios to the mean), in both views.
    pub(super) fn takes(
        &self,
        node: u32,
        [load, slow]: [f64; 2],
        below: f64,
        cap: f64,
        settings: &SchedulerSettings,
    ) -> bool {
        self.get(node).is_some_and(|s| {
            s.judged
                && s.moves_in < settings.moves_per_node_per_pass_max
                && self.taking(node) < below
                && self.taking_with(node, load, slow) <= cap
        })
    }

    /// A move of a shard of `load` (`slow` over the long run) from `from` to `to`, as planned.
    pub(super) fn shift(&mut self, from: u32, to: u32, [load, slow]: [f64; 2]) {
        if let Some(Some(s)) = self.nodes.get_mut(from as usize) {
            (s.load, s.slow) = (s.load - load, s.slow - slow);
            s.moves_out += 1;
        }
        if let Some(Some(s)) = self.nodes.get_mut(to as usize) {
            (s.load, s.slow) = (s.load + load, s.slow + slow);
            s.moves_in += 1;
        }
    }
}
