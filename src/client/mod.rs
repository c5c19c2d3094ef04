//! What data nodes and frontends embed to talk to meta. For now, the sans-IO part that decides
//! what a data node does with meta's messages; the networked client arrives with the runtime.

pub mod shard_host;

pub use shard_host::{HostCounters, HostedShard, ShardHost};
