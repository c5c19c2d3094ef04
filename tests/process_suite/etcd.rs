//! Real processes on loopback with real etcd: meta failover, etcd member loss, and fencing of
//! a paused leader.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::process::metas::{start_metas, wait_leader};
use crate::process::*;
use etcd_client::GetOptions;
use prost::Message;
use shardmeta::client::MetaClient;
use shardmeta::core::model::FenceRecord;
use shardmeta::core::storage::FENCE_KEY;
use shardmeta::proto::{self, RequestHeader};

fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: "default".into() })
}

async fn create_tables(
    meta: &mut MetaClient,
    names: impl Iterator<Item = String>,
) -> BTreeMap<String, (u64, u32)> {
    let mut acked = BTreeMap::new();
    for name in names {
        let req = proto::CreateTableRequest {
            header: header(),
            name: name.clone(),
            ..Default::default()
        };
        let r = meta
            .call(|mut c| {
                let req = req.clone();
                async move { c.create_table(req).await }
            })
            .await
            .expect("create");
        let t = r.table.unwrap();
        acked.insert(name, (t.id, t.shard));
    }
    acked
}

async fn tables(meta: &mut MetaClient) -> BTreeMap<String, (u64, u32)> {
    let all = meta
        .list_all(proto::ListTablesRequest { header: header(), ..Default::default() })
        .await
        .expect("list");
    all.into_iter().map(|t| (t.name, (t.id, t.shard))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_leader_kill9_keeps_every_acknowledged_table() {
    let _turn = serial().await;
    let dir = TempDir::new("etcd-failover");
    let etcd = Etcd::start(dir.path(), 1);
    let mut metas = start_metas(dir.path(), &etcd.endpoints(), 3);
    let _nodes: Vec<Proc> = (0..4)
        .map(|i| node_agent(dir.path(), &format!("n{i}"), free_port(), &metas.endpoints.join(",")))
        .collect();
    let (leader, _) = wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    let mut meta = MetaClient::new(metas.endpoints.clone(), Duration::from_secs(5)).unwrap();
    let acked = create_tables(&mut meta, (0..100).map(|i| format!("t{i}"))).await;

    metas.procs.get_mut(&leader).unwrap().kill9();
    let (new_leader, took) =
        wait_leader(&metas.endpoints, Duration::from_secs(10), Some(&leader)).await;
    println!("meta leader {leader} killed; {new_leader} serves after {took:?}");
    // The election TTL (3 s) plus 2 s.
    assert!(took <= Duration::from_secs(5), "new leader after {took:?}");
    meta.reset();
    assert_eq!(tables(&mut meta).await, acked, "every acknowledged table, same id and shard");
    let more = create_tables(&mut meta, std::iter::once("after".to_string())).await;
    assert_eq!(more.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_fails_over_with_three_metas_on_etcd() {
    let _turn = serial().await;
    let dir = TempDir::new("etcd-node-kill");
    let etcd = Etcd::start(dir.path(), 1);
    let metas = start_metas(dir.path(), &etcd.endpoints(), 3);
    wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    node_kill::node_kill_scenario(&dir, &metas.endpoints).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_survives_losing_one_of_three_etcd_members() {
    let _turn = serial().await;
    let dir = TempDir::new("etcd-member");
    let mut etcd = Etcd::start(dir.path(), 3);
    let metas = start_metas(dir.path(), &etcd.endpoints(), 2);
    wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    let mut meta = MetaClient::new(metas.endpoints.clone(), Duration::from_secs(5)).unwrap();
    let mut acked = create_tables(&mut meta, (0..10).map(|i| format!("a{i}"))).await;
    etcd.members[0].kill9();
    // A create whose outcome is unknown (the etcd client may still be talking to the dead
    // member) is retried with if-not-exists, as a client would; the blip must be short.
    let start = Instant::now();
    for i in 0..10 {
        let req = proto::CreateTableRequest {
            header: header(),
            name: format!("b{i}"),
            if_not_exists: true,
            ..Default::default()
        };
        let t = loop {
            match meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.create_table(req).await }
                })
                .await
            {
                Ok(r) => break r.table.unwrap(),
                // Transient while a member is gone: unknown outcome, no leader, or a connection
                // broken mid-call. The create is idempotent, so retrying is safe.
                Err(e)
                    if matches!(
                        e.code(),
                        tonic::Code::DeadlineExceeded
                            | tonic::Code::Unavailable
                            | tonic::Code::Unknown
                            | tonic::Code::Cancelled
                    ) =>
                {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "still failing after {:?}: {e}",
                        start.elapsed()
                    );
                }
                Err(e) => panic!("create b{i}: {:?} {e}", e.code()),
            }
        };
        acked.insert(t.name, (t.id, t.shard));
    }
    println!("ten creates after losing an etcd member took {:?}", start.elapsed());
    assert_eq!(tables(&mut meta).await, acked);
}

/// Reads every version of the fence record still in etcd's history, newest first.
async fn fence_history(etcd: &str) -> Vec<FenceRecord> {
    let mut client = etcd_client::Client::connect([etcd], None).await.unwrap();
    let mut out = Vec::new();
    let mut rev = 0i64;
    loop {
        let opts = (rev > 0).then(|| GetOptions::new().with_revision(rev));
        let r = client.get(FENCE_KEY, opts).await.unwrap();
        let Some(kv) = r.kvs().first() else { break };
        out.push(FenceRecord::decode(kv.value()).unwrap());
        if kv.mod_revision() <= 1 || kv.version() <= 1 {
            break;
        }
        rev = kv.mod_revision() - 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_paused_past_its_lease_cannot_land_a_write() {
    let _turn = serial().await;
    let dir = TempDir::new("etcd-fence");
    let etcd = Etcd::start(dir.path(), 1);
    let metas = start_metas(dir.path(), &etcd.endpoints(), 3);
    let (leader, _) = wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    // Keep writes in flight at the old leader while it is paused.
    let load_ep = leader.clone();
    let load = tokio::spawn(async move {
        let mut i = 0;
        let deadline = Instant::now() + Duration::from_secs(14);
        while Instant::now() < deadline {
            i += 1;
            if let Ok(mut c) =
                shardmeta::client::meta_client::connect(&load_ep, Duration::from_secs(1)).await
            {
                let req = proto::CreateTableRequest {
                    header: header(),
                    name: format!("p{i}"),
                    if_not_exists: true,
                    ..Default::default()
                };
                let _ = c.create_table(req).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let old = &metas.procs[&leader];
    old.signal("STOP");
    let (new_leader, _) =
        wait_leader(&metas.endpoints, Duration::from_secs(15), Some(&leader)).await;
    let mut meta = MetaClient::new(vec![new_leader.clone()], Duration::from_secs(5)).unwrap();
    create_tables(&mut meta, (0..5).map(|i| format!("n{i}"))).await;
    tokio::time::sleep(Duration::from_secs(6)).await; // well past the old leader's lease
    old.signal("CONT");
    load.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    create_tables(&mut meta, std::iter::once("last".to_string())).await;

    let history = fence_history(&etcd.client_urls[0]).await;
    assert!(history.len() > 5, "the fence history is visible: {history:?}");
    // Newest first: terms never grow going back in time, so no old-term write landed late.
    for w in history.windows(2) {
        assert!(
            (w[0].term, w[0].seq) > (w[1].term, w[1].seq),
            "a write of term {} seq {} landed after term {} seq {}",
            w[0].term,
            w[0].seq,
            w[1].term,
            w[1].seq
        );
    }
    let terms: std::collections::BTreeSet<u64> = history.iter().map(|f| f.term).collect();
    assert!(terms.len() >= 2, "both leaders wrote: {terms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_forward_calls_and_redirect_heartbeat_streams() {
    let _turn = serial().await;
    let dir = TempDir::new("etcd-follower");
    let etcd = Etcd::start(dir.path(), 1);
    let metas = start_metas(dir.path(), &etcd.endpoints(), 3);
    let (leader, _) = wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    let follower = metas.endpoints.iter().find(|e| **e != leader).unwrap().clone();
    // Followers learn the leader by polling etcd; give them a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut c =
        shardmeta::client::meta_client::connect(&follower, Duration::from_secs(5)).await.unwrap();
    let created = c
        .create_table(proto::CreateTableRequest {
            header: header(),
            name: "via_follower".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(created.into_inner().created, "a follower forwards to the leader");
    assert_eq!(c.get_leader(proto::GetLeaderRequest {}).await.unwrap().into_inner().leader, leader);

    let hb = proto::HeartbeatRequest {
        header: header(),
        node_name: "n1".into(),
        endpoint: "127.0.0.1:1".into(),
        incarnation: 1,
        seq: 1,
        ..Default::default()
    };
    let mut stream = c.heartbeat(tokio_stream::iter(vec![hb])).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("an answer");
    assert_eq!(first.redirect, leader, "a follower redirects heartbeat streams to the leader");
}
