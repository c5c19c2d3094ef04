//! Bad input over the real gRPC server (in-process, embedded store): each case gets the right
//! status code and a message that names the problem, and nothing is half-written.

mod process;

use std::time::Duration;

use process::{free_port, TempDir};
use shardmeta::client::meta_client::connect;
use shardmeta::proto::{self, RequestHeader};
use shardmeta::server::config::{Overrides, ServerConfig};
use tokio_stream::StreamExt;
use tonic::Code;

fn header(cluster: &str) -> Option<RequestHeader> {
    Some(RequestHeader { cluster: cluster.into() })
}

fn table(name: &str) -> proto::CreateTableRequest {
    proto::CreateTableRequest { header: header("default"), name: name.into(), ..Default::default() }
}

/// A meta server on its embedded store in this process.
struct Served {
    endpoint: String,
    _dir: TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Served {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Starts a server and returns it with a client once it serves.
async fn serve(name: &str) -> (shardmeta::client::meta_client::Grpc, Served) {
    let dir = TempDir::new(name);
    let port = free_port();
    let env = vec![("SHARDMETA_DATA_DIR".to_string(), dir.path().display().to_string())];
    let flags = Overrides {
        grpc_addr: Some(format!("127.0.0.1:{port}")),
        admin_addr: Some(String::new()),
        ..Default::default()
    };
    let config = ServerConfig::load(None, env, flags).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(shardmeta::server::run(config, async {
        let _ = stopped.await;
    }));
    let endpoint = format!("127.0.0.1:{port}");
    loop {
        if let Ok(mut c) = connect(&endpoint, Duration::from_secs(5)).await {
            if c.list_tables(proto::ListTablesRequest {
                header: header("default"),
                ..Default::default()
            })
            .await
            .is_ok()
            {
                return (c, Served { endpoint, _dir: dir, stop, task });
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A refusal any gRPC client can read: the expected code, and a short message (a client drops a
/// status trailer over 8-16 KiB and reports a metadata error instead).
fn short_refusal<T: std::fmt::Debug>(
    rpc: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
) {
    let status = result.expect_err(rpc);
    assert_eq!(status.code(), code, "{rpc}: {:.300}", status.message());
    assert!(
        status.message().len() <= 1_024,
        "{rpc}: a message of {} bytes",
        status.message().len()
    );
}

fn expect(
    result: Result<tonic::Response<impl std::fmt::Debug>, tonic::Status>,
    code: Code,
    words: &str,
) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(words), "{:?} should mention {words:?}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses_and_write_nothing() {
    let (mut c, server) = serve("bad-input").await;
    c.create_table(table("ok")).await.unwrap();

    expect(
        c.create_table(proto::CreateTableRequest { header: header("nope"), ..table("t") }).await,
        Code::NotFound,
        "cluster \"nope\"",
    );
    expect(
        c.create_table(proto::CreateTableRequest { schema: "nope".into(), ..table("t") }).await,
        Code::NotFound,
        "schema \"nope\"",
    );
    expect(
        c.drop_table(proto::DropTableRequest {
            header: header("default"),
            schema: String::new(),
            name: "nope".into(),
        })
        .await,
        Code::NotFound,
        "table \"nope\"",
    );
    let route = proto::RouteTablesRequest {
        header: header("default"),
        schema: String::new(),
        tables: vec!["nope".into()],
    };
    expect(c.route_tables(route).await, Code::NotFound, "table \"nope\"");
    expect(c.create_table(table("")).await, Code::InvalidArgument, "empty");
    expect(c.create_table(table(&"x".repeat(300))).await, Code::InvalidArgument, "limit");
    expect(c.create_table(table("a/b")).await, Code::InvalidArgument, "'/'");
    let big = proto::CreateTableRequest { encoded_schema: vec![0; 300 * 1024], ..table("big") };
    expect(c.create_table(big).await, Code::InvalidArgument, "encoded schema");
    expect(c.create_table(table("ok")).await, Code::AlreadyExists, "table \"ok\"");
    expect(
        c.create_table(proto::CreateTableRequest { header: None, ..table("t") }).await,
        Code::InvalidArgument,
        "names no cluster",
    );
    let partition = Some(proto::PartitionInfo { partition_count: 0, encoded: vec![] });
    expect(
        c.create_table(proto::CreateTableRequest { partition, ..table("p") }).await,
        Code::InvalidArgument,
        "partition count",
    );
    let zero =
        proto::CreateClusterRequest { name: "c2".into(), shard_count: 0, ..Default::default() };
    expect(c.create_cluster(zero).await, Code::InvalidArgument, "shard count");
    let oversized =
        proto::CreateTableRequest { encoded_schema: vec![0; 17 * 1024 * 1024], ..table("huge") };
    let status = c.create_table(oversized).await.expect_err("over the message limit");
    assert!(
        matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange | Code::Internal),
        "{status:?}"
    );

    let get = |tables: Vec<String>| proto::GetTablesRequest {
        header: header("default"),
        schema: String::new(),
        tables,
    };
    expect(
        c.get_tables(get(vec!["ok".into(), "nope".into()])).await,
        Code::NotFound,
        "table \"nope\"",
    );
    expect(
        c.get_tables(get(vec!["ok".into(); 10_001])).await,
        Code::InvalidArgument,
        "limit is 10000",
    );
    let one = proto::GetTableRequest {
        header: header("default"),
        schema: String::new(),
        table: "ok".into(),
    };
    let got = c.get_table(one.clone()).await.unwrap().into_inner().table.expect("the table");
    assert_eq!((got.info.as_ref().map(|i| i.name.as_str()), got.version), (Some("ok"), 1));
    expect(
        c.get_table(proto::GetTableRequest { table: "nope".into(), ..one }).await,
        Code::NotFound,
        "table \"nope\"",
    );

    let drop_cluster =
        |cluster: &str| proto::DropClusterRequest { header: header(cluster), force: true };
    expect(
        c.drop_cluster(drop_cluster("default")).await,
        Code::FailedPrecondition,
        "default cluster",
    );
    expect(c.drop_cluster(drop_cluster("nope")).await, Code::NotFound, "cluster \"nope\"");
    let drop_schema = |name: &str| proto::DropSchemaRequest {
        header: header("default"),
        name: name.into(),
        cascade: false,
    };
    expect(c.drop_schema(drop_schema("public")).await, Code::FailedPrecondition, "public schema");
    expect(c.drop_schema(drop_schema("nope")).await, Code::NotFound, "schema \"nope\"");

    let alter = |expected_version: u32| proto::AlterTableRequest {
        header: header("default"),
        name: "ok".into(),
        expected_version,
        encoded_schema: Some(vec![5]),
        ..Default::default()
    };
    expect(c.alter_table(alter(2)).await, Code::Aborted, "at version 1, not the expected 2");
    expect(
        c.alter_table(proto::AlterTableRequest { encoded_schema: None, ..alter(1) }).await,
        Code::InvalidArgument,
        "changes nothing",
    );
    let altered = c.alter_table(alter(1)).await.unwrap().into_inner().table.expect("the table");
    assert_eq!((altered.version, altered.encoded_schema), (2, vec![5]));
    expect(c.alter_table(alter(1)).await, Code::Aborted, "at version 2");

    let drain = |node: &str| proto::DrainNodeRequest {
        header: header("default"),
        node: node.into(),
        cancel: false,
    };
    expect(c.drain_node(drain("ghost")).await, Code::NotFound, "node \"ghost\"");
    let remove = proto::RemoveNodeRequest { header: header("default"), node: "ghost".into() };
    expect(c.remove_node(remove).await, Code::NotFound, "node \"ghost\"");

    // Heartbeats: an unknown cluster, then a node reporting a shard the cluster does not have.
    let hb = |cluster: &str, shard: u32, role: i32| proto::HeartbeatRequest {
        header: header(cluster),
        node_name: "n1".into(),
        endpoint: "127.0.0.1:1".into(),
        incarnation: 1,
        seq: 1,
        shards: vec![proto::ShardReport { id: shard, role, version: 1, ..Default::default() }],
        ..Default::default()
    };
    for (request, code, words) in [
        (hb("nope", 0, 1), Code::NotFound, "cluster \"nope\""),
        (hb("default", 999, 1), Code::InvalidArgument, "shard 999"),
        (hb("default", 0, 0), Code::InvalidArgument, "shard role"),
    ] {
        let mut stream = c.heartbeat(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
        let status = stream.next().await.expect("an answer").expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(
            status.message().contains(words),
            "{:?} should mention {words:?}",
            status.message()
        );
    }

    // Nothing was half-written: one table, no node registered.
    let tables = c
        .list_tables(proto::ListTablesRequest { header: header("default"), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tables.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ok"]);
    let nodes = c
        .list_nodes(proto::ListNodesRequest { header: header("default"), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(nodes.nodes.is_empty(), "{nodes:?}");
    server.stop().await;
}

/// A megabyte in every string a client can send, to every RPC that takes one: each is refused
/// with its code and a message of at most a kilobyte that quotes a prefix and the length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_in_any_field_of_any_rpc_gets_a_short_clear_refusal() {
    let (mut c, server) = serve("huge-input").await;
    c.create_table(table("ok")).await.unwrap();
    let huge = "a".repeat(1 << 20);
    let h = || header(&huge);
    let d = || header("default");
    let invalid = Code::InvalidArgument;

    short_refusal(
        "CreateCluster",
        c.create_cluster(proto::CreateClusterRequest {
            name: huge.clone(),
            shard_count: 1,
            ..Default::default()
        })
        .await,
        invalid,
    );
    short_refusal(
        "ListClusters",
        c.list_clusters(proto::ListClustersRequest {
            page_token: huge.clone(),
            ..Default::default()
        })
        .await,
        invalid,
    );
    short_refusal(
        "ClusterView",
        c.cluster_view(proto::ClusterViewRequest { header: h() }).await,
        invalid,
    );
    short_refusal(
        "DropCluster",
        c.drop_cluster(proto::DropClusterRequest { header: h(), force: true }).await,
        invalid,
    );
    short_refusal(
        "CreateSchema",
        c.create_schema(proto::CreateSchemaRequest {
            header: d(),
            name: huge.clone(),
            if_not_exists: false,
        })
        .await,
        invalid,
    );
    short_refusal(
        "CreateSchema/cluster",
        c.create_schema(proto::CreateSchemaRequest {
            header: h(),
            name: "s".into(),
            if_not_exists: false,
        })
        .await,
        invalid,
    );
    short_refusal(
        "DropSchema",
        c.drop_schema(proto::DropSchemaRequest { header: d(), name: huge.clone(), cascade: true })
            .await,
        invalid,
    );
    short_refusal("CreateTable/name", c.create_table(table(&huge)).await, invalid);
    short_refusal(
        "CreateTable/schema",
        c.create_table(proto::CreateTableRequest { schema: huge.clone(), ..table("t") }).await,
        invalid,
    );
    let options = |k: &str, v: &str| [(k.to_string(), v.to_string())].into_iter().collect();
    short_refusal(
        "CreateTable/option key",
        c.create_table(proto::CreateTableRequest { options: options(&huge, "v"), ..table("t") })
            .await,
        invalid,
    );
    short_refusal(
        "CreateTable/option value",
        c.create_table(proto::CreateTableRequest { options: options("k", &huge), ..table("t") })
            .await,
        invalid,
    );
    short_refusal(
        "DropTable",
        c.drop_table(proto::DropTableRequest {
            header: d(),
            schema: String::new(),
            name: huge.clone(),
        })
        .await,
        invalid,
    );
    let alter = proto::AlterTableRequest {
        header: d(),
        name: huge.clone(),
        expected_version: 1,
        encoded_schema: Some(vec![1]),
        ..Default::default()
    };
    short_refusal("AlterTable", c.alter_table(alter).await, invalid);
    let table_options = Some(proto::TableOptions { entries: options(&huge, "v") });
    let alter = proto::AlterTableRequest {
        header: d(),
        name: "ok".into(),
        expected_version: 1,
        options: table_options,
        ..Default::default()
    };
    short_refusal("AlterTable/option key", c.alter_table(alter).await, invalid);
    short_refusal(
        "RouteTables",
        c.route_tables(proto::RouteTablesRequest {
            header: d(),
            schema: String::new(),
            tables: vec![huge.clone()],
        })
        .await,
        invalid,
    );
    short_refusal(
        "GetTables",
        c.get_tables(proto::GetTablesRequest {
            header: d(),
            schema: String::new(),
            tables: vec![huge.clone()],
        })
        .await,
        invalid,
    );
    short_refusal(
        "GetTable",
        c.get_table(proto::GetTableRequest {
            header: d(),
            schema: String::new(),
            table: huge.clone(),
        })
        .await,
        invalid,
    );
    short_refusal(
        "GetTable/schema",
        c.get_table(proto::GetTableRequest {
            header: d(),
            schema: huge.clone(),
            table: "ok".into(),
        })
        .await,
        invalid,
    );
    short_refusal(
        "ListNodes",
        c.list_nodes(proto::ListNodesRequest {
            header: d(),
            page_token: huge.clone(),
            ..Default::default()
        })
        .await,
        invalid,
    );
    short_refusal(
        "ListNodes/cluster",
        c.list_nodes(proto::ListNodesRequest { header: h(), ..Default::default() }).await,
        invalid,
    );
    short_refusal(
        "DrainNode",
        c.drain_node(proto::DrainNodeRequest { header: d(), node: huge.clone(), cancel: false })
            .await,
        invalid,
    );
    short_refusal(
        "MarkNodeSlow",
        c.mark_node_slow(proto::MarkNodeSlowRequest {
            header: d(),
            node: huge.clone(),
            unmark: false,
        })
        .await,
        invalid,
    );
    short_refusal(
        "RestartNode",
        c.restart_node(proto::RestartNodeRequest {
            header: d(),
            node: huge.clone(),
            ..Default::default()
        })
        .await,
        invalid,
    );
    short_refusal(
        "RestartNode/window",
        c.restart_node(proto::RestartNodeRequest {
            header: d(),
            node: "n1".into(),
            end: false,
            window_ms: u64::MAX,
        })
        .await,
        invalid,
    );
    let constraint = |key: &str, values: Vec<String>| proto::PlacementConstraint {
        kind: proto::ConstraintKind::Require as i32,
        key: key.into(),
        values,
    };
    for (what, rule) in [
        ("key", vec![constraint(&huge, vec!["ssd".into()])]),
        ("value", vec![constraint("disk", vec![huge.clone()])]),
        ("values", vec![constraint("disk", (0..100_000).map(|i| format!("v{i}")).collect())]),
        ("constraints", vec![constraint("disk", vec!["ssd".into()]); 100_000]),
        (
            "kind",
            vec![proto::PlacementConstraint { kind: -1, ..constraint("disk", vec!["a".into()]) }],
        ),
    ] {
        short_refusal(
            &format!("SetPlacement/{what}"),
            c.set_placement(proto::SetPlacementRequest {
                header: d(),
                rule: Some(proto::PlacementRule { replicas: rule, ..Default::default() }),
                expected_version: None,
            })
            .await,
            invalid,
        );
    }
    short_refusal(
        "SetPlacement/spread",
        c.set_placement(proto::SetPlacementRequest {
            header: d(),
            rule: Some(proto::PlacementRule { spread: huge.clone(), ..Default::default() }),
            expected_version: None,
        })
        .await,
        invalid,
    );
    short_refusal(
        "SetPlacement/missing",
        c.set_placement(proto::SetPlacementRequest { header: d(), ..Default::default() }).await,
        invalid,
    );
    use proto::what_if_request::Change;
    for (what, change) in [
        ("missing", None),
        ("drain", Some(Change::Drain(huge.clone()))),
        ("lose_zone", Some(Change::LoseZone(huge.clone()))),
        (
            "placement",
            Some(Change::Placement(proto::PlacementRule {
                spread: huge.clone(),
                ..Default::default()
            })),
        ),
    ] {
        short_refusal(
            &format!("WhatIf/{what}"),
            c.what_if(proto::WhatIfRequest { header: d(), change }).await,
            invalid,
        );
    }
    short_refusal(
        "GetPlacement/cluster",
        c.get_placement(proto::GetPlacementRequest { header: h() }).await,
        invalid,
    );
    short_refusal(
        "RemoveNode",
        c.remove_node(proto::RemoveNodeRequest { header: d(), node: huge.clone() }).await,
        invalid,
    );
    short_refusal(
        "ListShards",
        c.list_shards(proto::ListShardsRequest {
            header: d(),
            page_token: huge.clone(),
            ..Default::default()
        })
        .await,
        invalid,
    );
    short_refusal(
        "ListTables",
        c.list_tables(proto::ListTablesRequest {
            header: d(),
            schema: huge.clone(),
            ..Default::default()
        })
        .await,
        invalid,
    );
    short_refusal(
        "SchedulerStatus",
        c.scheduler_status(proto::SchedulerStatusRequest { header: h() }).await,
        invalid,
    );
    short_refusal(
        "SetScheduler",
        c.set_scheduler(proto::SetSchedulerRequest { header: h(), settings: None }).await,
        invalid,
    );
    short_refusal(
        "PlanScheduler",
        c.plan_scheduler(proto::PlanSchedulerRequest { header: h() }).await,
        invalid,
    );
    short_refusal(
        "ListEvents",
        c.list_events(proto::ListEventsRequest { header: h(), ..Default::default() }).await,
        invalid,
    );
    short_refusal(
        "MoveShard",
        c.move_shard(proto::MoveShardRequest {
            header: d(),
            shard: 0,
            node: huge.clone(),
            ..Default::default()
        })
        .await,
        invalid,
    );
    short_refusal(
        "SplitShard",
        c.split_shard(proto::SplitShardRequest { header: h(), shard: 0, tables: vec![] }).await,
        invalid,
    );
    short_refusal(
        "MergeShards",
        c.merge_shards(proto::MergeShardsRequest { header: h(), shard: 0, other: 1 }).await,
        invalid,
    );
    short_refusal(
        "ListProcedures",
        c.list_procedures(proto::ListProceduresRequest { header: h() }).await,
        invalid,
    );
    short_refusal(
        "CancelProcedure",
        c.cancel_procedure(proto::CancelProcedureRequest { header: h(), id: 1 }).await,
        invalid,
    );
    let watch = proto::WatchRoutesRequest { header: d(), schema: huge.clone(), from_revision: 0 };
    let watched = match c.watch_routes(watch).await {
        Ok(stream) => {
            stream.into_inner().next().await.expect("an answer").map(tonic::Response::new)
        }
        Err(status) => Err(status),
    };
    short_refusal("WatchRoutes", watched, invalid);

    let beat = |f: &dyn Fn(&mut proto::HeartbeatRequest)| {
        let mut hb = proto::HeartbeatRequest {
            header: d(),
            node_name: "n1".into(),
            endpoint: "127.0.0.1:1".into(),
            incarnation: 1,
            seq: 1,
            ..Default::default()
        };
        f(&mut hb);
        hb
    };
    let heartbeats: [(&str, proto::HeartbeatRequest); 6] = [
        ("node name", beat(&|hb| hb.node_name = huge.clone())),
        ("endpoint", beat(&|hb| hb.endpoint = huge.clone())),
        ("zone", beat(&|hb| hb.zone = huge.clone())),
        ("label value", beat(&|hb| hb.labels = [("disk".into(), huge.clone())].into())),
        ("label key", beat(&|hb| hb.labels = [(huge.clone(), "ssd".into())].into())),
        ("cluster", beat(&|hb| hb.header = h())),
    ];
    for (field, request) in heartbeats {
        let mut stream = c.heartbeat(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
        let answer = stream.next().await.expect("an answer").map(tonic::Response::new);
        short_refusal(&format!("Heartbeat/{field}"), answer, invalid);
    }

    let mut request =
        tonic::Request::new(proto::ListTablesRequest { header: d(), ..Default::default() });
    request.metadata_mut().insert("authorization", format!("Bearer {huge}").parse().unwrap());
    // A header list past HTTP/2's limit (16 KiB here) is refused by the client's transport when
    // it has the server's settings, and otherwise by the server, which ends the connection
    // (GOAWAY, "too_many_continuations"): so it goes on a connection of its own. Meta's own token
    // refusals quote no token (server::auth), and this project's clients refuse a token over
    // 1 KiB before sending (client::credentials).
    let mut own = connect(&server.endpoint, Duration::from_secs(5)).await.unwrap();
    assert!(own.list_tables(request).await.is_err(), "a megabyte token is refused");

    // Nothing was written by any of it.
    let tables = c
        .list_tables(proto::ListTablesRequest { header: d(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tables.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ok"]);
    server.stop().await;
}
