//! What the leader knows beyond the catalog, none of it durable:
//! - liveness, sessions and stats of nodes, and shard leases (rebuilt with a grace period after a
//!   meta leader change);
//! - the *intent*: the state the catalog will have once every queued write lands. Decisions read
//!   the intent so that two decisions never build on the same old state; replies, routes and
//!   commands read only the catalog.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::ids::*;
use crate::core::input::NodeStats;
use crate::core::model::{ClusterCatalog, ShardRecord};
use crate::core::storage::Mutation;
use crate::core::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct NodeRuntime {
    pub session: Option<SessionId>,
    pub incarnation: u64,
    pub last_seq: u64,
    pub last_heartbeat: Instant,
    pub online: bool,
    /// Mirrors the node record: the node takes no new replicas.
    pub draining: bool,
    pub stats: NodeStats,
    /// Intended leader shards on the node.
    pub leaders: u32,
    /// Intended replicas (leader or follower) on the node.
    pub replicas: u32,
}

impl NodeRuntime {
    /// A node seen alive at `now` (registered, or inherited by a new leader as a grace period).
    fn fresh(now: Instant) -> NodeRuntime {
        NodeRuntime {
            session: None,
            incarnation: 0,
            last_seq: 0,
            last_heartbeat: now,
            online: true,
            draining: false,
            stats: NodeStats::default(),
            leaders: 0,
            replicas: 0,
        }
    }

    /// Whether new replicas may go to the node.
    pub fn placeable(&self) -> bool {
        self.online && !self.draining
    }
}

#[derive(Clone, Debug, Default)]
pub struct ShardRuntime {
    /// The node whose lease for this shard may still be valid, and until when (meta's clock).
    pub lease_holder: Option<NodeId>,
    pub lease_until: Instant,
    /// Queued or in-flight changes to this shard's record.
    pub pending: u32,
    /// The leader reported the shard ready at the current version.
    pub leader_ready: bool,
    /// The newest version pushed to the shard's replicas between heartbeats, and when.
    pub pushed: Option<(Version, Instant)>,
}

impl ShardRuntime {
    /// Whether a replica that reports the version just before `current` has the push of
    /// `current` on its way: pushed recently, within two heartbeat intervals. A full re-sync
    /// (every table of the shard) would then only race the push. A push that was lost shows as a
    /// lag of two or more versions once the next change lands, or as the same lag once the
    /// window has passed, and gets the re-sync then.
    pub fn push_in_flight(&self, reported: Version, current: Version, now: Instant, config: &CoreConfig) -> bool {
        let window = Duration(2 * config.heartbeat_interval_ms);
        reported.next() == current && matches!(self.pushed, Some((v, at)) if v == current && now < at + window)
    }
}

/// Placeable nodes (online, not draining) ordered by how loaded they are.
#[derive(Clone, Debug, Default)]
pub struct LoadIndex {
    by_leaders: BTreeSet<(u32, u32, NodeId)>,
    by_replicas: BTreeSet<(u32, NodeId)>,
}

impl LoadIndex {
    fn insert(&mut self, id: NodeId, n: &NodeRuntime) {
        self.by_leaders.insert((n.leaders, n.replicas, id));
        self.by_replicas.insert((n.replicas, id));
    }

    fn remove(&mut self, id: NodeId, n: &NodeRuntime) {
        self.by_leaders.remove(&(n.leaders, n.replicas, id));
        self.by_replicas.remove(&(n.replicas, id));
    }

    /// Placeable nodes, fewest leader shards first.
    pub fn by_leaders(&self) -> impl DoubleEndedIterator<Item = NodeId> + '_ {
        self.by_leaders.iter().map(|&(_, _, id)| id)
    }

    /// Placeable nodes, fewest replicas first.
    pub fn by_replicas(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.by_replicas.iter().map(|&(_, id)| id)
    }

    pub fn len(&self) -> usize {
        self.by_replicas.len()
    }

    /// Whether every entry carries its node's current counts (for `Leader::validate`).
    pub fn matches(&self, nodes: &[NodeRuntime]) -> bool {
        let fresh = |id: NodeId| &nodes[id.index()];
        self.by_leaders.len() == self.by_replicas.len()
            && self.by_leaders.iter().all(|&(l, r, id)| (fresh(id).leaders, fresh(id).replicas) == (l, r))
            && self.by_replicas.iter().all(|&(r, id)| fresh(id).replicas == r)
    }

    pub fn is_empty(&self) -> bool {
        self.by_replicas.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct ClusterRuntime {
    pub nodes: Vec<NodeRuntime>,
    pub shards: Vec<ShardRuntime>,
    pub load: LoadIndex,
    /// The latest intended record of every shard with pending changes.
    pub shard_intent: BTreeMap<ShardId, ShardRecord>,
    /// Intended shards without a leader.
    pub unassigned: BTreeSet<ShardId>,
    /// Intended shards with a leader transfer in progress.
    pub transfers: BTreeSet<ShardId>,
    /// A node joined or came back since follower deficits were last looked for.
    pub deficit_scan_due: bool,
    /// Tables being created, with the if-not-exists requests waiting on them.
    pub creating: BTreeMap<(SchemaId, String), Vec<RequestId>>,
    pub dropping: BTreeSet<TableId>,
    pub creating_schemas: BTreeSet<String>,
    /// New nodes whose registration is being written; they get the next ids in turn.
    pub registering: BTreeSet<String>,
    /// Known nodes whose record is being written (a new endpoint or zone, a drain): one write
    /// per node at a time, so that neither overwrites the other.
    pub updating: BTreeSet<NodeId>,
    /// Intended table count per shard, and the shards ordered by it for placement.
    pub table_counts: Vec<u32>,
    pub placement: BTreeSet<(u32, ShardId)>,
    pub tables: usize,
    pub next_id: u64,
    pub id_ceiling: u64,
    pub epoch: Epoch,
}

impl ClusterRuntime {
    /// A runtime for a leader that just took over: every node is treated as alive and every
    /// assigned shard as leased for one more lease, so that a meta failover never causes a shard
    /// failover by itself.
    pub fn new(cluster: &ClusterCatalog, now: Instant, config: &CoreConfig) -> ClusterRuntime {
        let shards = cluster
            .shards
            .iter()
            .map(|s| ShardRuntime {
                lease_holder: s.leader.map(NodeId),
                lease_until: now + config.lease(),
                ..Default::default()
            })
            .collect();
        let mut rt = ClusterRuntime {
            nodes: Vec::new(),
            shards,
            load: LoadIndex::default(),
            shard_intent: BTreeMap::new(),
            unassigned: BTreeSet::new(),
            transfers: BTreeSet::new(),
            deficit_scan_due: true,
            creating: BTreeMap::new(),
            dropping: BTreeSet::new(),
            creating_schemas: BTreeSet::new(),
            registering: BTreeSet::new(),
            updating: BTreeSet::new(),
            table_counts: Vec::new(),
            placement: BTreeSet::new(),
            tables: 0,
            next_id: 0,
            id_ceiling: 0,
            epoch: Epoch(0),
        };
        rt.reset_intent(cluster, now);
        rt
    }

    /// Forgets every pending change: the intent becomes the catalog again. Liveness and leases
    /// are kept. A new allocation block starts at the durable ceiling, so an id handed out in a
    /// write whose outcome is unknown is never handed out again.
    pub fn reset_intent(&mut self, cluster: &ClusterCatalog, now: Instant) {
        // A registration whose outcome was unknown may have landed.
        while self.nodes.len() < cluster.nodes.len() {
            self.nodes.push(NodeRuntime::fresh(now));
        }
        for (n, record) in self.nodes.iter_mut().zip(&cluster.nodes) {
            n.draining = record.draining;
        }
        for s in &mut self.shards {
            s.pending = 0;
        }
        self.shard_intent.clear();
        self.creating.clear();
        self.dropping.clear();
        self.creating_schemas.clear();
        self.registering.clear();
        self.updating.clear();
        for n in &mut self.nodes {
            n.leaders = 0;
            n.replicas = 0;
        }
        self.unassigned.clear();
        self.transfers.clear();
        self.deficit_scan_due = true;
        for s in &cluster.shards {
            self.index_shard(s);
            let planned = planned(s);
            if let Some(l) = planned.leader {
                self.nodes[l as usize].leaders += 1;
            }
            for r in planned.replicas() {
                self.nodes[r as usize].replicas += 1;
            }
        }
        self.rebuild_load_index();
        self.table_counts = cluster.shard_tables.iter().map(|t| t.len() as u32).collect();
        self.placement = self.table_counts.iter().enumerate().map(|(i, &n)| (n, ShardId(i as u32))).collect();
        self.tables = cluster.tables.len();
        self.next_id = cluster.id_ceiling;
        self.id_ceiling = cluster.id_ceiling;
        self.epoch = cluster.epoch;
    }

    fn rebuild_load_index(&mut self) {
        self.load = LoadIndex::default();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.placeable() {
                self.load.insert(NodeId(i as u32), n);
            }
        }
    }

    /// A node registration landed.
    pub fn add_node(&mut self, id: NodeId, now: Instant) {
        assert_eq!(id.index(), self.nodes.len(), "nodes register densely");
        let node = NodeRuntime::fresh(now);
        self.load.insert(id, &node);
        self.nodes.push(node);
        self.deficit_scan_due = true;
    }

    pub fn set_online(&mut self, id: NodeId, online: bool) {
        if self.nodes[id.index()].online != online {
            self.update_placeable(id, |n| n.online = online);
        }
    }

    /// A node record landed with this drain flag.
    pub fn set_draining(&mut self, id: NodeId, draining: bool) {
        if self.nodes[id.index()].draining != draining {
            self.update_placeable(id, |n| n.draining = draining);
        }
    }

    /// Changes what decides whether a node is placeable, keeping the load index in step. A node
    /// that becomes placeable may fill follower slots left empty.
    fn update_placeable(&mut self, id: NodeId, change: impl FnOnce(&mut NodeRuntime)) {
        let node = &mut self.nodes[id.index()];
        let before = node.placeable();
        change(node);
        match (before, node.placeable()) {
            (false, true) => {
                self.deficit_scan_due = true;
                self.load.insert(id, &self.nodes[id.index()]);
            }
            (true, false) => self.load.remove(id, &self.nodes[id.index()]),
            _ => {}
        }
    }

    /// The record the shard will have once pending writes land.
    pub fn intended<'a>(&'a self, cluster: &'a ClusterCatalog, id: ShardId) -> &'a ShardRecord {
        self.shard_intent.get(&id).unwrap_or_else(|| cluster.shard(id))
    }

    /// Records a decided (not yet durable) shard record and keeps the load counters in step.
    /// Load counters count a shard in transfer as already moved, so that planning does not pile
    /// more work on the node it is leaving.
    pub fn set_intended(&mut self, cluster: &ClusterCatalog, new: ShardRecord, config: &CoreConfig) {
        let id = ShardId(new.id);
        // Net change per node first, so that a node whose role stays the same costs nothing.
        let mut deltas: Vec<(u32, i32, i32)> = Vec::with_capacity(8);
        let mut count = |node: u32, leader: bool, d: i32| match deltas.iter_mut().find(|x| x.0 == node) {
            Some(x) => {
                x.1 += d * leader as i32;
                x.2 += d;
            }
            None => deltas.push((node, d * leader as i32, d)),
        };
        let old = planned(self.intended(cluster, id));
        for r in old.replicas() {
            count(r, old.leader == Some(r), -1);
        }
        let after = planned(&new);
        for r in after.replicas() {
            count(r, after.leader == Some(r), 1);
        }
        for (node, leaders, replicas) in deltas {
            if leaders != 0 || replicas != 0 {
                self.adjust(NodeId(node), leaders, replicas, config);
            }
        }
        self.index_shard(&new);
        self.shards[id.index()].pending += 1;
        self.shard_intent.insert(id, new);
    }

    fn index_shard(&mut self, s: &ShardRecord) {
        let id = ShardId(s.id);
        if s.leader.is_none() {
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

    /// Whether every lease any node may hold for the shard has surely ended.
    pub fn lease_expired(&self, shard: ShardId, now: Instant, config: &CoreConfig) -> bool {
        let s = &self.shards[shard.index()];
        s.lease_holder.is_none() || config.has_bug(PlantedBug::SkipLeaseWait) || now > s.lease_until + config.clock_drift()
    }

    fn adjust(&mut self, id: NodeId, leaders: i32, replicas: i32, config: &CoreConfig) {
        let node = &mut self.nodes[id.index()];
        let indexed = node.placeable() && !config.has_bug(PlantedBug::StaleLoadIndex);
        if indexed {
            self.load.remove(id, node);
        }
        let node = &mut self.nodes[id.index()];
        node.replicas = node.replicas.checked_add_signed(replicas).expect("replica count stays in range");
        node.leaders = node.leaders.checked_add_signed(leaders).expect("leader count stays in range");
        if indexed {
            self.load.insert(id, &self.nodes[id.index()]);
        }
    }

    /// A shard record landed: once its last pending change has landed the intent is the catalog.
    /// The new version is not ready until its leader reports it.
    pub fn shard_landed(&mut self, id: ShardId) {
        let s = &mut self.shards[id.index()];
        s.leader_ready = false;
        s.pending = s.pending.checked_sub(1).expect("a landed change was pending");
        if s.pending == 0 {
            self.shard_intent.remove(&id);
        }
    }

    /// Hands out an id, raising the stored ceiling in the same change when the block runs out.
    pub fn alloc_id(&mut self, cluster: ClusterId, block: u64, mutations: &mut Vec<Mutation>) -> u64 {
        if self.next_id >= self.id_ceiling {
            self.id_ceiling = self.next_id + block;
            mutations.push(Mutation::PutIdCeiling(cluster, self.id_ceiling));
        }
        self.next_id += 1;
        self.next_id - 1
    }

    /// Moves a shard's place in the placement order by `delta` tables.
    pub fn count_tables(&mut self, shard: ShardId, delta: i32) {
        let n = &mut self.table_counts[shard.index()];
        self.placement.remove(&(*n, shard));
        *n = n.checked_add_signed(delta).expect("table count stays in range");
        self.placement.insert((*n, shard));
    }

    /// Whether `node` may be given a lease for `shard`: no other node's lease may still be
    /// valid, counting clock drift.
    pub fn lease_free_for(&self, shard: ShardId, node: NodeId, now: Instant, config: &CoreConfig) -> bool {
        self.shards[shard.index()].lease_holder == Some(node) || self.lease_expired(shard, now, config)
    }
}

/// The record a shard will have once its transfer (if any) finishes with the planned target: the
/// target leads, and the old leader takes the target's follower slot if it had one.
pub fn planned(s: &ShardRecord) -> Cow<'_, ShardRecord> {
    let Some(t) = s.transfer else { return Cow::Borrowed(s) };
    let mut after = s.clone();
    after.transfer = None;
    after.leader = Some(t.to);
    if let Some(slot) = after.followers.iter_mut().find(|f| **f == t.to) {
        *slot = t.from;
    }
    Cow::Owned(after)
}
