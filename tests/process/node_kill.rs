//! The node-kill scenario, shared by the embedded and the etcd process tests.

use std::time::{Duration, Instant};

use super::*;
use shardmeta::client::MetaClient;
use shardmeta::proto::{self, node_client::NodeClient, RequestHeader};

pub fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: "default".into() })
}

pub async fn shards(meta: &mut MetaClient) -> Vec<proto::ShardInfo> {
    meta.list_all(proto::ListShardsRequest { header: header(), ..Default::default() })
        .await
        .unwrap_or_default()
}

/// Whether every shard has a leader and the scheduler's dry run plans no move: a fault
/// injected after this meets no balancing handoff of the cluster's first placement.
#[allow(dead_code)] // not every test binary that includes this module waits for it
pub async fn settled(meta: &mut MetaClient) -> bool {
    let s = shards(meta).await;
    if s.is_empty() || s.iter().any(|s| s.leader.is_empty()) {
        return false;
    }
    let req = proto::PlanSchedulerRequest { header: header() };
    let plan = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.plan_scheduler(req).await }
        })
        .await;
    plan.is_ok_and(|p| p.moves.is_empty())
}

/// Polls until `ok` holds or the deadline passes; returns how long it took.
pub async fn wait_for(what: &str, limit: Duration, mut ok: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {limit:?}");
}

/// Node-agents under a routed-write load; one is killed with SIGKILL. Its leader shards must be
/// led elsewhere within lease + drift + a few heartbeats, and the leadership logs must show no
/// two nodes leading one shard at once.
pub async fn node_kill_scenario(dir: &TempDir, meta_endpoints: &[String]) {
    let meta_ep = meta_endpoints.join(",");
    let mut nodes: Vec<(String, Proc)> = (0..3)
        .map(|i| {
            let name = format!("n{i}");
            let p = node_agent(dir.path(), &name, free_port(), &meta_ep);
            (name, p)
        })
        .collect();
    let mut meta = MetaClient::new(meta_endpoints.to_vec(), Duration::from_secs(5)).unwrap();
    wait_for("every shard ready", Duration::from_secs(15), async || {
        let s = shards(&mut meta).await;
        !s.is_empty() && s.iter().all(|s| s.status == proto::ShardStatus::Ready as i32)
    })
    .await;

    let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    for name in &names {
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
            .unwrap();
        assert!(r.created);
    }

    // A writer routes and writes continuously, refreshing routes on "invalid route".
    let writer_meta = meta_endpoints.to_vec();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_w = stop.clone();
    let writer = tokio::spawn(async move {
        let mut meta = MetaClient::new(writer_meta, Duration::from_secs(5)).unwrap();
        let mut routes = shardmeta::client::RouteCache::new("default", 64);
        let (mut accepted, mut refused) = (0u32, 0u32);
        let mut i = 0;
        while !stop_w.load(std::sync::atomic::Ordering::Relaxed) {
            i += 1;
            let table = format!("t{}", i % 20);
            let Ok(route) = routes.resolve(&mut meta, "public", &table).await else { continue };
            let Some(leader) = &route.leader else {
                routes.invalidate("public", &table);
                continue;
            };
            let Ok(mut node) = NodeClient::connect(format!("http://{}", leader.endpoint)).await
            else {
                refused += 1;
                routes.invalidate("public", &table);
                continue;
            };
            let w = proto::WriteRequest {
                shard: route.shard,
                version: route.version,
                table_id: route.table_id,
                payload: vec![1],
            };
            match node.write(w).await {
                Ok(_) => accepted += 1,
                Err(e) => {
                    refused += 1;
                    if e.message().starts_with("invalid route") {
                        routes.invalidate("public", &table);
                    }
                }
            }
        }
        (accepted, refused)
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    // The victim is the node that leads the most: which nodes lead what depends on the order
    // they came up in (the default cluster assigns its shards once one node is online).
    let all = shards(&mut meta).await;
    let leads = |name: &str| all.iter().filter(|s| s.leader == name).count();
    let at = (0..nodes.len())
        .max_by_key(|&i| (leads(&nodes[i].0), std::cmp::Reverse(i)))
        .expect("three nodes");
    let victim = nodes[at].0.clone();
    let victim = victim.as_str();
    let led: Vec<u32> = all.iter().filter(|s| s.leader == victim).map(|s| s.id).collect();
    assert!(!led.is_empty(), "{victim} leads something");
    // A frontend watching routes learns of the failover as it lands, not from a failed write.
    let frontend = route_watch::WatchingFrontend::start(meta_endpoints, &names).await;
    let watched = names
        .iter()
        .find(|t| frontend.leader_of(t).as_deref() == Some(victim))
        .expect("a table led by the victim")
        .clone();
    let killed = Instant::now();
    nodes[at].1.kill9();
    let lag = frontend.lag_behind_meta(&mut meta, &watched, victim).await;
    println!("the watching frontend routed {watched} to its new leader {lag:?} after meta did");
    assert!(
        lag <= Duration::from_millis(300),
        "the route watch lagged meta by {lag:?}, more than a heartbeat (300 ms)"
    );
    wait_for("the dead node's shards led elsewhere", Duration::from_secs(15), async || {
        let s = shards(&mut meta).await;
        led.iter().all(|id| {
            s.iter().any(|x| {
                x.id == *id
                    && x.leader != victim
                    && !x.leader.is_empty()
                    && x.status == proto::ShardStatus::Ready as i32
            })
        })
    })
    .await;
    let took = killed.elapsed();
    // lease (3 s) + drift (0.2 s) + detection and a few heartbeats (0.3 s each).
    assert!(took < Duration::from_secs(6), "failover took {took:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (accepted, refused) = writer.await.unwrap();
    println!("failover in {took:?}; writes accepted {accepted}, refused {refused}");
    assert!(accepted > 0);

    for (_, p) in nodes.iter_mut() {
        p.kill9();
    }
    let logs: Vec<(String, std::path::PathBuf)> = nodes
        .iter()
        .map(|(n, _)| (n.clone(), dir.path().join(format!("{n}.lead.jsonl"))))
        .collect();
    assert_single_writer(&logs);
}
