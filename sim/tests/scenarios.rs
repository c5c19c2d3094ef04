//! Named scenarios, each over several seeds beside the random swarm. Each checks safety after
//! every step (history oracle, storage auditor, error logs) and liveness at the end, plus what
//! the scenario is about: which recovery path it must take, or that it must take none.
#![cfg(madsim)]

use std::time::Duration;

use madsim::rand::{thread_rng, Rng};
use shardmeta_sim::cluster::{ELECTION_TTL_MS, LEASE_MS};
use shardmeta_sim::runner::run_seeds;
use shardmeta_sim::*;

const SEEDS: u64 = 10;

fn scenario<F: std::future::Future<Output = Report> + 'static>(name: &str, body: fn() -> F) {
    run_seeds("scenarios", name, SEEDS, body);
}

/// Waits for the cluster to assign every shard and for the workload to get going.
async fn started(spec: Spec, frontends: usize) -> Sim {
    let mut sim = Sim::start(spec).await;
    sim.start_frontends(frontends, Workload::FULL);
    sim.sleep(Duration::from_secs(6)).await;
    sim
}

async fn leader(sim: &Sim) -> usize {
    for _ in 0..50 {
        if let Some(l) = sim.meta_leader().await {
            return l;
        }
        sim.sleep(Duration::from_millis(200)).await;
    }
    panic!("no meta leader");
}

/// Shard failovers the auditor saw in storage, across meta failovers. It reads every 50 ms, so
/// a transfer that starts and finishes between two reads counts as one: where no meta leader
/// changes, [`caused`] is exact.
fn failovers(sim: &Sim) -> u64 {
    sim.audit.lock().unwrap().moves.failovers()
}

/// Moves of this cause in the meta leader's event log (finish: a transfer finished).
async fn caused(sim: &Sim, cause: &str) -> usize {
    sim.events().await.iter().filter(|e| e.cause == cause).count()
}

async fn meta_leader_crash_mid_ddl() -> Report {
    let sim = started(Spec::default(), 3).await;
    for _ in 0..3 {
        // Somewhere inside a burst of creates and drops.
        sim.sleep(Duration::from_millis(thread_rng().gen_range(0..1_000))).await;
        let l = leader(&sim).await;
        let m = sim.metas[l].id();
        sim.handle.kill(m);
        sim.sleep(Duration::from_millis(thread_rng().gen_range(1_000..6_000))).await;
        sim.handle.restart(m);
        sim.assert_safe();
    }
    sim.sleep(Duration::from_secs(5)).await;
    assert_eq!(failovers(&sim), 0, "a meta failover must not fail over shards by itself");
    sim.stop_frontends();
    sim.assert_live(true).await;
    sim.finish()
}

#[test]
fn the_meta_leader_crashes_in_the_middle_of_ddl() {
    scenario("the_meta_leader_crashes_in_the_middle_of_ddl", meta_leader_crash_mid_ddl);
}

async fn leader_cut_from_etcd() -> Report {
    let mut sim = started(Spec::default(), 2).await;
    let old = leader(&sim).await;
    let (m, etcd) = (sim.metas[old].id(), sim.etcd.id());
    shardmeta_sim::cluster::clog_both(&sim.net, m, etcd, true);
    sim.count_fault(Fault::MetaEtcdPartition.name());
    // Past its election lease, another meta node leads while the old one still reaches nodes.
    sim.sleep(Duration::from_millis(3 * ELECTION_TTL_MS)).await;
    let new = leader(&sim).await;
    assert_ne!(new, old, "a leader cut off from etcd must lose the lead");
    sim.sleep(Duration::from_secs(5)).await;
    sim.assert_safe();
    shardmeta_sim::cluster::clog_both(&sim.net, m, etcd, false);
    assert_eq!(failovers(&sim), 0, "losing etcd on the meta leader must not fail over shards");
    sim.stop_frontends();
    sim.assert_live(true).await;
    sim.finish()
}

#[test]
fn the_meta_leader_is_cut_from_etcd_but_not_from_nodes() {
    scenario("the_meta_leader_is_cut_from_etcd_but_not_from_nodes", leader_cut_from_etcd);
}

/// Kills the node that leads the most shards and waits for its shards to move.
async fn data_node_crash(followers: u32) -> Report {
    let mut sim = started(Spec { followers, ..Spec::default() }, 2).await;
    let victim = (0..sim.nodes.len()).max_by_key(|&i| sim.nodes[i].view.leading().len()).unwrap();
    assert!(!sim.nodes[victim].view.leading().is_empty(), "the victim leads shards");
    sim.nodes[victim].kill(&sim.handle, &sim.history);
    sim.count_fault(Fault::DataNodeKill.name());
    sim.sleep(Duration::from_millis(4 * LEASE_MS)).await;
    sim.assert_safe();
    // The meta leader's account (no meta failover here): a transfer that rebalances after the
    // failover can start and finish between two of the auditor's reads.
    let events = sim.events().await;
    let failover = |what: &str| {
        events.iter().filter(|e| e.cause == "failover" && e.text.contains(what)).count()
    };
    let (promoted, reopened) = (failover(" promote follower:"), failover(" reopen:"));
    if followers > 0 {
        assert!(
            promoted > 0 && reopened == 0,
            "with followers, a follower takes over: {promoted} promoted, {reopened} reopened"
        );
    } else {
        assert!(
            reopened > 0 && promoted == 0,
            "without followers, shards reopen elsewhere: {promoted} promoted, {reopened} reopened"
        );
    }
    sim.stop_frontends();
    sim.assert_live(false).await; // the node stays dead: balance is among the rest
    sim.nodes[victim].restart(&sim.handle);
    sim.assert_live(true).await;
    sim.finish()
}

async fn data_node_crash_with_followers() -> Report {
    data_node_crash(1).await
}

async fn data_node_crash_without_followers() -> Report {
    data_node_crash(0).await
}

#[test]
fn a_data_node_crashes_with_followers() {
    scenario("a_data_node_crashes_with_followers", data_node_crash_with_followers);
}

#[test]
fn a_data_node_crashes_without_followers() {
    scenario("a_data_node_crashes_without_followers", data_node_crash_without_followers);
}

async fn rolling_meta_restart() -> Report {
    let sim = started(Spec { metas: 5, ..Spec::default() }, 2).await;
    for i in 0..sim.metas.len() {
        // Graceful: Ctrl-C makes the server resign before it exits.
        let m = sim.metas[i].id();
        sim.handle.send_ctrl_c(m);
        let mut waited = 0;
        while !sim.handle.is_exit(m) {
            waited += 1;
            assert!(waited < 100, "meta node {i} did not exit within 10 s of Ctrl-C");
            sim.sleep(Duration::from_millis(100)).await;
        }
        // madsim's restart releases the old process's sockets only after a kill.
        sim.handle.kill(m);
        sim.handle.restart(m);
        sim.sleep(Duration::from_secs(4)).await;
        sim.assert_safe();
    }
    assert_eq!(failovers(&sim), 0, "restarting meta nodes must not fail over shards");
    sim.stop_frontends();
    sim.assert_live(true).await;
    sim.finish()
}

#[test]
fn a_rolling_restart_of_every_meta_node() {
    scenario("a_rolling_restart_of_every_meta_node", rolling_meta_restart);
}

async fn rolling_data_node_restart() -> Report {
    let sim = started(Spec::default(), 2).await;
    for i in 0..sim.nodes.len() {
        sim.nodes[i].kill(&sim.handle, &sim.history);
        sim.sleep(Duration::from_millis(500)).await;
        sim.nodes[i].restart(&sim.handle);
        // The next node goes only once every shard is led again, as an operator would wait.
        for _ in 0..150 {
            if sim.every_shard_led_once() {
                break;
            }
            sim.sleep(Duration::from_millis(200)).await;
        }
        sim.assert_safe();
    }
    sim.stop_frontends();
    sim.assert_live(true).await;
    sim.finish()
}

#[test]
fn a_rolling_restart_of_every_data_node() {
    scenario("a_rolling_restart_of_every_data_node", rolling_data_node_restart);
}

async fn flapping_node() -> Report {
    let sim = started(Spec::default(), 2).await;
    let victim = (0..sim.nodes.len()).max_by_key(|&i| sim.nodes[i].view.leading().len()).unwrap();
    for _ in 0..4 {
        // Down and up again well within one lease.
        sim.nodes[victim].kill(&sim.handle, &sim.history);
        sim.sleep(Duration::from_millis(thread_rng().gen_range(100..LEASE_MS / 3))).await;
        sim.nodes[victim].restart(&sim.handle);
        sim.sleep(Duration::from_millis(thread_rng().gen_range(100..LEASE_MS / 2))).await;
        sim.assert_safe();
    }
    sim.stop_frontends();
    sim.assert_live(true).await;
    sim.finish()
}

#[test]
fn a_flapping_node() {
    scenario("a_flapping_node", flapping_node);
}

async fn scale_out() -> Report {
    let mut sim =
        started(Spec { data_nodes: 4, min_nodes: 4, shards: 48, ..Spec::default() }, 2).await;
    while sim.nodes.len() < 16 {
        sim.add_data_node();
        sim.sleep(Duration::from_millis(thread_rng().gen_range(200..2_000))).await;
        sim.assert_safe();
    }
    sim.stop_frontends();
    sim.assert_live(true).await; // balanced within one leader per node, then quiet
    let (finished, failed_over) = (caused(&sim, "finish").await, caused(&sim, "failover").await);
    assert!(
        finished > 0 && failed_over == 0,
        "scale-out moves leaders by transfer only: {finished} finished, {failed_over} failovers"
    );
    sim.finish()
}

#[test]
fn scale_out_from_4_to_16_nodes_ends_balanced() {
    scenario("scale_out_from_4_to_16_nodes_ends_balanced", scale_out);
}

async fn scale_in() -> Report {
    let sim =
        started(Spec { data_nodes: 12, min_nodes: 12, shards: 36, ..Spec::default() }, 2).await;
    // A third of the nodes leave, two at a time; each is stopped once it holds nothing.
    let mut leaving: Vec<usize> = (0..sim.nodes.len()).collect();
    leaving.sort_by_key(|_| thread_rng().gen::<u32>());
    for pair in leaving[..4].chunks(2) {
        sim.drain(pair, Duration::from_secs(60)).await;
        for &i in pair {
            sim.nodes[i].kill(&sim.handle, &sim.history);
        }
        sim.assert_safe();
    }
    sim.stop_frontends();
    sim.assert_live(true).await; // the eight that stay are balanced within one leader
    let (finished, failed_over) = (caused(&sim, "finish").await, caused(&sim, "failover").await);
    assert!(
        finished > 0 && failed_over == 0,
        "draining moves leaders by transfer only: {finished} finished, {failed_over} failovers"
    );
    sim.finish()
}

#[test]
fn scale_in_by_draining_a_third_of_the_nodes() {
    scenario("scale_in_by_draining_a_third_of_the_nodes", scale_in);
}

async fn jitter() -> Report {
    let mut sim = started(Spec::default(), 3).await;
    sim.degrade_network(0.02, Some(Duration::from_millis(150)));
    sim.sleep(Duration::from_secs(60)).await;
    sim.assert_safe();
    assert_eq!(sim.elections(), 1, "jitter alone must not change the meta leader");
    assert_eq!(caused(&sim, "failover").await, 0, "jitter alone must not fail over shards");
    sim.stop_frontends();
    sim.assert_live(true).await;
    sim.finish()
}

#[test]
fn network_jitter_without_failure_causes_no_failover() {
    scenario("network_jitter_without_failure_causes_no_failover", jitter);
}
