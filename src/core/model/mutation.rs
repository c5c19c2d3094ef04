//! A [`Mutation`] is one durable change: one storage key written or deleted. The same value is
//! encoded to storage by the leader and decoded from storage on load (`storage::codec`), and
//! both paths apply it to the catalog through one function, [`Catalog::apply`](super::Catalog::apply).

use super::records::*;
use super::rule::PlacementRecord;
use crate::core::ids::{ClusterId, Epoch, TableId};

/// One durable change to the catalog, as one storage key written or deleted.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    /// A cluster's record: created, grown by a split, or turned into a tombstone.
    PutCluster(ClusterRecord),
    /// Everything inside a cluster, in one range delete; its record becomes a tombstone in the
    /// same write.
    DeleteClusterData(ClusterId),
    /// The cluster's epoch, raised with a topology change in the same write.
    PutEpoch(ClusterId, Epoch),
    /// The ceiling below which the cluster's ids are handed out.
    PutIdCeiling(ClusterId, u64),
    /// The cluster's scheduler settings, as an operator set them.
    PutScheduler(ClusterId, SchedulerRecord),
    /// The cluster's placement rule, as an operator set it.
    PutPlacement(ClusterId, PlacementRecord),
    /// A schema, created or marked as dropping.
    PutSchema(ClusterId, SchemaRecord),
    /// Only a schema that holds no table.
    DeleteSchema(ClusterId, u64),
    /// A table, created, altered or moved to another shard.
    PutTable(ClusterId, TableRecord),
    /// A table dropped.
    DeleteTable(ClusterId, TableId),
    /// A shard's placement: its version, leader, followers and any transfer.
    PutShard(ClusterId, ShardRecord),
    /// A node registered, changed (endpoint, zone, drain) or removed (a tombstone).
    PutNode(ClusterId, NodeRecord),
    /// A procedure started or at its next step.
    PutProcedure(ClusterId, ProcedureRecord),
    /// A procedure ended.
    DeleteProcedure(ClusterId, u64),
}

/// Storage held something the core cannot read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot decode stored metadata: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

impl Mutation {
    /// The cluster whose data it changes.
    pub fn cluster(&self) -> ClusterId {
        match self {
            Mutation::PutCluster(r) => ClusterId(r.id),
            Mutation::DeleteClusterData(c)
            | Mutation::PutEpoch(c, _)
            | Mutation::PutIdCeiling(c, _)
            | Mutation::PutScheduler(c, _)
            | Mutation::PutPlacement(c, _)
            | Mutation::PutSchema(c, _)
            | Mutation::DeleteSchema(c, _)
            | Mutation::PutTable(c, _)
            | Mutation::DeleteTable(c, _)
            | Mutation::PutShard(c, _)
            | Mutation::PutNode(c, _)
            | Mutation::PutProcedure(c, _)
            | Mutation::DeleteProcedure(c, _) => *c,
        }
    }
}
