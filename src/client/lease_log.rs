//! Turns a [`ShardHost`]'s leases into intervals: when a node started leading a shard, until
//! when, and when it stopped early. Node agents log these so that tests can check, after the
//! fact, that no two nodes ever led one shard at once.

use std::collections::BTreeMap;

use super::ShardHost;
use crate::core::{Instant, Role, ShardId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// The node leads `shard` from `from` until `until` (a grant or an extension).
    Held { shard: ShardId, from: Instant, until: Instant },
    /// The node stopped leading `shard` at `at`, before its lease ran out (revoked or closed).
    Cut { shard: ShardId, at: Instant },
}

/// Remembers the leases last seen, to report only what changed.
#[derive(Debug, Default)]
pub struct LeaseTracker {
    leased: BTreeMap<ShardId, Instant>,
}

impl LeaseTracker {
    /// What changed since the last call, looking at the host at `now` (the node's clock).
    pub fn observe(&mut self, host: &ShardHost, now: Instant) -> Vec<LeaseEvent> {
        let current: BTreeMap<ShardId, Instant> = host
            .shards()
            .iter()
            .filter_map(|(&id, s)| match (s.role, s.lease_until) {
                (Role::Leader, Some(until)) if until > now => Some((id, until)),
                _ => None,
            })
            .collect();
        let mut events = Vec::new();
        for (&shard, &until) in &current {
            if self.leased.get(&shard) != Some(&until) {
                events.push(LeaseEvent::Held { shard, from: now, until });
            }
        }
        for (&shard, &until) in &self.leased {
            if !current.contains_key(&shard) && until > now {
                events.push(LeaseEvent::Cut { shard, at: now });
            }
        }
        self.leased = current;
        events
    }
}
