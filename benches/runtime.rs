//! End-to-end throughput of the runtime, each as a ratio to a raw floor measured in the same run
//! (timings on this machine are noisy; ratios are what compare):
//! - heartbeat ingest: node heartbeats per second through gRPC to the leader, against a bare
//!   tonic bidirectional echo stream answering the same requests with responses of the same
//!   shape;
//! - create-table on etcd: acknowledged creates per second, against raw etcd transactions of
//!   the same shape (compares and puts of the same sizes) from the same client library;
//! - procedure steps on etcd ([`procedure_steps`]): transfer steps landed per second, against
//!   raw transactions of a step's shape.
//!
//! Run: `cargo bench --bench runtime` (etcd must be installed for the second part).

#[path = "runtime/procedure_steps.rs"]
mod procedure_steps;
#[path = "../tests/process/mod.rs"]
#[allow(unused_imports)]
mod process;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardmeta::client::meta_client::connect;
use shardmeta::client::node::{self, NodeIdentity};
use shardmeta::client::ShardHost;
use shardmeta::convert;
use shardmeta::core::ShardLoad;
use shardmeta::proto::{self, meta_server::Meta, RequestHeader};
use shardmeta::server::config::{Overrides, ServerConfig};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

const NODES: usize = 32;
const SHARDS_PER_NODE: u32 = 32;
const WARM_UP: Duration = Duration::from_secs(4);
const MEASURE: Duration = Duration::from_secs(4);
const WRITERS: usize = 32;
const ROUNDS: u64 = 3;

fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: "default".into() })
}

/// Starts a meta server in this process; returns its endpoint and a stopper.
async fn start_meta(env: Vec<(String, String)>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let port = process::free_port();
    let flags = Overrides {
        grpc_addr: Some(format!("127.0.0.1:{port}")),
        admin_addr: Some(String::new()),
        ..Default::default()
    };
    let config = ServerConfig::load(None, env, flags).expect("bench config");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(shardmeta::server::run(config, async {
        let _ = stopped.await;
    }));
    let endpoint = format!("127.0.0.1:{port}");
    loop {
        if let Ok(mut c) = connect(&endpoint, Duration::from_secs(5)).await {
            if c.list_tables(proto::ListTablesRequest { header: header(), ..Default::default() })
                .await
                .is_ok()
            {
                return (endpoint, stop);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One node's closed loop: send a heartbeat, wait for its answer, repeat. Counts answers while
/// `counting`; returns the last request sent, for the echo run to replay.
#[allow(clippy::too_many_arguments)]
async fn node_loop(
    endpoint: String,
    i: usize,
    incarnation: u64,
    replay: Option<proto::HeartbeatRequest>,
    pause: Duration,
    counting: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> proto::HeartbeatRequest {
    let mut client = connect(&endpoint, Duration::from_secs(5)).await.expect("connect");
    let (tx, rx) = mpsc::channel(1);
    let mut inbound = client.heartbeat(ReceiverStream::new(rx)).await.expect("stream").into_inner();
    let mut host = ShardHost::new();
    let identity = NodeIdentity {
        cluster: "default".into(),
        name: format!("bench-{i}"),
        endpoint: format!("127.0.0.1:{}", 20_000 + i),
        zone: String::new(),
        labels: Vec::new(),
        incarnation,
        capacity: 1.0,
    };
    let start = std::time::Instant::now();
    let mut last = proto::HeartbeatRequest::default();
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = shardmeta::core::Instant(start.elapsed().as_millis() as u64);
        let request = match &replay {
            Some(r) => {
                seq += 1;
                proto::HeartbeatRequest { seq, ..r.clone() }
            }
            None => {
                let reports =
                    host.heartbeat(now, &|_| ShardLoad { write_units: 1.0, ..Default::default() });
                node::heartbeat_request(&identity, reports)
            }
        };
        last = request.clone();
        if tx.send(request).await.is_err() {
            break;
        }
        match inbound.message().await {
            Ok(Some(response)) => {
                if replay.is_none() {
                    host.on_message(&convert::from_node_message(&response).expect("well-formed"));
                }
                if counting.load(Ordering::Relaxed) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => break,
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    last
}

/// Runs `NODES` closed loops against `endpoint`; heartbeats per second in the measured window.
async fn heartbeat_load(
    endpoint: &str,
    incarnation: u64,
    replay: Option<Vec<proto::HeartbeatRequest>>,
) -> (f64, Vec<proto::HeartbeatRequest>) {
    let (counting, stop, count) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let tasks: Vec<_> = (0..NODES)
        .map(|i| {
            let r = replay.as_ref().map(|r| r[i].clone());
            tokio::spawn(node_loop(
                endpoint.to_owned(),
                i,
                incarnation,
                r,
                Duration::ZERO,
                counting.clone(),
                stop.clone(),
                count.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(WARM_UP).await;
    counting.store(true, Ordering::Relaxed);
    tokio::time::sleep(MEASURE).await;
    counting.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut last = Vec::new();
    for t in tasks {
        last.push(t.await.expect("node task"));
    }
    (count.load(Ordering::Relaxed) as f64 / MEASURE.as_secs_f64(), last)
}

/// The floor: a tonic server that answers each heartbeat at once with a response of the same
/// shape as meta's (a lease grant), doing nothing else.
struct Echo;

fn only_heartbeats<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("echo serves only heartbeats"))
}

#[tonic::async_trait]
impl Meta for Echo {
    type HeartbeatStream = ReceiverStream<Result<proto::HeartbeatResponse, Status>>;
    type WatchRoutesStream = ReceiverStream<Result<proto::WatchRoutesResponse, Status>>;

    async fn watch_routes(
        &self,
        _: Request<proto::WatchRoutesRequest>,
    ) -> Result<Response<Self::WatchRoutesStream>, Status> {
        only_heartbeats()
    }

    async fn heartbeat(
        &self,
        request: Request<Streaming<proto::HeartbeatRequest>>,
    ) -> Result<Response<Self::HeartbeatStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Ok(Some(r)) = inbound.message().await {
                let response = proto::HeartbeatResponse {
                    term: 1,
                    epoch: 1,
                    lease: Some(proto::LeaseGrant {
                        seq: r.seq,
                        duration_ms: 10_000,
                        revoked: vec![],
                    }),
                    heartbeat_interval_ms: 1_000,
                    ..Default::default()
                };
                if tx.send(Ok(response)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn create_cluster(
        &self,
        _: Request<proto::CreateClusterRequest>,
    ) -> Result<Response<proto::CreateClusterResponse>, Status> {
        only_heartbeats()
    }

    async fn list_clusters(
        &self,
        _: Request<proto::ListClustersRequest>,
    ) -> Result<Response<proto::ListClustersResponse>, Status> {
        only_heartbeats()
    }

    async fn cluster_view(
        &self,
        _: Request<proto::ClusterViewRequest>,
    ) -> Result<Response<proto::ClusterViewResponse>, Status> {
        only_heartbeats()
    }

    async fn create_schema(
        &self,
        _: Request<proto::CreateSchemaRequest>,
    ) -> Result<Response<proto::CreateSchemaResponse>, Status> {
        only_heartbeats()
    }

    async fn create_table(
        &self,
        _: Request<proto::CreateTableRequest>,
    ) -> Result<Response<proto::CreateTableResponse>, Status> {
        only_heartbeats()
    }

    async fn drop_table(
        &self,
        _: Request<proto::DropTableRequest>,
    ) -> Result<Response<proto::DropTableResponse>, Status> {
        only_heartbeats()
    }

    async fn drop_cluster(
        &self,
        _: Request<proto::DropClusterRequest>,
    ) -> Result<Response<proto::DropClusterResponse>, Status> {
        only_heartbeats()
    }

    async fn drop_schema(
        &self,
        _: Request<proto::DropSchemaRequest>,
    ) -> Result<Response<proto::DropSchemaResponse>, Status> {
        only_heartbeats()
    }

    async fn alter_table(
        &self,
        _: Request<proto::AlterTableRequest>,
    ) -> Result<Response<proto::AlterTableResponse>, Status> {
        only_heartbeats()
    }

    async fn route_tables(
        &self,
        _: Request<proto::RouteTablesRequest>,
    ) -> Result<Response<proto::RouteTablesResponse>, Status> {
        only_heartbeats()
    }

    async fn get_tables(
        &self,
        _: Request<proto::GetTablesRequest>,
    ) -> Result<Response<proto::GetTablesResponse>, Status> {
        only_heartbeats()
    }

    async fn get_table(
        &self,
        _: Request<proto::GetTableRequest>,
    ) -> Result<Response<proto::GetTableResponse>, Status> {
        only_heartbeats()
    }

    async fn list_nodes(
        &self,
        _: Request<proto::ListNodesRequest>,
    ) -> Result<Response<proto::ListNodesResponse>, Status> {
        only_heartbeats()
    }

    async fn drain_node(
        &self,
        _: Request<proto::DrainNodeRequest>,
    ) -> Result<Response<proto::DrainNodeResponse>, Status> {
        only_heartbeats()
    }

    async fn mark_node_slow(
        &self,
        _: Request<proto::MarkNodeSlowRequest>,
    ) -> Result<Response<proto::MarkNodeSlowResponse>, Status> {
        only_heartbeats()
    }

    async fn restart_node(
        &self,
        _: Request<proto::RestartNodeRequest>,
    ) -> Result<Response<proto::RestartNodeResponse>, Status> {
        only_heartbeats()
    }

    async fn what_if(
        &self,
        _: Request<proto::WhatIfRequest>,
    ) -> Result<Response<proto::WhatIfResponse>, Status> {
        only_heartbeats()
    }

    async fn get_placement(
        &self,
        _: Request<proto::GetPlacementRequest>,
    ) -> Result<Response<proto::PlacementResponse>, Status> {
        only_heartbeats()
    }

    async fn set_placement(
        &self,
        _: Request<proto::SetPlacementRequest>,
    ) -> Result<Response<proto::PlacementResponse>, Status> {
        only_heartbeats()
    }

    async fn remove_node(
        &self,
        _: Request<proto::RemoveNodeRequest>,
    ) -> Result<Response<proto::RemoveNodeResponse>, Status> {
        only_heartbeats()
    }

    async fn list_shards(
        &self,
        _: Request<proto::ListShardsRequest>,
    ) -> Result<Response<proto::ListShardsResponse>, Status> {
        only_heartbeats()
    }

    async fn list_tables(
        &self,
        _: Request<proto::ListTablesRequest>,
    ) -> Result<Response<proto::ListTablesResponse>, Status> {
        only_heartbeats()
    }

    async fn get_leader(
        &self,
        _: Request<proto::GetLeaderRequest>,
    ) -> Result<Response<proto::GetLeaderResponse>, Status> {
        only_heartbeats()
    }

    async fn scheduler_status(
        &self,
        _: Request<proto::SchedulerStatusRequest>,
    ) -> Result<Response<proto::SchedulerStatusResponse>, Status> {
        only_heartbeats()
    }

    async fn set_scheduler(
        &self,
        _: Request<proto::SetSchedulerRequest>,
    ) -> Result<Response<proto::SchedulerStatusResponse>, Status> {
        only_heartbeats()
    }

    async fn plan_scheduler(
        &self,
        _: Request<proto::PlanSchedulerRequest>,
    ) -> Result<Response<proto::PlanSchedulerResponse>, Status> {
        only_heartbeats()
    }

    async fn list_events(
        &self,
        _: Request<proto::ListEventsRequest>,
    ) -> Result<Response<proto::ListEventsResponse>, Status> {
        only_heartbeats()
    }

    async fn move_shard(
        &self,
        _: Request<proto::MoveShardRequest>,
    ) -> Result<Response<proto::MoveShardResponse>, Status> {
        only_heartbeats()
    }

    async fn split_shard(
        &self,
        _: Request<proto::SplitShardRequest>,
    ) -> Result<Response<proto::ProcedureResponse>, Status> {
        only_heartbeats()
    }

    async fn merge_shards(
        &self,
        _: Request<proto::MergeShardsRequest>,
    ) -> Result<Response<proto::ProcedureResponse>, Status> {
        only_heartbeats()
    }

    async fn list_procedures(
        &self,
        _: Request<proto::ListProceduresRequest>,
    ) -> Result<Response<proto::ListProceduresResponse>, Status> {
        only_heartbeats()
    }

    async fn cancel_procedure(
        &self,
        _: Request<proto::CancelProcedureRequest>,
    ) -> Result<Response<proto::ProcedureResponse>, Status> {
        only_heartbeats()
    }
}

async fn heartbeat_ratio() {
    let dir = process::TempDir::new("bench-hb");
    let env = vec![
        ("SHARDMETA_DATA_DIR".to_string(), dir.path().display().to_string()),
        (
            "SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT".to_string(),
            (NODES as u32 * SHARDS_PER_NODE).to_string(),
        ),
        ("SHARDMETA_LOG_LEVEL".to_string(), "warn".to_string()),
        // Each round's nodes are new incarnations of the last round's: they are admitted once
        // the old ones' leases end, which a 3 s lease does within the echo run between.
        ("SHARDMETA_LEASE_MS".to_string(), "3000".to_string()),
        ("SHARDMETA_CLOCK_DRIFT_MS".to_string(), "200".to_string()),
    ];
    let (meta, stop) = start_meta(env).await;
    let port = process::free_port();
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(proto::meta_server::MetaServer::new(Echo))
            .serve(addr),
    );
    let echo = format!("127.0.0.1:{port}");
    println!("heartbeat ingest, {NODES} nodes in closed loops, {SHARDS_PER_NODE} shard reports per heartbeat:");
    // Rounds alternate so that a noisy stretch of the machine hits both sides.
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let (meta_rate, last) = heartbeat_load(&meta, round, None).await;
        let (echo_rate, _) = heartbeat_load(&echo, round, Some(last)).await;
        println!("  round {round}: meta-server {meta_rate:>8.0}/s, bare tonic echo {echo_rate:>8.0}/s, ratio {:.2}", meta_rate / echo_rate);
        ratios.push(meta_rate / echo_rate);
    }
    let _ = stop.send(());
    ratios.sort_by(f64::total_cmp);
    println!("  median ratio: {:.2} (target >= 0.8)", ratios[ratios.len() / 2]);
}

/// `WRITERS` tasks doing `op` in a loop for the measured window; operations per second.
async fn throughput<F, Fut>(op: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + MEASURE;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while Instant::now() < deadline {
                    i += 1;
                    if op(w, i).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    done.load(Ordering::Relaxed) as f64 / MEASURE.as_secs_f64()
}

async fn create_ratio() {
    let dir = process::TempDir::new("bench-etcd");
    let etcd = process::Etcd::start(dir.path(), 1);
    let env = vec![
        ("SHARDMETA_ETCD_ENDPOINTS".to_string(), etcd.endpoints()),
        ("SHARDMETA_LOG_LEVEL".to_string(), "warn".to_string()),
    ];
    let (meta, stop) = start_meta(env).await;
    // One connection per writer, as the raw floor has one client.
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(connect(&meta, Duration::from_secs(5)).await.expect("connect"));
    }
    let clients = Arc::new(clients);
    let creates = throughput(move |w, i| {
        let mut c = clients[w].clone();
        async move {
            let req = proto::CreateTableRequest {
                header: header(),
                name: format!("w{w}_{i}"),
                encoded_schema: vec![7; 64],
                ..Default::default()
            };
            c.create_table(req).await.is_ok()
        }
    })
    .await;
    let _ = stop.send(());

    // The floor: one transaction per create, of the same shape as meta's batch for one create
    // (two value compares; a table record, a shard record and the fence record).
    let raw = raw_txns(&etcd, |w, i| {
        vec![
            (format!("/bench/tables/{w}/{i}"), vec![7u8; 90]),
            (format!("/bench/shards/{}", i % 8), vec![1u8; 12]),
            (format!("/bench/fence/{w}"), vec![2u8; 6]),
        ]
    })
    .await;
    println!("create table on etcd, {WRITERS} concurrent clients:");
    println!("  meta-server creates:          {creates:>9.0} /s");
    println!("  raw etcd transactions:        {raw:>9.0} /s");
    println!("  ratio: {:.2} (target >= 1.0)", creates / raw);
}

/// A key and value to put.
type Put = (String, Vec<u8>);

/// Raw etcd transactions per second from `WRITERS` tasks on one client: each compares a key's
/// value twice (as meta's fence and leader checks do) and puts what `puts` gives for
/// (writer, iteration).
async fn raw_txns(etcd: &process::Etcd, puts: fn(usize, u64) -> Vec<Put>) -> f64 {
    let client = etcd_client::Client::connect(&etcd.client_urls, None).await.expect("etcd");
    let mut setup = client.clone();
    setup.put("/bench/leader", "me", None).await.expect("put");
    throughput(move |w, i| {
        let mut client = client.clone();
        async move {
            use etcd_client::{Compare, CompareOp, Txn, TxnOp};
            let txn = Txn::new()
                .when([
                    Compare::value("/bench/leader", CompareOp::Equal, "me"),
                    Compare::value("/bench/leader", CompareOp::Equal, "me"),
                ])
                .and_then(
                    puts(w, i).into_iter().map(|(k, v)| TxnOp::put(k, v, None)).collect::<Vec<_>>(),
                );
            client.txn(txn).await.is_ok()
        }
    })
    .await
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("runtime benchmarks run under `cargo bench --bench runtime`");
        return;
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        heartbeat_ratio().await;
        if std::process::Command::new("etcd").arg("--version").output().is_ok() {
            create_ratio().await;
            procedure_steps::step_ratio().await;
        } else {
            println!("create table and procedure steps on etcd: skipped, etcd is not installed (./.ci/setup)");
        }
    });
}
