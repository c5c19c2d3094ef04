//! `demo`: the main job in one command. Starts a meta-server on its embedded store and three
//! node-agents (the sibling binaries) on free loopback ports in a temporary directory, creates
//! tables, shows shards and routes, kills one node-agent and shows the failover, drains another
//! and stops it once it holds nothing, then stops everything. Build the binaries first:
//! `cargo build --release --bins`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shardmeta::client::MetaClient;
use shardmeta::proto::{self, RequestHeader};
use tonic::Status;

const LEASE_MS: u64 = 3_000;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or_else(|e| fail(&format!("no free port: {e}")))
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
    Kill(cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err)).spawn().unwrap_or_else(|e| fail(&e.to_string())))
}

fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: "default".into() })
}

async fn shards(meta: &mut MetaClient) -> Result<Vec<proto::ShardInfo>, Status> {
    meta.list_all(proto::ListShardsRequest { header: header(), ..Default::default() }).await
}

async fn drained(meta: &mut MetaClient, node: &str) -> Result<bool, Status> {
    let nodes = meta.list_all(proto::ListNodesRequest { header: header(), ..Default::default() }).await?;
    Ok(nodes.iter().any(|n| n.name == node && n.draining && n.replicas == 0))
}

fn print_shards(shards: &[proto::ShardInfo]) {
    println!("    shard  version  leader  tables");
    for s in shards {
        let leader = if s.leader.is_empty() { "-" } else { &s.leader };
        println!("    {:<5}  {:<7}  {:<6}  {}", s.id, s.version, leader, s.tables);
    }
}

async fn show_routes(meta: &mut MetaClient, tables: &[String]) -> Result<(), Status> {
    let req = proto::RouteTablesRequest { header: header(), schema: "public".into(), tables: tables.to_vec() };
    let r = meta.call(|mut c| { let req = req.clone(); async move { c.route_tables(req).await } }).await?;
    for route in r.routes {
        let leader = route.leader.map(|l| format!("{} ({})", l.name, l.endpoint)).unwrap_or_else(|| "-".into());
        println!("    {:<8} -> shard {} v{} -> {leader}", route.table, route.shard, route.version);
    }
    Ok(())
}

async fn run(dir: &Path) -> Result<(), Status> {
    let meta_port = free_port();
    let meta_ep = format!("127.0.0.1:{meta_port}");
    println!("starting meta-server on {meta_ep} (embedded store in {})", dir.display());
    let _meta = spawn(
        Command::new(sibling("meta-server"))
            .args(["--grpc-addr", &meta_ep, "--data-dir"])
            .arg(dir.join("meta"))
            .env("SHARDMETA_LEASE_MS", LEASE_MS.to_string())
            .env("SHARDMETA_HEARTBEAT_INTERVAL_MS", "300"),
        &dir.join("meta.log"),
    );
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let addr = format!("127.0.0.1:{}", free_port());
        println!("starting node-agent n{i} on {addr}");
        nodes.push(spawn(
            Command::new(sibling("node-agent")).args(["--meta-endpoints", &meta_ep, "--name", &format!("n{i}"), "--addr", &addr]),
            &dir.join(format!("n{i}.log")),
        ));
    }
    let mut meta = MetaClient::new(vec![meta_ep], Duration::from_secs(5))?;
    let start = Instant::now();
    while !shards(&mut meta).await.is_ok_and(|s| s.iter().all(|s| s.status == proto::ShardStatus::Ready as i32)) {
        if start.elapsed() > Duration::from_secs(20) {
            return Err(Status::deadline_exceeded("shards were not assigned within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tables: Vec<String> = ["orders", "users", "events", "metrics"].iter().map(|s| s.to_string()).collect();
    println!("\ncreating tables {tables:?}");
    for name in &tables {
        let req = proto::CreateTableRequest { header: header(), name: name.clone(), if_not_exists: true, ..Default::default() };
        meta.call(|mut c| { let req = req.clone(); async move { c.create_table(req).await } }).await?;
    }
    println!("\nshards of cluster \"default\":");
    print_shards(&shards(&mut meta).await?);
    println!("\nroutes:");
    show_routes(&mut meta, &tables).await?;

    println!("\nkilling node-agent n1 (kill -9); its shards move once its lease ({LEASE_MS} ms) has surely ended");
    drop(nodes.remove(0));
    let killed = Instant::now();
    while shards(&mut meta).await?.iter().any(|s| s.leader == "n1" || s.status != proto::ShardStatus::Ready as i32) {
        if killed.elapsed() > Duration::from_secs(20) {
            return Err(Status::deadline_exceeded("failover did not happen within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("failover done {:.1?} after the kill:", killed.elapsed());
    print_shards(&shards(&mut meta).await?);
    println!("\nroutes now:");
    show_routes(&mut meta, &tables).await?;

    println!("\ndraining n2: its shards move to n3 by transfer, without waiting out a lease");
    let req = proto::DrainNodeRequest { header: header(), node: "n2".into(), cancel: false };
    meta.call(|mut c| { let req = req.clone(); async move { c.drain_node(req).await } }).await?;
    let draining = Instant::now();
    while !drained(&mut meta, "n2").await? || shards(&mut meta).await?.iter().any(|s| s.status != proto::ShardStatus::Ready as i32) {
        if draining.elapsed() > Duration::from_secs(20) {
            return Err(Status::deadline_exceeded("the drain did not finish within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("n2 holds nothing {:.1?} after the drain began; stopping it changes nothing:", draining.elapsed());
    drop(nodes.remove(0));
    print_shards(&shards(&mut meta).await?);
    println!("\nstopping everything");
    Ok(())
}

fn main() {
    let dir = std::env::temp_dir().join(format!("shardmeta-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&e.to_string()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let result = runtime.block_on(run(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(status) = result {
        fail(&format!("{:?}: {} (logs were in {})", status.code(), status.message(), dir.display()));
    }
}
