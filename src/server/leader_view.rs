//! Which meta node leads, as this node knows it: for `GetLeader`, health, `/ready`, redirects
//! and forwarding.
//!
//! Every record carries the instant it stops being trusted, and every read checks it against the
//! clock at the moment of reading, not at the end of some loop's pass:
//! - this node's own leadership is trusted until its election lease's deadline (renewals move
//!   it on);
//! - another node is trusted until one election TTL after etcd last named it.
//!
//! So a node resumed from a pause (SIGSTOP) names no one until it has heard again, and never
//! itself from before the pause. Terms only go forward: once this node has seen term T it names
//! no leader of an older term, and once it has lost term T it never names itself for T again
//! (etcd may still list its key until the lease runs out).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::driver::Clock;
use crate::core::{Duration, Instant, ObservedLeader, Term};

#[derive(Clone)]
pub struct LeaderView {
    me: String,
    clock: Clock,
    /// How long a leader named by etcd is trusted without being named again.
    trust: Duration,
    seen: Arc<RwLock<Seen>>,
    /// Bumped on every write, so that the driver's loop can tell "maybe changed" without
    /// taking the lock or copying the endpoint on every pass.
    writes: Arc<AtomicU64>,
    /// Whether this node's core serves (its snapshot loaded, not recovering), as the driver last
    /// saw: the election names a leader before its core is ready.
    serving_here: Arc<AtomicBool>,
}

#[derive(Default)]
struct Seen {
    leader: Option<ObservedLeader>,
    /// No leader of a term below this is named: the newest term seen, or one past a term this
    /// node lost.
    floor: Term,
}

impl LeaderView {
    pub fn new(me: String, clock: Clock, trust: Duration) -> LeaderView {
        LeaderView {
            me,
            clock,
            trust,
            seen: Arc::default(),
            writes: Arc::default(),
            serving_here: Arc::default(),
        }
    }

    /// The clock every deadline here is read against (the driver's).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn write(&self, change: impl FnOnce(&mut Seen)) {
        change(&mut self.seen.write().expect("leader view lock"));
        self.writes.fetch_add(1, Ordering::Release);
    }

    /// This node leads `term` until `valid_until` (won, or renewed).
    pub fn lead(&self, term: Term, valid_until: Instant) {
        self.write(|seen| {
            if term >= seen.floor {
                seen.floor = term;
                seen.leader =
                    Some(ObservedLeader { endpoint: self.me.clone(), term, until: valid_until });
            }
        });
    }

    /// etcd names `endpoint` leader of `term` now. A name of this node is left to [`lead`]
    /// (it is either the term it leads, already known, or a term it lost whose key lingers).
    ///
    /// [`lead`]: Self::lead
    pub fn observe(&self, endpoint: String, term: Term) {
        if endpoint == self.me {
            return;
        }
        let until = self.clock.now() + self.trust;
        self.write(|seen| {
            if term >= seen.floor {
                seen.floor = term;
                seen.leader = Some(ObservedLeader { endpoint, term, until });
            }
        });
    }

    /// This node stopped leading `term`: it names itself for that term no more.
    pub fn lost(&self, term: Term) {
        self.write(|seen| {
            seen.floor = seen.floor.max(Term(term.0 + 1));
            if seen.leader.as_ref().is_some_and(|l| l.endpoint == self.me) {
                seen.leader = None;
            }
        });
    }

    /// How many times the view was written; unchanged means the view is too (but for time).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    fn recorded(&self) -> Option<ObservedLeader> {
        self.seen.read().expect("leader view lock").leader.clone()
    }

    /// Another node as recorded, with its deadline, for a core that checks the deadline itself.
    pub fn other_recorded(&self) -> Option<ObservedLeader> {
        self.recorded().filter(|l| l.endpoint != self.me)
    }

    /// The leader trusted now: its endpoint and term.
    pub fn get(&self) -> Option<(String, Term)> {
        let now = self.clock.now();
        self.recorded().filter(|l| now < l.until).map(|l| (l.endpoint, l.term))
    }

    pub fn set_serving_here(&self, serving: bool) {
        self.serving_here.store(serving, Ordering::Relaxed);
    }

    /// Whether this node leads and serves now: its core served at the end of the driver's last
    /// pass, and its leadership has not run out since (a pause in between ends it).
    pub fn serving_here(&self) -> bool {
        self.serving_here.load(Ordering::Relaxed) && self.get().is_some_and(|(e, _)| e == self.me)
    }

    /// The leader trusted now, when it is another node.
    pub fn other_leader(&self) -> Option<(String, Term)> {
        self.get().filter(|(e, _)| *e != self.me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> LeaderView {
        LeaderView::new("m1:1".into(), Clock::start(), Duration(60_000))
    }

    #[test]
    fn an_own_term_past_its_deadline_is_not_named() {
        let v = view();
        let now = v.clock().now();
        v.lead(Term(5), now + Duration(60_000));
        assert_eq!(v.get(), Some(("m1:1".into(), Term(5))));
        v.set_serving_here(true);
        assert!(v.serving_here());
        v.lead(Term(5), now);
        assert_eq!(v.get(), None, "a deadline in the past names no one");
        assert!(!v.serving_here(), "nor does this node serve, whatever the driver last saw");
    }

    #[test]
    fn terms_only_go_forward() {
        let v = view();
        v.observe("m2:1".into(), Term(7));
        v.observe("m3:1".into(), Term(6));
        assert_eq!(v.other_leader(), Some(("m2:1".into(), Term(7))), "an older term is not named");
        v.observe("m3:1".into(), Term(9));
        assert_eq!(v.other_leader(), Some(("m3:1".into(), Term(9))));
    }

    #[test]
    fn a_lost_term_is_never_named_again() {
        let v = view();
        let until = v.clock().now() + Duration(60_000);
        v.lead(Term(4), until);
        v.lost(Term(4));
        assert_eq!(v.get(), None);
        v.lead(Term(4), until);
        v.observe("m1:1".into(), Term(4));
        assert_eq!(v.get(), None, "the lingering key of a lost term names no one");
        v.observe("m2:1".into(), Term(3));
        assert_eq!(v.get(), None, "nor does an older term");
        v.observe("m2:1".into(), Term(8));
        assert_eq!(v.get(), Some(("m2:1".into(), Term(8))));
    }
}
