//! Real processes: a meta-server on its embedded store and three node-agents reading one
//! synthetic load file. The shards of one node are made hot by editing the file; the balancer
//! relieves the node, and `metactl scheduler plan|status` and `metactl events` show it.

use std::time::Duration;

use crate::process::node_kill::{header, shards, wait_for};
use crate::process::*;
use shardmeta::client::MetaClient;
use shardmeta::proto;

async fn status(meta: &mut MetaClient) -> proto::SchedulerStatusResponse {
    let req = proto::SchedulerStatusRequest { header: header() };
    meta.call(|mut c| {
        let req = req.clone();
        async move { c.scheduler_status(req).await }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_node_is_relieved_and_the_operator_sees_why() {
    let _turn = serial().await;
    let dir = TempDir::new("balance");
    let port = free_port();
    let env = [
        ("SHARDMETA_LOAD_WINDOW_MS", "500"),
        ("SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT", "12"),
        ("SHARDMETA_DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD", "1"),
        ("SHARDMETA_DEFAULT_CLUSTER_MIN_NODES", "3"),
    ];
    let _meta = meta_server(dir.path(), "meta-0", port, &env);
    let endpoint = format!("127.0.0.1:{port}");
    let load_file = dir.path().join("load.toml");
    std::fs::write(&load_file, "per_shard = 100.0\n").unwrap();
    let load_arg = load_file.display().to_string();
    let _nodes: Vec<Proc> = (0..3)
        .map(|i| {
            node_agent_with(
                dir.path(),
                &format!("n{i}"),
                free_port(),
                &endpoint,
                &["--load-file", &load_arg],
            )
        })
        .collect();
    let mut meta = MetaClient::new(vec![endpoint.clone()], Duration::from_secs(5)).unwrap();
    wait_for("every shard ready", Duration::from_secs(20), async || {
        let s = shards(&mut meta).await;
        !s.is_empty() && s.iter().all(|s| s.status == proto::ShardStatus::Ready as i32)
    })
    .await;

    // Every shard n0 leads now runs 6× hotter: n0 carries about twice the mean.
    let led: Vec<u32> =
        shards(&mut meta).await.iter().filter(|s| s.leader == "n0").map(|s| s.id).collect();
    assert!(!led.is_empty());
    let overrides: String = led.iter().map(|s| format!("{s} = 600.0\n")).collect();
    std::fs::write(&load_file, format!("per_shard = 100.0\n[shards]\n{overrides}")).unwrap();
    wait_for("n0 overfull", Duration::from_secs(20), async || {
        status(&mut meta).await.nodes.iter().any(|n| n.name == "n0" && n.overfull)
    })
    .await;

    // Four hot shards of 600 and eight of 100: the best split puts two hot ones on n0 and one
    // on each other node, n0 at 1.12× the mean; no move then helps, and none is planned.
    let ratio = |s: &proto::SchedulerStatusResponse, name: &str| {
        s.nodes.iter().find(|n| n.name == name).map_or(0.0, |n| n.load / s.mean_utilization)
    };
    let took = wait_for("n0 relieved", Duration::from_secs(60), async || {
        let s = status(&mut meta).await;
        s.nodes.iter().all(|n| n.judged) && s.moves_in_flight == 0 && ratio(&s, "n0") < 1.2
    })
    .await;
    println!(
        "n0 relieved {took:?} after it became overfull: {:.2}× the mean",
        ratio(&status(&mut meta).await, "n0")
    );
    let events = metactl(&endpoint, &["events"]);
    assert!(events.contains("load") && events.contains("n0 load"), "{events}");
    let plan = metactl(&endpoint, &["scheduler", "plan"]);
    assert!(!plan.contains("load"), "balanced: the plan has no load moves: {plan}");
    let paused = metactl(&endpoint, &["--output", "json", "scheduler", "pause"]);
    assert!(paused.contains("\"paused\":true"), "{paused}");
    let st = metactl(&endpoint, &["scheduler", "status"]);
    assert!(st.contains("paused: true") && st.contains("X_MEAN"), "{st}");
}
