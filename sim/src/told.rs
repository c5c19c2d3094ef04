//! F1 in the full stack: what each meta term is known to have heard of its followers' lag, for
//! `check::Freshness` to judge the failovers the auditor sees land.
//!
//! madsim shows no deliveries, so a data node's follower reports are noted as it builds each
//! heartbeat, and count as heard by a meta term only once the node holds that term's answer to
//! that very heartbeat (a lease grant names the heartbeat it answers), from the moment the
//! answer arrives.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use shardmeta::check::{Choice, Freshness, Violation};
use shardmeta::core::model::ClusterCatalog;
use shardmeta::core::{ShardId, Term};

use crate::cluster::{HEARTBEAT_MS, LEASE_MS};
use crate::history::Ms;

/// How long a report must stand before F1 holds meta to it: longer than a promotion takes from
/// meta's choice to the auditor's read (a few etcd round trips and a read 50 ms apart), and
/// well inside the lease after which meta takes a silent node for dead.
const SETTLED_MS: Ms = LEASE_MS * 2 / 3;
/// Heartbeats a node keeps waiting for their answers.
const UNANSWERED_MAX: usize = 16;
/// Meta terms whose hearing is kept: the auditor judges only the term that wrote last.
const TERMS_KEPT: usize = 4;

type Reports = Vec<(ShardId, Option<u64>)>;

#[derive(Default)]
struct Inner {
    /// Per node, the follower reports of heartbeats not yet answered: (sent at, reports).
    unanswered: BTreeMap<String, VecDeque<(Ms, Reports)>>,
    /// Per node, when the newest answered heartbeat was sent.
    answered: BTreeMap<String, Ms>,
    terms: BTreeMap<Term, Freshness>,
}

#[derive(Clone, Default)]
pub struct Told(Arc<Mutex<Inner>>);

impl Told {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().expect("told lock")
    }

    /// `node` builds the heartbeat it sends at `at`; it follows `shard`, `lag` entries behind.
    pub fn reported(&self, node: &str, at: Ms, shard: ShardId, lag: Option<u64>) {
        let mut t = self.lock();
        let queue = t.unanswered.entry(node.to_owned()).or_default();
        match queue.back_mut() {
            Some((sent, reports)) if *sent == at => reports.push((shard, lag)),
            _ => {
                if queue.len() == UNANSWERED_MAX {
                    queue.pop_front();
                }
                queue.push_back((at, vec![(shard, lag)]));
            }
        }
    }

    /// `node` got meta `term`'s answer, at `now`, to its heartbeat sent at `sent`.
    pub fn answered(&self, node: &str, term: Term, sent: Ms, now: Ms) {
        let mut t = self.lock();
        if t.answered.get(node).is_some_and(|&a| a >= sent) {
            return;
        }
        t.answered.insert(node.to_owned(), sent);
        let queue = t.unanswered.entry(node.to_owned()).or_default();
        // A heartbeat with no report in the queue followed nothing.
        let reports = queue.iter().find(|(at, _)| *at == sent).map(|(_, r)| r.clone());
        queue.retain(|(at, _)| *at > sent);
        t.terms.entry(term).or_insert_with(|| Freshness::new(SETTLED_MS)).heard(
            node,
            now,
            reports.unwrap_or_default(),
        );
        while t.terms.len() > TERMS_KEPT {
            t.terms.pop_first();
        }
    }

    /// The node's process died: its next lifetime follows afresh.
    pub fn died(&self, node: &str) {
        let mut t = self.lock();
        t.unanswered.remove(node);
        t.answered.remove(node);
        t.terms.values_mut().for_each(|f| f.forget(node));
    }

    /// F1 over the failovers between two catalogs the auditor read, the second at `at`, all
    /// written by meta `term`.
    pub fn failovers(
        &self,
        term: Term,
        old: &ClusterCatalog,
        new: &ClusterCatalog,
        at: Ms,
    ) -> Result<Vec<Choice>, Violation> {
        match self.lock().terms.get(&term) {
            Some(heard) => heard.failovers(old, new, at),
            None => Ok(Vec::new()),
        }
    }
}

/// How long a follower lags after it first follows a shard in a process lifetime, so that
/// failovers find followers behind: on half the (node, lifetime, shard) draws not at all, on a
/// quarter up to five leases (catching up after an open), on a quarter up to twenty (a slow
/// disk). A hash, not the seed's generator: the draw must not shift the seed's other draws.
pub fn catch_up_ms(node: &str, lifetime: u64, shard: ShardId) -> Ms {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (node, lifetime, shard.0).hash(&mut h);
    let draw = h.finish();
    match draw % 4 {
        0 => (draw >> 2) % (5 * LEASE_MS),
        1 => (draw >> 2) % (20 * LEASE_MS),
        _ => 0,
    }
}

const _: () = assert!(SETTLED_MS > 4 * HEARTBEAT_MS && SETTLED_MS < LEASE_MS);
