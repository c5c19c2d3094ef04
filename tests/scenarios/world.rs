//! A seeded world for scheduling scenarios: the real core and real `ShardHost`s, one heartbeat
//! per node per simulated second, each shard's true load given by the scenario and reported
//! with noise. It records every leader move it sees land in the catalog, and measures what the
//! scenarios judge: utilization, moves and thrash.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::harness::*;
use shardmeta::check::{self, Steady, Violation};
use shardmeta::core::model::ClusterCatalog;
use shardmeta::core::*;

/// A leader move that landed: the shard's leader in the catalog changed.
#[derive(Clone, Copy, Debug)]
pub struct Moved {
    pub second: u64,
    pub shard: u32,
    pub from: Option<u32>,
    pub to: Option<u32>,
    /// The new leader was a follower: a transfer or promotion, not a reopen.
    pub promoted: bool,
}

pub struct World {
    pub h: Harness,
    pub nodes: Vec<Node>,
    /// Nodes that heartbeat; a node that is not up is silent (crashed or cut off).
    pub up: Vec<bool>,
    /// Each shard's true load, in units per second, at a second.
    pub load: Box<dyn Fn(ShardId, u64) -> f64>,
    /// Each report is the true load times 1 ± up to this.
    pub noise: f64,
    /// Per node: the reports it repeats, by shard id, and the stats sample counter that no
    /// longer moves, once its stats froze.
    pub frozen: Vec<Option<(Vec<f64>, u64)>>,
    /// Per node, the request latency it reports, in ms (5 ms each to begin with).
    pub latency_ms: Vec<f64>,
    /// Per node, the share of the true load it reports (1 past the end): a node that lies.
    pub report_factor: Vec<f64>,
    /// Each shard's size in bytes, as its leader reports it (0: none).
    pub shard_bytes: u64,
    /// Per node, its declared disk capacity in bytes (none past the end); it reports in use
    /// the bytes of the shards it hosts.
    pub disk_capacity: Vec<u64>,
    /// CPU ms each unit of a shard costs, by shard id (empty: no CPU time is reported).
    pub cpu_per_unit: Vec<f64>,
    pub seed: u64,
    rng: ChaCha8Rng,
    pub second: u64,
    shards: Vec<(Option<u32>, Vec<u32>)>,
    /// Each shard's leader when the scenario started (after the warm-up), by shard id.
    start: Vec<Option<u32>>,
    pub moves: Vec<Moved>,
    /// B1 over every move for balance, and what it found.
    steady: Steady,
    last: Option<ClusterCatalog>,
    pub unsteady: Vec<Violation>,
}

impl World {
    /// `nodes` nodes holding `shards` shards of `followers` followers, every shard loaded
    /// `per_shard` units, after the load is trusted (40 s).
    pub fn new(
        seed: u64,
        config: CoreConfig,
        nodes: u64,
        shards: u32,
        followers: u32,
        per_shard: f64,
    ) -> World {
        World::zoned(seed, config, nodes, shards, followers, per_shard, &[])
    }

    /// The same, node `i` in zone `zones[i % len]`.
    pub fn zoned(
        seed: u64,
        config: CoreConfig,
        nodes: u64,
        shards: u32,
        followers: u32,
        per_shard: f64,
        zones: &[&str],
    ) -> World {
        let config_pair_cooldown_ms = config.scheduler.pair_cooldown_ms;
        let (h, nodes) = steady_cluster_configured(config, nodes, shards, followers, zones);
        let up = vec![true; nodes.len()];
        let mut w = World {
            h,
            nodes,
            up,
            load: Box::new(move |_, _| per_shard),
            noise: 0.15,
            frozen: Vec::new(),
            latency_ms: Vec::new(),
            report_factor: Vec::new(),
            shard_bytes: 0,
            disk_capacity: Vec::new(),
            cpu_per_unit: Vec::new(),
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            second: 0,
            shards: Vec::new(),
            start: Vec::new(),
            moves: Vec::new(),
            steady: Steady::new(config_pair_cooldown_ms),
            last: None,
            unsteady: Vec::new(),
        };
        w.shards = w.replicas();
        w.run(40);
        w.moves.clear();
        w.start = w.shards.iter().map(|s| s.0).collect();
        w
    }

    pub fn catalog(&self) -> &ClusterCatalog {
        self.h
            .core
            .catalog()
            .expect("the world's core leads")
            .cluster_by_name("c")
            .expect("cluster c")
    }

    /// The catalog id of the node named `n{i}` (nodes register as they first heartbeat).
    pub fn id_of(&self, node: usize) -> Option<u32> {
        self.catalog().node_by_name.get(&self.nodes[node].name).map(|id| id.0)
    }

    /// Node `i`'s stats sampler sticks: from now on it repeats what it would report now, with
    /// the same sample counter.
    pub fn freeze(&mut self, i: usize) {
        let snapshot: Vec<f64> = (0..self.catalog().shards.len())
            .map(|s| (self.load)(ShardId(s as u32), self.second))
            .collect();
        self.frozen.resize(self.nodes.len(), None);
        self.frozen[i] = Some((snapshot, self.second + 1));
    }

    /// One simulated second: every node that is up heartbeats and hears meta's answers, and
    /// the scheduler ticks twice. A node samples its stats afresh at each heartbeat (its sample
    /// counter is the second, plus one), unless they froze.
    pub fn step(&mut self) {
        let shard_count = self.catalog().shards.len();
        let reported: Vec<f64> = (0..shard_count)
            .map(|s| {
                let jitter =
                    (self.rng.next_u32() as f64 / u32::MAX as f64 * 2.0 - 1.0) * self.noise;
                (self.load)(ShardId(s as u32), self.second) * (1.0 + jitter)
            })
            .collect();
        for i in 0..self.nodes.len() {
            if !self.up[i] {
                continue;
            }
            let frozen = self.frozen.get(i).and_then(Option::as_ref);
            let factor = self.report_factor.get(i).copied().unwrap_or(1.0);
            let scaled: Vec<f64>;
            let honest = if factor == 1.0 {
                &reported[..]
            } else {
                scaled = reported.iter().map(|u| u * factor).collect();
                &scaled[..]
            };
            let load = Sampled {
                units: frozen.map_or(honest, |(f, _)| &f[..]),
                sample: frozen.map_or(self.second + 1, |&(_, sample)| sample),
                cpu_per_unit: &self.cpu_per_unit,
                latency_ms: self.latency_ms.get(i).copied().unwrap_or(5.0),
                bytes: self.shard_bytes,
                disk: [
                    self.disk_capacity.get(i).copied().unwrap_or(0),
                    self.nodes[i].host.shards().len() as u64 * self.shard_bytes,
                ],
            };
            self.nodes[i]
                .heartbeat_with(&mut self.h, load)
                .unwrap_or_else(|e| panic!("seed {}: heartbeat refused: {e}", self.seed));
            self.deliver();
        }
        for _ in 0..2 {
            self.h.advance(500);
            self.deliver();
        }
        self.second += 1;
        self.observe();
    }

    pub fn run(&mut self, seconds: u64) {
        for _ in 0..seconds {
            self.step();
        }
    }

    /// Runs until `done` holds (checked each second) or `limit` seconds pass; the second it held.
    pub fn run_until(
        &mut self,
        limit: u64,
        mut done: impl FnMut(&mut World) -> bool,
    ) -> Option<u64> {
        let start = self.second;
        while self.second < start + limit {
            self.step();
            if done(self) {
                return Some(self.second - start);
            }
        }
        None
    }

    fn deliver(&mut self) {
        let outs = self.h.settle();
        for (n, up) in self.nodes.iter_mut().zip(&self.up) {
            if *up {
                n.receive(&outs);
            }
        }
    }

    fn replicas(&self) -> Vec<(Option<u32>, Vec<u32>)> {
        self.catalog().shards.iter().map(|s| (s.leader, s.followers.clone())).collect()
    }

    fn observe(&mut self) {
        let catalog = self.catalog().clone();
        if let Some(last) = &self.last {
            for m in check::load_moves_started(last, &catalog) {
                if let Err(v) = self.steady.observe(self.second * 1_000, m) {
                    self.unsteady.push(v);
                }
            }
        }
        self.last = Some(catalog);
        let now = self.replicas();
        for (shard, (was, is)) in self.shards.iter().zip(&now).enumerate() {
            if was.0 != is.0 {
                let promoted = is.0.is_some_and(|l| was.1.contains(&l));
                self.moves.push(Moved {
                    second: self.second,
                    shard: shard as u32,
                    from: was.0,
                    to: is.0,
                    promoted,
                });
            }
        }
        self.shards = now;
    }

    /// Each node's true load (units per second of the shards it leads in the catalog), by id.
    pub fn node_loads(&self) -> Vec<f64> {
        let c = self.catalog();
        let mut loads = vec![0.0; c.nodes.len()];
        for s in &c.shards {
            if let Some(l) = s.leader {
                loads[l as usize] += (self.load)(ShardId(s.id), self.second);
            }
        }
        loads
    }

    /// Each node's true CPU ms per second (of the shards it leads in the catalog), by id.
    pub fn node_cpu(&self) -> Vec<f64> {
        let c = self.catalog();
        let mut cpu = vec![0.0; c.nodes.len()];
        for s in &c.shards {
            if let Some(l) = s.leader {
                let per_unit = self.cpu_per_unit.get(s.id as usize).copied().unwrap_or(0.0);
                cpu[l as usize] += (self.load)(ShardId(s.id), self.second) * per_unit;
            }
        }
        cpu
    }

    /// The true loads of `nodes` (by index), and their mean.
    fn loads_of(&self, nodes: impl Iterator<Item = usize>) -> (Vec<f64>, f64) {
        let loads = self.node_loads();
        let of: Vec<f64> =
            nodes.map(|i| self.id_of(i).map_or(0.0, |id| loads[id as usize])).collect();
        let mean = of.iter().sum::<f64>() / of.len() as f64;
        (of, mean)
    }

    fn up_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.up[i]).collect()
    }

    /// The most loaded up node's load over the mean of up nodes (capacities are equal).
    pub fn max_over_mean(&self) -> f64 {
        self.max_over_mean_of(&self.up_nodes())
    }

    /// The most loaded of `nodes` over their mean.
    pub fn max_over_mean_of(&self, nodes: &[usize]) -> f64 {
        let (loads, mean) = self.loads_of(nodes.iter().copied());
        loads.iter().cloned().fold(0.0, f64::max) / mean
    }

    /// The most utilized up node's utilization (load over its capacity) over the up nodes'
    /// (their load over their capacity, together).
    pub fn max_utilization_over_mean(&self) -> f64 {
        let up = self.up_nodes();
        let (loads, _) = self.loads_of(up.iter().copied());
        let caps: Vec<f64> = up.iter().map(|&i| self.nodes[i].capacity.max(1e-9)).collect();
        let mean = loads.iter().sum::<f64>() / caps.iter().sum::<f64>();
        loads.iter().zip(&caps).map(|(l, c)| l / c).fold(0.0, f64::max) / mean
    }

    /// The least loaded of `nodes` over the mean of up nodes.
    pub fn min_over_mean(&self, nodes: &[usize]) -> f64 {
        let (_, mean) = self.loads_of(self.up_nodes().into_iter());
        let (loads, _) = self.loads_of(nodes.iter().copied());
        loads.iter().cloned().fold(f64::MAX, f64::min) / mean
    }

    /// Thrash: moves that take a shard back to the node it left, within `within` seconds.
    pub fn reversals(&self, within: u64) -> usize {
        let mut count = 0;
        for (i, a) in self.moves.iter().enumerate() {
            let back = self.moves[i + 1..].iter().find(|b| b.shard == a.shard);
            if back.is_some_and(|b| b.to == a.from && b.second - a.second <= within) {
                count += 1;
            }
        }
        count
    }

    /// The most loaded up node's load over the mean of up nodes, with every shard at
    /// `typical(shard)` (its load over a whole cycle).
    pub fn typical_max_over_mean(&self, typical: impl Fn(ShardId) -> f64) -> f64 {
        let c = self.catalog();
        let mut loads = vec![0.0; c.nodes.len()];
        for s in &c.shards {
            if let Some(l) = s.leader {
                loads[l as usize] += typical(ShardId(s.id));
            }
        }
        let up: Vec<f64> = self
            .up_nodes()
            .iter()
            .filter_map(|&i| self.id_of(i))
            .map(|id| loads[id as usize])
            .collect();
        let mean = up.iter().sum::<f64>() / up.len() as f64;
        up.iter().cloned().fold(0.0, f64::max) / mean
    }

    /// Thrash between nodes: moves from B to A within `within` seconds of a move from A to B,
    /// whichever shards (a different shard each time is still load going back and forth).
    /// Within means less than: the pair memory lets load flow back once its cooldown has
    /// passed, and a move exactly a cooldown later (seed 243's random walk: 5 → 2 at 1900 s,
    /// 2 → 5 at 2500 s) is the walk followed, not thrash.
    pub fn pair_reversals(&self, within: u64) -> usize {
        let mut count = 0;
        for (i, a) in self.moves.iter().enumerate() {
            let back = self.moves[i + 1..].iter().take_while(|b| b.second - a.second < within);
            if back.into_iter().any(|b| b.from == a.to && b.to == a.from) {
                count += 1;
            }
        }
        count
    }

    /// asim's thrash (`check::thrash_pct`), per node, of the utilization that placement alone
    /// decides: each node's load with every shard at `typical(shard)` (its load over a whole
    /// cycle), after every move. The worst node's.
    pub fn thrash_pct(&self, typical: impl Fn(ShardId) -> f64) -> f64 {
        let nodes = self.catalog().nodes.len();
        let mut leaders = self.start.clone();
        let load_of = |leaders: &[Option<u32>]| {
            let mut loads = vec![0.0; nodes];
            for (s, l) in leaders.iter().enumerate() {
                if let Some(l) = l {
                    loads[*l as usize] += typical(ShardId(s as u32));
                }
            }
            loads
        };
        let mut series = vec![load_of(&leaders)];
        for m in &self.moves {
            if let Some(l) = leaders.get_mut(m.shard as usize) {
                *l = m.to;
                series.push(load_of(&leaders));
            }
        }
        (0..nodes)
            .map(|n| check::thrash_pct(&series.iter().map(|loads| loads[n]).collect::<Vec<_>>()))
            .fold(0.0, f64::max)
    }

    /// One row of the results table (BENCHMARKS.md), with max/mean over the up nodes.
    pub fn report(&self, scenario: &str, converged: Option<u64>, lower_bound: Option<usize>) {
        self.report_of(scenario, converged, lower_bound, self.max_over_mean());
    }

    /// The same, with max/mean measured over the nodes the scenario judges.
    pub fn report_of(
        &self,
        scenario: &str,
        converged: Option<u64>,
        lower_bound: Option<usize>,
        max_over_mean: f64,
    ) {
        // Every scenario that reports is held to B1.
        assert!(self.unsteady.is_empty(), "{scenario}: {:?}; seed {}", self.unsteady, self.seed);
        let at = converged.map_or("never".to_string(), |s| format!("{s} s"));
        let lb = lower_bound.map_or("-".to_string(), |b| b.to_string());
        println!(
            "| {scenario} | {at} | {} | {lb} | {:.3} | {} | seed {} |",
            self.moves.len(),
            max_over_mean,
            self.reversals(300),
            self.seed
        );
    }
}

/// A node's load figures as its stats sampler took them, with the sampler's counter.
struct Sampled<'a> {
    units: &'a [f64],
    cpu_per_unit: &'a [f64],
    sample: u64,
    latency_ms: f64,
    bytes: u64,
    disk: [u64; 2],
}

impl shardmeta::client::LoadSource for Sampled<'_> {
    fn shard_load(&self, shard: ShardId, _: &std::collections::BTreeSet<TableId>) -> ShardLoad {
        let write_units = self.units.get(shard.index()).copied().unwrap_or(0.0);
        let cpu_ms = write_units * self.cpu_per_unit.get(shard.index()).copied().unwrap_or(0.0);
        ShardLoad { write_units, cpu_ms, bytes: self.bytes, ..Default::default() }
    }

    fn stats_sample(&self) -> u64 {
        self.sample
    }

    fn request_latency_us(&self) -> u32 {
        (self.latency_ms * 1_000.0) as u32
    }

    fn disk_bytes(&self) -> [u64; 2] {
        self.disk
    }
}
