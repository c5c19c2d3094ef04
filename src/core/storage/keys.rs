//! The storage key schema. Every key lives under [`ROOT`]; numbers are zero-padded so that a
//! prefix scan returns records in id order.
//!
//! ```text
//! /shardmeta/v1/clusters/{cluster}            ClusterRecord (a tombstone once dropped)
//! /shardmeta/v1/c/{cluster}/epoch             CounterRecord
//! /shardmeta/v1/c/{cluster}/id_ceiling        CounterRecord (ids below it may be in use)
//! /shardmeta/v1/c/{cluster}/schemas/{id}      SchemaRecord
//! /shardmeta/v1/c/{cluster}/tables/{id}       TableRecord
//! /shardmeta/v1/c/{cluster}/shards/{id}       ShardRecord (absent while never assigned)
//! /shardmeta/v1/c/{cluster}/nodes/{id}        NodeRecord
//! /shardmeta/v1/c/{cluster}/procedures/{id}   ProcedureRecord (while it runs)
//! /shardmeta/v1/fence                         FenceRecord (the write chain, see `batch`)
//! ```

use crate::core::ids::ClusterId;

/// Every key the core writes starts with this.
pub const ROOT: &str = "/shardmeta/v1/";

/// The write chain's key; not part of the catalog.
pub const FENCE_KEY: &str = "/shardmeta/v1/fence";

/// Every cluster record.
pub const CLUSTERS_PREFIX: &str = "/shardmeta/v1/clusters/";

/// Everything inside clusters. It sorts before [`CLUSTERS_PREFIX`], which is why a snapshot is
/// read range by range (`snapshot::SNAPSHOT_PREFIXES`), not in plain key order.
pub const CLUSTER_DATA_PREFIX: &str = "/shardmeta/v1/c/";

/// What a key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A cluster's record (a tombstone once dropped).
    Cluster(ClusterId),
    /// The cluster's epoch, which every topology change raises.
    Epoch(ClusterId),
    /// The ceiling of the ids the cluster hands out (tables, schemas, procedures).
    IdCeiling(ClusterId),
    /// The cluster's scheduler settings, once an operator changed them.
    Scheduler(ClusterId),
    /// The cluster's placement rule, once an operator set one.
    Placement(ClusterId),
    /// A schema, by id.
    Schema(ClusterId, u64),
    /// A table, by id.
    Table(ClusterId, u64),
    /// A shard, by id.
    Shard(ClusterId, u32),
    /// A node, by id.
    Node(ClusterId, u32),
    /// A procedure in flight, by id.
    Procedure(ClusterId, u64),
    /// Not a key: the prefix of every key inside the cluster, deleted when it is dropped.
    ClusterData(ClusterId),
}

impl Key {
    /// The key as storage holds it, under [`super::ROOT`]; ids are zero-padded, so that keys
    /// sort by id.
    pub fn encode(self) -> String {
        match self {
            Key::Cluster(c) => format!("{CLUSTERS_PREFIX}{:010}", c.0),
            Key::Epoch(c) => format!("{ROOT}c/{:010}/epoch", c.0),
            Key::IdCeiling(c) => format!("{ROOT}c/{:010}/id_ceiling", c.0),
            Key::Scheduler(c) => format!("{ROOT}c/{:010}/scheduler", c.0),
            Key::Placement(c) => format!("{ROOT}c/{:010}/placement", c.0),
            Key::Schema(c, id) => format!("{ROOT}c/{:010}/schemas/{id:020}", c.0),
            Key::Table(c, id) => format!("{ROOT}c/{:010}/tables/{id:020}", c.0),
            Key::Shard(c, id) => format!("{ROOT}c/{:010}/shards/{id:010}", c.0),
            Key::Node(c, id) => format!("{ROOT}c/{:010}/nodes/{id:010}", c.0),
            Key::Procedure(c, id) => format!("{ROOT}c/{:010}/procedures/{id:020}", c.0),
            Key::ClusterData(c) => format!("{ROOT}c/{:010}/", c.0),
        }
    }

    /// The cluster the key belongs to.
    pub fn cluster(self) -> ClusterId {
        match self {
            Key::Cluster(c)
            | Key::Epoch(c)
            | Key::IdCeiling(c)
            | Key::Scheduler(c)
            | Key::Placement(c)
            | Key::Schema(c, _)
            | Key::Table(c, _)
            | Key::Shard(c, _)
            | Key::Node(c, _)
            | Key::Procedure(c, _)
            | Key::ClusterData(c) => c,
        }
    }

    /// Parses a stored key; `None` for anything that is not one of ours.
    pub fn decode(key: &str) -> Option<Key> {
        let rest = key.strip_prefix(ROOT)?;
        if let Some(id) = rest.strip_prefix("clusters/") {
            return Some(Key::Cluster(ClusterId(parse(id)?)));
        }
        let rest = rest.strip_prefix("c/")?;
        let (cluster, rest) = rest.split_once('/')?;
        let c = ClusterId(parse(cluster)?);
        match rest.split_once('/') {
            None if rest == "epoch" => Some(Key::Epoch(c)),
            None if rest == "id_ceiling" => Some(Key::IdCeiling(c)),
            None if rest == "scheduler" => Some(Key::Scheduler(c)),
            None if rest == "placement" => Some(Key::Placement(c)),
            Some(("schemas", id)) => Some(Key::Schema(c, parse(id)?)),
            Some(("tables", id)) => Some(Key::Table(c, parse(id)?)),
            Some(("shards", id)) => Some(Key::Shard(c, parse(id)?)),
            Some(("nodes", id)) => Some(Key::Node(c, parse(id)?)),
            Some(("procedures", id)) => Some(Key::Procedure(c, parse(id)?)),
            _ => None,
        }
    }
}

fn parse<T: std::str::FromStr>(digits: &str) -> Option<T> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips() {
        let c = ClusterId(7);
        for key in [
            Key::Cluster(c),
            Key::Epoch(c),
            Key::IdCeiling(c),
            Key::Scheduler(c),
            Key::Placement(c),
            Key::Schema(c, 3),
            Key::Table(c, u64::MAX),
            Key::Shard(c, 0),
            Key::Node(c, 42),
            Key::Procedure(c, 9),
        ] {
            assert_eq!(Key::decode(&key.encode()), Some(key), "{}", key.encode());
        }
    }

    #[test]
    fn foreign_and_malformed_keys_are_not_ours() {
        for key in [
            "/other/x",
            "/shardmeta/v1/c/1/tables/x",
            "/shardmeta/v1/c//epoch",
            "/shardmeta/v1/c/1/bogus/2",
        ] {
            assert_eq!(Key::decode(key), None, "{key}");
        }
    }

    #[test]
    fn padded_ids_sort_numerically() {
        let c = ClusterId(1);
        assert!(Key::Table(c, 9).encode() < Key::Table(c, 10).encode());
    }
}
