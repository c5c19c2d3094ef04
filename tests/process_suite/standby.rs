//! The warm standby against a real etcd: it loads while transactions land, follows the rest
//! through its watch, and hands over only a catalog that holds the newest transaction, with
//! creates and deletes alike. Transactions are written here as the etcd store writes them:
//! the batch's ops, then the fence put.

use std::time::Duration;

use crate::process::*;
use etcd_client::{Client, Txn, TxnOp};
use shardmeta::core::ids::{ClusterId, TableId};
use shardmeta::core::model::Mutation;
use shardmeta::core::model::{ClusterRecord, SchemaRecord, TableRecord};
use shardmeta::core::storage::{Op, FENCE_KEY};
use shardmeta::server::storage::etcd::EtcdStore;
use shardmeta::server::storage::standby::Standby;

const CLUSTER: ClusterId = ClusterId(1);
const TABLES: u64 = 4_000;
/// Table ids start above the `public` schema's id 0, as a leader allocates them.
const FIRST_TABLE: u64 = 1_000;
const BURST_CLIENTS: u64 = 32;

async fn connect(etcd: &Etcd) -> Client {
    loop {
        if let Ok(c) = Client::connect([etcd.client_urls[0].as_str()], None).await {
            if c.clone().status().await.is_ok() {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One transaction: the changes, then the fence put numbered `fence`.
async fn commit(client: &Client, changes: Vec<Mutation>, fence: u64) {
    let mut ops: Vec<TxnOp> = changes
        .iter()
        .map(|m| match m.to_op() {
            Op::Put { key, value } => TxnOp::put(key, value, None),
            Op::Delete { key } => TxnOp::delete(key, None),
            Op::DeletePrefix { prefix } => {
                TxnOp::delete(prefix, Some(etcd_client::DeleteOptions::new().with_prefix()))
            }
        })
        .collect();
    ops.push(TxnOp::put(FENCE_KEY, fence.to_be_bytes().to_vec(), None));
    client.kv_client().txn(Txn::new().and_then(ops)).await.expect("txn");
}

fn table(id: u64) -> Mutation {
    Mutation::PutTable(
        CLUSTER,
        TableRecord {
            id: FIRST_TABLE + id,
            name: format!("t{id}"),
            encoded_schema: vec![7; 4096],
            ..Default::default()
        },
    )
}

async fn stored_fence(client: &Client) -> Option<Vec<u8>> {
    let response = client.kv_client().get(FENCE_KEY, None).await.expect("get");
    response.kvs().first().map(|kv| kv.value().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_hands_over_a_catalog_holding_the_newest_transaction() {
    let _turn = serial().await;
    let dir = TempDir::new("etcd-standby");
    let etcd = Etcd::start(dir.path(), 1);
    let client = connect(&etcd).await;
    let store = EtcdStore::new(client.clone(), Vec::new(), Duration::from_secs(5));
    // A cluster's id ceiling sorts before its record: the standby applies the pair in order.
    let cluster =
        ClusterRecord { id: CLUSTER.0, name: "a".into(), shard_count: 4, ..Default::default() };
    commit(
        &client,
        vec![Mutation::PutIdCeiling(CLUSTER, 1 << 20), Mutation::PutCluster(cluster)],
        1,
    )
    .await;
    commit(
        &client,
        vec![Mutation::PutSchema(
            CLUSTER,
            SchemaRecord { id: 0, name: "public".into(), dropping: false },
        )],
        2,
    )
    .await;

    // Started while transactions land: it loads at some revision among them, then follows.
    // The last of them come in a burst from many clients, so that the standby is still behind
    // when it is asked to hand over and has to catch up first.
    let standby = Standby::start(store.clone());
    for id in 0..TABLES / 2 {
        commit(&client, vec![table(id)], 3 + id).await;
    }
    let burst: Vec<_> = (0..BURST_CLIENTS)
        .map(|k| {
            let client = client.clone();
            tokio::spawn(async move {
                for id in (TABLES / 2..TABLES).filter(|id| id % BURST_CLIENTS == k) {
                    commit(&client, vec![table(id)], 3 + id).await;
                }
            })
        })
        .collect();
    for task in burst {
        task.await.unwrap();
    }
    let snapshot = standby.take_over().await.expect("a warm standby hands over");
    let tables = &snapshot.catalog.cluster(CLUSTER).tables;
    assert_eq!(tables.len() as u64, TABLES, "every table committed before the takeover");
    assert_eq!(snapshot.fence, stored_fence(&client).await, "the newest fence");
    let mut fence = 3 + TABLES;

    // A standby following from the start sees deletes as well.
    let standby = Standby::start(store.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in (0..TABLES).step_by(10) {
        fence += 1;
        commit(&client, vec![Mutation::DeleteTable(CLUSTER, TableId(FIRST_TABLE + id))], fence)
            .await;
    }
    // Asked for a revision it has not seen yet, it waits for it rather than hand over early.
    let next =
        client.kv_client().get(FENCE_KEY, None).await.unwrap().header().unwrap().revision() + 1;
    let taking = tokio::spawn(standby.take_over_at(next));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !taking.is_finished(),
        "the standby handed over before the transaction it was asked for"
    );
    fence += 1;
    commit(&client, vec![table(TABLES)], fence).await;
    let snapshot = taking.await.unwrap().expect("a warm standby hands over");
    let tables = &snapshot.catalog.cluster(CLUSTER).tables;
    assert_eq!(tables.len() as u64, TABLES - TABLES / 10 + 1);
    assert!(
        tables.get(TableId(FIRST_TABLE + 10)).is_none()
            && tables.get(TableId(FIRST_TABLE + TABLES)).is_some()
    );
    assert_eq!(snapshot.fence, Some(fence.to_be_bytes().to_vec()));

    // A dropped cluster goes in one range delete, its record a tombstone: a standby that
    // followed it holds what a cold load reads.
    let standby = Standby::start(store.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tombstone = ClusterRecord { id: CLUSTER.0, dropped: true, ..Default::default() };
    fence += 1;
    commit(
        &client,
        vec![Mutation::DeleteClusterData(CLUSTER), Mutation::PutCluster(tombstone)],
        fence,
    )
    .await;
    let next =
        ClusterRecord { id: CLUSTER.0 + 1, name: "a".into(), shard_count: 2, ..Default::default() };
    fence += 1;
    commit(
        &client,
        vec![Mutation::PutIdCeiling(ClusterId(next.id), 1_000), Mutation::PutCluster(next)],
        fence,
    )
    .await;
    let warm = standby.take_over().await.expect("a warm standby hands over");
    assert!(
        warm.catalog.clusters.keys().eq([&ClusterId(CLUSTER.0 + 1)]),
        "only the new cluster is left"
    );
    assert!(warm.catalog.dropped_clusters.contains(&CLUSTER));
    let cold = store.snapshot().await.expect("a cold load");
    assert_eq!(warm, cold);
    let left = client
        .kv_client()
        .get(
            format!("/shardmeta/v1/c/{:010}/", CLUSTER.0),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    assert!(left.kvs().is_empty(), "nothing is left inside the dropped cluster");
}
