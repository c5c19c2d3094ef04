//! [`Leader::validate`]: every derived index and counter the leader keeps, rebuilt from the
//! catalog and the intent and compared with what it holds. The runtime updates these
//! incrementally on every decision and landing; a missed or doubled update would go unnoticed
//! until a placement or failover went wrong far from its cause. The core runs this after every
//! input in debug builds (every test and simulator), so a broken update trips next to its cause.

use std::collections::BTreeSet;

use super::runtime::{planned, ClusterRuntime};
use super::Leader;
use crate::core::ids::*;
use crate::core::model::ClusterCatalog;

/// Above this many shards in all, [`Leader::validate`] checks nothing: the check walks every
/// shard and node, which at a million shards (the benchmarks, run as tests too) costs far more
/// than the input it follows. Simulators and tests run clusters far below it.
pub const VALIDATE_SHARDS_MAX: usize = 4_096;

impl Leader {
    /// `Err` names the first derived value that disagrees with its source.
    pub fn validate(&self) -> Result<(), String> {
        if self.clusters.values().map(|rt| rt.shards.len()).sum::<usize>() > VALIDATE_SHARDS_MAX {
            return Ok(());
        }
        if self.clusters.len() != self.catalog.clusters.len() {
            return Err(format!("{} cluster runtimes for {} clusters", self.clusters.len(), self.catalog.clusters.len()));
        }
        for (id, cluster) in &self.catalog.clusters {
            let rt = self.clusters.get(id).ok_or_else(|| format!("cluster {id} has no runtime"))?;
            rt.validate(cluster).map_err(|e| format!("cluster {id}: {e}"))?;
        }
        Ok(())
    }
}

impl ClusterRuntime {
    fn validate(&self, cluster: &ClusterCatalog) -> Result<(), String> {
        if self.shards.len() != cluster.shards.len() || self.nodes.len() < cluster.nodes.len() {
            return Err(format!("{} shard and {} node runtimes for {} shards and {} nodes", self.shards.len(), self.nodes.len(), cluster.shards.len(), cluster.nodes.len()));
        }
        self.validate_shard_indexes(cluster)?;
        self.validate_node_load(cluster)?;
        self.validate_table_counts()?;
        if self.next_id > self.id_ceiling || self.id_ceiling < cluster.id_ceiling {
            return Err(format!("next id {} with ceiling {} (stored {})", self.next_id, self.id_ceiling, cluster.id_ceiling));
        }
        if self.epoch < cluster.epoch {
            return Err(format!("epoch {} behind the stored {}", self.epoch, cluster.epoch));
        }
        Ok(())
    }

    /// The intent holds exactly the shards with pending changes, and the unassigned and
    /// transfer sets are those of the intended records.
    fn validate_shard_indexes(&self, cluster: &ClusterCatalog) -> Result<(), String> {
        let (mut unassigned, mut transfers) = (BTreeSet::new(), BTreeSet::new());
        for (i, s) in self.shards.iter().enumerate() {
            let id = ShardId(i as u32);
            if (s.pending > 0) != self.shard_intent.contains_key(&id) {
                return Err(format!("shard {id}: {} pending changes, intent held: {}", s.pending, self.shard_intent.contains_key(&id)));
            }
            let intended = self.intended(cluster, id);
            if intended.leader.is_none() {
                unassigned.insert(id);
            }
            if intended.transfer.is_some() {
                transfers.insert(id);
            }
        }
        if unassigned != self.unassigned {
            return Err(format!("unassigned set {:?}, intended records say {unassigned:?}", self.unassigned));
        }
        if transfers != self.transfers {
            return Err(format!("transfer set {:?}, intended records say {transfers:?}", self.transfers));
        }
        Ok(())
    }

    /// Each node's leader and replica counts are those of the planned records, and the load
    /// index holds exactly the placeable nodes with those counts.
    fn validate_node_load(&self, cluster: &ClusterCatalog) -> Result<(), String> {
        let mut counts = vec![(0u32, 0u32); self.nodes.len()];
        for i in 0..self.shards.len() {
            let after = planned(self.intended(cluster, ShardId(i as u32)));
            if let Some(l) = after.leader {
                counts[l as usize].0 += 1;
            }
            for r in after.replicas() {
                counts[r as usize].1 += 1;
            }
        }
        for (i, (n, want)) in self.nodes.iter().zip(&counts).enumerate() {
            if (n.leaders, n.replicas) != *want {
                return Err(format!("node {i} counts {} leaders and {} replicas, the intent {} and {}", n.leaders, n.replicas, want.0, want.1));
            }
        }
        let placeable: Vec<NodeId> = self.nodes.iter().enumerate().filter(|(_, n)| n.placeable()).map(|(i, _)| NodeId(i as u32)).collect();
        let mut indexed: Vec<NodeId> = self.load.by_replicas().collect();
        indexed.sort_unstable();
        if indexed != placeable || !self.load.matches(&self.nodes) {
            return Err(format!("load index holds {indexed:?} with stale counts or misses placeable nodes {placeable:?}"));
        }
        Ok(())
    }

    /// The placement order holds each shard once, at its intended table count, and the counts
    /// add up to the intended number of tables.
    fn validate_table_counts(&self) -> Result<(), String> {
        let placement: BTreeSet<(u32, ShardId)> = self.table_counts.iter().enumerate().map(|(i, &n)| (n, ShardId(i as u32))).collect();
        if placement != self.placement || self.table_counts.len() != self.shards.len() {
            return Err("the placement order disagrees with the table counts".into());
        }
        let total: u64 = self.table_counts.iter().map(|&n| n as u64).sum();
        if total != self.tables as u64 {
            return Err(format!("shards count {total} tables, the cluster {}", self.tables));
        }
        Ok(())
    }
}
