//! One run: the cluster up, the workload on, faults from the seeded schedule until the time is
//! up, then the last heal, convergence, and every checker over what was recorded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardmeta::client::MetaClient;
use shardmeta::proto;

use super::cluster::Cluster;
use super::history::{self, Final};
use super::nemesis::{Mix, Nemesis};
use super::process::ddl::{
    count_in_logs, handoff_gaps_ms, handoff_spans, leased_at, unleased_spans, wall_ms,
};
use super::process::metas::wait_leader;
use super::process::node_kill::{header, shards};
use super::report::{Outcome, Unleased, WindowStats};
use super::{watch, workload};

const DDL_WORKERS: u64 = 4;
/// How long the cluster has to settle after the last heal: a lease and an election and more.
const CONVERGENCE_LIMIT: Duration = Duration::from_secs(60);

/// What the logs count so far: meta elections, election leases etcd said were gone, unknown
/// storage outcomes, and redirects per node.
struct Counters {
    elections: usize,
    leases_gone: usize,
    unknown: usize,
    redirects: Vec<usize>,
}

fn counters(c: &Cluster) -> Counters {
    let metas = Cluster::meta_names();
    let metas: Vec<&str> = metas.iter().map(String::as_str).collect();
    let dir = c.dir.path();
    Counters {
        elections: count_in_logs(dir, &metas, "won the meta election"),
        leases_gone: count_in_logs(dir, &metas, "etcd says the election lease is gone"),
        unknown: count_in_logs(dir, &metas, "outcome unknown"),
        redirects: Cluster::node_names()
            .iter()
            .map(|n| {
                count_in_logs(dir, &[n], "redirected to the meta leader")
                    + count_in_logs(dir, &[n], "redirect not followed")
            })
            .collect(),
    }
}

pub async fn run(mix: Mix, seed: u64, length: Duration) -> Outcome {
    let mut c = Cluster::start();
    let endpoints = c.meta_endpoints.clone();
    wait_leader(&endpoints, Duration::from_secs(40), None).await;
    let mut meta = MetaClient::new(endpoints.clone(), Duration::from_secs(4)).unwrap();
    super::process::node_kill::wait_for("every shard led", Duration::from_secs(40), async || {
        let s = shards(&mut meta).await;
        !s.is_empty() && s.iter().all(|s| !s.leader.is_empty())
    })
    .await;

    let history = workload::History::new(Instant::now());
    let stop = Arc::new(AtomicBool::new(false));
    let names = workload::table_names();
    let workers: Vec<_> = (0..DDL_WORKERS)
        .map(|w| {
            workload::ddl_worker(
                w,
                seed,
                endpoints.clone(),
                names.clone(),
                history.clone(),
                stop.clone(),
            )
        })
        .collect();
    let accepted = Arc::new(AtomicU64::new(0));
    let writer =
        workload::data_writer(endpoints.clone(), names.clone(), accepted.clone(), stop.clone());
    let watched = Arc::new(Mutex::new(watch::Watched::default()));
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = watch::watch(endpoints.clone(), watched.clone(), stop_watch.clone());

    let mut violations = Vec::new();
    let mut nemesis = Nemesis::new(ChaCha8Rng::seed_from_u64(seed), endpoints.clone());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut windows = Vec::new();
    while history.start.elapsed() < length {
        let faults = mix.faults();
        let fault = faults[nemesis.rng.next_u32() as usize % faults.len()];
        let before = counters(&c);
        let (from, wall_from) = (history.start.elapsed(), wall_ms());
        let hit = nemesis.inject(&mut c, fault).await;
        tokio::time::sleep(hit.window).await;
        let to = history.start.elapsed();
        if let Err(e) = nemesis.heal(&mut c).await {
            violations.push(format!("{}: {e}", fault.name()));
        }
        tokio::time::sleep(Duration::from_secs(4 + nemesis.rng.next_u64() % 3)).await;
        let after = counters(&c);
        let logs: Vec<_> = Cluster::node_names()
            .iter()
            .map(|n| c.dir.path().join(format!("{n}.lead.jsonl")))
            .collect();
        // Only where no node is at fault does a shard without a leased leader count against meta.
        let unleased = (fault.only_meta_leader() && mix != Mix::Operator).then(|| {
            let (leased, handoffs) = (leased_at(&logs, wall_from), handoff_spans(&logs));
            let mut u = Unleased::default();
            for (shard, gaps) in unleased_spans(&logs, wall_from, wall_ms()) {
                for (start, end) in gaps {
                    let planned: u64 = handoffs
                        .get(&shard)
                        .into_iter()
                        .flatten()
                        .map(|&(cut, next)| end.min(next).saturating_sub(start.max(cut)))
                        .sum();
                    let rest = (end - start).saturating_sub(planned);
                    u.handoff_ms += planned.min(end - start);
                    *if leased.contains(&shard) { &mut u.lost_ms } else { &mut u.already_ms } +=
                        rest;
                }
            }
            u
        });
        let elections = after.elections - before.elections;
        let stats = WindowStats {
            fault,
            target: hit.target,
            from,
            to,
            until: history.start.elapsed(),
            elections,
            // etcd-io/etcd#15247 (fixed in 3.4.30 and 3.5.11): etcd's leader, paused past the
            // lease TTL and resumed, still thinks it leads and revokes the leases its
            // successor renewed. The meta leader hears that its lease is gone and steps down.
            old_etcd_leader_revoked: if hit.paused_etcd_leader {
                elections.min(after.leases_gone - before.leases_gone)
            } else {
                0
            },
            unknown: after.unknown - before.unknown,
            redirects_max: after
                .redirects
                .iter()
                .zip(&before.redirects)
                .map(|(a, b)| a - b)
                .max()
                .unwrap_or(0),
            refused: hit.refused,
            unleased,
        };
        println!("{}", stats.line());
        windows.push(stats);
    }

    // The last heal, then convergence: a serving leader, every shard led and ready, no
    // procedure in flight.
    c.lab.heal();
    let healed = Instant::now();
    if let Err(state) = converge(&mut meta).await {
        violations
            .push(format!("no convergence within {CONVERGENCE_LIMIT:?} of the last heal: {state}"));
    }
    let convergence = healed.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let _ = writer.await;

    let end = final_state(&mut meta, &names).await;
    let ops = history.ops();
    violations.extend(history::check(&ops, &end));
    violations.extend(watch_checks(&mut meta, &watched).await);
    stop_watch.store(true, Ordering::Relaxed);
    watcher.abort();

    for n in c.nodes.iter_mut() {
        n.kill9();
    }
    let logs: Vec<(String, std::path::PathBuf)> = Cluster::node_names()
        .into_iter()
        .map(|n| {
            let p = c.dir.path().join(format!("{n}.lead.jsonl"));
            (n, p)
        })
        .collect();
    if let Err(e) = std::panic::catch_unwind(|| super::process::assert_single_writer(&logs)) {
        let message = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        violations.push(format!("single writer (S1): {message}"));
    }
    if !violations.is_empty() || windows.iter().any(WindowStats::missed_goal) {
        c.dir.keep(); // the logs say why
    }
    let w = watched.lock().unwrap();
    Outcome {
        mix,
        seed,
        seconds: history.start.elapsed().as_secs(),
        ops,
        writes_accepted: accepted.load(Ordering::Relaxed),
        watch_streams: w.streams,
        watch_resyncs: w.resyncs,
        watch_changes: w.changes,
        convergence,
        windows,
        violations,
        elections: counters(&c).elections,
        handoff_gaps_ms: handoff_gaps_ms(&logs.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>()),
    }
}

/// Waits for a serving leader, every shard led and ready, and no procedure in flight; what was
/// still amiss when the time ran out.
async fn converge(meta: &mut MetaClient) -> Result<(), String> {
    let start = Instant::now();
    let mut amiss = String::new();
    while start.elapsed() < CONVERGENCE_LIMIT {
        let s = shards(meta).await;
        let retired = proto::ShardStatus::Retired as i32;
        let unready: Vec<String> = s
            .iter()
            .filter(|s| {
                s.status != retired
                    && (s.leader.is_empty() || s.status != proto::ShardStatus::Ready as i32)
            })
            .map(|s| format!("shard {} ({:?}, leader {:?})", s.id, s.status(), s.leader))
            .collect();
        let procedures = meta
            .call(|mut c| async move {
                c.list_procedures(proto::ListProceduresRequest { header: header() }).await
            })
            .await;
        let running: Vec<String> = procedures.as_ref().map_or(Vec::new(), |p| {
            p.procedures
                .iter()
                .map(|p| format!("{} of shard {} at {}", p.kind, p.shard, p.step))
                .collect()
        });
        if !s.is_empty() && unready.is_empty() && procedures.is_ok() && running.is_empty() {
            return Ok(());
        }
        amiss =
            format!("{} shards listed; not ready: {unready:?}; procedures: {running:?}", s.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(amiss)
}

/// The workload's tables as they are at the end.
async fn final_state(meta: &mut MetaClient, names: &[String]) -> Final {
    let mut end = Final::new();
    for name in names {
        let req = proto::GetTableRequest {
            header: header(),
            schema: "public".into(),
            table: name.clone(),
        };
        for attempt in 0.. {
            match meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.get_table(req).await }
                })
                .await
            {
                Ok(r) => {
                    let d = r.table.expect("a table in the answer");
                    end.insert(
                        name.clone(),
                        (d.info.as_ref().map_or(0, |i| i.id), d.version, workload::tag_of(&d)),
                    );
                    break;
                }
                Err(e) if e.code() == tonic::Code::NotFound => break,
                Err(e) => {
                    assert!(attempt < 10, "cannot read {name} at the end: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
    end
}

/// The watch's own violations, and where its view still differs from meta's lists after it
/// had time to catch up.
async fn watch_checks(meta: &mut MetaClient, watched: &Mutex<watch::Watched>) -> Vec<String> {
    let mut differences = Vec::new();
    for _ in 0..30 {
        let Ok((tables, shards)) = watch::listed(meta).await else { continue };
        differences = watch::differences(&watched.lock().unwrap(), &tables, &shards);
        if differences.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let w = watched.lock().unwrap();
    let mut out: Vec<String> = w.violations.clone();
    out.extend(differences.into_iter().map(|d| format!("route watch lost a change: {d}")));
    out
}
