//! Clusters by name, as requests see them while creates and drops are being written.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::config::CoreConfig;
use crate::core::error::{quoted, MetaError, MetaResult};
use crate::core::ids::{ClusterId, NodeId};
use crate::core::model::{Catalog, ClusterCatalog};

/// Clusters whose creation or drop is being written.
#[derive(Default)]
pub(super) struct PendingClusters {
    /// By name, with the id each will have.
    pub creating: BTreeMap<String, ClusterId>,
    /// Decided, not yet landed: nothing more is decided about them, and they answer nothing.
    pub dropping: BTreeSet<ClusterId>,
}

/// The cluster named `name`. One being dropped is gone already. One not there yet but on its
/// way (being created, or the default cluster, which the leader creates on its first tick) is `Unavailable`, which clients retry,
/// rather than `NotFound`: a client that starts with a fresh service must not be told for good
/// that the default cluster does not exist.
pub(super) fn cluster_named<'a>(
    catalog: &'a Catalog,
    pending: &PendingClusters,
    name: &str,
    config: &CoreConfig,
) -> MetaResult<&'a ClusterCatalog> {
    if let Some(c) = catalog.cluster_by_name(name) {
        if pending.dropping.contains(&c.id()) {
            return Err(MetaError::NotFound(format!(
                "cluster {name} is being dropped",
                name = quoted(name)
            )));
        }
        return Ok(c);
    }
    if pending.creating.contains_key(name)
        || config.default_cluster.as_ref().is_some_and(|d| d.name == name)
    {
        return Err(MetaError::Unavailable(format!(
            "cluster {name} is being created; retry",
            name = quoted(name)
        )));
    }
    Err(MetaError::NotFound(format!("cluster {name}", name = quoted(name))))
}

/// The id of node `node` in cluster `c` (named `cluster` in the request); `NotFound` if none.
pub(super) fn node_named(c: &ClusterCatalog, cluster: &str, node: &str) -> MetaResult<NodeId> {
    c.node_by_name.get(node).copied().ok_or_else(|| {
        MetaError::NotFound(format!(
            "node {node} in cluster {cluster}",
            node = quoted(node),
            cluster = quoted(cluster)
        ))
    })
}
