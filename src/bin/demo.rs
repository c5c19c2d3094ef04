//! `demo`: the main job in one command. Starts a meta-server on its embedded store and four
//! node-agents (the sibling binaries) on free loopback ports in a temporary directory, creates
//! tables, shows shards and routes, makes one node hot through the agents' load file and shows
//! the scheduler relieving it (and the hot table heading its shard's busiest list), merges two
//! shards and then makes the merged shard hot enough that the scheduler splits it again, kills
//! one node-agent and shows the failover, drains another and stops it once it holds nothing,
//! then stops everything. Build the binaries first: `cargo build --release --bins`.

// Items are `pub` only where another crate may name them; the rest say how far they reach.
#![warn(unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shardmeta::client::MetaClient;
use shardmeta::proto::{self, RequestHeader};
use tonic::Status;

const LEASE_MS: u64 = 3_000;
/// Short load windows, so that loads are trusted within seconds (3 windows) rather than 30 s.
const LOAD_WINDOW_MS: u64 = 1_000;
const SHARD_COUNT: u32 = 24;
const UNITS_PER_SHARD: f64 = 100.0;
/// How much hotter the hot node's shards run. Whole shards must fit the others' headroom: at 3×
/// on four nodes a 300-unit shard is too coarse for the last step and the node stays overfull.
const HOT_FACTOR: f64 = 2.0;
/// Each of the two tables that make the merged shard hot: together well above the split line
/// (a node's fair share, at least 1,000 units/s), each well below 80% of the shard.
const HOT_TABLE_UNITS: f64 = 700.0;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(&format!("no free port: {e}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("demo: {msg}");
    std::process::exit(1);
}

fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&e.to_string()));
    let path = exe.with_file_name(name);
    if !path.exists() {
        fail(&format!("{} is missing: run `cargo build --release --bins` first", path.display()));
    }
    path
}

fn spawn(cmd: &mut Command, log: &Path) -> Kill {
    let out = std::fs::File::create(log).unwrap_or_else(|e| fail(&e.to_string()));
    let err = out.try_clone().unwrap_or_else(|e| fail(&e.to_string()));
    Kill(
        cmd.stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| fail(&e.to_string())),
    )
}

fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: "default".into() })
}

/// Whether every shard that has not been merged away is led and ready.
async fn all_ready(meta: &mut MetaClient) -> Result<bool, Status> {
    let live = |s: &proto::ShardInfo| s.status != proto::ShardStatus::Retired as i32;
    Ok(shards(meta)
        .await?
        .iter()
        .filter(|s| live(s))
        .all(|s| s.status == proto::ShardStatus::Ready as i32))
}

/// The procedures running of `kinds` ("split", "merge", "transfer").
async fn procedures(
    meta: &mut MetaClient,
    kinds: &[&str],
) -> Result<Vec<proto::Procedure>, Status> {
    let req = proto::ListProceduresRequest { header: header() };
    let all = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.list_procedures(req).await }
        })
        .await?
        .procedures;
    Ok(all.into_iter().filter(|p| kinds.contains(&p.kind.as_str())).collect())
}

/// Prints each procedure step of `kinds` not in `seen` yet.
fn print_new_steps(running: &[proto::Procedure], seen: &mut Vec<(u64, String)>) {
    for p in running {
        if !seen.contains(&(p.id, p.step.clone())) {
            println!(
                "    procedure {} {} of shard {}: {} ({})",
                p.id, p.kind, p.shard, p.step, p.why
            );
            seen.push((p.id, p.step.clone()));
        }
    }
}

/// Splits and merges: transfers (balancing after a merge, say) come and go in between.
const RESIZES: &[&str] = &["split", "merge"];

/// Prints each step splits and merges take (`metactl procedure list`) until none is left.
async fn watch_procedures(meta: &mut MetaClient, limit: Duration) -> Result<(), Status> {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let running = procedures(meta, RESIZES).await?;
        print_new_steps(&running, &mut seen);
        if running.is_empty() && !seen.is_empty() {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(Status::deadline_exceeded(format!(
                "procedures still running after {limit:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Merges the shards of two tables, then makes both tables hot, so that the merged shard is
/// above the split line and the scheduler splits it again by itself.
async fn merge_and_split(
    meta: &mut MetaClient,
    load_file: &Path,
    tables: (&str, u64, &str, u64),
) -> Result<(), Status> {
    let (a_name, a, b_name, b) = tables;
    let req = proto::RouteTablesRequest {
        header: header(),
        schema: "public".into(),
        tables: vec![a_name.into(), b_name.into()],
    };
    let routes = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.route_tables(req).await }
        })
        .await?
        .routes;
    let (sa, sb) = (routes[0].shard, routes[1].shard);
    println!(
        "
merging shard {sa} ({a_name}) and shard {sb} ({b_name}) (`metactl shard merge {sa} {sb}`):"
    );
    let req = proto::MergeShardsRequest { header: header(), shard: sa, other: sb };
    meta.call(|mut c| {
        let req = req.clone();
        async move { c.merge_shards(req).await }
    })
    .await?;
    watch_procedures(meta, Duration::from_secs(20)).await?;
    let all = shards(meta).await?;
    let retired: Vec<u32> = all
        .iter()
        .filter(|s| s.status == proto::ShardStatus::Retired as i32)
        .map(|s| s.id)
        .collect();
    println!("merged; retired shards (never reused): {retired:?}");
    show_routes(meta, &[a_name.into(), b_name.into()]).await?;

    println!("
making {a_name} and {b_name} {HOT_TABLE_UNITS} units/s each: their shard is now above the split line");
    let spec = format!(
        "per_shard = {UNITS_PER_SHARD}
[tables]
{a} = {HOT_TABLE_UNITS}
{b} = {HOT_TABLE_UNITS}
"
    );
    std::fs::write(load_file, spec).map_err(|e| Status::internal(e.to_string()))?;
    let start = Instant::now();
    while procedures(meta, RESIZES).await?.is_empty() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(Status::deadline_exceeded("the hot shard was not split within 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("the scheduler splits it by itself once its load is trusted and has been hot for 3 windows:");
    watch_procedures(meta, Duration::from_secs(20)).await?;
    let req = proto::ListEventsRequest { header: header(), after: 0, limit: 0 };
    let events = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.list_events(req).await }
        })
        .await?;
    for e in events
        .events
        .iter()
        .filter(|e| (e.cause == "split" || e.cause == "merge") && e.text.ends_with("started"))
    {
        println!("    {}: {}", e.cause, e.text);
    }
    show_routes(meta, &[a_name.into(), b_name.into()]).await?;
    Ok(())
}

async fn shards(meta: &mut MetaClient) -> Result<Vec<proto::ShardInfo>, Status> {
    meta.list_all(proto::ListShardsRequest { header: header(), ..Default::default() }).await
}

async fn drained(meta: &mut MetaClient, node: &str) -> Result<bool, Status> {
    let nodes =
        meta.list_all(proto::ListNodesRequest { header: header(), ..Default::default() }).await?;
    Ok(nodes.iter().any(|n| n.name == node && n.draining && n.replicas == 0))
}

fn print_shards(shards: &[proto::ShardInfo]) {
    println!("    shard  version  leader  tables");
    for s in shards {
        let leader = if s.leader.is_empty() { "-" } else { &s.leader };
        println!("    {:<5}  {:<7}  {:<6}  {}", s.id, s.version, leader, s.tables);
    }
}

async fn scheduler_status(meta: &mut MetaClient) -> Result<proto::SchedulerStatusResponse, Status> {
    meta.call(|mut c| async move {
        c.scheduler_status(proto::SchedulerStatusRequest { header: header() }).await
    })
    .await
}

fn print_loads(status: &proto::SchedulerStatusResponse) {
    let mut nodes: Vec<&proto::NodeLoad> = status.nodes.iter().collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    for n in nodes {
        let ratio = if status.mean_utilization > 0.0 {
            n.load / n.capacity / status.mean_utilization
        } else {
            0.0
        };
        println!(
            "    {:<3} {:>6.0} units/s  {ratio:.2}× mean{}",
            n.name,
            n.load,
            if n.overfull { "  overfull" } else { "" }
        );
    }
}

/// Pauses or resumes automatic balancing (the settings are replaced whole).
async fn set_paused(meta: &mut MetaClient, paused: bool) -> Result<(), Status> {
    let settings =
        scheduler_status(meta).await?.settings.map(|s| proto::SchedulerSettings { paused, ..s });
    let req = proto::SetSchedulerRequest { header: header(), settings };
    meta.call(|mut c| {
        let req = req.clone();
        async move { c.set_scheduler(req).await }
    })
    .await
    .map(drop)
}

/// Makes the shards `node` leads `HOT_FACTOR` times hotter and table `hot` hotter still, with the scheduler
/// paused; shows what it sees and plans, resumes it and shows what it did.
async fn balance(
    meta: &mut MetaClient,
    load_file: &Path,
    node: &str,
    (hot, hot_name): (u64, &str),
) -> Result<(), Status> {
    set_paused(meta, true).await?;
    let led: Vec<u32> =
        shards(meta).await?.iter().filter(|s| s.leader == node).map(|s| s.id).collect();
    let overrides: String =
        led.iter().map(|id| format!("{id} = {}\n", HOT_FACTOR * UNITS_PER_SHARD)).collect();
    let spec =
        format!("per_shard = {UNITS_PER_SHARD}\n[shards]\n{overrides}[tables]\n{hot} = 200.0\n");
    std::fs::write(load_file, spec).map_err(|e| Status::internal(e.to_string()))?;
    println!("\nscheduler paused; making the {} shards {node} leads {HOT_FACTOR}× hotter, and table {hot_name} 200 units/s hotter still", led.len());
    // Smoothing takes a few windows to follow the step: wait until it nearly has.
    let hot_load = 0.9 * led.len() as f64 * HOT_FACTOR * UNITS_PER_SHARD;
    let seen = wait(meta, Duration::from_secs(30), "the scheduler never saw the hot node", |s| {
        s.nodes.iter().all(|n| n.judged) && s.nodes.iter().any(|n| n.overfull && n.load > hot_load)
    })
    .await?;
    println!(
        "what the scheduler sees once the loads are trusted (3 windows of {LOAD_WINDOW_MS} ms):"
    );
    print_loads(&seen);
    let req = proto::PlanSchedulerRequest { header: header() };
    let plan = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.plan_scheduler(req).await }
        })
        .await?;
    println!("what it would do (`metactl scheduler plan`):");
    plan.moves.iter().for_each(|m| println!("    {}", m.text));
    set_paused(meta, false).await?;
    let resumed = seen.last_event + 1; // the resume is an event of its own
    let even = wait(meta, Duration::from_secs(60), "the hot node was not relieved", |s| {
        s.moves_in_flight == 0
            && s.last_event > resumed
            && s.nodes.iter().all(|n| n.judged && !n.overfull)
    })
    .await?;
    let req = proto::ListEventsRequest { header: header(), after: resumed, limit: 0 };
    let events = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.list_events(req).await }
        })
        .await?;
    println!("resumed; what it did (`metactl events`):");
    events.events.iter().for_each(|e| println!("    {}: {}", e.cause, e.text));
    println!("and now:");
    print_loads(&even);
    if let Some(s) = shards(meta)
        .await?
        .iter()
        .find(|s| s.busiest_tables.first().is_some_and(|t| t.table_id == hot))
    {
        let units =
            s.busiest_tables[0].read_units_per_sec + s.busiest_tables[0].write_units_per_sec;
        println!("{hot_name} (table {hot}) heads the busiest tables of shard {}, as its leader {} reports them: {units:.0} units/s", s.id, s.leader);
    }
    Ok(())
}

/// Polls the scheduler's status until `done` holds.
async fn wait(
    meta: &mut MetaClient,
    limit: Duration,
    what: &str,
    done: impl Fn(&proto::SchedulerStatusResponse) -> bool,
) -> Result<proto::SchedulerStatusResponse, Status> {
    let start = Instant::now();
    loop {
        let status = scheduler_status(meta).await?;
        if done(&status) {
            return Ok(status);
        }
        if start.elapsed() > limit {
            return Err(Status::deadline_exceeded(format!("{what} within {limit:?}")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn show_routes(meta: &mut MetaClient, tables: &[String]) -> Result<(), Status> {
    let req = proto::RouteTablesRequest {
        header: header(),
        schema: "public".into(),
        tables: tables.to_vec(),
    };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.route_tables(req).await }
        })
        .await?;
    for route in r.routes {
        let leader = route
            .leader
            .map(|l| format!("{} ({})", l.name, l.endpoint))
            .unwrap_or_else(|| "-".into());
        println!("    {:<8} -> shard {} v{} -> {leader}", route.table, route.shard, route.version);
    }
    Ok(())
}

async fn run(dir: &Path) -> Result<(), Status> {
    let meta_port = free_port();
    let meta_ep = format!("127.0.0.1:{meta_port}");
    let admin_ep = format!("127.0.0.1:{}", free_port());
    println!("starting meta-server on {meta_ep} (embedded store in {}; metrics on http://{admin_ep}/metrics)", dir.display());
    let _meta = spawn(
        Command::new(sibling("meta-server"))
            .args(["--grpc-addr", &meta_ep, "--admin-addr", &admin_ep, "--data-dir"])
            .arg(dir.join("meta"))
            .env("SHARDMETA_LEASE_MS", LEASE_MS.to_string())
            .env("SHARDMETA_HEARTBEAT_INTERVAL_MS", "300")
            .env("SHARDMETA_LOAD_WINDOW_MS", LOAD_WINDOW_MS.to_string())
            .env("SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT", SHARD_COUNT.to_string())
            .env("SHARDMETA_DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD", "1"),
        &dir.join("meta.log"),
    );
    let load_file = dir.join("load.toml");
    std::fs::write(&load_file, format!("per_shard = {UNITS_PER_SHARD}\n"))
        .map_err(|e| Status::internal(e.to_string()))?;
    let mut nodes = Vec::new();
    for i in 1..=4 {
        let addr = format!("127.0.0.1:{}", free_port());
        println!("starting node-agent n{i} on {addr}");
        let mut agent = Command::new(sibling("node-agent"));
        agent
            .args([
                "--meta-endpoints",
                &meta_ep,
                "--name",
                &format!("n{i}"),
                "--addr",
                &addr,
                "--load-file",
            ])
            .arg(&load_file);
        nodes.push(spawn(&mut agent, &dir.join(format!("n{i}.log"))));
    }
    let mut meta = MetaClient::new(vec![meta_ep], Duration::from_secs(5))?;
    let start = Instant::now();
    while !all_ready(&mut meta).await.unwrap_or(false) {
        if start.elapsed() > Duration::from_secs(20) {
            return Err(Status::deadline_exceeded("shards were not assigned within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tables: Vec<String> =
        ["orders", "users", "events", "metrics"].iter().map(|s| s.to_string()).collect();
    println!("\ncreating tables {tables:?}");
    let mut ids = Vec::new();
    for name in &tables {
        let req = proto::CreateTableRequest {
            header: header(),
            name: name.clone(),
            if_not_exists: true,
            ..Default::default()
        };
        let created = meta
            .call(|mut c| {
                let req = req.clone();
                async move { c.create_table(req).await }
            })
            .await?;
        ids.push(created.table.map_or(0, |t| t.id));
    }
    println!("\nshards of cluster \"default\":");
    print_shards(&shards(&mut meta).await?);
    println!("\nroutes:");
    show_routes(&mut meta, &tables).await?;
    balance(&mut meta, &load_file, "n1", (ids[0], &tables[0])).await?;
    merge_and_split(&mut meta, &load_file, (&tables[1], ids[1], &tables[2], ids[2])).await?;

    println!("\nkilling node-agent n1 (kill -9); its shards move once its lease ({LEASE_MS} ms) has surely ended");
    drop(nodes.remove(0));
    let killed = Instant::now();
    while shards(&mut meta).await?.iter().any(|s| s.leader == "n1") || !all_ready(&mut meta).await?
    {
        if killed.elapsed() > Duration::from_secs(20) {
            return Err(Status::deadline_exceeded("failover did not happen within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("failover done {:.1?} after the kill:", killed.elapsed());
    print_shards(&shards(&mut meta).await?);
    println!("\nroutes now:");
    show_routes(&mut meta, &tables).await?;

    println!("\ndraining n2: its leader shards move by transfer, without waiting out a lease, and its follower slots to n3 and n4");
    let req = proto::DrainNodeRequest { header: header(), node: "n2".into(), cancel: false };
    meta.call(|mut c| {
        let req = req.clone();
        async move { c.drain_node(req).await }
    })
    .await?;
    let draining = Instant::now();
    let mut seen = Vec::new();
    while !drained(&mut meta, "n2").await? || !all_ready(&mut meta).await? {
        print_new_steps(&procedures(&mut meta, &["transfer"]).await?, &mut seen);
        if draining.elapsed() > Duration::from_secs(20) {
            return Err(Status::deadline_exceeded("the drain did not finish within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "n2 holds nothing {:.1?} after the drain began; stopping it changes nothing:",
        draining.elapsed()
    );
    drop(nodes.remove(0));
    print_shards(&shards(&mut meta).await?);
    println!("\nstopping everything");
    Ok(())
}

fn main() {
    let dir = std::env::temp_dir().join(format!("shardmeta-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&e.to_string()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(run(&dir));
    if std::env::var_os("DEMO_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Err(status) = result {
        fail(&format!(
            "{:?}: {} (logs were in {})",
            status.code(),
            status.message(),
            dir.display()
        ));
    }
}
