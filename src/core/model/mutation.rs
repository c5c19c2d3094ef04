//! A [`Mutation`] is one durable change: one storage key written or deleted. The same value is
//! encoded to storage by the leader and decoded from storage on load (`storage::codec`), and
//! both paths apply it to the catalog through one function, [`Catalog::apply`](super::Catalog::apply).

use super::records::*;
use crate::core::ids::{ClusterId, Epoch, TableId};

#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    PutCluster(ClusterRecord),
    /// Everything inside a cluster, in one range delete; its record becomes a tombstone in the
    /// same write.
    DeleteClusterData(ClusterId),
    PutEpoch(ClusterId, Epoch),
    PutIdCeiling(ClusterId, u64),
    PutScheduler(ClusterId, SchedulerRecord),
    PutSchema(ClusterId, SchemaRecord),
    /// Only a schema that holds no table.
    DeleteSchema(ClusterId, u64),
    PutTable(ClusterId, TableRecord),
    DeleteTable(ClusterId, TableId),
    PutShard(ClusterId, ShardRecord),
    PutNode(ClusterId, NodeRecord),
    PutProcedure(ClusterId, ProcedureRecord),
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
