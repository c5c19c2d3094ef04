//! What a data node measures of the shards it leads, for its heartbeats: each shard's load and,
//! optionally, its busiest tables (meta reads them to choose how to split a shard).

use std::collections::BTreeSet;

use crate::core::ids::{ShardId, TableId};
use crate::core::input::{ShardLoad, TableLoad};

pub trait LoadSource {
    /// The load of a shard the node leads, which holds `tables`.
    fn shard_load(&self, shard: ShardId, tables: &BTreeSet<TableId>) -> ShardLoad;

    /// Appends the shard's busiest tables to `out`, busiest first; meta reads at most
    /// [`crate::core::TOP_TABLES_PER_SHARD`] of them. None by default.
    fn busiest_tables(
        &self,
        _shard: ShardId,
        _tables: &BTreeSet<TableId>,
        _out: &mut Vec<TableLoad>,
    ) {
    }

    /// A counter the node's stats sampler raises with every new sample of these figures, so
    /// that meta can tell stats that froze; 0 (the default) when it does not count.
    fn stats_sample(&self) -> u64 {
        0
    }

    /// The node's requests' latency over the last interval (a high percentile), in µs; 0 (the
    /// default) when it does not measure it. Meta judges slow nodes by it (`live::slow`).
    fn request_latency_us(&self) -> u32 {
        0
    }

    /// The disk space the node's shards may use and the space in use, in bytes; `[0, 0]`
    /// (the default) declares none. Meta keeps placement under its high-water mark.
    fn disk_bytes(&self) -> [u64; 2] {
        [0, 0]
    }

    /// How far a shard this node follows is behind its leader, in log entries, when it is not
    /// in sync (catching up after an open or a restart, say); `None` (the default) when it is
    /// in sync. Failover promotes a follower that lags only when no follower in sync lives.
    fn follower_lag(&self, _shard: ShardId) -> Option<u64> {
        None
    }
}

/// A closure of the shard id: load per shard, no table detail.
impl<F: Fn(ShardId) -> ShardLoad> LoadSource for F {
    fn shard_load(&self, shard: ShardId, _tables: &BTreeSet<TableId>) -> ShardLoad {
        self(shard)
    }
}
