//! A meta leader paused (SIGSTOP) past its lease and then resumed never names itself leader,
//! from its very first answer on: not to GetLeader, not on /api/v1/status or /ready. Probes keep
//! asking it throughout, so requests sent while it is stopped wait in its sockets and are
//! answered the moment it resumes.
//!
//! Two things keep it honest, and this test passes with either alone: the election's renewal
//! loop sees its deadline long past and clears the leader record as soon as it runs, and every
//! answer checks the record's deadline against the clock (`server::leader_view`, whose unit
//! tests take the first away). Here the renewal loop has always run first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::metas::{start_metas, wait_leader};
use crate::process::*;

/// Concurrent probes of each kind: several answers are queued at the moment it resumes.
const PROBES: usize = 4;

/// What one probe heard, and when.
type Heard = Arc<Mutex<Vec<(Instant, String)>>>;

fn probe_grpc(
    endpoint: String,
    heard: Heard,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut c) =
                shardmeta::client::meta_client::connect(&endpoint, Duration::from_secs(30)).await
            else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            while !stop.load(Ordering::Relaxed) {
                match c.get_leader(shardmeta::proto::GetLeaderRequest {}).await {
                    Ok(r) => heard.lock().unwrap().push((Instant::now(), r.into_inner().leader)),
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
}

fn probe_http(
    admin: String,
    path: &'static str,
    heard: Heard,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            // A read timeout (5 s) cuts a call that waits out the pause; the next one queues again.
            if let Ok((_, body)) = http("GET", &admin, path) {
                heard.lock().unwrap().push((Instant::now(), body));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_resumed_after_a_pause_never_names_itself() {
    let _turn = serial().await;
    let dir = TempDir::new("paused-leader");
    let etcd = Etcd::start(dir.path(), 1);
    let metas = start_metas(dir.path(), &etcd.endpoints(), 3);
    let (old, _) = wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    let admin = metas.procs[&old].admin.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (leaders, statuses, readies): (Heard, Heard, Heard) = Default::default();
    let grpc: Vec<_> =
        (0..PROBES).map(|_| probe_grpc(old.clone(), leaders.clone(), stop.clone())).collect();
    let mut http = Vec::new();
    for _ in 0..PROBES {
        http.push(probe_http(admin.clone(), "/api/v1/status", statuses.clone(), stop.clone()));
        http.push(probe_http(admin.clone(), "/ready", readies.clone(), stop.clone()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        leaders.lock().unwrap().iter().any(|(_, l)| *l == old),
        "before the pause it names itself: the probes work"
    );

    metas.procs[&old].signal("STOP");
    let others: Vec<String> = metas.endpoints.iter().filter(|e| **e != old).cloned().collect();
    // The others name the paused leader until its lease runs out: wait for another.
    let (new, took) = wait_leader(&others, Duration::from_secs(15), Some(&old)).await;
    println!("{old} paused; {new} leads after {took:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let resumed = Instant::now();
    metas.procs[&old].signal("CONT");
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    for p in grpc {
        let _ = p.await;
    }
    for p in http {
        let _ = p.join();
    }

    let after = |heard: &Heard| {
        heard
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= resumed)
            .map(|(at, what)| (at.duration_since(resumed), what.clone()))
            .collect::<Vec<_>>()
    };
    let (leaders, statuses, readies) = (after(&leaders), after(&statuses), after(&readies));
    let first = |heard: &[(Duration, String)]| {
        heard.first().map(|(at, what)| format!("{what} at {at:?}")).unwrap_or_default()
    };
    println!(
        "after resuming: {} GetLeader answers (first: {}), {} status answers (first: {}), {} ready answers (first: {})",
        leaders.len(),
        first(&leaders),
        statuses.len(),
        first(&statuses),
        readies.len(),
        first(&readies)
    );
    assert!(
        leaders.len() >= PROBES && statuses.len() >= PROBES && readies.len() >= PROBES,
        "the resumed node answered the probes"
    );
    let named_itself: Vec<_> = leaders.iter().filter(|(_, l)| *l == old).collect();
    assert!(named_itself.is_empty(), "GetLeader named the paused leader itself: {named_itself:?}");
    for (what, heard) in [("status", &statuses), ("ready", &readies)] {
        let leading: Vec<_> =
            heard.iter().filter(|(_, body)| body.contains("\"role\":\"leader\"")).collect();
        assert!(leading.is_empty(), "/{what} said the paused leader leads: {leading:?}");
    }
    assert!(
        leaders.iter().any(|(_, l)| *l == new),
        "it learns the new leader: {:?}",
        leaders.last()
    );
}
