//! Real processes on loopback: one meta-server on its embedded store, node-agents, kill -9.

use crate::process::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_fails_over_and_no_two_nodes_ever_lead_a_shard() {
    let _turn = serial().await;
    let dir = TempDir::new("embedded");
    let meta_port = free_port();
    let _meta = meta_server(dir.path(), "meta-0", meta_port, &[]);
    node_kill::node_kill_scenario(&dir, &[format!("127.0.0.1:{meta_port}")]).await;
}
