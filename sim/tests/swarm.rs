//! Swarm runs of the full stack. Each seed draws its deployment (3–5 metas, 8–64 data nodes,
//! 16–64 shards, 0–2 followers), its standing conditions (etcd timeouts, packet loss, latency),
//! a subset of the fault classes, and then a sequence of faults from that subset over a DDL
//! and routed-write workload. Safety is checked after every fault and at the end, liveness
//! after the heal; across the seed set every fault class and recovery path must occur.
#![cfg(madsim)]

use std::time::Duration;

use madsim::rand::{thread_rng, Rng};
use shardmeta_sim::faults::{Undo, ETCD_TIMEOUTS, LATENCY, PACKET_LOSS};
use shardmeta_sim::runner::{assert_covered, run_seeds};
use shardmeta_sim::*;

const FAULTS: usize = 12;

async fn swarm_seed() -> Report {
    let mut rng = thread_rng();
    let data_nodes = rng.gen_range(8..=64);
    let spec = Spec {
        metas: rng.gen_range(3..=5),
        data_nodes,
        shards: rng.gen_range(16..=64),
        followers: rng.gen_range(0..=2),
        min_nodes: data_nodes,
        etcd_timeout_rate: [0.0, 0.0, 0.01][rng.gen_range(0..3)],
        load: [SimLoad::Flat, SimLoad::Flat, SimLoad::Skewed, SimLoad::Periodic]
            [rng.gen_range(0..4)],
        planted: None,
    };
    let mut enabled: Vec<Fault> = Fault::ALL.into_iter().filter(|_| rng.gen_bool(0.5)).collect();
    if enabled.is_empty() {
        enabled.push(Fault::ALL[rng.gen_range(0..Fault::ALL.len())]);
    }
    let loss = [0.0, 0.0, 0.01][rng.gen_range(0..3)];
    let latency = rng.gen_bool(0.3).then(|| Duration::from_millis(rng.gen_range(20..120)));
    println!("{spec:?}; faults {enabled:?}; loss {loss}; latency {latency:?}");
    let mut sim = Sim::start(spec).await;
    sim.degrade_network(loss, latency);
    sim.start_frontends(rng.gen_range(1..=3), Workload::FULL);
    sim.sleep(Duration::from_secs(6)).await;
    // Faults overlap: each is held for its own time while the next ones start.
    let mut active: Vec<(tokio::time::Instant, Undo)> = Vec::new();
    for _ in 0..FAULTS {
        let fault = enabled[rng.gen_range(0..enabled.len())];
        let until = tokio::time::Instant::now() + Duration::from_millis(rng.gen_range(500..8_000));
        active.push((until, sim.apply(fault).await));
        sim.sleep(Duration::from_millis(rng.gen_range(0..3_000))).await;
        let now = tokio::time::Instant::now();
        for (_, undo) in extract(&mut active, |(t, _)| *t <= now) {
            sim.undo(undo);
        }
        sim.assert_safe();
    }
    for (until, undo) in std::mem::take(&mut active) {
        tokio::time::sleep_until(until).await;
        sim.undo(undo);
    }
    sim.stop_frontends();
    sim.assert_live(true).await;
    sim.finish()
}

fn extract<T>(v: &mut Vec<T>, pred: impl Fn(&T) -> bool) -> Vec<T> {
    let (out, keep) = std::mem::take(v).into_iter().partition(|x| pred(x));
    *v = keep;
    out
}

#[test]
fn swarm() {
    let summary = run_seeds("swarm", "swarm", 100, swarm_seed);
    let c = &summary.coverage;
    let classes = Fault::ALL.iter().map(|f| f.name()).chain([ETCD_TIMEOUTS, PACKET_LOSS, LATENCY]);
    let faults: Vec<(&str, u64)> =
        classes.map(|name| (name, c.faults.get(name).copied().unwrap_or(0))).collect();
    assert_covered(&summary, "fault classes", &faults);
    assert_covered(&summary, "recovery paths", &c.recovery_paths());
    println!("workload: {:?}; storage reads audited: {}", c.frontend, c.storage_reads);
}
