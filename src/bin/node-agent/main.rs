//! `node-agent [--config FILE] [--meta-endpoints A,B,C] [--cluster C] --name NAME --addr HOST:PORT [--zone Z] [--metrics-addr HOST:PORT]`
//!
//! The meta-client settings (cluster, meta endpoints, lease cap, call timeout, TLS and the node
//! token) come from the
//! defaults, the TOML file, `SHARDMETA_NODE_*` variables, then these flags, later winning
//! (`shardmeta::client::config`).
//!
//! The reference data node: it hosts shards in memory, obeys meta's commands, reports synthetic
//! load, and accepts routed writes only for shards it leads under a valid lease at the route's
//! version. With `--leadership-log FILE` it appends one JSON line per lease interval, lease cut
//! and accepted write, in wall-clock milliseconds, so that tests can check that no two nodes
//! ever led one shard at once.

// Items are `pub` only where another crate may name them; the rest say how far they reach.
#![warn(unreachable_pub)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Parser;
use shardmeta::client::config::NodeConfig;
use shardmeta::client::node::{self, LogExecutor, NodeClock, NodeIdentity};
use shardmeta::client::{
    LeaseEvent, LeaseTracker, MetaClient, NodeSession, ShardHost, WriteService,
};
use shardmeta::core::model::Label;
use shardmeta::core::{validate, CoreConfig, Instant, ShardId};

mod load;

#[derive(Parser)]
#[command(name = "node-agent", version, about = "A reference shardmeta data node")]
struct Args {
    /// A TOML file of meta-client settings (see config/node.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Meta endpoints, any of them.
    #[arg(long, value_delimiter = ',')]
    meta_endpoints: Option<Vec<String>>,
    /// This node's name, unique in the cluster.
    #[arg(long)]
    name: String,
    /// Where to serve routed writes; also the endpoint meta hands out in routes.
    #[arg(long, value_name = "HOST:PORT")]
    addr: SocketAddr,
    /// A zone label: replicas of a shard prefer distinct zones.
    #[arg(long, default_value = "")]
    zone: String,
    /// A label besides the zone, as KEY=VALUE (repeat the flag for more, up to 16): placement
    /// can tell nodes apart by it (`--label disk=ssd --label rack=r12`).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = label)]
    labels: Vec<Label>,
    #[arg(long)]
    cluster: Option<String>,
    /// How much load this node can take relative to the others (CPU cores, or a weight): meta
    /// balances utilization, load over capacity.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    capacity: f64,
    /// Synthetic load reported per shard, in units per second (without --load-file).
    #[arg(long, default_value_t = 1.0)]
    load: f64,
    /// Synthetic load from a TOML file, read again whenever it changes (see config/load.toml).
    #[arg(long, value_name = "PATH")]
    load_file: Option<PathBuf>,
    /// Serve this node's metrics (`shardmeta_client_*`: heartbeat round trips, reconnects,
    /// self-fences) at http://HOST:PORT/metrics.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// Append lease intervals and accepted writes here (JSON lines).
    #[arg(long)]
    leadership_log: Option<PathBuf>,
}

type Log = Arc<Mutex<Option<std::fs::File>>>;

fn log_line(log: &Log, line: serde_json::Value) {
    if let Some(f) = log.lock().expect("log lock").as_mut() {
        let _ = writeln!(f, "{line}");
    }
}

/// Logs lease intervals: a grant or extension as `{shard, from, until}`, a lease dropped before
/// its end as `{shard, cut}`.
fn leadership_observer(clock: NodeClock, log: Log) -> node::Observer {
    let mut tracker = LeaseTracker::default();
    Box::new(move |host: &ShardHost, now: Instant| {
        for event in tracker.observe(host, now) {
            let line = match event {
                LeaseEvent::Held { shard, from, until } => {
                    serde_json::json!({"shard": shard.0, "from": clock.wall_ms(from), "until": clock.wall_ms(until)})
                }
                LeaseEvent::Cut { shard, at } => {
                    serde_json::json!({"shard": shard.0, "cut": clock.wall_ms(at)})
                }
            };
            log_line(&log, line);
        }
    })
}

fn exit_if_failed(
    addr: &SocketAddr,
    served: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) {
    match served {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("node-agent: serving {addr}: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("node-agent: the write server failed: {e}");
            std::process::exit(1);
        }
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e6 => Ok(v),
        _ => Err(format!("{s:?} is not a number in (0, 1e6]")),
    }
}

fn label(s: &str) -> Result<Label, String> {
    match s.split_once('=') {
        Some((key, value)) => Ok(Label::new(key, value)),
        None => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// The labels by key, refused as meta would refuse them: better at start than at every
/// heartbeat.
fn labels(mut labels: Vec<Label>) -> Result<Vec<Label>, String> {
    labels.sort();
    validate::labels(&labels, CoreConfig::default().name_len_max).map_err(|e| e.to_string())?;
    Ok(labels)
}

/// The file, then the variables, then the flags; validated.
fn meta_client_config(args: &Args) -> Result<NodeConfig, String> {
    let mut cfg = NodeConfig::load(args.config.as_deref(), std::env::vars())?;
    if let Some(endpoints) = &args.meta_endpoints {
        cfg.meta_endpoints = endpoints.clone();
    }
    if let Some(cluster) = &args.cluster {
        cfg.cluster = cluster.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NODE_AGENT_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    let log: Log = match &args.leadership_log {
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Arc::new(Mutex::new(Some(f))),
            Err(e) => {
                eprintln!("node-agent: cannot open {}: {e}", path.display());
                std::process::exit(2);
            }
        },
        None => Arc::default(),
    };
    let settings = match meta_client_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("node-agent: {e}");
            std::process::exit(2);
        }
    };
    let credentials = match settings.credentials() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("node-agent: {e}");
            std::process::exit(2);
        }
    };
    let meta = match MetaClient::new(settings.meta_endpoints.clone(), settings.timeout()) {
        Ok(m) => m.with_credentials(credentials.clone()),
        Err(e) => {
            eprintln!("node-agent: {}", e.message());
            std::process::exit(2);
        }
    };
    let labels = match labels(args.labels.clone()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("node-agent: {e}");
            std::process::exit(2);
        }
    };
    let clock = NodeClock::start();
    let identity = NodeIdentity {
        cluster: settings.cluster.clone(),
        name: args.name.clone(),
        endpoint: args.addr.to_string(),
        zone: args.zone.clone(),
        labels,
        incarnation: clock.wall_ms(Instant::ZERO),
        capacity: args.capacity,
    };
    let mut host = ShardHost::new();
    host.cap_leases(shardmeta::core::Duration(settings.lease_ms));
    let host = Arc::new(Mutex::new(host));
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let spec = match &args.load_file {
            Some(path) => load::watch(path.clone()).unwrap_or_else(|e| {
                eprintln!("node-agent: load file {e}");
                std::process::exit(2);
            }),
            None => Arc::new(std::sync::RwLock::new(load::LoadSpec::flat(args.load))),
        };
        let load = load::Synthetic::new(spec, args.name.clone());
        if let Some(addr) = args.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| {
                eprintln!("node-agent: metrics_addr {addr}: {e}");
                std::process::exit(2);
            });
            let metrics = axum::Router::new().route(
                "/metrics",
                axum::routing::get(|| async {
                    use shardmeta::client::metrics;
                    ([(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::encode())
                }),
            );
            tokio::task::spawn(async move { axum::serve(listener, metrics).await });
        }
        // Shared with the shutdown below, which logs the leases it gives up.
        let observer = Arc::new(Mutex::new(leadership_observer(clock, log.clone())));
        let observe = observer.clone();
        let observe: node::Observer = Box::new(move |h: &ShardHost, now: Instant| {
            (observe.lock().expect("observer lock"))(h, now)
        });
        let heartbeats = tokio::task::spawn(node::run(
            meta,
            identity.clone(),
            host.clone(),
            clock,
            load,
            LogExecutor,
            observe,
        ));
        let write_log = log.clone();
        let on_write = Box::new(move |shard: ShardId, _, at| {
            log_line(&write_log, serde_json::json!({"shard": shard.0, "write": clock.wall_ms(at)}))
        });
        let service = shardmeta::proto::node_server::NodeServer::new(WriteService::new(
            host.clone(),
            clock,
            on_write,
        ));
        tracing::info!(addr = %args.addr, name = %args.name, "serving routed writes");
        let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tonic::transport::Server::builder().add_service(service).serve_with_shutdown(
            args.addr,
            async {
                let _ = stopped.await;
            },
        );
        let mut served = tokio::task::spawn(served);
        tokio::select! {
            biased; // a fixed order: see `client::node`
            result = &mut served => return exit_if_failed(&args.addr, result),
            () = shardmeta::server::signals::first_then_exit_on_second("node-agent") => {}
        }
        // Close the shards before going: stop heartbeating, give up every lease (so no write
        // is accepted past this point) and tell meta, so that it moves the shards now rather
        // than when the leases would have ended; then stop serving writes.
        heartbeats.abort();
        let leaving = {
            let mut h = host.lock().expect("host lock");
            let leaving = NodeSession::new(identity.clone()).leave(&mut h, clock.now());
            (observer.lock().expect("observer lock"))(&h, clock.now());
            leaving
        };
        let told = match MetaClient::new(settings.meta_endpoints.clone(), settings.timeout()) {
            Ok(m) => {
                node::send_leaving(
                    &mut m.with_credentials(credentials),
                    &leaving,
                    std::time::Duration::from_secs(1),
                )
                .await
            }
            Err(_) => false,
        };
        tracing::info!(told, "leases given up; told meta this node is leaving; stopping");
        let _ = stopping.send(());
        match tokio::time::timeout(std::time::Duration::from_secs(5), served).await {
            Ok(result) => exit_if_failed(&args.addr, result),
            Err(_) => {
                tracing::warn!("routed writes still in flight after 5 s; exiting without them")
            }
        }
    });
}
