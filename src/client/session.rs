//! The data node's side of the heartbeat protocol, with no IO, shared by the node loop
//! ([`super::node::run`]) and the in-process simulator: when to heartbeat and what to send,
//! when meta has gone quiet and the stream must be rebuilt, where to connect next after a
//! redirect (and when not to follow one), and how long to back off after a failure.

use super::shard_host::{Reports, ShardHost};
use super::LoadSource;
use crate::core::{Duration, Heartbeat, Instant, NodeMessage, NodeStats, ShardCommand, Term};

/// Heartbeats without any answer before the stream is given up and the leader looked up again.
pub const UNANSWERED_MAX: u32 = 3;
/// The heartbeat interval until meta names one.
pub const DEFAULT_INTERVAL_MS: u64 = 1_000;
/// Back-off after a failed stream: this much per failure in a row, up to ten, of which a random
/// half (so that nodes refused together do not come back together).
const BACKOFF_STEP_MS: u64 = 200;
/// Redirects followed since meta last answered a heartbeat. Past this the node stops following
/// and looks the leader up after a back-off: two metas naming each other (after a step-down, or
/// a pause) must not bounce it between them.
pub const REDIRECT_HOPS_MAX: u32 = 3;

/// Who this node is and how it reports.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeIdentity {
    pub cluster: String,
    pub name: String,
    pub endpoint: String,
    pub zone: String,
    pub incarnation: u64,
    /// How much load the node can take relative to others (CPU cores, or a weight; 0: 1).
    pub capacity: f64,
}

impl NodeIdentity {
    /// The heartbeat this node sends with the reports of [`ShardHost::heartbeat`].
    pub fn heartbeat(&self, reports: Reports) -> Heartbeat {
        let Reports { seq, shards, tables } = reports;
        Heartbeat {
            cluster: self.cluster.clone(),
            node: self.name.clone(),
            endpoint: self.endpoint.clone(),
            zone: self.zone.clone(),
            incarnation: self.incarnation,
            seq,
            stats: NodeStats { shard_count: shards.len() as u32, capacity: self.capacity, ..Default::default() },
            shards,
            tables,
            load_rejections: 0,
            leaving: false,
        }
    }
}

/// What to do when the heartbeat timer fires.
#[derive(Debug, PartialEq)]
pub enum Beat {
    Send(Box<Heartbeat>),
    /// Meta has not answered [`UNANSWERED_MAX`] heartbeats: give the stream up and connect again.
    Reconnect,
}

#[derive(Clone, Debug)]
pub struct NodeSession {
    identity: NodeIdentity,
    /// Heartbeats sent on the current stream since meta last answered.
    unanswered: u32,
    /// Streams that failed in a row.
    failures: u32,
    interval_ms: u64,
    /// The endpoint meta redirected to, for the next stream only.
    redirect: Option<String>,
    /// Redirects followed since meta last answered.
    hops: u32,
    /// The newest meta term heard of, in answers and redirects: a redirect to an older leader
    /// is stale.
    term_seen: Term,
    /// State of the back-off jitter (xorshift), seeded by the incarnation, so a simulated node
    /// backs off alike in every run of a seed.
    jitter: u64,
}

impl NodeSession {
    pub fn new(identity: NodeIdentity) -> NodeSession {
        let jitter = identity.incarnation | 1;
        NodeSession { identity, unanswered: 0, failures: 0, interval_ms: DEFAULT_INTERVAL_MS, redirect: None, hops: 0, term_seen: Term(0), jitter }
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// How often to heartbeat, as meta last said.
    pub fn interval(&self) -> Duration {
        Duration(self.interval_ms)
    }

    /// Where the next stream goes: the endpoint meta redirected to, or `None`: look the leader up.
    pub fn next_target(&mut self) -> Option<String> {
        self.redirect.take()
    }

    /// A new stream is open.
    pub fn opened(&mut self) {
        self.unanswered = 0;
    }

    /// The stream could not be opened, or was refused: how long to wait before the next
    /// attempt, between half and all of the step times the failures in a row.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let base = BACKOFF_STEP_MS * self.failures.min(10) as u64;
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        Duration(base / 2 + self.jitter % (base / 2 + 1))
    }

    /// Meta ended the stream with no one to go to: the next stream looks the leader up.
    pub fn closed(&mut self) {
        self.redirect = None;
    }

    /// Meta ended the stream naming `endpoint`, the leader of `term`: how long to wait before the
    /// next stream. It goes there at once, unless the redirect is stale (a leader older than one
    /// heard of) or [`REDIRECT_HOPS_MAX`] redirects went unanswered: then the leader is looked
    /// up afresh after a back-off.
    pub fn redirected(&mut self, endpoint: String, term: Term) -> Duration {
        if endpoint.is_empty() || term < self.term_seen || self.hops >= REDIRECT_HOPS_MAX {
            self.redirect = None;
            self.hops = 0;
            return self.failed();
        }
        self.term_seen = term;
        self.hops += 1;
        self.redirect = Some(endpoint);
        Duration::ZERO
    }

    /// The heartbeat timer fired at `now` (the node's clock): expire leases, then report.
    pub fn beat(&mut self, host: &mut ShardHost, now: Instant, load: &impl LoadSource) -> Beat {
        if self.unanswered >= UNANSWERED_MAX {
            return Beat::Reconnect;
        }
        host.expire_leases(now);
        let reports = host.heartbeat(now, load);
        self.unanswered += 1;
        Beat::Send(Box::new(self.identity.heartbeat(reports)))
    }

    /// The node is stopping: it gives up every lease (no write is accepted from here on), and
    /// this is the last heartbeat to send, saying so, so that meta moves its shards at once.
    pub fn leave(&mut self, host: &mut ShardHost, now: Instant) -> Heartbeat {
        host.release_leases();
        let reports = host.heartbeat(now, &|_| crate::core::ShardLoad::default());
        Heartbeat { leaving: true, ..self.identity.heartbeat(reports) }
    }

    /// A message from meta on the stream: the commands the host accepted, for the node's
    /// storage engine. `true` in the second place when the heartbeat interval changed.
    pub fn on_message(&mut self, host: &mut ShardHost, message: &NodeMessage) -> (Vec<ShardCommand>, bool) {
        self.unanswered = 0;
        self.failures = 0;
        self.hops = 0;
        self.term_seen = self.term_seen.max(message.term);
        let changed = message.heartbeat_interval_ms > 0 && message.heartbeat_interval_ms != self.interval_ms;
        if changed {
            self.interval_ms = message.heartbeat_interval_ms;
        }
        (host.on_message(message), changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Epoch, ShardLoad, Term};

    fn session() -> NodeSession {
        let identity = NodeIdentity { cluster: "c".into(), name: "n1".into(), endpoint: "n1:1".into(), zone: "a".into(), incarnation: 7, capacity: 1.0 };
        NodeSession::new(identity)
    }

    fn message(interval: u64) -> NodeMessage {
        NodeMessage { term: Term(1), epoch: Epoch(0), lease: None, commands: vec![], heartbeat_interval_ms: interval }
    }

    #[test]
    fn three_unanswered_heartbeats_rebuild_the_stream_and_an_answer_resets_the_count() {
        let (mut s, mut host) = (session(), ShardHost::new());
        for seq in 1..=UNANSWERED_MAX as u64 {
            let Beat::Send(hb) = s.beat(&mut host, Instant(seq), &|_| ShardLoad::default()) else { panic!("heartbeat {seq} is sent") };
            assert_eq!((hb.node.as_str(), hb.incarnation, hb.zone.as_str()), ("n1", 7, "a"));
        }
        assert_eq!(s.beat(&mut host, Instant(9), &|_| ShardLoad::default()), Beat::Reconnect);
        s.opened();
        assert!(matches!(s.beat(&mut host, Instant(10), &|_| ShardLoad::default()), Beat::Send(_)));
        s.on_message(&mut host, &message(0));
        for _ in 0..UNANSWERED_MAX {
            assert!(matches!(s.beat(&mut host, Instant(11), &|_| ShardLoad::default()), Beat::Send(_)));
        }
    }

    #[test]
    fn a_redirect_is_followed_once_and_failures_back_off_with_jitter_until_an_answer() {
        let (mut s, mut host) = (session(), ShardHost::new());
        assert_eq!(s.redirected("m2:7560".into(), Term(3)), Duration::ZERO);
        assert_eq!(s.next_target().as_deref(), Some("m2:7560"));
        assert_eq!(s.next_target(), None, "then the leader is looked up again");
        let (first, second) = (s.failed(), s.failed());
        assert!((100..=200).contains(&first.0) && (200..=400).contains(&second.0), "{first:?} {second:?}");
        for _ in 0..20 {
            s.failed();
        }
        let pauses: Vec<u64> = (0..50).map(|_| s.failed().0).collect();
        assert!(pauses.iter().all(|p| (1_000..=2_000).contains(p)), "the back-off stops growing: {pauses:?}");
        assert!(pauses.iter().any(|p| *p != pauses[0]), "and is jittered: {pauses:?}");
        let (_, changed) = s.on_message(&mut host, &message(500));
        assert!(changed);
        assert!(s.failed().0 <= 200);
        assert_eq!(s.interval(), Duration(500));
    }

    #[test]
    fn redirects_stop_after_the_hop_limit_and_never_go_to_an_older_term() {
        let (mut s, mut host) = (session(), ShardHost::new());
        for hop in 0..REDIRECT_HOPS_MAX {
            let to = if hop % 2 == 0 { "m2:1" } else { "m3:1" };
            assert_eq!(s.redirected(to.into(), Term(5)), Duration::ZERO, "hop {hop} is followed");
            assert_eq!(s.next_target().as_deref(), Some(to));
        }
        assert!(s.redirected("m2:1".into(), Term(5)) > Duration::ZERO, "the next waits a back-off");
        assert_eq!(s.next_target(), None, "and looks the leader up");
        assert_eq!(s.redirected("m2:1".into(), Term(5)), Duration::ZERO, "a new round of hops");
        s.on_message(&mut host, &NodeMessage { term: Term(8), ..message(0) });
        assert!(s.redirected("m3:1".into(), Term(7)) > Duration::ZERO, "a leader older than one heard of is not followed");
        assert_eq!(s.next_target(), None);
        assert_eq!(s.redirected("m3:1".into(), Term(9)), Duration::ZERO);
    }
}
