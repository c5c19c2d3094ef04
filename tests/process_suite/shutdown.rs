//! Real processes on loopback: a SIGTERM'd meta-server exits within its bound with data nodes
//! and a route watcher attached, on the embedded store and on etcd (where the streams are sent
//! to the successor, which serves at once); a second signal exits at once; a SIGTERM'd
//! node-agent gives up its leases before it goes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::process::metas::{start_metas, wait_leader, Metas};
use crate::process::node_kill::{header, shards, wait_for};
use crate::process::*;
use shardmeta::client::meta_client::connect;
use shardmeta::client::MetaClient;
use shardmeta::proto;
use shardmeta::server::SHUTDOWN_BOUND;

fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn log_of(dir: &TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap_or_default()
}

async fn every_shard_led(meta: &mut MetaClient, limit: Duration) {
    wait_for("every shard led", limit, async || {
        let s = shards(meta).await;
        !s.is_empty()
            && s.iter()
                .all(|s| s.status == proto::ShardStatus::Ready as i32 && !s.leader.is_empty())
    })
    .await;
}

/// What the stopping leader and the nodes logged of the handover: the successor it named, and
/// each node's redirects and stream ends.
fn handover_trace(dir: &TempDir, leader: &str) -> String {
    let lines = |name: &str, keys: &[&str]| -> Vec<String> {
        let log = log_of(dir, name);
        let hits = log.lines().filter(|l| keys.iter().any(|k| l.contains(k)));
        hits.map(|l| format!("{name}: {l}")).collect()
    };
    let mut out = lines(leader, &["successor", "shutting", "resign"]);
    for n in ["n0", "n1", "n2"] {
        out.extend(lines(n, &["redirect", "stream ended"]));
    }
    out.join("\n")
}

/// Signals `proc` and waits for it to exit: how long that took, and its exit code.
fn stop(proc: &mut Proc, signal: &str, limit: Duration) -> (Duration, Option<i32>) {
    let start = Instant::now();
    proc.signal(signal);
    let status = proc
        .wait_exit(limit)
        .unwrap_or_else(|| panic!("{} still runs {limit:?} after SIG{signal}", proc.name));
    (start.elapsed(), status.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_an_embedded_meta_with_nodes_and_a_watcher_attached_within_the_bound() {
    let _turn = serial().await;
    let dir = TempDir::new("shutdown-embedded");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut meta = meta_server(dir.path(), "meta-0", port, &[]);
    let mut nodes: Vec<Proc> =
        (0..3).map(|i| node_agent(dir.path(), &format!("n{i}"), free_port(), &endpoint)).collect();
    let mut client = MetaClient::new(vec![endpoint.clone()], Duration::from_secs(5)).unwrap();
    every_shard_led(&mut client, Duration::from_secs(15)).await;
    let watch = proto::WatchRoutesRequest { header: header(), ..Default::default() };
    let mut watch = connect(&endpoint, Duration::from_secs(60))
        .await
        .unwrap()
        .watch_routes(watch)
        .await
        .unwrap()
        .into_inner();
    assert!(watch.message().await.unwrap().is_some(), "the watch starts with the routes");

    // A node-agent first, the one leading most shards (a node admitted late may lead none):
    // it gives up its leases as it stops, so none outlives the process.
    let all = shards(&mut client).await;
    let led = |i: usize| all.iter().filter(|s| s.leader == format!("n{i}")).count();
    let victim = (0..3).max_by_key(|&i| led(i)).unwrap();
    let (name, led) = (format!("n{victim}"), led(victim));
    assert!(led > 0, "{name} leads shards");
    let (took, code) = stop(&mut nodes[victim], "TERM", Duration::from_secs(5));
    let exited = wall_ms();
    assert_eq!(code, Some(0), "node-agent exits cleanly");
    println!("node-agent {name} (leading {led} shards) exited {took:?} after SIGTERM");
    // It told meta it was leaving, so its shards move now, not when its leases (3 s, plus
    // 200 ms of drift) would have run out.
    let log = std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap();
    let told = log
        .lines()
        .find(|l| l.contains("told meta this node is leaving"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(told.trim_end().ends_with("true"), "meta did not answer the leave: {told}");
    let moved = wait_for("its shards led elsewhere", Duration::from_secs(10), async || {
        let now = shards(&mut client).await;
        !now.is_empty() && now.iter().all(|s| !s.leader.is_empty() && s.leader != name)
    })
    .await;
    println!("its {led} shards were led elsewhere {:?} after it exited", moved);
    assert!(
        moved < Duration::from_millis(2_500),
        "the handover waited {moved:?}, as long as the leases"
    );
    let (leases, _) = read_leadership(&dir.path().join(format!("{name}.lead.jsonl")));
    assert!(!leases.is_empty(), "{name} logged its leases");
    for (shard, intervals) in &leases {
        let (_, until) = intervals.last().unwrap();
        assert!(*until <= exited, "{name}'s lease of shard {shard} ran to {until}, past its exit at {exited}: it was not given up");
    }

    let (took, code) = stop(&mut meta, "TERM", SHUTDOWN_BOUND * 2);
    println!("embedded meta-server exited {took:?} after SIGTERM, with 2 node-agents and a watcher attached");
    assert!(took < SHUTDOWN_BOUND, "exit took {took:?}");
    assert_eq!(code, Some(0));
    let ended = loop {
        match watch.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the watch ended without a status"),
            Err(e) => break e,
        }
    };
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("shutting down"), "{ended:?}");
    for name in (0..3).filter(|&i| i != victim).map(|i| format!("n{i}")) {
        let log = log_of(&dir, &name);
        assert!(
            log.contains("heartbeat stream ended") && log.contains("shutting down"),
            "{name} was told why its stream ended:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_an_etcd_leader_sends_its_nodes_to_the_successor_which_serves_at_once() {
    let _turn = serial().await;
    let dir = TempDir::new("shutdown-etcd");
    let etcd = Etcd::start(dir.path(), 1);
    let mut metas = start_metas(dir.path(), &etcd.endpoints(), 3);
    let _nodes: Vec<Proc> = (0..3)
        .map(|i| node_agent(dir.path(), &format!("n{i}"), free_port(), &metas.endpoints.join(",")))
        .collect();
    let (leader, _) = wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    let mut client = MetaClient::new(metas.endpoints.clone(), Duration::from_secs(5)).unwrap();
    every_shard_led(&mut client, Duration::from_secs(15)).await;

    let signalled = Instant::now();
    metas.procs[&leader].signal("TERM");
    let others: Vec<String> = metas.endpoints.iter().filter(|e| **e != leader).cloned().collect();
    // A follower may still name the old leader, which serves until it has resigned.
    let (next, took) = wait_leader(&others, Duration::from_secs(10), Some(&leader)).await;
    println!("SIGTERM to {leader}; {next} serves after {took:?}");
    // Well under the 3 s election TTL a crashed leader would cost.
    assert!(took < Duration::from_millis(2_000), "takeover after {took:?}");
    let proc = metas.procs.get_mut(&leader).unwrap();
    let status = proc.wait_exit(SHUTDOWN_BOUND * 2).expect("the leader exits");
    let exited = signalled.elapsed();
    println!("{leader} exited {exited:?} after SIGTERM, with 3 node-agents attached");
    assert!(exited < SHUTDOWN_BOUND, "exit took {exited:?}");
    assert_eq!(status.code(), Some(0));

    // Every node was sent to the successor (not left to find it), and kept its shards: the
    // successor has them all led without a failover, well inside the 3 s lease.
    let redirected = |name: &str| {
        log_of(&dir, name)
            .lines()
            .any(|l| l.contains("redirected to the meta leader") && l.contains(&next))
    };
    let all_redirected = async || {
        while !["n0", "n1", "n2"].iter().all(|n| redirected(n)) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(2), all_redirected()).await.is_err() {
        let trace = handover_trace(&dir, &metas.procs[&leader].name);
        panic!("every node redirected to {next} did not happen within 2s:\n{trace}");
    }
    client.reset();
    every_shard_led(&mut client, Duration::from_secs(2)).await;
}

/// One meta leader on etcd, with etcd then paused (SIGSTOP): resigning cannot complete.
async fn leader_with_etcd_paused(tag: &str) -> (TempDir, Etcd, Metas, String) {
    let dir = TempDir::new(tag);
    let etcd = Etcd::start(dir.path(), 1);
    let metas = start_metas(dir.path(), &etcd.endpoints(), 1);
    let (leader, _) = wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    etcd.members[0].signal("STOP");
    (dir, etcd, metas, leader)
}

/// The shutdown waits on the resign, still within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_etcd_unreachable_still_exits_within_the_bound() {
    let _turn = serial().await;
    let (_dir, etcd, mut metas, leader) = leader_with_etcd_paused("shutdown-etcd-paused").await;
    let (took, code) = stop(metas.procs.get_mut(&leader).unwrap(), "TERM", SHUTDOWN_BOUND * 2);
    etcd.members[0].signal("CONT");
    println!("with etcd paused, the meta leader exited {took:?} after SIGTERM");
    assert!(took < SHUTDOWN_BOUND, "exit took {took:?}");
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let _turn = serial().await;
    let (_dir, etcd, mut metas, leader) = leader_with_etcd_paused("shutdown-twice").await;
    let proc = metas.procs.get_mut(&leader).unwrap();
    proc.signal("TERM");
    assert!(
        proc.wait_exit(Duration::from_millis(300)).is_none(),
        "the first signal is a graceful stop, which waits on etcd"
    );
    let (took, code) = stop(proc, "INT", Duration::from_secs(2));
    etcd.members[0].signal("CONT");
    println!("a second signal: exit {took:?} after it");
    assert!(took < Duration::from_millis(500), "exit took {took:?}");
    assert_eq!(code, Some(130));
}
