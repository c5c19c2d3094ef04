//! The catalog: the durable state of every cluster, as acknowledged by storage. It changes only
//! through [`Catalog::apply`], on a write acknowledgement or while loading a snapshot, so what is
//! in memory is always what storage holds (persist before effect, restart equivalence).

use std::collections::{BTreeMap, BTreeSet};

use super::mutation::{DecodeError, Mutation};
use super::records::*;
use super::tables::{Table, Tables};
use crate::core::ids::*;

/// The most shards a stored cluster may claim. Loading refuses more, so that a corrupt record
/// cannot make the loader allocate without bound; `shards_per_cluster_max` stays below it.
pub const SHARDS_PER_CLUSTER_CEILING: u32 = 1 << 22;

/// Everything storage holds, every cluster's, with the indexes built from it: exactly what
/// storage acknowledged, never a decision still being written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    /// The clusters that exist, by id.
    pub clusters: BTreeMap<ClusterId, ClusterCatalog>,
    /// Their ids by name.
    pub cluster_by_name: BTreeMap<String, ClusterId>,
    /// Clusters dropped: their tombstones keep the ids, which are never given again.
    pub dropped_clusters: BTreeSet<ClusterId>,
}

/// One cluster's durable state plus indexes derived from it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterCatalog {
    /// The cluster's own record: name, shard count, followers per shard, topology.
    pub record: ClusterRecord,
    /// Raised by every topology change, so that nodes can tell newer routes from older.
    pub epoch: Epoch,
    /// Ids below this may be in use; a new leader allocates from here.
    pub id_ceiling: u64,
    /// The scheduler settings an operator stored; `None`: the configured defaults.
    pub scheduler: Option<SchedulerRecord>,
    /// The placement rule an operator stored; `None`: any node fits, replicas spread over zones.
    pub placement: Option<super::PlacementRecord>,
    /// The schemas, by id.
    pub schemas: BTreeMap<SchemaId, SchemaRecord>,
    /// Their ids by name.
    pub schema_by_name: BTreeMap<String, SchemaId>,
    /// Every table, sub-tables included, with a name index.
    pub tables: Tables,
    /// Indexed by shard id.
    pub shards: Vec<ShardRecord>,
    /// The tables of each shard, indexed by shard id.
    pub shard_tables: Vec<BTreeSet<TableId>>,
    /// Indexed by node id.
    pub nodes: Vec<NodeRecord>,
    /// Node ids by name, for nodes not removed.
    pub node_by_name: BTreeMap<String, NodeId>,
    /// The shards each node holds a replica of, indexed by node id.
    pub node_shards: Vec<BTreeSet<ShardId>>,
    /// Procedures in progress, by id.
    pub procedures: BTreeMap<u64, ProcedureRecord>,
    /// The procedure that holds each locked shard (one per shard).
    pub shard_locks: BTreeMap<ShardId, u64>,
}

impl ClusterCatalog {
    /// Ids are allocated below the stored ceiling, and a schema and a table never share one:
    /// a catalog that breaks this would hand out an id twice.
    pub fn id_error(&self) -> Option<String> {
        // Schemas are few and tables many: look each schema id up among the tables.
        if let Some(s) = self.schemas.keys().find(|s| self.tables.get(TableId(s.0)).is_some()) {
            return Some(format!("id {s} is both a schema and a table"));
        }
        let highest = self
            .tables
            .last_id()
            .map(|t| t.0)
            .into_iter()
            .chain(self.schemas.keys().next_back().map(|s| s.0))
            .max();
        match highest {
            Some(id) if id >= self.id_ceiling => {
                Some(format!("id {id} at or above the id ceiling {}", self.id_ceiling))
            }
            _ => None,
        }
    }

    fn new(record: ClusterRecord) -> ClusterCatalog {
        let n = record.shard_count;
        ClusterCatalog {
            shards: (0..n).map(ShardRecord::unassigned).collect(),
            shard_tables: vec![BTreeSet::new(); n as usize],
            record,
            epoch: Epoch(0),
            id_ceiling: 0,
            scheduler: None,
            placement: None,
            schemas: BTreeMap::new(),
            schema_by_name: BTreeMap::new(),
            tables: Tables::default(),
            nodes: Vec::new(),
            node_by_name: BTreeMap::new(),
            node_shards: Vec::new(),
            procedures: BTreeMap::new(),
            shard_locks: BTreeMap::new(),
        }
    }

    /// The cluster's shard count grew (a split): the new shards start unassigned and empty.
    /// Nothing else about a cluster record ever changes.
    fn grow(&mut self, record: ClusterRecord) -> Result<(), DecodeError> {
        let same_otherwise =
            ClusterRecord { shard_count: self.record.shard_count, ..record.clone() } == self.record;
        if !same_otherwise || record.shard_count < self.record.shard_count {
            return Err(DecodeError(format!(
                "cluster {} can only grow its shard count once created",
                record.id
            )));
        }
        let n = record.shard_count;
        self.shards.extend((self.record.shard_count..n).map(ShardRecord::unassigned));
        self.shard_tables.resize(n as usize, BTreeSet::new());
        self.record = record;
        Ok(())
    }

    /// The splits and merges in progress (transfers have their own limit, `moves_in_flight_max`).
    pub fn resizes_running(&self) -> usize {
        self.procedures.values().filter(|p| p.kind() != ProcedureKind::Transfer).count()
    }

    /// A shard in transfer and its transfer procedure name each other: they are written, and
    /// deleted, in one transaction.
    pub fn transfer_error(&self) -> Option<String> {
        for s in &self.shards {
            let Some(t) = s.transfer else { continue };
            match self.procedures.get(&t.procedure) {
                Some(p) if p.kind() == ProcedureKind::Transfer && p.shard == s.id => {}
                _ => {
                    return Some(format!(
                        "shard {} is in transfer by procedure {}, which is not its transfer",
                        s.id, t.procedure
                    ))
                }
            }
        }
        let stray =
            self.procedures.values().filter(|p| p.kind() == ProcedureKind::Transfer).find(|p| {
                self.shards
                    .get(p.shard as usize)
                    .and_then(|s| s.transfer)
                    .is_none_or(|t| t.procedure != p.id)
            });
        stray.map(|p| {
            format!(
                "transfer procedure {} names shard {}, which is not in transfer by it",
                p.id, p.shard
            )
        })
    }

    /// The procedure holding `shard`, if any.
    pub fn lock_of(&self, shard: ShardId) -> Option<&ProcedureRecord> {
        self.shard_locks.get(&shard).map(|id| &self.procedures[id])
    }

    /// The procedure moving `table` between shards now, if one is: a split moving its tables
    /// (or moving them back), or a merge moving its source's. While it is, the leader's intent
    /// and the catalog disagree about the table's shard, so the table is not dropped.
    pub fn moving(&self, table: TableId) -> Option<&ProcedureRecord> {
        let shard = ShardId(self.tables.get(table)?.shard);
        self.procedures.values().find(|p| match (p.kind(), p.step()) {
            (
                ProcedureKind::Split,
                ProcedureStep::AwaitingTablesMoved | ProcedureStep::RollingBack,
            ) => p.tables.binary_search(&table.0).is_ok(),
            (ProcedureKind::Merge, ProcedureStep::AwaitingTablesMoved) => p.shard == shard.0,
            _ => false,
        })
    }

    fn put_procedure(&mut self, p: ProcedureRecord) -> Result<(), DecodeError> {
        let known = ProcedureKind::from_code(p.kind).zip(ProcedureStep::from_code(p.step));
        if !known.is_some_and(|(kind, step)| kind.has_step(step)) {
            return Err(DecodeError(format!(
                "procedure {} has unknown kind {} or step {}, or a step its kind never takes",
                p.id, p.kind, p.step
            )));
        }
        let shards = [ShardId(p.shard), ShardId(p.new_shard)];
        if let Some(s) = shards.iter().find(|s| s.index() >= self.shards.len()) {
            return Err(DecodeError(format!(
                "procedure {} names shard {s} of {}",
                p.id,
                self.shards.len()
            )));
        }
        if let Some(s) =
            shards.iter().find(|s| self.shard_locks.get(s).is_some_and(|&other| other != p.id))
        {
            return Err(DecodeError(format!("shard {s} is locked by two procedures")));
        }
        for s in shards {
            self.shard_locks.insert(s, p.id);
        }
        self.procedures.insert(p.id, p);
        Ok(())
    }

    fn delete_procedure(&mut self, id: u64) {
        if let Some(p) = self.procedures.remove(&id) {
            self.shard_locks.retain(|_, holder| *holder != p.id);
        }
    }

    /// The cluster's id.
    pub fn id(&self) -> ClusterId {
        ClusterId(self.record.id)
    }

    /// A shard known to exist (its id came from the catalog).
    pub fn shard(&self, id: ShardId) -> &ShardRecord {
        &self.shards[id.index()]
    }

    /// A node known to exist (its id came from the catalog).
    pub fn node(&self, id: NodeId) -> &NodeRecord {
        &self.nodes[id.index()]
    }

    /// Nodes not removed: what the registration cap counts.
    pub fn live_node_count(&self) -> usize {
        self.nodes.iter().filter(|n| !n.removed).count()
    }

    /// The table `name` of `schema`, if there is one.
    pub fn table_by_name(&self, schema: SchemaId, name: &str) -> Option<(TableId, &Table)> {
        self.tables.find(schema, name)
    }

    /// A table known to exist (its id came from the catalog).
    pub fn table(&self, id: TableId) -> &Table {
        self.tables.get(id).expect("table ids come from the catalog")
    }

    /// A table must name a shard and a schema of its cluster.
    fn check_table(&self, id: TableId, t: &Table) -> Result<(), DecodeError> {
        if t.shard as usize >= self.shards.len() {
            return Err(DecodeError(format!(
                "table {id} names shard {} of {}",
                t.shard,
                self.shards.len()
            )));
        }
        if !self.schemas.contains_key(&t.schema) {
            return Err(DecodeError(format!("table {id} names unknown schema {}", t.schema)));
        }
        Ok(())
    }

    fn put_table(&mut self, t: TableRecord) -> Result<(), DecodeError> {
        let (id, table) = Table::from_record(t);
        self.check_table(id, &table)?;
        let shard = table.shard as usize;
        if let Some(old) = self.tables.insert(id, table) {
            self.shard_tables[old.shard as usize].remove(&id);
        }
        self.shard_tables[shard].insert(id);
        Ok(())
    }

    /// Every table of a snapshot at once, into a cluster that has none yet (see
    /// [`Tables::from_unique`]).
    pub(crate) fn load_tables(&mut self, tables: Vec<(TableId, Table)>) -> Result<(), DecodeError> {
        assert!(self.tables.is_empty(), "tables load into a cluster that has none");
        for (id, t) in &tables {
            self.check_table(*id, t)?;
            self.shard_tables[t.shard as usize].insert(*id);
        }
        self.tables = Tables::from_unique(tables);
        Ok(())
    }

    fn delete_schema(&mut self, id: SchemaId) -> Result<(), DecodeError> {
        if let Some(t) = self.tables.in_schema(id).next() {
            return Err(DecodeError(format!("schema {id} deleted while it holds table {t}")));
        }
        if let Some(s) = self.schemas.remove(&id) {
            self.schema_by_name.remove(&s.name);
        }
        Ok(())
    }

    fn delete_table(&mut self, id: TableId) {
        if let Some(old) = self.tables.remove(id) {
            self.shard_tables[old.shard as usize].remove(&id);
        }
    }

    /// Applies one durable change inside the cluster (anything but its own record, which
    /// [`Catalog::apply`] handles): the same path as the whole catalog's, for a copy of one
    /// cluster (a what-if rehearses moves on one).
    pub fn apply(&mut self, m: Mutation) -> Result<(), DecodeError> {
        match m {
            Mutation::PutCluster(_) => {
                return Err(DecodeError("a cluster's own record is applied to the catalog".into()))
            }
            // The cluster goes with its tombstone, the next mutation of the same write.
            Mutation::DeleteClusterData(_) => {}
            Mutation::PutEpoch(_, e) => self.epoch = e,
            Mutation::PutIdCeiling(_, v) => self.id_ceiling = v,
            Mutation::PutScheduler(_, r) => self.scheduler = Some(r),
            Mutation::PutPlacement(_, r) => self.placement = Some(r),
            Mutation::PutSchema(_, s) => {
                self.schema_by_name.insert(s.name.clone(), SchemaId(s.id));
                self.schemas.insert(SchemaId(s.id), s);
            }
            Mutation::DeleteSchema(_, id) => self.delete_schema(SchemaId(id))?,
            Mutation::PutTable(_, t) => self.put_table(t)?,
            Mutation::DeleteTable(_, id) => self.delete_table(id),
            Mutation::PutShard(_, s) => self.put_shard(s)?,
            Mutation::PutNode(_, n) => self.put_node(n)?,
            Mutation::PutProcedure(_, p) => self.put_procedure(p)?,
            Mutation::DeleteProcedure(_, id) => self.delete_procedure(id),
        }
        Ok(())
    }

    fn put_shard(&mut self, s: ShardRecord) -> Result<(), DecodeError> {
        let idx = s.id as usize;
        if idx >= self.shards.len() {
            return Err(DecodeError(format!(
                "shard {} beyond shard count {}",
                s.id,
                self.shards.len()
            )));
        }
        if let Some(n) = s.replicas().find(|n| *n as usize >= self.nodes.len()) {
            return Err(DecodeError(format!("shard {} names unknown node {n}", s.id)));
        }
        if let Some(e) = s.shape_error() {
            return Err(DecodeError(e));
        }
        if let Some(t) = s.transfer {
            if Some(t.from) != s.leader || t.to == t.from || t.to as usize >= self.nodes.len() {
                return Err(DecodeError(format!(
                    "shard {} has an impossible transfer {t:?}",
                    s.id
                )));
            }
        }
        let shard = ShardId(s.id);
        for n in self.shards[idx].replicas() {
            self.node_shards[n as usize].remove(&shard);
        }
        for n in s.replicas() {
            self.node_shards[n as usize].insert(shard);
        }
        self.shards[idx] = s;
        Ok(())
    }

    fn put_node(&mut self, n: NodeRecord) -> Result<(), DecodeError> {
        let idx = n.id as usize;
        if idx > self.nodes.len() {
            return Err(DecodeError(format!(
                "node {} registered before node {}",
                n.id,
                self.nodes.len()
            )));
        }
        if let Some(&other) = self.node_by_name.get(&n.name).filter(|_| !n.removed) {
            if other.0 != n.id {
                return Err(DecodeError(format!(
                    "node name {:?} held by nodes {other} and {}",
                    n.name, n.id
                )));
            }
        }
        if idx < self.nodes.len() && self.nodes[idx].removed && !n.removed {
            return Err(DecodeError(format!("node {} was removed and its id given again", n.id)));
        }
        if idx == self.nodes.len() {
            self.nodes.push(NodeRecord { removed: true, ..Default::default() });
            self.node_shards.push(BTreeSet::new());
        }
        let old = std::mem::replace(&mut self.nodes[idx], n);
        if self.node_by_name.get(&old.name) == Some(&NodeId(old.id)) {
            self.node_by_name.remove(&old.name);
        }
        if !self.nodes[idx].removed {
            self.node_by_name.insert(self.nodes[idx].name.clone(), NodeId(self.nodes[idx].id));
        }
        Ok(())
    }
}

impl ClusterCatalog {
    fn integrity_error(&self) -> Option<String> {
        if let Some(i) = self
            .nodes
            .iter()
            .zip(&self.node_shards)
            .position(|(n, held)| n.removed && !held.is_empty())
        {
            return Some(format!("removed node {i} still holds shards {:?}", self.node_shards[i]));
        }
        let mut homes: BTreeMap<TableId, ShardId> = BTreeMap::new();
        for (i, tables) in self.shard_tables.iter().enumerate() {
            for &t in tables {
                if let Some(other) = homes.insert(t, ShardId(i as u32)) {
                    return Some(format!("table {t} in shards {other} and {i}"));
                }
            }
        }
        if let Some((id, t)) =
            self.tables.iter().find(|(id, t)| homes.get(id) != Some(&ShardId(t.shard)))
        {
            return Some(format!("table {id} names shard {} but is not in it", t.shard));
        }
        if homes.len() != self.tables.len() {
            return Some(format!(
                "shards hold {} tables, the catalog {}",
                homes.len(),
                self.tables.len()
            ));
        }
        if let Some(s) =
            self.shards.iter().find(|s| s.retired && !self.shard_tables[s.id as usize].is_empty())
        {
            return Some(format!(
                "shard {} is retired but holds {} tables",
                s.id,
                self.shard_tables[s.id as usize].len()
            ));
        }
        if !self.tables.name_index_is_consistent() {
            return Some("the table name index does not match the tables".into());
        }
        self.id_error()
            .or_else(|| self.shards.iter().find_map(|s| s.shape_error()))
            .or_else(|| self.transfer_error())
    }
}

impl Catalog {
    /// A cluster known to exist (its id came from the catalog).
    pub fn cluster(&self, id: ClusterId) -> &ClusterCatalog {
        self.clusters.get(&id).expect("cluster ids come from the catalog")
    }

    /// The cluster called `name`, if there is one.
    pub fn cluster_by_name(&self, name: &str) -> Option<&ClusterCatalog> {
        self.cluster_by_name.get(name).map(|id| &self.clusters[id])
    }

    /// Applies one durable change. An error means the change contradicts the catalog, which only
    /// corrupt storage can cause: the leader itself only writes consistent changes.
    pub fn apply(&mut self, m: Mutation) -> Result<(), DecodeError> {
        if let Mutation::PutCluster(r) = &m {
            let id = ClusterId(r.id);
            if r.dropped {
                if let Some(gone) = self.clusters.remove(&id) {
                    self.cluster_by_name.remove(&gone.record.name);
                }
                self.dropped_clusters.insert(id);
                return Ok(());
            }
            if self.dropped_clusters.contains(&id) {
                return Err(DecodeError(format!(
                    "cluster {} was dropped and its id given again",
                    r.id
                )));
            }
            if r.shard_count > SHARDS_PER_CLUSTER_CEILING {
                return Err(DecodeError(format!(
                    "cluster {} claims {} shards",
                    r.id, r.shard_count
                )));
            }
            if self.cluster_by_name.get(&r.name).is_some_and(|other| *other != id) {
                return Err(DecodeError(format!("cluster name {:?} held by two clusters", r.name)));
            }
            if let Some(existing) = self.clusters.get_mut(&id) {
                if existing.record != *r {
                    existing.grow(r.clone())?;
                }
                return Ok(());
            }
            self.cluster_by_name.insert(r.name.clone(), id);
            let Mutation::PutCluster(r) = m else { unreachable!("matched above") };
            self.clusters.insert(id, ClusterCatalog::new(r));
            return Ok(());
        }
        let c = m.cluster();
        let cluster = self.clusters.get_mut(&c).ok_or_else(|| {
            DecodeError(format!("{} names unknown cluster {c}", m.key().encode()))
        })?;
        cluster.apply(m)
    }

    /// What breaks the catalog's integrity, if anything: every table sits in exactly the shard
    /// it names, the name index matches the tables, ids are unique and below the ceiling, and
    /// every shard record is well formed. The leader checks this after every input in debug
    /// builds (`Leader::check_consistency`); the simulators check it as invariant S5.
    pub fn integrity_error(&self) -> Option<String> {
        self.clusters
            .iter()
            .find_map(|(cid, c)| c.integrity_error().map(|e| format!("cluster {cid}: {e}")))
    }

    /// Every cluster's ids are below its ceiling and unique (see [`ClusterCatalog::id_error`]),
    /// and its transfers have their procedures ([`ClusterCatalog::transfer_error`]).
    pub(crate) fn check_ids(&self) -> Result<(), DecodeError> {
        let error = |c: &ClusterCatalog| c.id_error().or_else(|| c.transfer_error());
        match self
            .clusters
            .iter()
            .find_map(|(id, c)| error(c).map(|e| format!("cluster {id}: {e}")))
        {
            Some(e) => Err(DecodeError(e)),
            None => Ok(()),
        }
    }

    /// Partitioned tables and their sub-tables must point at each other.
    pub(crate) fn check_partitions(&self) -> Result<(), DecodeError> {
        for c in self.clusters.values() {
            for (id, t) in c.tables.iter().filter(|(_, t)| t.extra.is_some()) {
                let subs = t.partition().into_iter().flat_map(|p| p.sub_tables.iter());
                if let Some(sub) = subs
                    .clone()
                    .find(|s| c.tables.get(TableId(**s)).is_none_or(|st| st.parent() != Some(id.0)))
                {
                    return Err(DecodeError(format!(
                        "table {id} lists sub-table {sub} that does not point back"
                    )));
                }
                if let Some(parent) = t.parent() {
                    let listed = c
                        .tables
                        .get(TableId(parent))
                        .and_then(Table::partition)
                        .is_some_and(|p| p.sub_tables.contains(&id.0));
                    if !listed {
                        return Err(DecodeError(format!(
                            "sub-table {id} names parent {parent} that does not list it"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
