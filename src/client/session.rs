//! The data node's side of the heartbeat protocol, with no IO, shared by the node loop
//! ([`super::node::run`]) and the in-process simulator: when to heartbeat and what to send,
//! when meta has gone quiet and the stream must be rebuilt, where to connect next after a
//! redirect (and when not to follow one), and how long to back off after a failure.

use super::shard_host::{Reports, ShardHost};
use super::LoadSource;
use crate::core::model::Label;
use crate::core::{
    CommandKind, Duration, Heartbeat, Instant, NodeMessage, NodeStats, Role, ShardCommand, Term,
};

/// Heartbeats without any answer before the stream is given up and the leader looked up again.
pub const UNANSWERED_MAX: u32 = 3;
/// The heartbeat interval until meta names one.
pub const DEFAULT_INTERVAL_MS: u64 = 1_000;
/// Back-off after a failed stream: this much per failure in a row, up to ten, of which a random
/// half (so that nodes refused together do not come back together).
const BACKOFF_STEP_MS: u64 = 200;
/// The least time between a heartbeat and one sent early (see [`NodeSession::on_message`]), so
/// that a burst of commands costs one extra heartbeat, not one each.
pub const EARLY_BEAT_GAP_MS: u64 = 50;
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
    /// Its labels besides the zone, by key (see the proto's `HeartbeatRequest.labels`).
    pub labels: Vec<Label>,
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
            labels: self.labels.clone(),
            incarnation: self.incarnation,
            seq,
            stats: NodeStats {
                shard_count: shards.len() as u32,
                capacity: self.capacity,
                ..Default::default()
            },
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
    /// When the last heartbeat was sent (the node's clock).
    last_beat: Option<Instant>,
    /// The sequence number of the last heartbeat sent: its answer's lease names it.
    last_seq: u64,
    /// The round trip of the last heartbeat answered, in µs (0: none yet), reported with the
    /// next: meta tells a network-slow node by it.
    rtt_us: u32,
}

/// What a message from meta did: the commands the host accepted, for the node's storage
/// engine, and what the heartbeat loop must change.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    pub commands: Vec<ShardCommand>,
    /// Meta named a new heartbeat interval.
    pub interval_changed: bool,
    /// Heartbeat at this instant, ahead of the timer (which keeps its own beat): a leadership
    /// handoff waits on the node's next report. See [`NodeSession::on_message`].
    pub beat_at: Option<Instant>,
}

impl NodeSession {
    pub fn new(identity: NodeIdentity) -> NodeSession {
        let jitter = identity.incarnation | 1;
        NodeSession {
            identity,
            unanswered: 0,
            failures: 0,
            interval_ms: DEFAULT_INTERVAL_MS,
            redirect: None,
            hops: 0,
            term_seen: Term(0),
            jitter,
            last_beat: None,
            last_seq: 0,
            rtt_us: 0,
        }
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
        self.last_beat = Some(now);
        let reports = host.heartbeat(now, load);
        self.unanswered += 1;
        self.last_seq = reports.seq;
        let mut hb = self.identity.heartbeat(reports);
        hb.stats.stats_sample = load.stats_sample();
        hb.stats.heartbeat_rtt_us = self.rtt_us;
        hb.stats.request_latency_us = load.request_latency_us();
        [hb.stats.disk_capacity_bytes, hb.stats.disk_used_bytes] = load.disk_bytes();
        Beat::Send(Box::new(hb))
    }

    /// The node is stopping: it gives up every lease (no write is accepted from here on), and
    /// this is the last heartbeat to send, saying so, so that meta moves its shards at once.
    pub fn leave(&mut self, host: &mut ShardHost, now: Instant) -> Heartbeat {
        host.release_leases();
        let reports = host.heartbeat(now, &|_| crate::core::ShardLoad::default());
        Heartbeat { leaving: true, ..self.identity.heartbeat(reports) }
    }

    /// A message from meta on the stream, at `now` (the node's clock).
    ///
    /// A leadership handoff waits on this node's next heartbeat twice: a leader transfer
    /// finishes only once meta hears that the old leader let go, and a shard's new leader
    /// writes only once a heartbeat reporting it as leader is answered with a lease. Waiting for
    /// the timer made every handoff cost one to two heartbeat intervals with no leader at all,
    /// and a meta failover landing in that window stretched it to an election. So a message
    /// that closes a shard, or makes this node the leader of one it holds no lease for, asks for
    /// a heartbeat at once (or [`EARLY_BEAT_GAP_MS`] after the last one).
    pub fn on_message(
        &mut self,
        host: &mut ShardHost,
        message: &NodeMessage,
        now: Instant,
    ) -> Applied {
        self.unanswered = 0;
        self.failures = 0;
        self.hops = 0;
        if let (Some(grant), Some(sent)) = (&message.lease, self.last_beat) {
            if grant.seq == self.last_seq {
                let ms = now.saturating_since(sent).as_millis();
                self.rtt_us = ms.saturating_mul(1_000).clamp(1, u32::MAX as u64) as u32;
            }
        }
        self.term_seen = self.term_seen.max(message.term);
        let interval_changed =
            message.heartbeat_interval_ms > 0 && message.heartbeat_interval_ms != self.interval_ms;
        if interval_changed {
            self.interval_ms = message.heartbeat_interval_ms;
        }
        let commands = host.on_message(message);
        let handoff = commands.iter().any(|c| match c.kind {
            CommandKind::Close => true,
            CommandKind::Open { role: Role::Leader, .. }
            | CommandKind::ChangeRole { role: Role::Leader } => host
                .shards()
                .get(&c.shard)
                .is_some_and(|s| s.role == Role::Leader && s.lease_until.is_none()),
            _ => false,
        });
        let beat_at = handoff.then(|| {
            self.last_beat.map_or(now, |last| now.max(last + Duration(EARLY_BEAT_GAP_MS)))
        });
        Applied { commands, interval_changed, beat_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Epoch, ShardLoad, Term};

    fn session() -> NodeSession {
        let identity = NodeIdentity {
            cluster: "c".into(),
            name: "n1".into(),
            endpoint: "n1:1".into(),
            zone: "a".into(),
            labels: Vec::new(),
            incarnation: 7,
            capacity: 1.0,
        };
        NodeSession::new(identity)
    }

    fn message(interval: u64) -> NodeMessage {
        NodeMessage {
            term: Term(1),
            epoch: Epoch(0),
            lease: None,
            commands: vec![],
            heartbeat_interval_ms: interval,
        }
    }

    #[test]
    fn three_unanswered_heartbeats_rebuild_the_stream_and_an_answer_resets_the_count() {
        let (mut s, mut host) = (session(), ShardHost::new());
        for seq in 1..=UNANSWERED_MAX as u64 {
            let Beat::Send(hb) = s.beat(&mut host, Instant(seq), &|_| ShardLoad::default()) else {
                panic!("heartbeat {seq} is sent")
            };
            assert_eq!((hb.node.as_str(), hb.incarnation, hb.zone.as_str()), ("n1", 7, "a"));
        }
        assert_eq!(s.beat(&mut host, Instant(9), &|_| ShardLoad::default()), Beat::Reconnect);
        s.opened();
        assert!(matches!(s.beat(&mut host, Instant(10), &|_| ShardLoad::default()), Beat::Send(_)));
        s.on_message(&mut host, &message(0), Instant(11));
        for _ in 0..UNANSWERED_MAX {
            assert!(matches!(
                s.beat(&mut host, Instant(11), &|_| ShardLoad::default()),
                Beat::Send(_)
            ));
        }
    }

    #[test]
    fn a_redirect_is_followed_once_and_failures_back_off_with_jitter_until_an_answer() {
        let (mut s, mut host) = (session(), ShardHost::new());
        assert_eq!(s.redirected("m2:7560".into(), Term(3)), Duration::ZERO);
        assert_eq!(s.next_target().as_deref(), Some("m2:7560"));
        assert_eq!(s.next_target(), None, "then the leader is looked up again");
        let (first, second) = (s.failed(), s.failed());
        assert!(
            (100..=200).contains(&first.0) && (200..=400).contains(&second.0),
            "{first:?} {second:?}"
        );
        for _ in 0..20 {
            s.failed();
        }
        let pauses: Vec<u64> = (0..50).map(|_| s.failed().0).collect();
        assert!(
            pauses.iter().all(|p| (1_000..=2_000).contains(p)),
            "the back-off stops growing: {pauses:?}"
        );
        assert!(pauses.iter().any(|p| *p != pauses[0]), "and is jittered: {pauses:?}");
        assert!(s.on_message(&mut host, &message(500), Instant(0)).interval_changed);
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
        s.on_message(&mut host, &NodeMessage { term: Term(8), ..message(0) }, Instant(0));
        assert!(
            s.redirected("m3:1".into(), Term(7)) > Duration::ZERO,
            "a leader older than one heard of is not followed"
        );
        assert_eq!(s.next_target(), None);
        assert_eq!(s.redirected("m3:1".into(), Term(9)), Duration::ZERO);
    }

    #[test]
    fn a_handoff_asks_for_an_early_heartbeat_and_table_changes_do_not() {
        use crate::core::output::{CommandKind, LeaseGrant, ShardCommand};
        use crate::core::{ShardId, TableId, Version};
        let (mut s, mut host) = (session(), ShardHost::new());
        let command = |version: u64, kind: CommandKind| ShardCommand {
            shard: ShardId(1),
            version: Version(version),
            term: Term(1),
            kind,
        };
        let with = |commands: Vec<ShardCommand>, lease: Option<LeaseGrant>| NodeMessage {
            commands,
            lease,
            ..message(0)
        };
        let lead = CommandKind::Open { role: Role::Leader, tables: vec![TableId(9)] };
        let Beat::Send(hb) = s.beat(&mut host, Instant(1_000), &|_| ShardLoad::default()) else {
            panic!("a heartbeat")
        };
        let applied =
            s.on_message(&mut host, &with(vec![command(2, lead.clone())], None), Instant(1_010));
        assert_eq!(
            applied.beat_at,
            Some(Instant(1_050)),
            "a new leader without a lease beats at once, spaced from the last beat"
        );
        assert_eq!(applied.commands.len(), 1);
        let Beat::Send(hb2) = s.beat(&mut host, Instant(1_050), &|_| ShardLoad::default()) else {
            panic!("a heartbeat")
        };
        let granted = s.on_message(
            &mut host,
            &with(vec![], Some(LeaseGrant { seq: hb2.seq, duration_ms: 10_000, revoked: vec![] })),
            Instant(1_060),
        );
        assert_eq!(granted.beat_at, None, "a lease answers the handoff");
        assert!(host.is_leading(ShardId(1), Instant(1_060)));
        let resync = s.on_message(&mut host, &with(vec![command(3, lead)], None), Instant(1_500));
        assert_eq!(resync.beat_at, None, "a re-sync of a shard led under a lease is no handoff");
        let created = s.on_message(
            &mut host,
            &with(vec![command(4, CommandKind::CreateTable { table: TableId(10) })], None),
            Instant(1_600),
        );
        assert_eq!(created.beat_at, None);
        let closed = s.on_message(
            &mut host,
            &with(vec![command(5, CommandKind::Close)], None),
            Instant(1_700),
        );
        assert_eq!(closed.beat_at, Some(Instant(1_700)), "a close is reported at once");
        assert!(hb.seq < hb2.seq);
    }
}
