//! Swarm testing: each seed draws its own mix of faults and cluster shape, so that across seeds
//! every combination gets exercised, including the quiet ones.

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use shardmeta::core::model::{Constraint, ConstraintKind, PlacementRecord, Topology};

#[derive(Clone, Debug)]
pub struct FaultMix {
    pub drop_per_mille: u64,
    pub dup_per_mille: u64,
    pub delay_ms: (u64, u64),
    pub store_error_per_mille: u64,
    pub store_timeout_per_mille: u64,
    pub meta_crashes: bool,
    pub meta_pauses: bool,
    pub node_crashes: bool,
    pub partitions: bool,
    pub clock_drift: ClockDrift,
    /// An operator drains a node, and sometimes cancels the drain.
    pub drains: bool,
    /// An operator splits a shard and merges two (dynamic clusters), and sometimes cancels
    /// whatever procedure runs.
    pub resizes: bool,
    /// Other processes heartbeat under live nodes' names (another incarnation and endpoint),
    /// and one-shot senders heartbeat once under new names and vanish.
    pub impostors: bool,
    pub shards: u32,
    pub followers: u32,
    pub topology: Topology,
    pub initial_nodes: usize,
    pub added_nodes: usize,
    /// Keys per snapshot page. Most seeds read a snapshot in one page; the rest in pages so
    /// small that a load takes tens of pages, so that store errors, lost pages, pauses and
    /// leader changes land between pages.
    pub snapshot_page_keys: usize,
    /// The placement rules an operator sets, in turn, mid-run (indexes into `RULES`).
    pub rules: Vec<usize>,
}

/// The rules seeds draw, over the labels every node reports (`node_side::labels`): hdd on a
/// quarter of the nodes, two racks, three zones. Some can be met only in part with the nodes a
/// seed has.
pub fn rule(i: usize) -> PlacementRecord {
    use ConstraintKind::*;
    let c = Constraint::new;
    let (replicas, leader, spread) = match i {
        0 => (vec![c(Avoid, "disk", &["hdd"])], vec![], ""),
        1 => (vec![c(Require, "disk", &["ssd"])], vec![c(Avoid, "zone", &["c"])], ""),
        2 => (vec![], vec![c(Require, "zone", &["a", "b"])], ""),
        3 => (vec![c(Prefer, "disk", &["ssd"])], vec![c(Prefer, "rack", &["r1"])], "rack"),
        4 => (vec![c(Require, "rack", &["r0"])], vec![], ""),
        // Against the spread over three zones: the rule wins, the spread does what it can.
        5 => (vec![c(Require, "zone", &["a", "b"])], vec![], ""),
        _ => (vec![], vec![], ""),
    };
    PlacementRecord { version: 0, replicas, leader, spread: spread.into() }
}

/// How data nodes' clocks run against meta's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockDrift {
    Off,
    /// Each node's rate is off by up to 1%, either way.
    Random,
    /// Every node runs slow at just under the largest rate error the core's drift allowance
    /// covers: a lease then outlasts meta's view of it by nearly the whole allowance, so that
    /// a core without the allowance fails seeds (see `drift_bound_ppm`).
    AtBound,
}

/// Just under the slowest clock rate (in parts per million, negative: slow) that meta's drift
/// allowance covers: a node's lease of `lease` on a clock slow by ρ lasts `lease / (1 - ρ)`,
/// which must stay within `lease + drift`.
pub fn drift_bound_ppm(lease_ms: u64, drift_ms: u64) -> i64 {
    let exact = drift_ms as i64 * 1_000_000 / (lease_ms + drift_ms) as i64;
    -(exact - exact / 100)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, options: &[T]) -> T {
    options[(rng.next_u64() % options.len() as u64) as usize]
}

impl FaultMix {
    pub fn draw(rng: &mut ChaCha8Rng) -> FaultMix {
        let coin = |rng: &mut ChaCha8Rng| rng.next_u64().is_multiple_of(2);
        FaultMix {
            drop_per_mille: pick(rng, &[0, 0, 10, 50]),
            dup_per_mille: pick(rng, &[0, 20]),
            delay_ms: pick(rng, &[(1, 5), (1, 50), (20, 200)]),
            store_error_per_mille: pick(rng, &[0, 0, 20]),
            store_timeout_per_mille: pick(rng, &[0, 0, 20]),
            meta_crashes: coin(rng),
            meta_pauses: coin(rng),
            node_crashes: coin(rng),
            partitions: coin(rng),
            clock_drift: pick(
                rng,
                &[
                    ClockDrift::Off,
                    ClockDrift::Off,
                    ClockDrift::Random,
                    ClockDrift::Random,
                    ClockDrift::AtBound,
                ],
            ),
            drains: coin(rng),
            resizes: coin(rng),
            shards: pick(rng, &[4, 8, 16, 24]),
            followers: pick(rng, &[0, 1, 1, 2]),
            topology: pick(
                rng,
                &[Topology::Dynamic, Topology::Dynamic, Topology::Dynamic, Topology::Static],
            ),
            initial_nodes: pick(rng, &[3, 4]),
            added_nodes: pick(rng, &[0, 2, 3]),
            snapshot_page_keys: pick(rng, &[1_024, 1_024, 8, 16]),
            impostors: coin(rng),
            rules: match rng.next_u64() % 3 {
                0 => Vec::new(),
                1 => vec![pick(rng, &[0, 1, 2, 3, 4, 5])],
                _ => vec![pick(rng, &[0, 1, 2, 3, 4, 5]), pick(rng, &[0, 1, 2, 3, 4, 5, 6])],
            },
        }
    }

    /// Whether every live data node can reach the meta leader at all times: no network faults,
    /// no meta crashes or pauses, no store failures. Only then is L2 checked while faults run.
    pub fn nodes_always_reachable(&self) -> bool {
        self.drop_per_mille == 0
            && self.store_error_per_mille == 0
            && self.store_timeout_per_mille == 0
            && !self.meta_crashes
            && !self.meta_pauses
            && !self.partitions
    }

    /// No faults at all: the baseline a quiet seed must pass with room to spare.
    pub fn calm() -> FaultMix {
        FaultMix {
            drop_per_mille: 0,
            dup_per_mille: 0,
            delay_ms: (1, 5),
            store_error_per_mille: 0,
            store_timeout_per_mille: 0,
            meta_crashes: false,
            meta_pauses: false,
            node_crashes: false,
            partitions: false,
            clock_drift: ClockDrift::Off,
            drains: false,
            resizes: false,
            shards: 8,
            followers: 1,
            topology: Topology::Dynamic,
            initial_nodes: 3,
            added_nodes: 2,
            snapshot_page_keys: 1_024,
            impostors: false,
            rules: Vec::new(),
        }
    }
}
