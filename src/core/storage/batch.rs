//! Write batches: what the core hands the storage adapter. A batch is one transaction of at most
//! `txn_ops_max` operations (the fence update included). The adapter must land it only if
//! 1. the writer still holds `term` in the election (its election key still has its value), and
//! 2. the value at [`FENCE_KEY`] equals `expected_fence` (absent when `None`),
//!
//! and in the same transaction set [`FENCE_KEY`] to `fence`. When the fence compare fails,
//! [`WriteBatch::landed_already`] on the current value tells a replay of a batch that already
//! landed (report `Ok`) from a real conflict (report `Conflict`).

use std::collections::BTreeMap;

use prost::Message;

use crate::core::ids::{Term, WriteId};
use crate::core::model::FenceRecord;

pub use super::keys::FENCE_KEY;

/// One change to one key of storage (or, for a prefix delete, to every key under it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Writes `value` at `key`.
    Put {
        /// Where, under [`super::ROOT`].
        key: String,
        /// An encoded record.
        value: Vec<u8>,
    },
    /// Deletes `key`, if it is there.
    Delete {
        /// Where, under [`super::ROOT`].
        key: String,
    },
    /// Deletes every key that starts with `prefix` (a dropped cluster's contents). A batch that
    /// holds one holds no other op on a key under it: the core writes it in a batch of its own
    /// change only, as etcd refuses a transaction whose puts and deletes overlap.
    DeletePrefix {
        /// The start every deleted key has.
        prefix: String,
    },
}

impl Op {
    /// The key written, or the prefix deleted.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
            Op::DeletePrefix { prefix } => prefix,
        }
    }
}

/// The stored keys under `prefix`, for stores that delete a prefix key by key.
pub fn keys_under<'a, V>(kvs: &'a BTreeMap<String, V>, prefix: &str) -> Vec<&'a String> {
    kvs.range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(prefix))
        .collect()
}

/// One transaction for the storage adapter. Keys are distinct (etcd refuses a transaction that
/// names a key twice), so a later change to the same key within a batch replaces the earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteBatch {
    /// The core's number for it: its result comes back under it.
    pub id: WriteId,
    /// The leader term that must still hold for the batch to land.
    pub term: Term,
    /// What [`FENCE_KEY`] must hold for the batch to land.
    pub expected_fence: Option<Vec<u8>>,
    /// What [`FENCE_KEY`] holds once it has landed.
    pub fence: Vec<u8>,
    /// The changes, at distinct keys.
    pub ops: Vec<Op>,
}

impl WriteBatch {
    /// Whether the fence value found in storage shows that this batch already landed: the same
    /// term has advanced the chain to this batch or past it.
    pub fn landed_already(&self, current_fence: Option<&[u8]>) -> bool {
        let (Some(current), Ok(mine)) = (current_fence, FenceRecord::decode(self.fence.as_slice()))
        else {
            return false;
        };
        FenceRecord::decode(current).is_ok_and(|f| f.term == mine.term && f.seq >= mine.seq)
    }
}

/// What a store must do with a batch (see [`WriteBatch::judge`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The term and the fence hold: apply every op, then report `Ok`.
    Land,
    /// A replay of a batch that already landed: report `Ok`, change nothing.
    AlreadyLanded,
    /// The term or the fence moved on: change nothing, report `Conflict`.
    Conflict,
}

impl Verdict {
    /// What the writer is told without landing anything; `None`: land, then report `Ok`.
    pub fn result(self) -> Option<WriteResult> {
        match self {
            Verdict::Land => None,
            Verdict::AlreadyLanded => Some(WriteResult::Ok),
            Verdict::Conflict => Some(WriteResult::Conflict),
        }
    }
}

impl WriteBatch {
    /// The write-chain rule, for stores that check it themselves (every store but etcd, whose
    /// transaction compares do it): the batch lands if its writer holds its term
    /// (`term_held`) and the fence found in storage is the one it expects.
    pub fn judge(&self, term_held: bool, current_fence: Option<&[u8]>) -> Verdict {
        if term_held && current_fence == self.expected_fence.as_deref() {
            Verdict::Land
        } else if self.landed_already(current_fence) {
            Verdict::AlreadyLanded
        } else {
            Verdict::Conflict
        }
    }

    /// Applies a batch judged [`Verdict::Land`] to a map of stored pairs: its ops, then the fence.
    pub fn apply_to(&self, kvs: &mut BTreeMap<String, Vec<u8>>) {
        for op in &self.ops {
            match op {
                Op::Put { key, value } => {
                    kvs.insert(key.clone(), value.clone());
                }
                Op::Delete { key } => {
                    kvs.remove(key);
                }
                Op::DeletePrefix { prefix } => {
                    let doomed: Vec<String> =
                        keys_under(kvs, prefix).into_iter().cloned().collect();
                    doomed.iter().for_each(|k| {
                        kvs.remove(k);
                    });
                }
            }
        }
        kvs.insert(FENCE_KEY.to_owned(), self.fence.clone());
    }
}

/// How a batch ended, as the storage adapter reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteResult {
    /// Every op landed.
    Ok,
    /// The fence failed: this leader's term is over. Nothing landed.
    Conflict,
    /// Unknown outcome (timeout, connection lost): the batch may or may not have landed.
    Error,
}

/// Collects ops for one batch, keeping the last op per key.
#[derive(Default)]
pub struct BatchBuilder {
    ops: BTreeMap<String, Op>,
}

impl BatchBuilder {
    /// Ops gathered so far, one per key.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no op has been gathered.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many ops the batch would hold after adding `ops`.
    pub fn len_with<'a>(&self, ops: impl Iterator<Item = &'a Op>) -> usize {
        let mut new_keys: Vec<&str> =
            ops.map(Op::key).filter(|k| !self.ops.contains_key(*k)).collect();
        new_keys.sort_unstable();
        new_keys.dedup();
        self.ops.len() + new_keys.len()
    }

    /// Adds `op`, replacing an earlier op on its key.
    pub fn push(&mut self, op: Op) {
        self.ops.insert(op.key().to_owned(), op);
    }

    /// The batch: the ops gathered, fenced by `term` and the fence chain.
    pub fn finish(
        self,
        id: WriteId,
        term: Term,
        expected_fence: Option<Vec<u8>>,
        fence: Vec<u8>,
    ) -> WriteBatch {
        WriteBatch { id, term, expected_fence, fence, ops: self.ops.into_values().collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, v: u8) -> Op {
        Op::Put { key: key.into(), value: vec![v] }
    }

    #[test]
    fn later_op_on_same_key_replaces_earlier() {
        let mut b = BatchBuilder::default();
        b.push(put("a", 1));
        b.push(Op::Delete { key: "a".into() });
        b.push(put("b", 2));
        let batch = b.finish(WriteId(1), Term(3), None, Vec::new());
        assert_eq!(batch.ops, vec![Op::Delete { key: "a".into() }, put("b", 2)]);
    }

    #[test]
    fn len_with_counts_only_new_distinct_keys() {
        let mut b = BatchBuilder::default();
        b.push(put("a", 1));
        let more = [put("a", 2), put("c", 3), put("c", 4)];
        assert_eq!(b.len_with(more.iter()), 2);
    }
}

#[cfg(test)]
mod fence_tests {
    use super::*;

    fn batch(term: u64, seq: u64) -> WriteBatch {
        let fence = FenceRecord { term, seq }.encode_to_vec();
        BatchBuilder::default().finish(WriteId(1), Term(term), None, fence)
    }

    #[test]
    fn a_replay_is_recognised_only_within_its_term() {
        let current = FenceRecord { term: 4, seq: 9 }.encode_to_vec();
        assert!(batch(4, 9).landed_already(Some(&current)));
        assert!(batch(4, 3).landed_already(Some(&current)));
        assert!(!batch(4, 10).landed_already(Some(&current)));
        assert!(!batch(3, 2).landed_already(Some(&current)), "an older term's batch is a conflict");
        assert!(!batch(4, 1).landed_already(None));
    }
}
