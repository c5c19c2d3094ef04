//! Each placeable node's load and utilization in one pass, as the load balancer judges them
//! (see [`super::rebalance`] for the rules that read it).
//!
//! **Two views, both relative.** A node's *ratio* is its utilization over the mean, once with
//! the shards' smoothed loads (what is true now) and once with their long-run loads (see
//! `live::load`). A node is as full as the lower of its two ratios when it would give load
//! away, and as full as the higher when it would take some: load moves only where both views
//! agree that it should, so that a cycle of rising and falling load, which the long run hardly
//! sees, moves nothing at its peaks or troughs.
//!
//! **Units and CPU, weighed.** A shard's load is its request units per second (reads plus
//! writes) and, when nodes report it, its CPU time: `cpu_weight_pct` of the load is CPU, the
//! rest units, each scaled so that the cluster's totals of the two are equal (CPU ms are worth
//! as many units as the cluster's units over its CPU ms). The sum stays in units, so that the
//! floors keep their meaning, and a node whose shards cost much CPU per request weighs more
//! than its units say. A weighted sum rather than each node's dominant dimension: a sum is
//! additive, so a move takes off its source exactly what it adds to its target, and the
//! argument that the balancer cannot oscillate (a move lowers the pair's peak, and a pair's
//! reverse flow waits for the pair memory) holds for the sum as for units alone; a node's
//! maximum over dimensions is not additive, and a move that lowers one node's dominant
//! dimension can raise another's. CPU counts only when every node leading loaded shards
//! reports their CPU time: one node that reports none would look light and fill up. A node's
//! capacity (its size, for example its cores) divides the sum.

use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::live::per_shard::PerShard;
use crate::core::live::LiveCluster;
use crate::core::model::ClusterCatalog;
use crate::core::settings::SchedulerSettings;
use crate::core::time::{Duration, Instant};

/// How a pass weighs CPU time against request units (see the module notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuWeighing {
    /// `cpu_weight_pct` of the load is CPU time, the rest units.
    Counted,
    /// Units alone: `cpu_weight_pct` is 0, or no shard's CPU time is reported.
    Off,
    /// Units alone: this node leads loaded shards and reports no CPU time for them.
    Unreported(u32),
}

/// A placeable node's standing in one pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeStanding {
    /// Load units per second of the shards it is meant to lead (CPU weighed in, see the
    /// module notes).
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
    /// How many shards it is meant to lead.
    pub(super) leads: u32,
}

impl NodeStanding {
    /// Its load over its capacity.
    pub fn utilization(&self) -> f64 {
        self.load / self.capacity
    }
}

/// How a pass judged balance, which is what a fill is measured by.
pub(super) enum Judged {
    /// By load, with the pass's view of it.
    ByLoad(LoadView),
    /// By leader counts: every load is known and none is above the floor. With the view when
    /// load was above the floor earlier under this meta leader (a lull): it says which way a
    /// shard may still go (see [`LoadView::keeps_order`]).
    ByCounts(Option<LoadView>),
    /// Not at all: the pass had other moves to make, or balancing is paused.
    NotThisPass,
}

/// Which nodes may take load from a source: those below the ratio `below`, and when
/// `or_under_mean`, also those that the shard leaves under the mean (a shard small to a big
/// node: on capacities 1/1/2/4 a node of 1 stood at 1.13× with the node of 4 at 0.95×, just
/// over the underfull line, and no move was allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Room {
    pub below: f64,
    pub or_under_mean: bool,
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
    /// Whether CPU time is weighed in.
    pub cpu: CpuWeighing,
    /// What a unit and a CPU ms weigh, now and over the long run.
    weights: [[f64; 2]; 2],
    /// The shards a placeable node is meant to lead, on average.
    mean_leads: f64,
}

/// Whether CPU counts and what a unit and a CPU ms weigh, now and over the long run, from each
/// node's units and CPU ms (see the module notes).
fn weigh(raw: &[[[f64; 2]; 2]], cpu_weight_pct: u32) -> (CpuWeighing, [[f64; 2]; 2]) {
    let units_only = [[1.0, 0.0]; 2];
    let unreported = raw.iter().position(|[now, _]| now[0] > 0.0 && now[1] <= 0.0);
    let totals = [0, 1]
        .map(|k| raw.iter().fold([0.0, 0.0], |[u, c], node| [u + node[k][0], c + node[k][1]]));
    if cpu_weight_pct == 0 || totals.iter().any(|&[_, cpu]| cpu <= 0.0) {
        return (CpuWeighing::Off, units_only);
    }
    if let Some(node) = unreported {
        return (CpuWeighing::Unreported(node as u32), units_only);
    }
    let share = f64::from(cpu_weight_pct.min(100)) / 100.0;
    (CpuWeighing::Counted, totals.map(|[units, cpu]| [1.0 - share, share * units / cpu]))
}

fn dot(weights: [f64; 2], raw: [f64; 2]) -> f64 {
    weights[0] * raw[0] + weights[1] * raw[1]
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
                    leads: 0,
                })
            })
            .collect();
        let mut all_known = true;
        // Each node's units and CPU ms, now and over the long run.
        let mut raw = vec![[[0.0; 2]; 2]; nodes.len()];
        for i in 0..cluster.shards.len() {
            let shard = ShardId(i as u32);
            let Some(leader) = live.planned_leader(cluster, shard) else { continue };
            let Some(Some(node)) = nodes.get_mut(leader.index()) else { continue };
            let rates = live.loads().scanned(shard).rates();
            for (sum, load) in raw[leader.index()].iter_mut().zip(rates.units_and_cpu()) {
                *sum = [sum[0] + load[0], sum[1] + load[1]];
            }
            node.judged &= rates.trusted() && live.intent().settled(shard);
            node.leads += 1;
            all_known &= rates.known();
        }
        let (cpu, weights) = weigh(&raw, live.settings().cpu_weight_pct);
        for (node, raw) in nodes.iter_mut().zip(&raw) {
            if let Some(node) = node {
                [node.load, node.slow] = [0, 1].map(|k| dot(weights[k], raw[k]));
            }
        }
        let placed = nodes.iter().flatten();
        let (load, slow, capacity) = placed
            .clone()
            .fold((0.0, 0.0, 0.0), |(l, s, c), n| (l + n.load, s + n.slow, c + n.capacity));
        let peak_load = placed.clone().map(|n| n.load).fold(0.0, f64::max);
        let (leads, placeable) = placed.fold((0, 0), |(l, n), s| (l + s.leads, n + 1));
        let mean_leads = if placeable > 0 { f64::from(leads) / f64::from(placeable) } else { 0.0 };
        let per_capacity = |x: f64| if capacity > 0.0 { x / capacity } else { 0.0 };
        LoadView {
            nodes,
            mean: per_capacity(load),
            slow_mean: per_capacity(slow),
            peak_load,
            all_known,
            cpu,
            weights,
            mean_leads,
        }
    }

    /// A shard's load as this view weighs it, now and over the long run.
    pub(super) fn shard_load(&self, loads: &PerShard, shard: ShardId) -> [f64; 2] {
        let raw = loads.scanned(shard).rates().units_and_cpu();
        [0, 1].map(|k| dot(self.weights[k], raw[k]))
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

    /// Whether `to`, taking a shard of `load` (`slow` over the long run) from `from`, ends no
    /// fuller than `from` does in either view. In a lull (load under the floor after it was
    /// above), leader counts are evened only by such moves: the lull keeps the placement that
    /// balancing by load left, whose uneven counts would otherwise be evened each night and
    /// undone each day. An empty node still fills.
    pub(super) fn keeps_order(&self, from: u32, to: u32, [load, slow]: [f64; 2]) -> bool {
        let Some(t) = self.get(to) else { return false };
        // A source that is not placeable is not judged by load: its leaders may go anywhere.
        let Some(f) = self.get(from) else { return true };
        let after = |s: &NodeStanding, sign: f64| {
            self.ratios(&NodeStanding {
                load: s.load + sign * load,
                slow: s.slow + sign * slow,
                ..*s
            })
        };
        let ([from_now, from_long], [to_now, to_long]) = (after(f, -1.0), after(t, 1.0));
        to_now <= from_now && to_long <= from_long
    }

    /// Whether a node carries next to nothing, as one new or back from a failure does: under
    /// the load `floor` in both views, and leading fewer than half the mean count of shards.
    /// Load alone called every node empty as a lull ended: each stays under the floor until
    /// its shards' windows close, some a window before others', and the first to rise shed at
    /// once to the last (scenario seed 17 of the nightly lull).
    pub(super) fn carries_nothing(&self, node: u32, floor: f64) -> bool {
        self.get(node).is_some_and(|s| {
            s.load.max(s.slow) <= floor && f64::from(s.leads) < 0.5 * self.mean_leads
        })
    }

    /// The shards a placeable node is meant to lead, on average.
    pub(super) fn mean_leads(&self) -> f64 {
        self.mean_leads
    }

    /// How far apart a node's two ratios stand (0 for a node that is not placeable): the noise
    /// and the cycles in its load that the long run smooths away.
    pub(super) fn gap(&self, node: u32) -> f64 {
        self.get(node).map_or(0.0, |s| {
            let [now, long] = self.ratios(s);
            (now - long).abs()
        })
    }

    /// A node's utilization over the mean in the long run alone (0 for a node that is not
    /// placeable).
    pub(super) fn long_run(&self, node: u32) -> f64 {
        self.get(node).map_or(0.0, |s| self.ratios(s)[1])
    }

    pub(super) fn get(&self, node: u32) -> Option<&NodeStanding> {
        self.nodes.get(node as usize).and_then(Option::as_ref)
    }

    /// Whether a node standing so is over the overfull line in both views (judged or not).
    pub(super) fn over_line(&self, s: &NodeStanding, settings: &SchedulerSettings) -> bool {
        let [now, long] = self.ratios(s);
        now.min(long) > settings.overfull_ratio() && s.load > settings.load_floor_units
    }

    /// Whether a node standing so is over the overfull line, and under the pull line, over the
    /// long run alone: what must have lasted before it sheds or pulls (see
    /// [`super::rebalance`]). A cycle hardly moves the long run, so that a node whose average
    /// is over the line stands there through its troughs, and one whose average is not never
    /// does, however high its peaks.
    pub(super) fn long_run_sides(
        &self,
        s: &NodeStanding,
        settings: &SchedulerSettings,
    ) -> [bool; 2] {
        let [_, long] = self.ratios(s);
        let loaded = s.slow > settings.load_floor_units;
        [loaded && long > settings.overfull_ratio(), long < settings.pull_ratio()]
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

    /// Whether `node` may take a shard of `load` (`slow` over the long run) in this pass: it has
    /// `room` for it and stays within `cap` (ratios to the mean), in both views.
    pub(super) fn takes(
        &self,
        node: u32,
        [load, slow]: [f64; 2],
        room: Room,
        cap: f64,
        settings: &SchedulerSettings,
    ) -> bool {
        self.get(node).is_some_and(|s| {
            let after = self.taking_with(node, load, slow);
            s.judged
                && s.moves_in < settings.moves_per_node_per_pass_max
                && (self.taking(node) < room.below || (room.or_under_mean && after <= 1.0))
                && after <= cap
        })
    }

    /// How many nodes are placeable.
    pub(super) fn placeable(&self) -> u32 {
        self.nodes.iter().flatten().count() as u32
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counts_only_when_every_loaded_node_reports_it_and_the_sum_stays_in_units() {
        // Two nodes: units and CPU ms, now and over the long run.
        let both = [[[100.0, 400.0]; 2], [[300.0, 100.0]; 2]];
        let (cpu, weights) = weigh(&both, 50);
        assert_eq!(cpu, CpuWeighing::Counted);
        let loads: Vec<f64> = both.iter().map(|n| dot(weights[0], n[0])).collect();
        assert_eq!(loads, vec![50.0 + 0.5 * 400.0 * 0.8, 150.0 + 0.5 * 100.0 * 0.8]);
        assert_eq!(loads.iter().sum::<f64>(), 400.0, "the sum is the cluster's units");
        let one_silent = [[[100.0, 400.0]; 2], [[300.0, 0.0]; 2], [[0.0, 0.0]; 2]];
        assert_eq!(weigh(&one_silent, 50), (CpuWeighing::Unreported(1), [[1.0, 0.0]; 2]));
        assert_eq!(weigh(&both, 0).0, CpuWeighing::Off);
        assert_eq!(weigh(&[[[100.0, 0.0]; 2]], 50).0, CpuWeighing::Off, "no CPU at all");
        let (_, cpu_only) = weigh(&both, 100);
        assert_eq!(dot(cpu_only[0], both[0][0]), 320.0, "all CPU, scaled to units");
    }
}
