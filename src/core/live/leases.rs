//! Per-shard state that lives only in the leader's memory: who may hold the shard's lease and
//! until when, whether its leader has reported the current version, and the newest version
//! pushed between heartbeats. A new meta leader rebuilds it with one lease of grace.

use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::ids::*;
use crate::core::model::ClusterCatalog;
use crate::core::output::FailoverLog;
use crate::core::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
struct ShardLease {
    /// The node whose lease for this shard may still be valid, and until when (meta's clock).
    holder: Option<NodeId>,
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
    /// The newest version pushed to the shard's replicas between heartbeats, and when.
    pushed: Option<(Version, Instant)>,
}

/// Per shard: who holds its lease and until when, and what its leader last reported.
#[derive(Clone, Debug, Default)]
pub struct Leases {
    shards: Vec<ShardLease>,
    failovers: FailoverLog,
}

impl Leases {
    /// Every assigned shard counts as leased by its leader for one more lease, so that a meta
    /// failover never causes a shard failover by itself.
    pub(super) fn inherited(cluster: &ClusterCatalog, now: Instant, config: &CoreConfig) -> Leases {
        let lease = |holder: Option<u32>| ShardLease {
            holder: holder.map(NodeId),
            until: now + config.lease(),
            renewed: now,
            ..Default::default()
        };
        Leases {
            shards: cluster.shards.iter().map(|s| lease(s.leader)).collect(),
            failovers: FailoverLog::default(),
        }
    }

    /// New shards (a split): unassigned, so no lease.
    pub(super) fn grow(&mut self, shards: usize) {
        assert!(shards >= self.shards.len(), "the shard count never shrinks");
        self.shards.resize(shards, ShardLease::default());
    }

    /// How many shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether the cluster has no shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Whether every lease any node may hold for the shard has surely ended.
    pub fn expired(&self, shard: ShardId, now: Instant, config: &CoreConfig) -> bool {
        let s = &self.shards[shard.index()];
        let drift = if config.has_bug(PlantedBug::IgnoreClockDrift) {
            Duration(0)
        } else {
            config.clock_drift()
        };
        s.holder.is_none() || config.has_bug(PlantedBug::SkipLeaseWait) || now > s.until + drift
    }

    /// Whether `node` may be given a lease for `shard`: no other node's lease may still be
    /// valid, counting clock drift.
    pub fn free_for(
        &self,
        shard: ShardId,
        node: NodeId,
        now: Instant,
        config: &CoreConfig,
    ) -> bool {
        self.shards[shard.index()].holder == Some(node) || self.expired(shard, now, config)
    }

    /// Grants (or renews) `node`'s lease on `shard` until `now` plus one lease, if no other
    /// node's lease may still hold (S1); `false`, granting nothing, otherwise. `offline` says
    /// which nodes are offline: a lease taken over from one of those ends a failover.
    pub(super) fn try_grant(
        &mut self,
        shard: ShardId,
        node: NodeId,
        now: Instant,
        config: &CoreConfig,
        offline: impl Fn(NodeId) -> bool,
    ) -> bool {
        if !self.free_for(shard, node, now, config) {
            return false;
        }
        let s = &mut self.shards[shard.index()];
        let until = now + config.lease();
        assert!(s.holder != Some(node) || until >= s.until, "a renewal never shortens a lease");
        // An offline node's lease ran out: it died or was cut off, and the shard had no writer
        // since the lease was last renewed. (A transfer's old leader lets go, or is online.)
        if s.holder.is_some_and(|h| h != node && offline(h)) {
            self.failovers.record(now.saturating_since(s.renewed).as_millis());
        }
        (s.holder, s.until, s.renewed) = (Some(node), until, now);
        debug_assert!(
            !self.expired(shard, now, config) || config.has_bug(PlantedBug::SkipLeaseWait)
        );
        true
    }

    /// How long failed-over shards went without a writable leader.
    pub fn failovers(&self) -> &FailoverLog {
        &self.failovers
    }

    /// `node` let go of `shard`: its lease, if it held one, is over. `true` if it held one.
    pub(super) fn released(&mut self, shard: ShardId, node: NodeId) -> bool {
        let s = &mut self.shards[shard.index()];
        let held = s.holder == Some(node);
        if held {
            s.holder = None;
        }
        assert!(s.holder != Some(node), "a released lease is held by no one");
        held
    }

    /// Whether the shard's leader reported it open at its current version.
    pub fn leader_ready(&self, shard: ShardId) -> bool {
        self.shards[shard.index()].leader_ready
    }

    /// Every shard's leader must report its version again (the catalog was reloaded): the
    /// shards' versions as the catalog has them now.
    pub(super) fn forget_ready(&mut self, versions: impl ExactSizeIterator<Item = Version>) {
        assert_eq!(versions.len(), self.shards.len(), "a version for every shard");
        for (s, version) in self.shards.iter_mut().zip(versions) {
            (s.leader_ready, s.ready_from) = (false, version);
        }
    }

    /// The shard was re-opened at `version`: not ready until its leader reports it.
    pub(super) fn reopened(&mut self, shard: ShardId, version: Version) {
        let s = &mut self.shards[shard.index()];
        assert!(version >= s.ready_from, "a shard re-opens at a newer version, never an older");
        (s.leader_ready, s.ready_from) = (false, version);
    }

    /// The leader (as the catalog has it) reported the shard at `reported`.
    pub(super) fn leader_reported(&mut self, shard: ShardId, reported: Option<Version>) {
        let s = &mut self.shards[shard.index()];
        s.leader_ready = reported.is_some_and(|v| v >= s.ready_from);
    }

    /// The shard's replicas were sent `version` at `now`, between heartbeats.
    pub(super) fn pushed(&mut self, shard: ShardId, version: Version, now: Instant) {
        let s = &mut self.shards[shard.index()];
        assert!(
            s.pushed.is_none_or(|(v, at)| v <= version && at <= now),
            "pushes go forward in version and time"
        );
        s.pushed = Some((version, now));
    }

    /// Whether a replica that reports the version just before `current` has the push of
    /// `current` on its way: pushed recently, within two heartbeat intervals. A full re-sync
    /// (every table of the shard) would then only race the push. A push that was lost shows as a
    /// lag of two or more versions once the next change lands, or as the same lag once the
    /// window has passed, and gets the re-sync then.
    pub fn push_in_flight(
        &self,
        shard: ShardId,
        reported: Version,
        current: Version,
        now: Instant,
        config: &CoreConfig,
    ) -> bool {
        let window = Duration(2 * config.heartbeat_interval_ms);
        let pushed = self.shards[shard.index()].pushed;
        reported.next() == current
            && matches!(pushed, Some((v, at)) if v == current && now < at + window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_takeover_after_a_lease_ran_out_is_timed_from_the_last_renewal() {
        let config = CoreConfig::default();
        let mut leases =
            Leases { shards: vec![ShardLease::default(); 2], failovers: FailoverLog::default() };
        let (a, b, s0, s1) = (NodeId(0), NodeId(1), ShardId(0), ShardId(1));
        let a_dead = |n: NodeId| n == a;
        assert!(leases.try_grant(s0, a, Instant(1_000), &config, a_dead));
        assert!(leases.try_grant(s0, a, Instant(2_000), &config, a_dead), "a renewal");
        let over = Instant(2_000) + config.lease() + config.clock_drift() + Duration(1);
        assert!(
            !leases.try_grant(s0, b, over - Duration(2), &config, a_dead),
            "not while a's lease may hold"
        );
        assert!(leases.try_grant(s0, b, over + Duration(499), &config, a_dead));
        // A lease given up (a transfer) and taken by another node is no failover, nor is one
        // that ran out on a node that is online.
        assert!(leases.try_grant(s1, a, Instant(1_000), &config, a_dead));
        assert!(leases.released(s1, a));
        assert!(!leases.released(s1, a), "released once");
        assert!(leases.try_grant(s1, b, Instant(1_500), &config, a_dead));
        assert!(leases.try_grant(
            s1,
            a,
            Instant(1_500) + config.lease() + config.clock_drift() + Duration(1),
            &config,
            a_dead
        ));
        let log = leases.failovers();
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
