//! The data node's side of the protocol, sans IO: which shards the node hosts, which commands
//! it accepts, and when it may act as a shard's leader. The node agent and the simulators drive
//! it; it reads no clock (`now` is the node's own clock, passed in).
//!
//! Safety rests on two rules here:
//! - commands from an older meta term, or at or below the version held, are ignored;
//! - a shard is led only under a lease, granted by meta in the reply to a heartbeat that
//!   reported the shard as led, counted from the moment that heartbeat was *sent*, and dropped
//!   when meta revokes it or it runs out (self-fencing).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::LoadSource;
use crate::core::ids::*;
use crate::core::input::{ReplicaStatus, Role, ShardReport, TableLoad};
use crate::core::output::{CommandKind, NodeMessage, ShardCommand};
use crate::core::time::{Duration, Instant};

/// Heartbeat send times remembered for lease grants; older grants are ignored.
const SENT_HEARTBEATS_MAX: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub struct HostedShard {
    pub role: Role,
    pub version: Version,
    pub tables: BTreeSet<TableId>,
    /// The first heartbeat seq that reported this shard in its current leader tenure.
    pub leader_since_seq: u64,
    pub lease_until: Option<Instant>,
}

/// One heartbeat's worth of reports (see [`ShardHost::heartbeat`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reports {
    pub seq: u64,
    pub shards: Vec<ShardReport>,
    /// The led shards' busiest tables, grouped by shard in report order.
    pub tables: Vec<TableLoad>,
}

/// Counts of the protective paths taken, for coverage checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostCounters {
    pub stale_term_rejections: u64,
    pub stale_version_rejections: u64,
    pub lease_revocations: u64,
    pub lease_expiries: u64,
}

impl HostCounters {
    /// Adds `other`'s counts, for sums over node lifetimes or whole runs.
    pub fn add(&mut self, other: &HostCounters) {
        self.stale_term_rejections += other.stale_term_rejections;
        self.stale_version_rejections += other.stale_version_rejections;
        self.lease_revocations += other.lease_revocations;
        self.lease_expiries += other.lease_expiries;
    }
}

#[derive(Clone, Debug, Default)]
pub struct ShardHost {
    shards: BTreeMap<ShardId, HostedShard>,
    /// The highest version each closed shard had, so a late command cannot reopen it.
    closed: BTreeMap<ShardId, Version>,
    term: Term,
    epoch: Epoch,
    next_seq: u64,
    sent: VecDeque<(u64, Instant)>,
    /// When the newest heartbeat that meta answered was sent.
    answered_at: Option<Instant>,
    pub counters: HostCounters,
    /// The longest lease this node honours (its config's `lease_ms`); `None`: as meta grants.
    lease_max: Option<Duration>,
    /// A planted bug for checker tests: leases last this much longer than meta granted, as on
    /// a node whose clock runs slow. Zero unless a test plants it.
    overrun: Duration,
}

impl ShardHost {
    pub fn new() -> ShardHost {
        ShardHost { next_seq: 1, ..Default::default() }
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn shards(&self) -> &BTreeMap<ShardId, HostedShard> {
        &self.shards
    }

    /// When the newest heartbeat that meta answered was sent: meta counts the node alive from
    /// about then, so a node not answered for a lease's length is one meta will declare dead.
    pub fn answered_at(&self) -> Option<Instant> {
        self.answered_at
    }

    /// Whether the node may act as the shard's leader at `now` (its own clock).
    pub fn is_leading(&self, shard: ShardId, now: Instant) -> bool {
        self.shards
            .get(&shard)
            .is_some_and(|s| s.role == Role::Leader && s.lease_until.is_some_and(|t| now < t))
    }

    /// Caps every later lease at `max`: a lease shorter than meta granted is always safe.
    pub fn cap_leases(&mut self, max: Duration) {
        self.lease_max = Some(max);
    }

    /// Plants a bug for checker tests: every later lease lasts `extra` longer than granted.
    pub fn plant_lease_overrun(&mut self, extra: Duration) {
        self.overrun = extra;
    }

    /// Whether a routed write for `shard` at route version `version` may be accepted at `now`:
    /// only under a valid lease, and only at the version this node holds.
    pub fn check_write(
        &self,
        shard: ShardId,
        version: Version,
        now: Instant,
    ) -> Result<(), String> {
        if !self.is_leading(shard, now) {
            return Err(format!("invalid route: this node does not lead shard {shard}"));
        }
        let held = self.shards[&shard].version;
        if held != version {
            return Err(format!(
                "invalid route: shard {shard} is at version {held}, the route says {version}"
            ));
        }
        Ok(())
    }

    /// What this node has accepted from meta, for the S3 check.
    #[cfg(feature = "check")]
    pub fn view(&self) -> crate::check::NodeView {
        crate::check::NodeView {
            term: self.term,
            epoch: self.epoch,
            versions: self
                .shards
                .iter()
                .map(|(&id, s)| (id, s.version))
                .chain(self.closed.iter().map(|(&id, &v)| (id, v)))
                .collect(),
        }
    }

    /// Drops leases that ran out; returns how many did (each is a self-fence).
    pub fn expire_leases(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        for s in self.shards.values_mut() {
            if s.lease_until.is_some_and(|t| now >= t) {
                s.lease_until = None;
                expired += 1;
            }
        }
        self.counters.lease_expiries += expired as u64;
        expired
    }

    /// Gives up every lease at once, as a stopping node does: from now on it leads nothing
    /// and accepts no write. Returns how many leases it held.
    pub fn release_leases(&mut self) -> usize {
        let held = self.shards.values_mut().filter_map(|s| s.lease_until.take()).count();
        self.counters.lease_revocations += held as u64;
        held
    }

    /// The next heartbeat's seq and reports; remembers when it was sent.
    pub fn heartbeat(&mut self, now: Instant, load: &impl LoadSource) -> Reports {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.sent.len() == SENT_HEARTBEATS_MAX {
            self.sent.pop_front();
        }
        self.sent.push_back((seq, now));
        let mut tables = Vec::new();
        let shards = self
            .shards
            .iter()
            .map(|(&id, s)| {
                let led = s.role == Role::Leader;
                if led {
                    load.busiest_tables(id, &s.tables, &mut tables);
                }
                let lag = if led { None } else { load.follower_lag(id) };
                let load = if led { load.shard_load(id, &s.tables) } else { Default::default() };
                ShardReport {
                    id,
                    role: s.role,
                    version: s.version,
                    status: ReplicaStatus::Ready,
                    load,
                    lag,
                }
            })
            .collect();
        Reports { seq, shards, tables }
    }

    /// Applies a message from meta; returns the commands it accepted.
    pub fn on_message(&mut self, msg: &NodeMessage) -> Vec<ShardCommand> {
        let mut accepted = Vec::new();
        if msg.term < self.term {
            self.counters.stale_term_rejections += 1;
            return accepted;
        }
        // Within a term, messages can arrive out of order: keep the newest epoch. A new term
        // carries the epoch from storage, which must not be lower (S3 checks that).
        self.epoch = if msg.term > self.term { msg.epoch } else { self.epoch.max(msg.epoch) };
        self.term = msg.term;
        for cmd in &msg.commands {
            if self.apply(cmd) {
                accepted.push(cmd.clone());
            }
        }
        let Some(grant) = &msg.lease else { return accepted };
        let Some(&(_, sent_at)) = self.sent.iter().find(|(seq, _)| *seq == grant.seq) else {
            return accepted;
        };
        self.answered_at = self.answered_at.max(Some(sent_at));
        let granted = Duration(grant.duration_ms).min(self.lease_max.unwrap_or(Duration(u64::MAX)));
        let until = sent_at + granted + self.overrun;
        for (id, s) in self.shards.iter_mut() {
            if s.role != Role::Leader || s.leader_since_seq > grant.seq {
                continue;
            }
            if grant.revoked.contains(id) {
                if s.lease_until.take().is_some() {
                    self.counters.lease_revocations += 1;
                }
            } else if s.lease_until.is_none_or(|t| t < until) {
                s.lease_until = Some(until);
            }
        }
        accepted
    }

    /// Applies one command; false if it was refused as stale.
    fn apply(&mut self, cmd: &ShardCommand) -> bool {
        if cmd.term < self.term {
            self.counters.stale_term_rejections += 1;
            return false;
        }
        let held = self
            .shards
            .get(&cmd.shard)
            .map(|s| s.version)
            .or_else(|| self.closed.get(&cmd.shard).copied());
        // These change a shard the node holds, so they only make sense right on top of the
        // version before; a node that missed one ignores them and gets a full re-sync.
        let incremental = matches!(
            cmd.kind,
            CommandKind::CreateTable { .. }
                | CommandKind::DropTable { .. }
                | CommandKind::AlterTable { .. }
                | CommandKind::ChangeRole { .. }
        );
        let fresh = match held {
            None => !incremental,
            Some(v) if incremental => {
                cmd.version == v.next() && self.shards.contains_key(&cmd.shard)
            }
            Some(v) => cmd.version > v,
        };
        if !fresh {
            self.counters.stale_version_rejections += 1;
            return false;
        }
        let next_seq = self.next_seq;
        match &cmd.kind {
            CommandKind::Open { role, tables } => {
                self.closed.remove(&cmd.shard);
                let s = self.shards.entry(cmd.shard).or_insert_with(|| HostedShard {
                    role: *role,
                    version: cmd.version,
                    tables: BTreeSet::new(),
                    leader_since_seq: next_seq,
                    lease_until: None,
                });
                set_role(s, *role, next_seq);
                s.version = cmd.version;
                s.tables = tables.iter().copied().collect();
            }
            CommandKind::ChangeRole { role } => {
                let s = self.shards.get_mut(&cmd.shard).expect("checked above");
                set_role(s, *role, next_seq);
                s.version = cmd.version;
            }
            CommandKind::Close => {
                // Recorded even for a shard not held (a node that restarted since it was told to
                // let go): a repeat of this close, or an older open delivered late, is refused.
                let version = self
                    .shards
                    .remove(&cmd.shard)
                    .map_or(cmd.version, |s| cmd.version.max(s.version));
                self.closed.insert(cmd.shard, version);
            }
            CommandKind::CreateTable { table } => {
                let s = self.shards.get_mut(&cmd.shard).expect("checked above");
                s.tables.insert(*table);
                s.version = cmd.version;
            }
            CommandKind::DropTable { tables } => {
                let s = self.shards.get_mut(&cmd.shard).expect("checked above");
                tables.iter().for_each(|t| {
                    s.tables.remove(t);
                });
                s.version = cmd.version;
            }
            // The table set is unchanged; a node that caches the table's schema reads the new
            // version (GetTables) before serving it again.
            CommandKind::AlterTable { .. } => {
                let s = self.shards.get_mut(&cmd.shard).expect("checked above");
                s.version = cmd.version;
            }
        }
        true
    }
}

/// A shard becoming leader starts a new tenure that only later heartbeats can lease; one
/// leaving the leader role loses its lease at once.
fn set_role(s: &mut HostedShard, role: Role, next_seq: u64) {
    if role == Role::Leader && s.role != Role::Leader {
        s.leader_since_seq = next_seq;
        s.lease_until = None;
    }
    if role != Role::Leader {
        s.lease_until = None;
    }
    s.role = role;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::input::ShardLoad;
    use crate::core::output::LeaseGrant;

    fn msg(term: u64, commands: Vec<ShardCommand>, lease: Option<LeaseGrant>) -> NodeMessage {
        NodeMessage {
            term: Term(term),
            epoch: Epoch(1),
            lease,
            commands,
            heartbeat_interval_ms: 1_000,
        }
    }

    fn open(shard: u32, version: u64, term: u64, role: Role) -> ShardCommand {
        ShardCommand {
            shard: ShardId(shard),
            version: Version(version),
            term: Term(term),
            kind: CommandKind::Open { role, tables: vec![TableId(9)] },
        }
    }

    fn grant(seq: u64, revoked: Vec<ShardId>) -> Option<LeaseGrant> {
        Some(LeaseGrant { seq, duration_ms: 10_000, revoked })
    }

    /// A host leading shard 1 at version 2, its lease granted for a heartbeat sent at t=100.
    fn leading() -> ShardHost {
        let mut h = ShardHost::new();
        h.on_message(&msg(1, vec![open(1, 2, 1, Role::Leader)], None));
        let seq = h.heartbeat(Instant(100), &|_| ShardLoad::default()).seq;
        h.on_message(&msg(1, vec![], grant(seq, vec![])));
        h
    }

    /// S3 compares views: a shard this node closed keeps its version there, so a stale command
    /// that reopened it below that version would show as a version going back. The in-process
    /// simulator once built its own view from open shards only, and missed exactly that.
    #[test]
    #[cfg(feature = "check")]
    fn a_closed_shard_stays_in_the_view_at_its_version() {
        let mut h = leading();
        let close = ShardCommand {
            shard: ShardId(1),
            version: Version(3),
            term: Term(1),
            kind: CommandKind::Close,
        };
        h.on_message(&msg(1, vec![close], None));
        assert!(!h.shards().contains_key(&ShardId(1)));
        assert_eq!(h.view().versions.get(&ShardId(1)), Some(&Version(3)));
        let mut reopened = h.view();
        reopened.versions.insert(ShardId(1), Version(2));
        let caught = crate::check::monotonic("n", &h.view(), &reopened).unwrap_err();
        assert_eq!(caught.invariant, crate::check::Invariant::MonotonicVersions);
    }

    #[test]
    fn answered_at_is_the_send_time_of_the_newest_answered_heartbeat() {
        let mut h = leading();
        assert_eq!(h.answered_at(), Some(Instant(100)));
        let old = h.heartbeat(Instant(400), &|_| ShardLoad::default()).seq;
        let new = h.heartbeat(Instant(700), &|_| ShardLoad::default()).seq;
        h.on_message(&msg(1, vec![], grant(new, vec![])));
        h.on_message(&msg(1, vec![], grant(old, vec![])));
        assert_eq!(
            h.answered_at(),
            Some(Instant(700)),
            "a late answer to an older heartbeat does not move it back"
        );
        h.on_message(&msg(1, vec![], None));
        assert_eq!(
            h.answered_at(),
            Some(Instant(700)),
            "a message without a grant answers no heartbeat"
        );
    }

    /// A node configured for shorter leases than meta grants stops leading sooner.
    #[test]
    fn a_capped_lease_ends_at_the_nodes_own_limit() {
        let mut h = ShardHost::new();
        h.cap_leases(Duration(4_000));
        h.on_message(&msg(1, vec![open(1, 2, 1, Role::Leader)], None));
        let seq = h.heartbeat(Instant(100), &|_| ShardLoad::default()).seq;
        h.on_message(&msg(1, vec![], grant(seq, vec![])));
        assert!(h.is_leading(ShardId(1), Instant(4_099)));
        assert!(
            !h.is_leading(ShardId(1), Instant(4_100)),
            "meta granted 10 s; the node honours 4 s"
        );
    }

    #[test]
    fn lease_counts_from_the_heartbeats_send_time() {
        let h = leading();
        assert!(h.is_leading(ShardId(1), Instant(10_099)));
        assert!(!h.is_leading(ShardId(1), Instant(10_100)), "self-fenced when the lease ends");
    }

    #[test]
    fn an_open_shard_is_not_led_until_a_heartbeat_reporting_it_is_answered() {
        let mut h = ShardHost::new();
        let seq = h.heartbeat(Instant(0), &|_| ShardLoad::default()).seq;
        h.on_message(&msg(1, vec![open(1, 1, 1, Role::Leader)], None));
        // The grant answers a heartbeat sent before the shard was opened: it cannot cover it.
        h.on_message(&msg(1, vec![], grant(seq, vec![])));
        assert!(!h.is_leading(ShardId(1), Instant(1)));
    }

    #[test]
    fn revoked_shards_stop_leading_at_once() {
        let mut h = leading();
        let seq = h.heartbeat(Instant(200), &|_| ShardLoad::default()).seq;
        h.on_message(&msg(1, vec![], grant(seq, vec![ShardId(1)])));
        assert!(!h.is_leading(ShardId(1), Instant(201)));
        assert_eq!(h.counters.lease_revocations, 1);
    }

    #[test]
    fn commands_from_an_older_term_are_ignored() {
        let mut h = leading();
        h.on_message(&msg(2, vec![], None));
        h.on_message(&msg(
            1,
            vec![ShardCommand {
                shard: ShardId(1),
                version: Version(9),
                term: Term(1),
                kind: CommandKind::Close,
            }],
            None,
        ));
        assert!(h.shards().contains_key(&ShardId(1)));
        assert_eq!(h.counters.stale_term_rejections, 1);
        assert_eq!(h.term(), Term(2));
    }

    #[test]
    fn commands_at_or_below_the_held_version_are_ignored() {
        let mut h = leading();
        h.on_message(&msg(1, vec![open(1, 2, 1, Role::Follower)], None));
        assert_eq!(h.shards()[&ShardId(1)].role, Role::Leader);
        assert_eq!(h.counters.stale_version_rejections, 1);
    }

    #[test]
    fn incremental_table_commands_need_the_version_right_before() {
        let mut h = leading();
        let create = |version, table| ShardCommand {
            shard: ShardId(1),
            version: Version(version),
            term: Term(1),
            kind: CommandKind::CreateTable { table: TableId(table) },
        };
        h.on_message(&msg(1, vec![create(4, 20)], None)); // a gap: version 3 was missed
        h.on_message(&msg(1, vec![create(3, 30)], None));
        let s = &h.shards()[&ShardId(1)];
        assert_eq!(
            (s.version, s.tables.iter().copied().collect::<Vec<_>>()),
            (Version(3), vec![TableId(9), TableId(30)])
        );
    }

    #[test]
    fn a_role_change_applies_only_on_top_of_the_version_before() {
        let mut h = leading(); // shard 1 at version 2, leader
        let change = |version| ShardCommand {
            shard: ShardId(1),
            version: Version(version),
            term: Term(1),
            kind: CommandKind::ChangeRole { role: Role::Follower },
        };
        h.on_message(&msg(1, vec![change(4)], None));
        assert_eq!(
            h.shards()[&ShardId(1)].role,
            Role::Leader,
            "a gap: the node waits for a re-sync"
        );
        h.on_message(&msg(1, vec![change(3)], None));
        let s = &h.shards()[&ShardId(1)];
        assert_eq!((s.role, s.version, s.lease_until), (Role::Follower, Version(3), None));
    }

    #[test]
    fn a_close_for_a_shard_not_held_is_applied_once() {
        let mut h = ShardHost::new();
        let close = ShardCommand {
            shard: ShardId(4),
            version: Version(5),
            term: Term(1),
            kind: CommandKind::Close,
        };
        assert_eq!(h.on_message(&msg(1, vec![close.clone()], None)).len(), 1);
        assert!(h.on_message(&msg(1, vec![close], None)).is_empty(), "a repeat is refused");
        assert!(
            h.on_message(&msg(1, vec![open(4, 4, 1, Role::Leader)], None)).is_empty(),
            "so is an older open"
        );
    }

    #[test]
    fn a_closed_shard_is_not_reopened_by_a_late_command() {
        let mut h = leading();
        h.on_message(&msg(
            1,
            vec![ShardCommand {
                shard: ShardId(1),
                version: Version(3),
                term: Term(1),
                kind: CommandKind::Close,
            }],
            None,
        ));
        h.on_message(&msg(1, vec![open(1, 2, 1, Role::Leader)], None));
        assert!(!h.shards().contains_key(&ShardId(1)));
    }

    #[test]
    fn epoch_never_goes_back_within_a_term() {
        let mut h = ShardHost::new();
        h.on_message(&NodeMessage { epoch: Epoch(5), ..msg(1, vec![], None) });
        h.on_message(&NodeMessage { epoch: Epoch(4), ..msg(1, vec![], None) });
        assert_eq!(h.epoch(), Epoch(5));
    }
}
