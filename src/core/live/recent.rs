//! When each shard's leader and each node's set of leader shards last changed, so that the
//! balancer leaves them alone until fresh load windows have been seen (see
//! [`crate::core::scheduler`]'s rebalance).

use crate::core::ids::{NodeId, ShardId};
use crate::core::time::{Duration, Instant};

/// When each shard's and each node's leadership last moved.
#[derive(Clone, Debug, Default)]
pub struct Recent {
    shard_moved: Vec<Option<Instant>>,
    node_moved: Vec<Option<Instant>>,
}

impl Recent {
    pub(super) fn new(shards: usize) -> Recent {
        Recent { shard_moved: vec![None; shards], node_moved: Vec::new() }
    }

    /// New shards (a split): never moved.
    pub(super) fn grow(&mut self, shards: usize) {
        self.shard_moved.resize(shards, None);
    }

    /// The shard's leader moved from `from` to `to` at `now`.
    pub(super) fn moved(&mut self, shard: ShardId, nodes: [Option<u32>; 2], now: Instant) {
        self.shard_moved[shard.index()] = Some(now);
        for n in nodes.into_iter().flatten() {
            let i = n as usize;
            if self.node_moved.len() <= i {
                self.node_moved.resize(i + 1, None);
            }
            self.node_moved[i] = Some(now);
        }
    }

    /// Whether the shard's leader moved less than `cooldown` ago.
    pub fn shard_cooling(&self, shard: ShardId, now: Instant, cooldown: Duration) -> bool {
        self.shard_moved[shard.index()].is_some_and(|at| now < at + cooldown)
    }

    /// Whether a leader moved onto or off the node less than `settle` ago.
    pub fn node_settling(&self, node: NodeId, now: Instant, settle: Duration) -> bool {
        self.node_moved.get(node.index()).copied().flatten().is_some_and(|at| now < at + settle)
    }
}
