//! The fake linearizable store: a key-value map with atomic fenced batches, and a lease-based
//! election like etcd's. A batch lands only if its term still holds the election and the
//! holder's lease is alive; faults make it fail, or time out with either outcome.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::net::PageAt;

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use shardmeta::check::LandedWrite;
use shardmeta::core::model::DecodeError;
use shardmeta::core::storage::{
    Op, Snapshot, Verdict, WriteBatch, WriteResult, FENCE_KEY, SNAPSHOT_PREFIXES,
};
use shardmeta::core::{Duration, Instant, Term};

/// One snapshot page: its pairs, and where the next page starts (`None`: the last).
pub type Page = (Vec<(String, Vec<u8>)>, Option<PageAt>);

pub struct Store {
    pub kvs: BTreeMap<String, Vec<u8>>,
    pub term: Term,
    /// The meta node (index, incarnation) holding the election, and until when.
    pub holder: Option<(usize, u64, Instant)>,
    pub ttl: Duration,
    pub error_per_mille: u64,
    pub timeout_per_mille: u64,
    /// Test-only: land writes without checking the fence (breaks S4).
    pub unfenced: bool,
    pub landed: Vec<LandedWrite>,
    /// Bumped on every landed write, so checkers can skip unchanged states.
    pub revision: u64,
    /// A warm standby's view: every landed write applied change by change in landing order,
    /// as `server::storage::standby` applies etcd's watch events. `Err` once a change failed.
    pub standby: Result<Snapshot, DecodeError>,
    /// Test-only: the standby misses table deletions (breaks S6).
    pub standby_skips_deletes: bool,
}

impl Store {
    pub fn new(ttl: Duration) -> Store {
        Store {
            kvs: BTreeMap::new(),
            term: Term(0),
            holder: None,
            ttl,
            error_per_mille: 0,
            timeout_per_mille: 0,
            unfenced: false,
            landed: Vec::new(),
            revision: 0,
            standby: Ok(Snapshot::default()),
            standby_skips_deletes: false,
        }
    }

    fn holds(&self, meta: usize, incarnation: u64, now: Instant) -> bool {
        matches!(self.holder, Some((m, i, until)) if m == meta && i == incarnation && now < until)
    }

    /// A campaign or renewal: `Some(true)` won a new term, `Some(false)` renewed, `None` lost.
    pub fn campaign(&mut self, meta: usize, incarnation: u64, now: Instant) -> Option<bool> {
        if self.holds(meta, incarnation, now) {
            self.holder = Some((meta, incarnation, now + self.ttl));
            return Some(false);
        }
        if matches!(self.holder, Some((_, _, until)) if now < until) {
            return None;
        }
        self.term = Term(self.term.0 + 1);
        self.holder = Some((meta, incarnation, now + self.ttl));
        Some(true)
    }

    /// The holder gives up `term`: its lease is revoked at once.
    pub fn resign(&mut self, meta: usize, incarnation: u64, term: Term) {
        if term == self.term
            && matches!(self.holder, Some((m, i, _)) if m == meta && i == incarnation)
        {
            self.holder = None;
        }
    }

    pub fn current_holder(&self, now: Instant) -> Option<usize> {
        self.holder.filter(|&(_, _, until)| now < until).map(|(m, _, _)| m)
    }

    /// One snapshot page: up to `limit` keys of the range `at` names, after its last key. It
    /// fails with the seed's store errors, and when the store has moved on from the revision the
    /// load began at (etcd would still serve that revision; refusing instead makes loads fail
    /// more often, never read a torn snapshot). `None` starts a load at the current revision.
    pub fn read_page(
        &mut self,
        rng: &mut ChaCha8Rng,
        at: Option<&PageAt>,
        limit: usize,
    ) -> Result<Page, bool> {
        if rng.next_u64() % 1000 < self.error_per_mille {
            return Err(false);
        }
        let at = at.cloned().unwrap_or(PageAt { range: 0, after: None, revision: self.revision });
        if at.revision != self.revision {
            return Err(true);
        }
        let prefix = SNAPSHOT_PREFIXES[at.range];
        let from = at.after.as_deref().map_or(Bound::Included(prefix), Bound::Excluded);
        let mut keys = self
            .kvs
            .range::<str, _>((from, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix));
        let pairs: Vec<(String, Vec<u8>)> =
            keys.by_ref().take(limit).map(|(k, v)| (k.clone(), v.clone())).collect();
        let next = match (keys.next(), pairs.last()) {
            (Some(_), Some((last, _))) => Some(PageAt { after: Some(last.clone()), ..at }),
            _ if at.range + 1 < SNAPSHOT_PREFIXES.len() => {
                Some(PageAt { range: at.range + 1, after: None, revision: at.revision })
            }
            _ => None,
        };
        Ok((pairs, next))
    }

    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        self.kvs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Applies a landed batch to the standby as one transaction, as etcd's watch reports it.
    fn follow(&mut self, batch: &WriteBatch) {
        let Ok(standby) = &mut self.standby else { return };
        let changes = batch.ops.iter().filter_map(|op| match op {
            Op::Put { key, value } => Some((key.as_str(), Some(value.as_slice()))),
            Op::Delete { .. } if self.standby_skips_deletes => None,
            Op::Delete { key } => Some((key.as_str(), None)),
            Op::DeletePrefix { .. } => unreachable!("the simulated cluster is never dropped"),
        });
        let fence = std::iter::once((FENCE_KEY, Some(batch.fence.as_slice())));
        if let Err(e) = standby.apply_transaction(changes.chain(fence)) {
            self.standby = Err(e);
        }
    }

    /// Executes a batch; the result says what the writer is told (or `None`: no reply at all).
    pub fn write(
        &mut self,
        rng: &mut ChaCha8Rng,
        meta: usize,
        incarnation: u64,
        batch: &WriteBatch,
        now: Instant,
    ) -> Option<WriteResult> {
        if rng.next_u64() % 1000 < self.error_per_mille {
            return Some(WriteResult::Error);
        }
        let term_held = batch.term == self.term && self.holds(meta, incarnation, now);
        let current = self.kvs.get(FENCE_KEY).map(Vec::as_slice);
        let verdict = if self.unfenced { Verdict::Land } else { batch.judge(term_held, current) };
        if let Some(result) = verdict.result() {
            return Some(result);
        }
        let timed_out = rng.next_u64() % 1000 < self.timeout_per_mille;
        if timed_out && rng.next_u64().is_multiple_of(2) {
            return Some(WriteResult::Error); // timed out before landing
        }
        batch.apply_to(&mut self.kvs);
        self.follow(batch);
        self.landed.push(LandedWrite { batch_term: batch.term, fence_term: self.term });
        self.revision += 1;
        Some(if timed_out { WriteResult::Error } else { WriteResult::Ok })
    }
}
