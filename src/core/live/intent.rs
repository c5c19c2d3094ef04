//! The *intent*: the state the catalog will have once every queued write lands. Decisions read
//! the intent so that two decisions never build on the same old state; replies, routes and
//! commands read only the catalog.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::ids::*;
use crate::core::model::Mutation;
use crate::core::model::{ClusterCatalog, ShardRecord};

/// What the catalog will hold once every queued write lands (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Intent {
    /// The latest intended record of every shard with pending changes.
    records: BTreeMap<ShardId, ShardRecord>,
    /// Queued or in-flight changes to each shard's record.
    pending: Vec<u32>,
    /// Intended shards without a leader (retired ones are not waiting for one).
    unassigned: BTreeSet<ShardId>,
    /// Intended shards with a leader transfer in progress.
    transfers: BTreeSet<ShardId>,
    /// Intended table count per shard, and in all.
    table_counts: Vec<u32>,
    tables: usize,
    next_id: u64,
    id_ceiling: u64,
    epoch: Epoch,
}

impl Intent {
    /// The intent of a catalog with nothing pending: the catalog itself.
    pub(super) fn of(cluster: &ClusterCatalog) -> Intent {
        let table_counts: Vec<u32> = cluster.shard_tables.iter().map(|t| t.len() as u32).collect();
        let mut intent = Intent {
            pending: vec![0; cluster.shards.len()],
            table_counts,
            tables: cluster.tables.len(),
            next_id: cluster.id_ceiling,
            id_ceiling: cluster.id_ceiling,
            epoch: cluster.epoch,
            ..Default::default()
        };
        cluster.shards.iter().for_each(|s| intent.index(s));
        intent
    }

    /// New shards (a split) landed: unassigned and empty.
    pub(super) fn grow(&mut self, shards: usize) {
        assert!(shards >= self.pending.len(), "a cluster's shard count only grows");
        for i in self.pending.len()..shards {
            self.unassigned.insert(ShardId(i as u32));
        }
        self.pending.resize(shards, 0);
        self.table_counts.resize(shards, 0);
        debug_assert_eq!(self.pending.len(), self.table_counts.len());
    }

    /// The record the shard will have once pending writes land.
    pub fn shard<'a>(&'a self, cluster: &'a ClusterCatalog, id: ShardId) -> &'a ShardRecord {
        self.records.get(&id).unwrap_or_else(|| cluster.shard(id))
    }

    /// The shards with pending changes, by id.
    pub fn pending_shards(&self) -> impl Iterator<Item = ShardId> + '_ {
        self.records.keys().copied()
    }

    /// Whether the shard has no change queued or in flight: its intended record is the stored one.
    pub fn settled(&self, id: ShardId) -> bool {
        // Most of the time nothing is pending: then the per-shard count, an array read that the
        // heartbeat path would pay for each report, need not be read.
        self.records.is_empty() || self.pending[id.index()] == 0
    }

    /// The shards that will have no leader (retired ones aside).
    pub fn unassigned(&self) -> &BTreeSet<ShardId> {
        &self.unassigned
    }

    /// How many leader transfers are decided and not finished.
    pub fn transfers_in_flight(&self) -> usize {
        self.transfers.len()
    }

    /// Intended shards with a leader transfer in progress.
    pub fn transfers(&self) -> impl Iterator<Item = ShardId> + '_ {
        self.transfers.iter().copied()
    }

    /// Intended tables in the cluster.
    pub fn tables(&self) -> usize {
        self.tables
    }

    /// Intended tables in the shard.
    pub fn shard_tables(&self, shard: ShardId) -> u32 {
        self.table_counts[shard.index()]
    }

    /// The cluster's epoch once queued writes land.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// A topology change: the epoch it stores.
    pub(super) fn next_epoch(&mut self) -> Epoch {
        let before = self.epoch;
        self.epoch = self.epoch.next();
        assert!(self.epoch > before, "the intended epoch only grows");
        self.epoch
    }

    /// Planted bug only: the next topology change stores a lower epoch than nodes have seen.
    pub(super) fn forget_epoch(&mut self) {
        self.epoch = Epoch(0);
    }

    /// Records a decided (not yet durable) shard record.
    pub(super) fn record(&mut self, new: ShardRecord) {
        let id = ShardId(new.id);
        assert!(
            self.records.get(&id).is_none_or(|r| new.version > r.version),
            "shard {id}: intended versions only grow"
        );
        assert!(id.index() < self.pending.len(), "shard {id} is beyond the intended shard count");
        self.index(&new);
        self.pending[id.index()] += 1;
        self.records.insert(id, new);
        debug_assert!(self.transfers.contains(&id) == self.records[&id].transfer.is_some());
    }

    /// A shard record landed: once its last pending change has landed the intent is the catalog.
    pub(super) fn landed(&mut self, id: ShardId) {
        let pending = &mut self.pending[id.index()];
        *pending = pending.checked_sub(1).expect("a landed change was pending");
        if *pending == 0 {
            self.records.remove(&id);
        }
        assert!(
            self.pending[id.index()] > 0 || !self.records.contains_key(&id),
            "shard {id}: a record kept with nothing pending"
        );
    }

    fn index(&mut self, s: &ShardRecord) {
        let id = ShardId(s.id);
        if s.leader.is_none() && !s.retired {
            self.unassigned.insert(id);
        } else {
            self.unassigned.remove(&id);
        }
        if s.transfer.is_some() {
            self.transfers.insert(id);
        } else {
            self.transfers.remove(&id);
        }
    }

    /// Hands out an id, raising the stored ceiling in the same change when the block runs out.
    pub(super) fn alloc_id(
        &mut self,
        cluster: ClusterId,
        block: u64,
        mutations: &mut Vec<Mutation>,
    ) -> u64 {
        if self.next_id >= self.id_ceiling {
            self.id_ceiling = self.next_id + block;
            mutations.push(Mutation::PutIdCeiling(cluster, self.id_ceiling));
        }
        self.next_id += 1;
        assert!(self.next_id <= self.id_ceiling, "an id handed out is below the stored ceiling");
        self.next_id - 1
    }

    /// A table joins (`delta` 1) or leaves (-1) the shard.
    pub(super) fn count_table(&mut self, shard: ShardId, delta: i32) {
        let n = &mut self.table_counts[shard.index()];
        *n = n.checked_add_signed(delta).expect("table count stays in range");
        self.tables = self
            .tables
            .checked_add_signed(delta as isize)
            .expect("cluster table count stays in range");
        debug_assert!(
            self.table_counts[shard.index()] as usize <= self.tables,
            "a shard holds at most the cluster's tables"
        );
    }

    /// `Err` names the first index or counter that disagrees with the intended records and the
    /// stored cluster.
    pub(super) fn check(&self, cluster: &ClusterCatalog) -> Result<(), String> {
        let (mut unassigned, mut transfers) = (BTreeSet::new(), BTreeSet::new());
        for (i, &pending) in self.pending.iter().enumerate() {
            let id = ShardId(i as u32);
            if (pending > 0) != self.records.contains_key(&id) {
                return Err(format!(
                    "shard {id}: {pending} pending changes, intent held: {}",
                    self.records.contains_key(&id)
                ));
            }
            let intended = self.shard(cluster, id);
            if intended.leader.is_none() && !intended.retired {
                unassigned.insert(id);
            }
            if intended.transfer.is_some() {
                transfers.insert(id);
            }
        }
        if unassigned != self.unassigned {
            return Err(format!(
                "unassigned set {:?}, intended records say {unassigned:?}",
                self.unassigned
            ));
        }
        if transfers != self.transfers {
            return Err(format!(
                "transfer set {:?}, intended records say {transfers:?}",
                self.transfers
            ));
        }
        self.check_table_counts()?;
        if self.next_id > self.id_ceiling || self.id_ceiling < cluster.id_ceiling {
            return Err(format!(
                "next id {} with ceiling {} (stored {})",
                self.next_id, self.id_ceiling, cluster.id_ceiling
            ));
        }
        if self.epoch < cluster.epoch {
            return Err(format!("epoch {} behind the stored {}", self.epoch, cluster.epoch));
        }
        Ok(())
    }

    /// A count per shard, adding up to the intended number of tables.
    fn check_table_counts(&self) -> Result<(), String> {
        if self.table_counts.len() != self.pending.len() {
            return Err(format!(
                "{} table counts for {} shards",
                self.table_counts.len(),
                self.pending.len()
            ));
        }
        let total: u64 = self.table_counts.iter().map(|&n| n as u64).sum();
        if total != self.tables as u64 {
            return Err(format!("shards count {total} tables, the cluster {}", self.tables));
        }
        Ok(())
    }
}
