//! The catalog at the scale the seeds aim at: 1,000,000 tables with 256-byte encoded schemas,
//! 10,000 shards and 1,000 data nodes, created through the public API. The leader runs as its
//! own `meta-server` process, so its RSS is its own; the nodes (paced heartbeat loops with the
//! real `ShardHost`) and 128 concurrent creators run in this process. Reported, for the
//! embedded store and for three meta servers on one etcd:
//! - leader RSS before the tables, after them, and after a restart or failover, and bytes per
//!   table;
//! - create rate over the first and the last 5% of the tables, at the same concurrency;
//! - listing page latency (1,000 tables a page) and a full listing's time;
//! - heartbeat reply latency across all nodes, idle and while full listings run;
//! - snapshot load time (from the leader's log) and the time until the newest table is served.
//!
//! Run: `cargo bench --bench scale` (about 10 minutes; etcd must be installed for the second
//! half). `SCALE_TABLES=N` runs a smaller catalog; `SCALE_STORES=embedded` (or `etcd`) one half.

#[path = "../tests/process/mod.rs"]
#[allow(unused_imports)]
mod process;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use process::{free_port, Etcd, Proc, TempDir};
use shardmeta::client::meta_client::connect;
use shardmeta::client::node::{self, NodeIdentity};
use shardmeta::client::{MetaClient, ShardHost};
use shardmeta::convert;
use shardmeta::core::ShardLoad;
use shardmeta::proto::{self, RequestHeader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const SHARDS: u32 = 10_000;
const NODES: usize = 1_000;
const SCHEMA_BYTES: usize = 256;
const CREATORS: usize = 128;
const HEARTBEAT_MS: u64 = 1_000;

fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: "default".into() })
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q) as usize] as f64 / 1_000.0
}

/// Heartbeat round trips (µs), recorded while `recording` is set.
#[derive(Default)]
struct Latencies {
    recording: AtomicBool,
    micros: Mutex<Vec<u64>>,
}

impl Latencies {
    fn take(&self) -> Vec<u64> {
        let mut v = std::mem::take(&mut *self.micros.lock().unwrap());
        v.sort_unstable();
        v
    }
}

/// One data node: a heartbeat every second through the real `ShardHost`, timing each reply
/// (the response whose lease grant names the heartbeat's seq); reconnects to whoever leads.
async fn paced_node(endpoints: Vec<String>, i: usize, lat: Arc<Latencies>, stop: Arc<AtomicBool>) {
    let identity = NodeIdentity {
        cluster: "default".into(),
        name: format!("n{i:04}"),
        endpoint: format!("127.0.0.1:{}", 30_000 + i),
        zone: String::new(),
        labels: Vec::new(),
        incarnation: 1,
        capacity: 1.0,
    };
    let mut host = ShardHost::new();
    let mut meta = MetaClient::new(endpoints, Duration::from_secs(5)).unwrap();
    let start = Instant::now();
    let now = || shardmeta::core::Instant(start.elapsed().as_millis() as u64);
    // Spread the nodes over the interval instead of beating in lockstep.
    tokio::time::sleep(Duration::from_millis((i as u64 * 7919) % HEARTBEAT_MS)).await;
    let mut failures = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Back off as the real node loop does (`client::node::run`): 200 ms more per failure, up
        // to 2 s, so that a thousand nodes do not flood a meta node that is taking over.
        let (tx, rx) = mpsc::channel(4);
        let stream = match meta.leader().await {
            Ok((_, mut client)) => client.heartbeat(ReceiverStream::new(rx)).await.ok(),
            Err(_) => None,
        };
        let Some(stream) = stream else {
            meta.reset();
            failures += 1;
            tokio::time::sleep(Duration::from_millis(200 * failures.min(10))).await;
            continue;
        };
        let mut inbound = stream.into_inner();
        let mut ticker = tokio::time::interval(Duration::from_millis(HEARTBEAT_MS));
        let mut sent: BTreeMap<u64, Instant> = BTreeMap::new();
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if stop.load(Ordering::Relaxed) { return }
                    let reports = host.heartbeat(now(), &|_| ShardLoad { write_units: 1.0, ..Default::default() });
                    sent.insert(reports.seq, Instant::now());
                    while sent.len() > 8 { sent.pop_first(); }
                    if tx.send(node::heartbeat_request(&identity, reports)).await.is_err() { break }
                }
                message = inbound.message() => {
                    let Ok(Some(r)) = message else { break };
                    if !r.redirect.is_empty() { break }
                    failures = 0;
                    if let Some(at) = r.lease.as_ref().and_then(|l| sent.remove(&l.seq)) {
                        if lat.recording.load(Ordering::Relaxed) {
                            lat.micros.lock().unwrap().push(at.elapsed().as_micros() as u64);
                        }
                    }
                    if let Ok(m) = convert::from_node_message(&r) {
                        host.on_message(&m);
                    }
                }
            }
        }
        meta.reset();
    }
}

struct Run {
    name: &'static str,
    dir: TempDir,
    _etcd: Option<Etcd>,
    metas: BTreeMap<String, Proc>,
}

impl Run {
    fn endpoints(&self) -> Vec<String> {
        self.metas.keys().cloned().collect()
    }

    fn spawn_meta(&self, name: &str, port: u16, etcd: Option<&str>) -> Proc {
        let shards = SHARDS.to_string();
        let mut env = vec![
            ("SHARDMETA_LEASE_MS", "10000"),
            ("SHARDMETA_HEARTBEAT_INTERVAL_MS", "1000"),
            ("SHARDMETA_CLOCK_DRIFT_MS", "500"),
            ("SHARDMETA_TICK_INTERVAL_MS", "500"),
            ("SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT", shards.as_str()),
        ];
        if let Some(e) = etcd {
            env.extend([("SHARDMETA_ETCD_ENDPOINTS", e), ("SHARDMETA_ELECTION_TTL_MS", "3000")]);
        }
        process::meta_server(self.dir.path(), name, port, &env)
    }

    async fn leader(&self) -> String {
        let mut meta = MetaClient::new(self.endpoints(), Duration::from_secs(5)).unwrap();
        loop {
            if let Ok((l, mut c)) = meta.leader().await {
                if c.list_clusters(proto::ListClustersRequest::default()).await.is_ok() {
                    return l;
                }
            }
            meta.reset();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_line(&self, name: &str, what: &str) -> String {
        let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        log.lines().rfind(|l| l.contains(what)).unwrap_or("(not logged)").to_owned()
    }
}

async fn view(endpoints: &[String]) -> proto::ClusterViewResponse {
    let mut meta = MetaClient::new(endpoints.to_vec(), Duration::from_secs(10)).unwrap();
    meta.call(|mut c| async move {
        c.cluster_view(proto::ClusterViewRequest { header: header() }).await
    })
    .await
    .unwrap_or_default()
}

/// Creates `tables` tables from `CREATORS` clients; returns creates per second over the first
/// and the last 5%.
async fn create_all(endpoints: &[String], tables: usize) -> (f64, f64) {
    let (next, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let marks = Arc::new(Mutex::new(BTreeMap::<usize, Instant>::new()));
    let window = (tables / 20).max(1);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CREATORS)
        .map(|_| {
            let (next, done, marks, endpoints) =
                (next.clone(), done.clone(), marks.clone(), endpoints.to_vec());
            tokio::spawn(async move {
                let mut meta = MetaClient::new(endpoints, Duration::from_secs(10)).unwrap();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= tables {
                        return;
                    }
                    let schema: Vec<u8> = (0..SCHEMA_BYTES).map(|b| (b ^ i) as u8).collect();
                    let req = proto::CreateTableRequest {
                        header: header(),
                        name: format!("t{i:07}"),
                        encoded_schema: schema,
                        if_not_exists: true,
                        ..Default::default()
                    };
                    create(&mut meta, req).await;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n == window || n == tables - window || n == tables {
                        marks.lock().unwrap().insert(n, Instant::now());
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let m = marks.lock().unwrap();
    let first = window as f64 / (m[&window] - started).as_secs_f64();
    let last = window as f64 / (m[&tables] - m[&(tables - window)]).as_secs_f64();
    (first, last)
}

/// One idempotent create (`if_not_exists`), retried as a client would across a meta leader
/// change, whose outcome may be unknown.
async fn create(meta: &mut MetaClient, req: proto::CreateTableRequest) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match meta
            .call(|mut c| {
                let req = req.clone();
                async move { c.create_table(req).await }
            })
            .await
        {
            Ok(_) => return,
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Unknown
                            | tonic::Code::Cancelled
                    ) =>
            {
                meta.reset();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("create {}: {e}", req.name),
        }
    }
}

/// Times every page of a full table listing (ms each); returns the page times and the rows.
async fn full_listing(endpoint: &str) -> (Vec<u64>, usize) {
    let mut c = connect(endpoint, Duration::from_secs(10)).await.unwrap();
    let (mut pages, mut rows, mut token) = (Vec::new(), 0, String::new());
    loop {
        let at = Instant::now();
        let r = c
            .list_tables(proto::ListTablesRequest {
                header: header(),
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages.push(at.elapsed().as_micros() as u64);
        rows += r.tables.len();
        if r.next_page_token.is_empty() {
            return (pages, rows);
        }
        token = r.next_page_token;
    }
}

async fn serves_newest(endpoints: &[String], newest: &str) -> bool {
    for ep in endpoints {
        let Ok(mut c) = connect(ep, Duration::from_millis(500)).await else { continue };
        let req = proto::RouteTablesRequest {
            header: header(),
            schema: String::new(),
            tables: vec![newest.to_owned()],
        };
        if let Ok(Ok(r)) =
            tokio::time::timeout(Duration::from_millis(500), c.route_tables(req)).await
        {
            if r.into_inner().routes.len() == 1 {
                return true;
            }
        }
    }
    false
}

async fn measure(run: &mut Run, tables: usize) {
    println!(
        "\n== {}: {tables} tables x {SCHEMA_BYTES} B schemas, {SHARDS} shards, {NODES} nodes",
        run.name
    );
    let endpoints = run.endpoints();
    let leader = run.leader().await;
    let (lat, stop) = (Arc::new(Latencies::default()), Arc::new(AtomicBool::new(false)));
    let nodes: Vec<_> = (0..NODES)
        .map(|i| tokio::spawn(paced_node(endpoints.clone(), i, lat.clone(), stop.clone())))
        .collect();
    let settle = Instant::now();
    loop {
        let v = view(&endpoints).await;
        if v.nodes_online as usize == NODES && v.shards_unassigned == 0 && v.shards_ready == SHARDS
        {
            break;
        }
        assert!(settle.elapsed() < Duration::from_secs(120), "cluster never settled: {v:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pid = run.metas[&leader].pid();
    let rss_empty = rss_mib(pid);
    println!(
        "{NODES} nodes online, {SHARDS} shards ready after {:?}; leader RSS {rss_empty:.0} MiB",
        settle.elapsed()
    );

    let started = Instant::now();
    let (rate_first, rate_last) = create_all(&endpoints, tables).await;
    let leader = match run.leader().await {
        l if l == leader => l,
        l => {
            println!("(the meta leader moved from {leader} to {l} during the creates)");
            l
        }
    };
    let pid = run.metas[&leader].pid();
    println!(
        "created in {:?}: {rate_first:.0}/s over the first 5%, {rate_last:.0}/s over the last 5% (ratio {:.2})",
        started.elapsed(),
        rate_last / rate_first
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_full = rss_mib(pid);
    println!(
        "leader RSS {rss_full:.0} MiB, {:.0} bytes per table over the empty cluster",
        (rss_full - rss_empty) * 1_048_576.0 / tables as f64
    );

    lat.recording.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(10)).await;
    lat.recording.store(false, Ordering::Relaxed);
    let idle = lat.take();
    lat.recording.store(true, Ordering::Relaxed);
    let listing = Instant::now();
    let (mut pages, rows) = full_listing(&leader).await;
    let listing = listing.elapsed();
    let (more, _) = full_listing(&leader).await; // a second pass, so that the window covers ~10 s at this scale
    lat.recording.store(false, Ordering::Relaxed);
    let busy = lat.take();
    pages.extend(more);
    pages.sort_unstable();
    assert_eq!(rows, tables, "the listing holds every table");
    println!(
        "full listing: {rows} rows in {} pages, {listing:?}; page p50 {:.2} ms, p99 {:.2} ms",
        pages.len() / 2,
        quantile(&pages, 0.5),
        quantile(&pages, 0.99)
    );
    println!(
        "heartbeat reply: idle p50 {:.2} ms p99 {:.2} ms ({} replies); during full listings p50 {:.2} ms p99 {:.2} ms ({} replies)",
        quantile(&idle, 0.5),
        quantile(&idle, 0.99),
        idle.len(),
        quantile(&busy, 0.5),
        quantile(&busy, 0.99),
        busy.len()
    );

    // On etcd the other meta servers are warm standbys holding the catalog too.
    for (endpoint, p) in run.metas.iter().filter(|(e, _)| **e != leader) {
        println!("standby {} ({endpoint}) RSS {:.0} MiB", p.name, rss_mib(p.pid()));
    }
    let newest = format!("t{:07}", tables - 1);
    let name = run.metas[&leader].name.clone();
    run.metas.get_mut(&leader).unwrap().kill9();
    let killed = Instant::now();
    if run._etcd.is_none() {
        // The embedded store has one meta node: restart it on the same data dir.
        let port: u16 = leader.rsplit(':').next().unwrap().parse().unwrap();
        let p = run.spawn_meta(&name, port, None);
        run.metas.insert(leader.clone(), p);
    }
    while !serves_newest(&run.endpoints(), &newest).await {
        if killed.elapsed() > Duration::from_secs(120) {
            for p in run.metas.values() {
                let log = std::fs::read_to_string(run.dir.path().join(format!("{}.log", p.name)))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                println!(
                    "--- {} (last 40 lines)\n{}",
                    p.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            panic!("nothing served {newest} within 120 s of the kill");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = killed.elapsed();
    let new_leader = run.leader().await;
    let new_name = run.metas[&new_leader].name.clone();
    println!("kill -9 of {name}: {new_name} serves the newest table after {took:?}");
    // On etcd the new leader took over its warm standby's catalog (or loaded cold); embedded
    // restarts load.
    for what in [
        "snapshot loaded from",
        "took over the warm standby",
        "loading the catalog cold",
        "loading it cold",
    ] {
        let line = run.log_line(&new_name, what);
        if line != "(not logged)" {
            println!("  {line}");
        }
    }
    let new_pid = run.metas[&new_leader].pid();
    println!("new leader RSS right after: {:.0} MiB", rss_mib(new_pid));
    tokio::time::sleep(Duration::from_secs(15)).await;
    let v = view(&endpoints).await;
    println!(
        "new leader RSS 15 s later, {} nodes online: {:.0} MiB ({:.2}x the RSS before)",
        v.nodes_online,
        rss_mib(new_pid),
        rss_mib(new_pid) / rss_full
    );
    stop.store(true, Ordering::Relaxed);
    for n in nodes {
        n.abort();
    }
}

fn new_run(name: &'static str, etcd_members: usize, metas: usize) -> Run {
    let dir = TempDir::new(name);
    let etcd = (etcd_members > 0).then(|| Etcd::start(dir.path(), etcd_members));
    let mut run = Run { name, dir, _etcd: None, metas: BTreeMap::new() };
    let endpoints = etcd.as_ref().map(Etcd::endpoints);
    for i in 0..metas {
        let port = free_port();
        let p = run.spawn_meta(&format!("m{i}"), port, endpoints.as_deref());
        run.metas.insert(format!("127.0.0.1:{port}"), p);
    }
    run._etcd = etcd;
    run
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scale benchmarks run under `cargo bench --bench scale`");
        return;
    }
    let tables: usize =
        std::env::var("SCALE_TABLES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // SCALE_STORES=embedded or etcd runs one of the two.
    let stores = std::env::var("SCALE_STORES").unwrap_or_default();
    runtime.block_on(async {
        if stores != "etcd" {
            let mut embedded = new_run("scale-embedded", 0, 1);
            measure(&mut embedded, tables).await;
        }
        if stores == "embedded" {
            return;
        }
        if std::process::Command::new("etcd").arg("--version").output().is_ok() {
            let mut on_etcd = new_run("scale-etcd", 1, 3);
            measure(&mut on_etcd, tables).await;
        } else {
            println!("etcd: skipped, etcd is not installed (./.ci/setup)");
        }
    });
}
