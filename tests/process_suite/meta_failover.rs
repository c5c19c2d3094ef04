//! A meta leader killed (kill -9) or paused past its election lease, with the default lease
//! (10 s) and election TTL (5 s): DDL comes back within the TTL and a second, no shard goes
//! without a leased leader, and data nodes follow at most a few redirects each, not a storm.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::process::ddl::{count_in_log, ddl_load, longest_gap, unleased_ms, wall_ms};
use crate::process::metas::{start_metas_with, wait_leader};
use crate::process::node_kill::{settled, wait_for};
use crate::process::*;
use shardmeta::client::MetaClient;

const NODES: usize = 4;
/// The default election TTL.
const TTL: Duration = Duration::from_secs(5);
/// What redirect lines in a node-agent's log say.
const REDIRECTS: [&str; 2] = ["redirected to the meta leader", "redirect not followed"];

fn redirects(dir: &std::path::Path, node: &str) -> usize {
    REDIRECTS.iter().map(|r| count_in_log(dir, node, r)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meta_leader_killed_or_paused_costs_no_lease_and_no_redirect_storm() {
    let _turn = serial().await;
    let dir = TempDir::new("meta-failover");
    let etcd = Etcd::start(dir.path(), 1);
    // Production's timing: the default lease, drift, heartbeat and election TTL.
    let defaults = [
        ("SHARDMETA_LEASE_MS", "10000"),
        ("SHARDMETA_CLOCK_DRIFT_MS", "500"),
        ("SHARDMETA_HEARTBEAT_INTERVAL_MS", "1000"),
        ("SHARDMETA_TICK_INTERVAL_MS", "500"),
    ];
    let metas = start_metas_with(dir.path(), &etcd.endpoints(), 3, &defaults);
    let (leader, _) = wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    let names: Vec<String> = (0..NODES).map(|i| format!("n{i}")).collect();
    let _nodes: Vec<Proc> = names
        .iter()
        .map(|n| node_agent(dir.path(), n, free_port(), &metas.endpoints.join(",")))
        .collect();
    let mut meta = MetaClient::new(metas.endpoints.clone(), Duration::from_secs(5)).unwrap();
    // Settled first: a balancing handoff during a fault would count as a lease lost to it.
    wait_for("every shard led, no move planned", Duration::from_secs(60), async || {
        settled(&mut meta).await
    })
    .await;
    let logs: Vec<PathBuf> =
        names.iter().map(|n| dir.path().join(format!("{n}.lead.jsonl"))).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let load_started = std::time::Instant::now();
    let load = tokio::spawn(ddl_load(metas.endpoints.clone(), stop.clone()));
    let slot = |at: std::time::Instant| at.duration_since(load_started).as_secs() as usize;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // kill -9 of the leader.
    let before: Vec<usize> = names.iter().map(|n| redirects(dir.path(), n)).collect();
    let (killed_at, kill_slot) = (wall_ms(), slot(std::time::Instant::now()));
    metas.procs.get(&leader).unwrap().signal("KILL");
    let others: Vec<String> = metas.endpoints.iter().filter(|e| **e != leader).cloned().collect();
    let (second, took) = wait_leader(&others, Duration::from_secs(20), None).await;
    tokio::time::sleep(Duration::from_secs(12)).await; // past a lease: any unrenewed one has run out
    let unleased_kill = unleased_ms(&logs, killed_at, wall_ms());
    let after_kill: Vec<usize> = names.iter().map(|n| redirects(dir.path(), n)).collect();

    // SIGSTOP of the new leader past its election lease, then SIGCONT: the old leader comes back
    // while another leads, the case that bounced nodes between two metas.
    let paused = &metas.procs[&second];
    let pause_slot = slot(std::time::Instant::now());
    paused.signal("STOP");
    let rest: Vec<String> = others.iter().filter(|e| **e != second).cloned().collect();
    let (third, _) = wait_leader(&rest, Duration::from_secs(20), None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    paused.signal("CONT");
    tokio::time::sleep(Duration::from_secs(12)).await;
    stop.store(true, Ordering::Relaxed);
    let slots = load.await.unwrap();
    let after_pause: Vec<usize> = names.iter().map(|n| redirects(dir.path(), n)).collect();

    let per_node =
        |a: &[usize], b: &[usize]| a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>();
    let (kill_hops, pause_hops) =
        (per_node(&after_kill, &before), per_node(&after_pause, &after_kill));
    let lost: Vec<(&u32, &u64)> = unleased_kill.iter().filter(|(_, ms)| **ms > 0).collect();
    let (kill_gap, pause_gap) =
        (longest_gap(&slots[kill_slot..pause_slot]), longest_gap(&slots[pause_slot..]));
    println!(
        "meta leader killed: {second} serves after {took:?}, DDL gap {kill_gap} s; shards without a leased leader after the kill: {} of {}; paused leader: DDL gap {pause_gap} s; redirects per node: {kill_hops:?} after the kill, {pause_hops:?} after pausing {second} (then {third} led) and resuming it",
        lost.len(),
        unleased_kill.len()
    );
    assert!(
        took <= TTL + Duration::from_secs(1),
        "a leader serves within the TTL and a second: {took:?}"
    );
    // Whole one-second slots: a gap of TTL + 1 s can touch one slot more.
    assert!(
        kill_gap <= (TTL.as_secs() + 2) as usize,
        "DDL back within the TTL and a second of the kill: {slots:?}"
    );
    // Calls already sent to the paused leader wait out the client's timeout (3 s) first.
    assert!(
        pause_gap <= (TTL.as_secs() + 4) as usize,
        "DDL back within the TTL and the call timeout of the pause: {slots:?}"
    );
    assert!(lost.is_empty(), "shards that went without a leased leader (ms): {lost:?}");
    assert!(
        kill_hops.iter().chain(&pause_hops).all(|&h| h <= 3),
        "at most 3 redirects per node per leader change: {kill_hops:?} {pause_hops:?}"
    );
}

/// A stopped meta (SIGSTOP, a hung host) still accepts connections and never answers. A leader
/// lookup asks every endpoint at once, so such an endpoint costs it nothing: asked in turn, it
/// cost a whole timeout whenever it came first, and a node or client stayed away from the new
/// leader that long after a paused leader was replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meta_that_accepts_and_never_answers_does_not_slow_the_leader_lookup() {
    let dir = TempDir::new("silent-endpoint");
    let port = free_port();
    let _meta = meta_server(dir.path(), "m0", port, &[]);
    let live = format!("127.0.0.1:{port}");
    // The kernel completes connections to a listener that is never accepted from.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_ep = silent.local_addr().unwrap().to_string();
    wait_leader(std::slice::from_ref(&live), Duration::from_secs(20), None).await;
    let mut meta =
        MetaClient::new(vec![silent_ep.clone(), live.clone(), silent_ep], Duration::from_secs(5))
            .unwrap();
    for _ in 0..4 {
        let started = std::time::Instant::now();
        let (leader, _) = meta.leader().await.expect("the live meta leads");
        assert_eq!(leader, live);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the lookup waited on the silent endpoint: {:?}",
            started.elapsed()
        );
        meta.reset();
    }
}
