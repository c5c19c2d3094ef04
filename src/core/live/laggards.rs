//! Followers that said they lag their leader, and by how much (in log entries, the data node's
//! own measure), so that failover promotes a follower in sync when one lives and otherwise the
//! one least behind (see the scheduler's failover).
//!
//! **Sparse.** Followers are in sync nearly always: only the lagging ones are kept, and a
//! heartbeat from a node that has none and reports none costs one look at its count. Each
//! heartbeat replaces what its node said before, so a follower that caught up, or that the
//! node no longer holds, is forgotten by the node's next heartbeat. Bounded by the nodes times
//! the reports a heartbeat may carry.
//!
//! **Soft state.** Like leases, it is what nodes say now: a new meta leader learns it from
//! the next heartbeats, and until a follower has said it lags, it is taken to be in sync (as a
//! data node that predates the field is).

use std::collections::BTreeMap;

use crate::core::ids::{NodeId, ShardId};

/// The lagging followers, by node.
#[derive(Clone, Debug, Default)]
pub struct Laggards {
    /// (node, shard) → entries behind.
    lag: BTreeMap<(NodeId, ShardId), u64>,
    /// How many entries each node has in `lag`, by node index.
    per_node: Vec<u32>,
}

impl Laggards {
    /// A heartbeat of `node` reported these shards it follows, each with its lag (`None`: in
    /// sync): they replace what it said before.
    pub(super) fn heard(
        &mut self,
        node: NodeId,
        follows: impl Iterator<Item = (ShardId, Option<u64>)> + Clone,
    ) {
        let had = self.per_node.get(node.index()).copied().unwrap_or(0);
        if had == 0 && !follows.clone().any(|(_, lag)| lag.is_some()) {
            return; // the common case: nothing lags, nothing did
        }
        if self.per_node.len() <= node.index() {
            self.per_node.resize(node.index() + 1, 0);
        }
        if had > 0 {
            let gone: Vec<(NodeId, ShardId)> = self
                .lag
                .range((node, ShardId(0))..=(node, ShardId(u32::MAX)))
                .map(|(&k, _)| k)
                .collect();
            for k in gone {
                self.lag.remove(&k);
            }
        }
        let mut count = 0;
        for (shard, lag) in follows {
            if let Some(entries) = lag {
                count += u32::from(self.lag.insert((node, shard), entries).is_none());
            }
        }
        self.per_node[node.index()] = count;
    }

    /// How many followers said they lag.
    pub fn count(&self) -> u32 {
        self.lag.len() as u32
    }

    /// How far `node`'s replica of `shard` said it is behind its leader; `None` when it said
    /// nothing of the kind (in sync).
    pub fn lag(&self, shard: ShardId, node: NodeId) -> Option<u64> {
        if self.per_node.get(node.index()).copied().unwrap_or(0) == 0 {
            return None;
        }
        self.lag.get(&(node, shard)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_heartbeat_replaces_what_its_node_said() {
        let mut l = Laggards::default();
        let (a, b) = (NodeId(0), NodeId(3));
        l.heard(a, [(ShardId(1), None), (ShardId(2), Some(500))].into_iter());
        l.heard(b, [(ShardId(2), Some(20))].into_iter());
        assert_eq!(
            (l.lag(ShardId(2), a), l.lag(ShardId(2), b), l.lag(ShardId(1), a)),
            (Some(500), Some(20), None)
        );
        l.heard(a, [(ShardId(1), Some(7))].into_iter());
        assert_eq!(
            (l.lag(ShardId(1), a), l.lag(ShardId(2), a)),
            (Some(7), None),
            "2 is no longer held"
        );
        l.heard(a, [(ShardId(1), None)].into_iter());
        assert_eq!(
            (l.lag(ShardId(1), a), l.lag(ShardId(2), b)),
            (None, Some(20)),
            "caught up; b's stays"
        );
    }
}
