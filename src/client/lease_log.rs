//! Turns a [`ShardHost`]'s leases into intervals: when a node started leading a shard, until
//! when, and when it stopped early. Node agents log these so that tests can check, after the
//! fact, that no two nodes ever led one shard at once. [`TableLeaseTracker`] does the same per
//! table: a split or merge moves tables between shards while the leases run on, so a node's
//! tenure over a table can end while its tenure over the shard goes on.

use std::collections::BTreeMap;

use super::ShardHost;
use crate::core::{Instant, Role, ShardId, TableId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// The node leads `shard` from `from` until `until` (a grant or an extension).
    Held { shard: ShardId, from: Instant, until: Instant },
    /// The node stopped leading `shard` at `at`, before its lease ran out (revoked or closed).
    Cut { shard: ShardId, at: Instant },
}

/// [`LeaseEvent`] per table: the node serves `table` (leads, under lease, a shard that holds it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableLeaseEvent {
    Held {
        table: TableId,
        from: Instant,
        until: Instant,
    },
    /// The node stopped serving `table` before the lease it served it under ran out: the shard
    /// was closed or its lease revoked, or a new version of the shard left the table out.
    Cut {
        table: TableId,
        at: Instant,
    },
}

/// Remembers the leases last seen, to report only what changed.
#[derive(Debug, Default)]
pub struct LeaseTracker {
    leased: Leased<ShardId>,
}

impl LeaseTracker {
    /// What changed since the last call, looking at the host at `now` (the node's clock).
    pub fn observe(&mut self, host: &ShardHost, now: Instant) -> Vec<LeaseEvent> {
        let current = led(host, now).map(|(id, until, _)| (id, until)).collect();
        let (held, cut) = self.leased.update(current, now);
        let held =
            held.into_iter().map(|(shard, until)| LeaseEvent::Held { shard, from: now, until });
        held.chain(cut.into_iter().map(|shard| LeaseEvent::Cut { shard, at: now })).collect()
    }
}

/// [`LeaseTracker`] per table.
#[derive(Debug, Default)]
pub struct TableLeaseTracker {
    leased: Leased<TableId>,
}

impl TableLeaseTracker {
    pub fn observe(&mut self, host: &ShardHost, now: Instant) -> Vec<TableLeaseEvent> {
        let mut current: BTreeMap<TableId, Instant> = BTreeMap::new();
        for (_, until, tables) in led(host, now) {
            for &t in tables {
                let latest = current.entry(t).or_insert(until);
                *latest = (*latest).max(until);
            }
        }
        let (held, cut) = self.leased.update(current, now);
        let held = held.into_iter().map(|(table, until)| TableLeaseEvent::Held {
            table,
            from: now,
            until,
        });
        held.chain(cut.into_iter().map(|table| TableLeaseEvent::Cut { table, at: now })).collect()
    }
}

/// The shards the host leads under a lease that runs past `now`: id, lease end, tables.
fn led(
    host: &ShardHost,
    now: Instant,
) -> impl Iterator<Item = (ShardId, Instant, &std::collections::BTreeSet<TableId>)> {
    host.shards().iter().filter_map(move |(&id, s)| match (s.role, s.lease_until) {
        (Role::Leader, Some(until)) if until > now => Some((id, until, &s.tables)),
        _ => None,
    })
}

/// Each unit's lease end as last seen.
#[derive(Debug)]
struct Leased<K>(BTreeMap<K, Instant>);

impl<K> Default for Leased<K> {
    fn default() -> Self {
        Leased(BTreeMap::new())
    }
}

impl<K: Ord + Copy> Leased<K> {
    /// Replaces what was seen with `current`: the units held anew or until a new end, and
    /// those no longer held though their last lease had not run out.
    fn update(
        &mut self,
        current: BTreeMap<K, Instant>,
        now: Instant,
    ) -> (Vec<(K, Instant)>, Vec<K>) {
        let held = current
            .iter()
            .filter(|(k, until)| self.0.get(k) != Some(until))
            .map(|(&k, &until)| (k, until))
            .collect();
        let cut = self
            .0
            .iter()
            .filter(|(k, &until)| !current.contains_key(k) && until > now)
            .map(|(&k, _)| k)
            .collect();
        self.0 = current;
        (held, cut)
    }
}
