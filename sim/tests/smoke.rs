//! Full-stack smoke run: simulated etcd, three real meta servers, four real data nodes; the
//! meta leader is killed and restarted, and every acknowledged table survives.
#![cfg(madsim)]

use std::time::Duration;

use madsim::runtime::Handle;
use shardmeta::client::MetaClient;
use shardmeta::proto::{self, RequestHeader};
use shardmeta_sim::*;

fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: "default".into() })
}

#[madsim::test]
async fn meta_leader_crash_keeps_every_acknowledged_table() {
    let handle = Handle::current();
    start_etcd(&handle);
    let metas: Vec<_> = (0..3).map(|i| start_meta(&handle, i)).collect();
    for i in 0..4 {
        start_data_node(&handle, i, 3);
    }
    let client = handle.create_node().name("client").ip("10.0.3.1".parse().unwrap()).build();
    let endpoints: Vec<String> = (0..3).map(meta_endpoint).collect();
    let killed = client
        .spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let mut meta = MetaClient::new(endpoints.clone(), Duration::from_secs(3)).unwrap();
            let mut acked = Vec::new();
            for i in 0..20 {
                let req = proto::CreateTableRequest { header: header(), name: format!("t{i}"), if_not_exists: true, ..Default::default() };
                let r = meta.call(|mut c| { let req = req.clone(); async move { c.create_table(req).await } }).await.expect("create");
                let t = r.table.unwrap();
                acked.push((t.name, t.id, t.shard));
            }
            let (leader, _) = meta.leader().await.unwrap();
            (leader, acked)
        })
        .await
        .unwrap();
    let (leader, acked) = killed;
    println!("created {} tables; killing meta leader {leader}", acked.len());
    let index = (0..3).find(|&i| meta_endpoint(i) == leader).expect("the leader is a meta node");
    handle.kill(metas[index].id());
    tokio::time::sleep(Duration::from_secs(5)).await;
    handle.restart(metas[index].id());
    let endpoints: Vec<String> = (0..3).map(meta_endpoint).collect();
    client
        .spawn(async move {
            let mut meta = MetaClient::new(endpoints, Duration::from_secs(3)).unwrap();
            let (new_leader, _) = meta.leader().await.unwrap();
            assert_ne!(new_leader, leader, "a new leader took over");
            let r = meta.call(|mut c| async move { c.list_tables(proto::ListTablesRequest { header: header(), schema: String::new() }).await }).await.unwrap();
            let mut listed: Vec<_> = r.tables.into_iter().map(|t| (t.name, t.id, t.shard)).collect();
            listed.sort();
            let mut acked = acked;
            acked.sort();
            assert_eq!(listed, acked, "every acknowledged table, same id and shard");
            println!("new leader {new_leader} lists all {} tables", listed.len());
        })
        .await
        .unwrap();
}
