//! An in-memory store for tests: the batch contract over a map, with the holder's term set by
//! whoever plays the election.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::load::LoadError;
use crate::core::storage::{Snapshot, WriteBatch, WriteResult, FENCE_KEY};
use crate::core::Term;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    kvs: BTreeMap<String, Vec<u8>>,
    term: Term,
    /// Writes still to fail as an etcd timeout would: not applied, outcome unknown.
    failing: usize,
}

impl MemoryStore {
    /// The election moved to `term`: only its batches land from now on.
    pub fn set_term(&self, term: Term) {
        self.inner.lock().expect("memory store lock").term = term;
    }

    /// The next `n` writes fail without landing, reported as of unknown outcome.
    pub fn fail_writes(&self, n: usize) {
        self.inner.lock().expect("memory store lock").failing = n;
    }

    pub fn write(&self, batch: &WriteBatch) -> WriteResult {
        let mut inner = self.inner.lock().expect("memory store lock");
        if inner.failing > 0 {
            inner.failing -= 1;
            return WriteResult::Error;
        }
        let current = inner.kvs.get(FENCE_KEY).map(Vec::as_slice);
        if let Some(result) = batch.judge(batch.term == inner.term, current).result() {
            return result;
        }
        batch.apply_to(&mut inner.kvs);
        WriteResult::Ok
    }

    pub fn snapshot(&self) -> Result<Snapshot, LoadError> {
        let inner = self.inner.lock().expect("memory store lock");
        Ok(Snapshot::load(inner.kvs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?)
    }

    /// Every stored pair, the fence included.
    pub fn pairs(&self) -> Vec<(String, Vec<u8>)> {
        let inner = self.inner.lock().expect("memory store lock");
        inner.kvs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::core::model::FenceRecord;
    use crate::core::storage::Op;
    use crate::core::WriteId;

    fn batch(term: u64, seq: u64, expected: Option<(u64, u64)>, key: &str) -> WriteBatch {
        WriteBatch {
            id: WriteId(seq),
            term: Term(term),
            expected_fence: expected.map(|(term, seq)| FenceRecord { term, seq }.encode_to_vec()),
            fence: FenceRecord { term, seq }.encode_to_vec(),
            ops: vec![Op::Put { key: key.into(), value: vec![1] }],
        }
    }

    #[test]
    fn batches_land_once_in_order_and_only_for_the_holder() {
        let store = MemoryStore::default();
        store.set_term(Term(2));
        let first = batch(2, 1, None, "a");
        assert_eq!(store.write(&first), WriteResult::Ok);
        assert_eq!(
            store.write(&batch(2, 3, Some((2, 2)), "x")),
            WriteResult::Conflict,
            "a gap in the chain"
        );
        assert_eq!(store.write(&batch(2, 2, Some((2, 1)), "b")), WriteResult::Ok);
        assert_eq!(
            store.write(&first),
            WriteResult::Ok,
            "a replay of a landed batch is acknowledged"
        );
        assert_eq!(
            store.write(&batch(1, 3, Some((2, 2)), "y")),
            WriteResult::Conflict,
            "a deposed term"
        );
        let keys: Vec<String> = store.pairs().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![FENCE_KEY.to_string(), "a".into(), "b".into()]);
    }
}
