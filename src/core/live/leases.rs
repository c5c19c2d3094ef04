//! Per-shard state that lives only in the leader's memory: who may hold the shard's lease and
//! until when, whether its leader has reported the current version, and the newest version
//! pushed between heartbeats. A new meta leader rebuilds it with one lease of grace. This is one
//! shard's part; each lives in the shard's entry (see [`per_shard`](super::per_shard)).

use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::ids::*;
use crate::core::output::FailoverLog;
use crate::core::time::{Duration, Instant};

/// One shard's lease, and what its leader last reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShardLease {
    /// The node whose lease for this shard may still be valid, and until when (meta's clock).
    holder: NodeSlot,
    until: Instant,
    /// When the holder's lease was last granted or renewed: it was alive then.
    renewed: Instant,
    /// The leader reported the shard at `ready_from` or later.
    leader_ready: bool,
    /// The version of the shard's last re-opening (a placement or table set written whole):
    /// its leader is ready once it reports that version or a later one. Versions that only
    /// add, drop or alter a table reach the replicas as commands and do not move it, so that
    /// a shard under steady DDL, one version ahead of every heartbeat, does not count as
    /// opening again at each one, nor keep a split waiting for a report that never catches up.
    ready_from: Version,
    /// The newest version pushed to the shard's replicas between heartbeats, and when: none
    /// yet is version 0 at 0, which no push can be taken for (a push follows a change, which
    /// raises the version past 0). Not an `Option`, whose tag would push the shard's entry past
    /// its cache line.
    pushed: (Version, Instant),
}

impl ShardLease {
    /// Held by `holder`, if any, for one more lease from `now`: a new meta leader's grace.
    pub fn inherited(holder: Option<NodeId>, now: Instant, config: &CoreConfig) -> ShardLease {
        let holder = NodeSlot::from(holder);
        ShardLease { holder, until: now + config.lease(), renewed: now, ..Default::default() }
    }

    /// Until when its holder's lease may be valid (meaningless with no holder).
    pub fn until(&self) -> Instant {
        self.until
    }

    /// Whether every lease any node may hold for the shard has surely ended.
    pub fn expired(&self, now: Instant, config: &CoreConfig) -> bool {
        let drift = if config.has_bug(PlantedBug::IgnoreClockDrift) {
            Duration(0)
        } else {
            config.clock_drift()
        };
        self.holder == NodeSlot::NONE
            || config.has_bug(PlantedBug::SkipLeaseWait)
            || now > self.until + drift
    }

    /// Whether `node` may be given the lease: no other node's lease may still be valid,
    /// counting clock drift.
    pub fn free_for(&self, node: NodeId, now: Instant, config: &CoreConfig) -> bool {
        self.holder.get() == Some(node) || self.expired(now, config)
    }

    /// Grants (or renews) `node`'s lease until `now` plus one lease, if no other node's lease
    /// may still hold (S1); `false`, granting nothing, otherwise. `offline` says which nodes
    /// are offline: a lease taken over from one of those ends a failover, which goes in
    /// `failovers`.
    pub fn try_grant(
        &mut self,
        node: NodeId,
        now: Instant,
        config: &CoreConfig,
        offline: impl Fn(NodeId) -> bool,
        failovers: &mut FailoverLog,
    ) -> bool {
        if !self.free_for(node, now, config) {
            return false;
        }
        let until = now + config.lease();
        assert!(
            self.holder.get() != Some(node) || until >= self.until,
            "a renewal never shortens a lease"
        );
        // An offline node's lease ran out: it died or was cut off, and the shard had no writer
        // since the lease was last renewed. (A transfer's old leader lets go, or is online.)
        if self.holder.get().is_some_and(|h| h != node && offline(h)) {
            failovers.record(now.saturating_since(self.renewed).as_millis());
        }
        (self.holder, self.until, self.renewed) = (NodeSlot::from(Some(node)), until, now);
        debug_assert!(!self.expired(now, config) || config.has_bug(PlantedBug::SkipLeaseWait));
        true
    }

    /// `node` let go of the shard: its lease, if it held one, is over. `true` if it held one.
    pub fn released(&mut self, node: NodeId) -> bool {
        let held = self.holder.get() == Some(node);
        if held {
            self.holder = NodeSlot::NONE;
        }
        assert!(self.holder.get() != Some(node), "a released lease is held by no one");
        held
    }

    /// Whether the shard's leader reported it open at its current version.
    pub fn leader_ready(&self) -> bool {
        self.leader_ready
    }

    /// The shard was re-opened at `version`: not ready until its leader reports it.
    pub fn reopened(&mut self, version: Version) {
        assert!(version >= self.ready_from, "a shard re-opens at a newer version, never an older");
        (self.leader_ready, self.ready_from) = (false, version);
    }

    /// Its leader must report `version` or a later one again (the catalog was reloaded).
    pub fn forget_ready(&mut self, version: Version) {
        (self.leader_ready, self.ready_from) = (false, version);
    }

    /// The leader (as the catalog has it) reported the shard at `reported`.
    pub fn leader_reported(&mut self, reported: Option<Version>) {
        self.leader_ready = reported.is_some_and(|v| v >= self.ready_from);
    }

    /// The shard's replicas were sent `version` at `now`, between heartbeats.
    pub fn pushed(&mut self, version: Version, now: Instant) {
        let (v, at) = self.pushed;
        assert!(v <= version && at <= now, "pushes go forward in version and time");
        self.pushed = (version, now);
    }

    /// Whether a replica that reports the version just before `current` has the push of
    /// `current` on its way: pushed recently, within two heartbeat intervals. A full re-sync
    /// (every table of the shard) would then only race the push. A push that was lost shows as a
    /// lag of two or more versions once the next change lands, or as the same lag once the
    /// window has passed, and gets the re-sync then.
    pub fn push_in_flight(
        &self,
        reported: Version,
        current: Version,
        now: Instant,
        config: &CoreConfig,
    ) -> bool {
        let window = Duration(2 * config.heartbeat_interval_ms);
        let (v, at) = self.pushed;
        reported.next() == current && v == current && now < at + window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_takeover_after_a_lease_ran_out_is_timed_from_the_last_renewal() {
        let config = CoreConfig::default();
        let (mut s0, mut s1, mut log) =
            (ShardLease::default(), ShardLease::default(), FailoverLog::default());
        let (a, b) = (NodeId(0), NodeId(1));
        let a_dead = |n: NodeId| n == a;
        assert!(s0.try_grant(a, Instant(1_000), &config, a_dead, &mut log));
        assert!(s0.try_grant(a, Instant(2_000), &config, a_dead, &mut log), "a renewal");
        let over = Instant(2_000) + config.lease() + config.clock_drift() + Duration(1);
        assert!(
            !s0.try_grant(b, over - Duration(2), &config, a_dead, &mut log),
            "not while a's lease may hold"
        );
        assert!(s0.try_grant(b, over + Duration(499), &config, a_dead, &mut log));
        // A lease given up (a transfer) and taken by another node is no failover, nor is one
        // that ran out on a node that is online.
        assert!(s1.try_grant(a, Instant(1_000), &config, a_dead, &mut log));
        assert!(s1.released(a));
        assert!(!s1.released(a), "released once");
        assert!(s1.try_grant(b, Instant(1_500), &config, a_dead, &mut log));
        let later = Instant(1_500) + config.lease() + config.clock_drift() + Duration(1);
        assert!(s1.try_grant(a, later, &config, a_dead, &mut log));
        assert_eq!(
            (log.total, log.after(0).collect::<Vec<_>>()),
            (1, vec![over.as_millis() + 499 - 2_000])
        );
    }

    #[test]
    fn the_failover_log_keeps_the_newest_and_numbers_them_all() {
        let mut log = FailoverLog::default();
        for ms in 0..(FailoverLog::KEPT_MAX as u64 + 10) {
            log.record(ms);
        }
        assert_eq!(log.recent.len(), FailoverLog::KEPT_MAX);
        assert_eq!(log.total, FailoverLog::KEPT_MAX as u64 + 10);
        assert_eq!(
            log.after(log.total - 2).collect::<Vec<_>>(),
            vec![FailoverLog::KEPT_MAX as u64 + 8, FailoverLog::KEPT_MAX as u64 + 9]
        );
    }
}
