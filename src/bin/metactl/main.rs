//! `metactl --endpoints A,B,C [--cluster NAME] [--output table|json|jsonl] <subcommand>`
//!
//! Any meta endpoint works: the client finds the leader. Listings follow every page; with
//! `--output jsonl` each row is printed, one JSON object a line, as its page arrives, so a listing
//! of a million tables streams. Failures print one line and exit 1 (2 for bad usage).

// Items are `pub` only where another crate may name them; the rest say how far they reach.
#![warn(unreachable_pub)]

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use shardmeta::client::credentials::{token_from, Secret};
use shardmeta::client::listing::Paged;
use shardmeta::client::{ClientTls, Credentials, MetaClient};
use shardmeta::convert::json as to_json;
use shardmeta::proto::{self, RequestHeader};
use tonic::Status;

mod placement;
mod procedures;
mod scheduling;
mod tables;
mod what_if;
use placement::PlacementCmd;
use scheduling::SchedulerCmd;
use what_if::WhatIfCmd;

#[derive(Parser)]
#[command(name = "metactl", version, about = "Operate a shardmeta meta service")]
struct Args {
    /// Meta endpoints, any of them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:7560",
        env = "METACTL_ENDPOINTS"
    )]
    endpoints: Vec<String>,
    /// The cluster the command is about.
    #[arg(long, default_value = "default")]
    cluster: String,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Per-call timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// A file holding the admin token, for a meta with tokens (or the token itself in
    /// METACTL_TOKEN).
    #[arg(long, value_name = "PATH", env = "METACTL_TOKEN_FILE")]
    token_file: Option<std::path::PathBuf>,
    /// Dial meta over TLS, trusting this CA (PEM).
    #[arg(long, value_name = "PATH", env = "METACTL_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM), for a meta that asks for one (mutual TLS).
    #[arg(long, value_name = "PATH", env = "METACTL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "PATH", env = "METACTL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The name meta's certificate carries, when it is not the endpoint's host.
    #[arg(long, value_name = "NAME")]
    tls_domain: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    /// One JSON value a line; listings stream page by page.
    Jsonl,
}

#[derive(Subcommand)]
enum Command {
    #[command(subcommand)]
    Cluster(ClusterCmd),
    #[command(subcommand)]
    Schema(SchemaCmd),
    #[command(subcommand)]
    Table(TableCmd),
    /// Where tables live: shard, version, leader and follower endpoints.
    Route {
        #[arg(long, default_value = "public")]
        schema: String,
        #[arg(required = true)]
        tables: Vec<String>,
    },
    /// Follow route changes as they land, one JSON line per update, until interrupted (or the
    /// watch ends: a leader change, a cut-off; resume with --from the last revision printed).
    WatchRoutes {
        /// Only this schema's tables (shard changes come whatever the schema).
        #[arg(long)]
        schema: Option<String>,
        /// Resume after this revision; 0 starts now.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
    #[command(subcommand)]
    Node(NodeCmd),
    #[command(subcommand)]
    Shard(ShardCmd),
    /// The scheduler: status, pause and resume, a dry-run plan, settings.
    #[command(subcommand)]
    Scheduler(SchedulerCmd),
    /// The placement rule: which nodes may hold and lead the cluster's shards, by their labels.
    #[command(subcommand)]
    Placement(PlacementCmd),
    /// Rehearse a change that is no command of its own (`--dry-run` on `node drain`, `node
    /// remove`, `node restart-begin` and `placement set` rehearses those).
    #[command(subcommand)]
    WhatIf(WhatIfCmd),
    /// The scheduling event log: every decided move with its reason, oldest first.
    Events {
        /// Only events numbered after this one.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many (0: the server's default page).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Multi-step operations in progress (splits and merges), and cancelling them.
    #[command(subcommand)]
    Procedure(ProcedureCmd),
    /// The current meta leader.
    Leader,
}

#[derive(Subcommand)]
pub(crate) enum ProcedureCmd {
    /// Transfers, splits and merges running, with the step each waits on.
    List,
    /// Cancel a procedure: a transfer at any time (the old leader keeps the shard), a split or
    /// merge by rolling it back while that is still safe.
    Cancel { id: u64 },
}

#[derive(Subcommand)]
enum ClusterCmd {
    Create {
        name: String,
        #[arg(long, default_value_t = 8)]
        shards: u32,
        #[arg(long, default_value_t = 0)]
        followers: u32,
        /// Keep the assignment instead of following the nodes.
        #[arg(long)]
        r#static: bool,
        #[arg(long, default_value_t = 1)]
        min_nodes: u32,
    },
    List,
    /// The cluster at a glance: nodes, shard readiness, and changes not yet durable.
    Status,
    /// Drop the cluster (--cluster) with everything in it. Refused while any of its nodes is
    /// online, unless --force.
    Drop {
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum SchemaCmd {
    Create {
        name: String,
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Drop a schema; one that holds tables only with --cascade, which deletes them too (in
    /// the background, after the answer).
    Drop {
        name: String,
        #[arg(long)]
        cascade: bool,
    },
}

#[derive(Subcommand)]
enum TableCmd {
    Create {
        #[arg(long, default_value = "public")]
        schema: String,
        #[arg(long)]
        if_not_exists: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    Drop {
        #[arg(long, default_value = "public")]
        schema: String,
        #[arg(required = true)]
        names: Vec<String>,
    },
    List {
        #[arg(long)]
        schema: Option<String>,
    },
    /// Everything meta stores about tables: version, encoded schema (hex), options, partition
    /// rule and sub-tables.
    Get {
        #[arg(long, default_value = "public")]
        schema: String,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Replace a table's encoded schema, its options, or both, if it is still at `--version`
    /// (as `table get` shows it); ABORTED when it has moved on.
    Alter {
        #[arg(long, default_value = "public")]
        schema: String,
        name: String,
        /// The version the change is made against.
        #[arg(long)]
        version: u32,
        /// The new encoded schema, in hex.
        #[arg(long)]
        encoded_schema_hex: Option<String>,
        /// KEY=VALUE, repeatable: the options become exactly these.
        #[arg(long = "option")]
        options: Vec<String>,
        /// Remove every option (with no --option).
        #[arg(long)]
        clear_options: bool,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    List,
    /// Move every replica off a node and place nothing new on it. Once `node list` shows it
    /// with no replicas, it can be stopped.
    Drain {
        name: String,
        /// End the drain: the node takes replicas again.
        #[arg(long)]
        cancel: bool,
        /// Change nothing: rehearse the drain and say what would refuse it, the moves it takes
        /// and what it leaves.
        #[arg(long, conflicts_with = "cancel")]
        dry_run: bool,
    },
    /// Mark a node slow: it takes no new replicas or leaders, and its leaders leave it at its
    /// outbound budget while its followers stay. Meta also finds slow nodes by their heartbeat
    /// round trip and request latency (`node list` shows `slow`).
    Slow {
        name: String,
        /// Take the mark off, and forgive the slowness meta found: the node takes load again.
        #[arg(long)]
        unmark: bool,
    },
    /// Begin a planned restart of a running node: its leaders leave by transfer, its followers
    /// stay and are not replaced while it is down (for up to the window). Restart the process
    /// once `node list` shows it leading no shard; when it is back, its leaders return to it
    /// and the restart ends by itself.
    RestartBegin {
        name: String,
        /// How long the node may stay down with its followers kept, in seconds (default 600,
        /// at most 3600).
        #[arg(long, value_name = "SECONDS")]
        window: Option<u64>,
        /// Change nothing: rehearse the restart's leader moves.
        #[arg(long)]
        dry_run: bool,
    },
    /// End a planned restart now: nothing more is held for the node (a node still down then
    /// has its followers replaced, as any node that died).
    RestartEnd {
        name: String,
    },
    /// Forget an offline node that holds no replicas (drained, or dead with its shards failed
    /// over). Its name can then be used by a new node.
    Remove {
        name: String,
        /// Change nothing: say what would refuse the removal, and rehearse the node gone now
        /// (its shards failed over and repaired).
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ShardCmd {
    List,
    /// Hand a shard's leadership to one of its followers.
    Transfer {
        shard: u32,
        node: String,
    },
    /// Open a shard on a node that holds no replica of it, which then leads it.
    Move {
        shard: u32,
        node: String,
    },
    /// Split a shard in two: some of its tables move to a new shard.
    Split {
        shard: u32,
        /// Table ids to move (see `table list`), comma-separated; none: chosen by load, so
        /// that the two pieces carry about the same.
        #[arg(long, value_delimiter = ',')]
        tables: Vec<u64>,
    },
    /// Merge two shards: the one with fewer tables moves into the other and is retired.
    Merge {
        shard: u32,
        other: u32,
    },
}

pub(crate) fn header(cluster: &str) -> Option<RequestHeader> {
    Some(RequestHeader { cluster: cluster.to_owned() })
}

/// Runs the command and returns its result as JSON (tables are rendered from it).
async fn run(args: &Args, meta: &mut MetaClient) -> Result<Value, Status> {
    let cluster = args.cluster.as_str();
    Ok(match &args.command {
        Command::Leader => {
            let (leader, _) = meta.leader().await?;
            json!({ "leader": leader })
        }
        Command::Cluster(ClusterCmd::Create { name, shards, followers, r#static, min_nodes }) => {
            let mode =
                if *r#static { proto::TopologyMode::Static } else { proto::TopologyMode::Dynamic }
                    as i32;
            let req = proto::CreateClusterRequest {
                name: name.clone(),
                shard_count: *shards,
                followers_per_shard: *followers,
                mode,
                min_nodes: *min_nodes,
            };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.create_cluster(req).await }
                })
                .await?;
            to_json::cluster(&r.cluster.unwrap_or_default())
        }
        Command::Cluster(ClusterCmd::Drop { force }) => {
            let req = proto::DropClusterRequest { header: header(cluster), force: *force };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.drop_cluster(req).await }
                })
                .await?;
            json!({"id": r.id, "name": cluster, "tables": r.tables, "dropped": true})
        }
        Command::Cluster(ClusterCmd::List) => {
            rows(args, meta, proto::ListClustersRequest::default(), to_json::cluster).await?
        }
        Command::Cluster(ClusterCmd::Status) => {
            let req = proto::ClusterViewRequest { header: header(cluster) };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.cluster_view(req).await }
                })
                .await?;
            json!({"cluster": to_json::cluster(&r.cluster.unwrap_or_default()), "term": r.term, "nodes_online": r.nodes_online,
                   "nodes_offline": r.nodes_offline, "shards_ready": r.shards_ready, "shards_unassigned": r.shards_unassigned,
                   "tables": r.tables, "changes_pending": r.changes_pending})
        }
        Command::Schema(SchemaCmd::Create { name, if_not_exists }) => {
            let req = proto::CreateSchemaRequest {
                header: header(cluster),
                name: name.clone(),
                if_not_exists: *if_not_exists,
            };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.create_schema(req).await }
                })
                .await?;
            json!({"id": r.id, "name": name, "created": r.created})
        }
        Command::Schema(SchemaCmd::Drop { name, cascade }) => {
            let req = proto::DropSchemaRequest {
                header: header(cluster),
                name: name.clone(),
                cascade: *cascade,
            };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.drop_schema(req).await }
                })
                .await?;
            json!({"id": r.id, "name": name, "tables_to_delete": r.tables})
        }
        Command::Table(TableCmd::Create { schema, if_not_exists, names }) => {
            let mut out = Vec::new();
            for name in names {
                let req = proto::CreateTableRequest {
                    header: header(cluster),
                    schema: schema.clone(),
                    name: name.clone(),
                    if_not_exists: *if_not_exists,
                    ..Default::default()
                };
                let r = meta
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.create_table(req).await }
                    })
                    .await?;
                let t = r.table.unwrap_or_default();
                out.push(json!({"id": t.id, "schema": t.schema, "name": t.name, "shard": t.shard, "created": r.created}));
            }
            Value::Array(out)
        }
        Command::Table(TableCmd::Drop { schema, names }) => {
            let mut out = Vec::new();
            for name in names {
                let req = proto::DropTableRequest {
                    header: header(cluster),
                    schema: schema.clone(),
                    name: name.clone(),
                };
                let r = meta
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.drop_table(req).await }
                    })
                    .await?;
                out.push(json!({"id": r.id, "name": name}));
            }
            Value::Array(out)
        }
        Command::Table(TableCmd::List { schema }) => {
            let req = proto::ListTablesRequest {
                header: header(cluster),
                schema: schema.clone().unwrap_or_default(),
                ..Default::default()
            };
            rows(args, meta, req, to_json::table).await?
        }
        Command::Table(TableCmd::Get { schema, names }) => {
            tables::get(cluster, schema, names, meta).await?
        }
        Command::Table(TableCmd::Alter {
            schema,
            name,
            version,
            encoded_schema_hex,
            options,
            clear_options,
        }) => {
            let alter = tables::Alter {
                schema,
                name,
                version: *version,
                encoded_schema_hex: encoded_schema_hex.as_deref(),
                options,
                clear_options: *clear_options,
            };
            tables::alter(cluster, alter, meta).await?
        }
        Command::WatchRoutes { schema, from } => {
            tables::watch_routes(cluster, schema.as_deref(), *from, meta).await?
        }
        Command::Route { schema, tables } => {
            let req = proto::RouteTablesRequest {
                header: header(cluster),
                schema: schema.clone(),
                tables: tables.clone(),
            };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.route_tables(req).await }
                })
                .await?;
            Value::Array(
                r.routes
                    .iter()
                    .map(|t| {
                        json!({"table": t.table, "shard": t.shard, "version": t.version,
                               "leader": t.leader.as_ref().map(|l| l.endpoint.clone()),
                               "followers": t.followers.iter().map(|f| f.endpoint.clone()).collect::<Vec<_>>()})
                    })
                    .collect(),
            )
        }
        Command::Node(NodeCmd::List) => {
            rows(
                args,
                meta,
                proto::ListNodesRequest { header: header(cluster), ..Default::default() },
                to_json::node,
            )
            .await?
        }
        Command::Node(NodeCmd::Remove { name, dry_run: true })
        | Command::Node(NodeCmd::Drain { name, dry_run: true, .. })
        | Command::Node(NodeCmd::RestartBegin { name, dry_run: true, .. }) => {
            use proto::what_if_request::Change;
            let change = match &args.command {
                Command::Node(NodeCmd::Remove { .. }) => Change::Remove(name.clone()),
                Command::Node(NodeCmd::Drain { .. }) => Change::Drain(name.clone()),
                _ => Change::RestartBegin(name.clone()),
            };
            what_if::ask(cluster, change, meta).await?
        }
        Command::WhatIf(cmd) => what_if::what_if(cmd, cluster, meta).await?,
        Command::Node(NodeCmd::Remove { name, .. }) => {
            let req = proto::RemoveNodeRequest { header: header(cluster), node: name.clone() };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.remove_node(req).await }
                })
                .await?;
            json!({"removed": r.node})
        }
        Command::Node(NodeCmd::Drain { name, cancel, .. }) => {
            let req = proto::DrainNodeRequest {
                header: header(cluster),
                node: name.clone(),
                cancel: *cancel,
            };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.drain_node(req).await }
                })
                .await?;
            r.node.as_ref().map_or(Value::Null, to_json::node)
        }
        Command::Node(NodeCmd::Slow { name, unmark }) => {
            let req = proto::MarkNodeSlowRequest {
                header: header(cluster),
                node: name.clone(),
                unmark: *unmark,
            };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.mark_node_slow(req).await }
                })
                .await?;
            r.node.as_ref().map_or(Value::Null, to_json::node)
        }
        Command::Node(NodeCmd::RestartBegin { name, window, .. }) => {
            let window_ms = window
                .unwrap_or(0)
                .checked_mul(1_000)
                .ok_or_else(|| Status::invalid_argument("--window is too long"))?;
            restart_node(cluster, name, false, window_ms, meta).await?
        }
        Command::Node(NodeCmd::RestartEnd { name }) => {
            restart_node(cluster, name, true, 0, meta).await?
        }
        Command::Shard(ShardCmd::Transfer { shard, node }) => {
            scheduling::move_shard(cluster, *shard, node, false, meta).await?
        }
        Command::Shard(ShardCmd::Move { shard, node }) => {
            scheduling::move_shard(cluster, *shard, node, true, meta).await?
        }
        Command::Scheduler(cmd) => scheduling::scheduler(cmd, cluster, meta).await?,
        Command::Placement(cmd) => placement::placement(cmd, cluster, meta).await?,
        Command::Events { after, limit } => {
            scheduling::events(cluster, *after, *limit, meta).await?
        }
        Command::Shard(ShardCmd::Split { shard, tables }) => {
            procedures::split(cluster, *shard, tables, meta).await?
        }
        Command::Shard(ShardCmd::Merge { shard, other }) => {
            procedures::merge(cluster, *shard, *other, meta).await?
        }
        Command::Procedure(cmd) => procedures::procedure(cmd, cluster, meta).await?,
        Command::Shard(ShardCmd::List) => {
            let req = proto::ListShardsRequest { header: header(cluster), ..Default::default() };
            rows(args, meta, req, to_json::shard).await?
        }
    })
}

/// Follows every page of a listing. With `jsonl` output each row is printed as its page
/// arrives (and `Null` returned); otherwise the rows are collected.
async fn restart_node(
    cluster: &str,
    name: &str,
    end: bool,
    window_ms: u64,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let req = proto::RestartNodeRequest {
        header: header(cluster),
        node: name.to_owned(),
        end,
        window_ms,
    };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.restart_node(req).await }
        })
        .await?;
    Ok(r.node.as_ref().map_or(Value::Null, to_json::node))
}

async fn rows<R: Paged>(
    args: &Args,
    meta: &mut MetaClient,
    req: R,
    json: impl Fn(&R::Item) -> Value,
) -> Result<Value, Status> {
    let stream = args.output == Output::Jsonl;
    let mut all = Vec::new();
    meta.for_each_page(req, |items| {
        for item in &items {
            match stream {
                true => println!("{}", json(item)),
                false => all.push(json(item)),
            }
        }
    })
    .await?;
    Ok(if stream { Value::Null } else { Value::Array(all) })
}

/// Renders JSON rows as aligned columns, keys of the first row as the header. An object that
/// holds lists of rows (`scheduler status`: its nodes and its jobs) is shown as its other
/// fields, one a line, then each list under its name as a table.
fn table(v: &Value) -> String {
    let is_rows = |x: &Value| x.as_array().is_some_and(|a| a.iter().all(Value::is_object));
    if let Value::Object(o) = v {
        if o.values().any(is_rows) {
            let mut out: Vec<String> =
                o.iter().filter(|(_, x)| !is_rows(x)).map(|(k, x)| format!("{k}: {x}")).collect();
            for (key, list) in o.iter().filter(|(_, x)| is_rows(x)) {
                out.push(String::new());
                out.push(format!("{key}:"));
                out.push(table(list));
            }
            return out.join("\n");
        }
    }
    let rows: Vec<&serde_json::Map<String, Value>> = match v {
        Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
        Value::Object(o) => vec![o],
        _ => return v.to_string(),
    };
    let Some(first) = rows.first() else { return "(none)".into() };
    let keys: Vec<&String> = first.keys().collect();
    let cell = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or(x.to_string(), String::from))
            .collect::<Vec<_>>()
            .join(","),
        // A node's labels: `disk=ssd,rack=r1,zone=a`.
        Some(Value::Object(o)) if !o.is_empty() => o
            .iter()
            .map(|(k, x)| format!("{k}={}", x.as_str().map_or(x.to_string(), String::from)))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "-".into(),
        Some(other) => other.to_string(),
    };
    let cells: Vec<Vec<String>> =
        rows.iter().map(|r| keys.iter().map(|k| cell(r.get(*k))).collect()).collect();
    let widths: Vec<usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| cells.iter().map(|r| r[i].len()).max().unwrap_or(0).max(k.len()))
        .collect();
    let line = |vals: Vec<String>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(keys.iter().map(|k| k.to_uppercase()).collect())];
    out.extend(cells.into_iter().map(line));
    out.join("\n")
}

/// TLS from the flags, and the token from `--token-file` or `METACTL_TOKEN` (never a flag: a
/// command line is visible to every user of the machine).
fn credentials(args: &Args) -> Result<Credentials, String> {
    let tls = ClientTls {
        ca: args.tls_ca.clone(),
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        domain: args.tls_domain.clone(),
    };
    let token = std::env::var("METACTL_TOKEN").ok().map(Secret);
    let token = token_from(args.token_file.as_deref(), token.as_ref(), "METACTL_TOKEN")?;
    Credentials::from_settings(&tls, token.as_deref())
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        let credentials = credentials(&args).map_err(Status::invalid_argument)?;
        let mut meta =
            MetaClient::new(args.endpoints.clone(), Duration::from_millis(args.timeout_ms))?
                .with_credentials(credentials);
        run(&args, &mut meta).await
    });
    match result {
        Ok(v) => match (args.output, v) {
            (Output::Json, v) => println!("{v}"),
            (Output::Table, v) => println!("{}", table(&v)),
            (Output::Jsonl, Value::Null) => {} // streamed already
            (Output::Jsonl, Value::Array(rows)) => rows.iter().for_each(|r| println!("{r}")),
            (Output::Jsonl, v) => println!("{v}"),
        },
        Err(status) => {
            eprintln!("metactl: {:?}: {}", status.code(), status.message());
            std::process::exit(1);
        }
    }
}
