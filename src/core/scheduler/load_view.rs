//! Each placeable node's load and utilization in one pass, as the load balancer judges them
//! (see [`super::rebalance`] for the rules that read it).

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
    /// The capacity it reported (1 when it reported none).
    pub capacity: f64,
    /// Whether the balancer may judge it now (see the module notes).
    pub judged: bool,
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
                let judged = !live.recent().node_settling(id, now, settle);
                n.placeable().then_some(NodeStanding {
                    load: 0.0,
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
            node.judged &= live.loads().trusted(shard).is_some() && live.intent().settled(shard);
            all_known &= live.loads().known(shard);
        }
        let placed = nodes.iter().flatten();
        let (load, capacity) =
            placed.clone().fold((0.0, 0.0), |(l, c), n| (l + n.load, c + n.capacity));
        let peak_load = placed.map(|n| n.load).fold(0.0, f64::max);
        LoadView {
            nodes,
            mean: if capacity > 0.0 { load / capacity } else { 0.0 },
            peak_load,
            all_known,
        }
    }

    pub(super) fn get(&self, node: u32) -> Option<&NodeStanding> {
        self.nodes.get(node as usize).and_then(Option::as_ref)
    }

    /// Whether a node standing so is over the overfull line (judged or not).
    pub(super) fn over_line(&self, s: &NodeStanding, settings: &SchedulerSettings) -> bool {
        s.utilization() > self.mean * settings.overfull_ratio()
            && s.load > settings.load_floor_units
    }

    /// Judged nodes over the overfull line, the most utilized first.
    pub fn overfull(&self, settings: &SchedulerSettings) -> Vec<u32> {
        let mut over: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&n| self.get(n).is_some_and(|s| s.judged && self.over_line(s, settings)))
            .collect();
        over.sort_by(|&a, &b| self.utilization(b).total_cmp(&self.utilization(a)).then(a.cmp(&b)));
        over
    }

    /// While no node is overfull and some judged node is below mean × (1 − `overfull_pct`), the
    /// judged nodes above the mean, which then shed to it: a new node gets load even when no old
    /// one is over the line.
    pub fn pull_sources(&self, settings: &SchedulerSettings) -> Vec<u32> {
        let line = self.mean * settings.pull_ratio();
        let judged =
            || (0..self.nodes.len() as u32).filter(|&n| self.get(n).is_some_and(|s| s.judged));
        // An overfull node that is only waiting for fresh windows will shed to the empty nodes
        // itself: pulls would fill them first and leave it stuck.
        let overfull = self.nodes.iter().flatten().any(|s| self.over_line(s, settings));
        if overfull || !judged().any(|n| self.utilization(n) < line) {
            return Vec::new();
        }
        judged()
            .filter(|&n| {
                self.utilization(n) > self.mean
                    && self.get(n).is_some_and(|s| s.load > settings.load_floor_units)
            })
            .collect()
    }

    pub(super) fn utilization(&self, node: u32) -> f64 {
        self.get(node).map_or(0.0, NodeStanding::utilization)
    }

    /// Whether `node` may take a shard of `load` in this pass: it is below `below` and stays
    /// within `cap` (utilizations).
    pub(super) fn takes(
        &self,
        node: u32,
        load: f64,
        below: f64,
        cap: f64,
        settings: &SchedulerSettings,
    ) -> bool {
        self.get(node).is_some_and(|s| {
            s.judged
                && s.moves_in < settings.moves_per_node_per_pass_max
                && s.utilization() < below
                && (s.load + load) / s.capacity <= cap
        })
    }

    pub(super) fn shift(&mut self, from: u32, to: u32, load: f64) {
        if let Some(Some(s)) = self.nodes.get_mut(from as usize) {
            s.load -= load;
            s.moves_out += 1;
        }
        if let Some(Some(s)) = self.nodes.get_mut(to as usize) {
            s.load += load;
            s.moves_in += 1;
        }
    }
}
