//! The etcd store. Every transaction compares the leader's election key value (so a deposed
//! leader's write fails: the key vanishes with its lease) and the fence record (the write
//! chain), then applies the batch and advances the fence. Value compares only, which is what
//! madsim's simulated etcd supports too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};

use crate::core::storage::keys::ROOT;
use crate::core::storage::{Op, WriteBatch, WriteResult, FENCE_KEY};
use crate::core::Term;

/// The election key this node holds while it leads, and the term it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderFence {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub term: Term,
}

#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    fence: Arc<Mutex<Option<LeaderFence>>>,
    timeout: Duration,
}

impl EtcdStore {
    pub fn new(client: Client, timeout: Duration) -> EtcdStore {
        EtcdStore { client, fence: Arc::default(), timeout }
    }

    /// Set by the election when this node wins, cleared when it loses.
    pub fn set_fence(&self, fence: Option<LeaderFence>) {
        *self.fence.lock().expect("fence lock") = fence;
    }

    pub async fn write(&self, batch: &WriteBatch) -> WriteResult {
        let Some(fence) = self.fence.lock().expect("fence lock").clone().filter(|f| f.term == batch.term) else {
            return WriteResult::Conflict; // this node no longer holds that term
        };
        let Some(expected) = batch.expected_fence.clone() else {
            // The election writes the first fence record before the core writes anything.
            tracing::error!("a batch without an expected fence on etcd");
            return WriteResult::Conflict;
        };
        let mut ops: Vec<TxnOp> = batch
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } => TxnOp::put(key.as_str(), value.clone(), None),
                Op::Delete { key } => TxnOp::delete(key.as_str(), None),
            })
            .collect();
        ops.push(TxnOp::put(FENCE_KEY, batch.fence.clone(), None));
        let txn = Txn::new()
            .when([Compare::value(fence.key.clone(), CompareOp::Equal, fence.value.clone()), Compare::value(FENCE_KEY, CompareOp::Equal, expected)])
            .and_then(ops)
            .or_else([TxnOp::get(FENCE_KEY, None)]);
        let mut kv = self.client.kv_client();
        let response = match tokio::time::timeout(self.timeout, kv.txn(txn)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "etcd transaction failed; outcome unknown");
                return WriteResult::Error;
            }
            Err(_) => {
                tracing::warn!("etcd transaction timed out; outcome unknown");
                return WriteResult::Error;
            }
        };
        if response.succeeded() {
            return WriteResult::Ok;
        }
        let current = response.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g.kvs().first().map(|kv| kv.value().to_vec())),
            _ => None,
        });
        match current {
            Some(current) if batch.landed_already(current.as_deref()) => WriteResult::Ok,
            _ => WriteResult::Conflict,
        }
    }

    pub async fn snapshot(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut kv = self.client.kv_client();
        let response = tokio::time::timeout(self.timeout, kv.get(ROOT, Some(GetOptions::new().with_prefix())))
            .await
            .map_err(|_| "etcd snapshot read timed out".to_string())?
            .map_err(|e| format!("etcd snapshot read: {e}"))?;
        response
            .kvs()
            .iter()
            .map(|kv| Ok((std::str::from_utf8(kv.key()).map_err(|e| format!("non-UTF-8 key under {ROOT}: {e}"))?.to_owned(), kv.value().to_vec())))
            .collect()
    }

    /// Writes the first fence record if storage has none, under the election compare only: no
    /// one else can write while this node holds the election key.
    pub async fn ensure_fence(&self, fence: &LeaderFence, initial: Vec<u8>) -> Result<(), String> {
        let txn = Txn::new()
            .when([Compare::value(fence.key.clone(), CompareOp::Equal, fence.value.clone())])
            .and_then([TxnOp::put(FENCE_KEY, initial, None)]);
        let mut kv = self.client.kv_client();
        let response = tokio::time::timeout(self.timeout, kv.txn(txn))
            .await
            .map_err(|_| "etcd fence initialisation timed out".to_string())?
            .map_err(|e| format!("etcd fence initialisation: {e}"))?;
        if response.succeeded() {
            Ok(())
        } else {
            Err("lost the election while initialising the fence".into())
        }
    }
}
