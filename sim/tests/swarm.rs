//! Swarm runs of the full stack: each seed draws a sequence of faults (meta crashes and pauses,
//! data node crashes, data nodes cut off, meta leaders cut off from etcd) over a workload of
//! creates. Single writer (S1) is sampled every 20 ms of simulated time across the real data
//! node code; after the heal, every acknowledged table must be there with its id and shard, a
//! meta leader must serve and every shard must have a live leader.
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::net::NetSim;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle;
use shardmeta::client::MetaClient;
use shardmeta::proto::{self, RequestHeader};
use shardmeta_sim::*;

const METAS: usize = 3;
const DATA_NODES: usize = 6;
const FAULTS: usize = 10;

fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: "default".into() })
}

#[madsim::test]
async fn swarm_faults_keep_single_writer_and_every_acknowledged_table() {
    let handle = Handle::current();
    let net = NetSim::current();
    let mut rng = thread_rng();
    // The seed's standing conditions: etcd timeouts for the whole run; loss and latency until
    // the heal.
    let timeout_rate = [0.0, 0.0, 0.02][rng.gen_range(0..3)];
    let loss = [0.0, 0.0, 0.01][rng.gen_range(0..3)];
    let slow = rng.gen_range(0..2) == 1;
    net.update_config(|c| {
        c.packet_loss_rate = loss;
        if slow {
            c.send_latency = Duration::from_millis(5)..Duration::from_millis(60);
        }
    });
    println!("seed conditions: etcd timeout rate {timeout_rate}, packet loss {loss}, slow links {slow}");
    let etcd = start_etcd_with_timeouts(&handle, timeout_rate);
    let metas: Vec<_> = (0..METAS).map(|i| start_meta(&handle, i)).collect();
    let nodes: Vec<_> = (0..DATA_NODES).map(|i| start_data_node(&handle, i, METAS)).collect();
    let client = handle.create_node().name("client").ip("10.0.3.1".parse().unwrap()).build();
    let endpoints: Vec<String> = (0..METAS).map(meta_endpoint).collect();

    // The workload: creates with if-not-exists; acknowledgements are the history to check.
    let acked: Arc<Mutex<BTreeMap<String, (u64, u32)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (w_acked, w_stop, w_endpoints) = (acked.clone(), stop.clone(), endpoints.clone());
    client.spawn(async move {
        let mut meta = MetaClient::new(w_endpoints, Duration::from_secs(3)).unwrap();
        let mut i = 0;
        while !w_stop.load(Ordering::SeqCst) {
            i += 1;
            let req = proto::CreateTableRequest { header: header(), name: format!("t{i}"), if_not_exists: true, ..Default::default() };
            if let Ok(r) = meta.call(|mut c| { let req = req.clone(); async move { c.create_table(req).await } }).await {
                let t = r.table.unwrap();
                w_acked.lock().unwrap().insert(t.name, (t.id, t.shard));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    // S1, sampled: at no instant may two live nodes lead one shard by their own leases.
    let views: Vec<DataNodeView> = nodes.iter().map(|(_, v)| v.clone()).collect();
    let violation: Arc<Mutex<Option<String>>> = Arc::default();
    let (c_views, c_violation, c_stop) = (views.clone(), violation.clone(), stop.clone());
    tokio::task::spawn(async move {
        while !c_stop.load(Ordering::SeqCst) {
            let mut leaders: BTreeMap<u32, &str> = BTreeMap::new();
            for v in &c_views {
                for s in v.leading() {
                    if let Some(other) = leaders.insert(s.0, &v.name) {
                        c_violation.lock().unwrap().get_or_insert(format!("S1: shard {s} led by both {other} and {}", v.name));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    tokio::time::sleep(Duration::from_secs(5)).await;
    for _ in 0..FAULTS {
        let hold = Duration::from_millis(rng.gen_range(1_000..8_000));
        match rng.gen_range(0..5) {
            0 => {
                let m = &metas[rng.gen_range(0..METAS)];
                handle.kill(m.id());
                tokio::time::sleep(hold).await;
                handle.restart(m.id());
            }
            1 => {
                let m = &metas[rng.gen_range(0..METAS)];
                handle.pause(m.id());
                tokio::time::sleep(hold).await;
                handle.resume(m.id());
            }
            2 => {
                let (n, v) = &nodes[rng.gen_range(0..DATA_NODES)];
                v.alive.store(false, Ordering::SeqCst);
                handle.kill(n.id());
                tokio::time::sleep(hold).await;
                handle.restart(n.id());
                v.alive.store(true, Ordering::SeqCst);
            }
            3 => {
                let (n, _) = &nodes[rng.gen_range(0..DATA_NODES)];
                net.clog_node(n.id());
                tokio::time::sleep(hold).await;
                net.unclog_node(n.id());
            }
            _ => {
                // A meta node cut off from etcd but not from the data nodes.
                let m = &metas[rng.gen_range(0..METAS)];
                net.clog_link(m.id(), etcd.id());
                net.clog_link(etcd.id(), m.id());
                tokio::time::sleep(hold).await;
                net.unclog_link(m.id(), etcd.id());
                net.unclog_link(etcd.id(), m.id());
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..3_000))).await;
        if let Some(v) = violation.lock().unwrap().clone() {
            panic!("{v}");
        }
    }

    // Healed: liveness within election + lease + a few heartbeats.
    net.update_config(|c| c.packet_loss_rate = 0.0);
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::SeqCst);
    if let Some(v) = violation.lock().unwrap().clone() {
        panic!("{v}");
    }
    let acked = acked.lock().unwrap().clone();
    let views_end = views.clone();
    client
        .spawn(async move {
            let mut meta = MetaClient::new(endpoints, Duration::from_secs(3)).unwrap();
            let r = meta.call(|mut c| async move { c.list_tables(proto::ListTablesRequest { header: header(), schema: String::new() }).await }).await.expect("L1: a serving leader");
            let listed: BTreeMap<String, (u64, u32)> = r.tables.into_iter().map(|t| (t.name, (t.id, t.shard))).collect();
            for (name, at) in &acked {
                assert_eq!(listed.get(name), Some(at), "S2: acknowledged table {name} lost or changed");
            }
            let shards = meta.call(|mut c| async move { c.list_shards(proto::ListShardsRequest { header: header() }).await }).await.unwrap().shards;
            let led: usize = views_end.iter().map(|v| v.leading().len()).sum();
            assert_eq!(led, shards.len(), "L2: every shard has exactly one live leader after the heal");
            println!("{} tables acknowledged and kept; {} shards led", acked.len(), shards.len());
        })
        .await
        .unwrap();
}

/// The sampled S1 check catches a node whose clock lags far beyond the drift meta allows for:
/// cut off from meta, it keeps believing in a lease meta has already given up on.
#[madsim::test]
async fn single_writer_check_catches_a_node_clock_lagging_past_the_bound() {
    let handle = Handle::current();
    start_etcd(&handle);
    let _metas: Vec<_> = (0..METAS).map(|i| start_meta(&handle, i)).collect();
    let nodes: Vec<_> = (0..DATA_NODES).map(|i| start_data_node(&handle, i, METAS)).collect();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (victim, view) = nodes.iter().find(|(_, v)| !v.leading().is_empty()).expect("some node leads");
    view.lag_ms.store(10_000, Ordering::SeqCst);
    NetSim::current().clog_node(victim.id());
    let mut caught = None;
    for _ in 0..500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut leaders: BTreeMap<u32, String> = BTreeMap::new();
        for (_, v) in &nodes {
            for s in v.leading() {
                if let Some(other) = leaders.insert(s.0, v.name.clone()) {
                    caught.get_or_insert(format!("shard {s}: {other} and {}", v.name));
                }
            }
        }
    }
    assert!(caught.is_some(), "the lagging clock should have produced two leaders");
}
