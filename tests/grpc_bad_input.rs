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

fn expect(result: Result<tonic::Response<impl std::fmt::Debug>, tonic::Status>, code: Code, words: &str) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(words), "{:?} should mention {words:?}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses_and_write_nothing() {
    let dir = TempDir::new("bad-input");
    let port = free_port();
    let env = vec![("SHARDMETA_DATA_DIR".to_string(), dir.path().display().to_string())];
    let flags = Overrides { grpc_addr: Some(format!("127.0.0.1:{port}")), admin_addr: Some(String::new()), ..Default::default() };
    let config = ServerConfig::load(None, env, flags).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shardmeta::server::run(config, async {
        let _ = stopped.await;
    }));
    let endpoint = format!("127.0.0.1:{port}");
    let mut c = loop {
        if let Ok(mut c) = connect(&endpoint, Duration::from_secs(5)).await {
            if c.list_tables(proto::ListTablesRequest { header: header("default"), ..Default::default() }).await.is_ok() {
                break c;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    c.create_table(table("ok")).await.unwrap();

    expect(c.create_table(proto::CreateTableRequest { header: header("nope"), ..table("t") }).await, Code::NotFound, "cluster \"nope\"");
    expect(c.create_table(proto::CreateTableRequest { schema: "nope".into(), ..table("t") }).await, Code::NotFound, "schema \"nope\"");
    expect(c.drop_table(proto::DropTableRequest { header: header("default"), schema: String::new(), name: "nope".into() }).await, Code::NotFound, "table \"nope\"");
    let route = proto::RouteTablesRequest { header: header("default"), schema: String::new(), tables: vec!["nope".into()] };
    expect(c.route_tables(route).await, Code::NotFound, "table \"nope\"");
    expect(c.create_table(table("")).await, Code::InvalidArgument, "empty");
    expect(c.create_table(table(&"x".repeat(300))).await, Code::InvalidArgument, "limit");
    expect(c.create_table(table("a/b")).await, Code::InvalidArgument, "'/'");
    let big = proto::CreateTableRequest { encoded_schema: vec![0; 300 * 1024], ..table("big") };
    expect(c.create_table(big).await, Code::InvalidArgument, "encoded schema");
    expect(c.create_table(table("ok")).await, Code::AlreadyExists, "table \"ok\"");
    expect(c.create_table(proto::CreateTableRequest { header: None, ..table("t") }).await, Code::InvalidArgument, "names no cluster");
    let partition = Some(proto::PartitionInfo { partition_count: 0, encoded: vec![] });
    expect(c.create_table(proto::CreateTableRequest { partition, ..table("p") }).await, Code::InvalidArgument, "partition count");
    let zero = proto::CreateClusterRequest { name: "c2".into(), shard_count: 0, ..Default::default() };
    expect(c.create_cluster(zero).await, Code::InvalidArgument, "shard count");
    let oversized = proto::CreateTableRequest { encoded_schema: vec![0; 17 * 1024 * 1024], ..table("huge") };
    let status = c.create_table(oversized).await.expect_err("over the message limit");
    assert!(matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange | Code::Internal), "{status:?}");

    let get = |tables: Vec<String>| proto::GetTablesRequest { header: header("default"), schema: String::new(), tables };
    expect(c.get_tables(get(vec!["ok".into(), "nope".into()])).await, Code::NotFound, "table \"nope\"");
    expect(c.get_tables(get(vec!["ok".into(); 10_001])).await, Code::InvalidArgument, "limit is 10000");
    let one = proto::GetTableRequest { header: header("default"), schema: String::new(), table: "ok".into() };
    let got = c.get_table(one.clone()).await.unwrap().into_inner().table.expect("the table");
    assert_eq!((got.info.as_ref().map(|i| i.name.as_str()), got.version), (Some("ok"), 1));
    expect(c.get_table(proto::GetTableRequest { table: "nope".into(), ..one }).await, Code::NotFound, "table \"nope\"");

    let drop_cluster = |cluster: &str| proto::DropClusterRequest { header: header(cluster), force: true };
    expect(c.drop_cluster(drop_cluster("default")).await, Code::FailedPrecondition, "default cluster");
    expect(c.drop_cluster(drop_cluster("nope")).await, Code::NotFound, "cluster \"nope\"");
    let drop_schema = |name: &str| proto::DropSchemaRequest { header: header("default"), name: name.into(), cascade: false };
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
    expect(c.alter_table(proto::AlterTableRequest { encoded_schema: None, ..alter(1) }).await, Code::InvalidArgument, "changes nothing");
    let altered = c.alter_table(alter(1)).await.unwrap().into_inner().table.expect("the table");
    assert_eq!((altered.version, altered.encoded_schema), (2, vec![5]));
    expect(c.alter_table(alter(1)).await, Code::Aborted, "at version 2");

    let drain = |node: &str| proto::DrainNodeRequest { header: header("default"), node: node.into(), cancel: false };
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
        assert!(status.message().contains(words), "{:?} should mention {words:?}", status.message());
    }

    // Nothing was half-written: one table, no node registered.
    let tables = c.list_tables(proto::ListTablesRequest { header: header("default"), ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(tables.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ok"]);
    let nodes = c.list_nodes(proto::ListNodesRequest { header: header("default"), ..Default::default() }).await.unwrap().into_inner();
    assert!(nodes.nodes.is_empty(), "{nodes:?}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
