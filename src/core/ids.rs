//! Identifiers. Each is a newtype so that a shard id can never be passed where a node id belongs.
//! Shards and nodes are dense per cluster (vector indexes); tables and schemas come from an
//! allocator that never reuses an id.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A cluster managed by this meta service.
    ClusterId(u32)
);
id_type!(
    /// A schema within a cluster.
    SchemaId(u64)
);
id_type!(
    /// A table within a cluster; never reused, even after a drop.
    TableId(u64)
);
id_type!(
    /// A shard within a cluster: `0..shard_count`.
    ShardId(u32)
);
id_type!(
    /// A registered data node within a cluster: dense, in registration order.
    NodeId(u32)
);
id_type!(
    /// The meta leader's term: grows with every meta leader change and fences its writes.
    Term(u64)
);
id_type!(
    /// The cluster's topology epoch: grows with every topology change.
    Epoch(u64)
);
id_type!(
    /// A shard's version: grows with every change to its leader, members or table set.
    Version(u64)
);
id_type!(
    /// A request, numbered by the driver; the reply carries it back.
    RequestId(u64)
);
id_type!(
    /// A heartbeat stream, numbered by the driver; messages for a node go to its latest session.
    SessionId(u64)
);
id_type!(
    /// A route watch stream, numbered by the driver.
    WatchId(u64)
);
id_type!(
    /// A storage write batch, numbered by the core.
    WriteId(u64)
);

impl ShardId {
    /// The shard's position in its cluster's per-shard arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl NodeId {
    /// The node's position in its cluster's per-node arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An optional node id in 4 bytes, where an `Option<NodeId>` takes 8: for the per-shard entries
/// that must fit their cache lines (see `live::per_shard`). Node ids are dense and bounded far
/// below `u32::MAX`, which stands for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSlot(u32);

impl NodeSlot {
    /// No node.
    pub const NONE: NodeSlot = NodeSlot(u32::MAX);

    /// The node in the slot, if any.
    pub fn get(self) -> Option<NodeId> {
        (self != NodeSlot::NONE).then_some(NodeId(self.0))
    }
}

impl Default for NodeSlot {
    fn default() -> Self {
        NodeSlot::NONE
    }
}

impl From<Option<NodeId>> for NodeSlot {
    fn from(node: Option<NodeId>) -> Self {
        match node {
            Some(n) => {
                assert!(n.0 != u32::MAX, "node id {n} is the empty slot's");
                NodeSlot(n.0)
            }
            None => NodeSlot::NONE,
        }
    }
}

impl Version {
    /// The version after this one.
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

impl Epoch {
    /// The epoch after this one.
    pub fn next(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}
