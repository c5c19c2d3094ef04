//! The leader's live state of each shard, in two cache lines per shard: its lease and what its
//! leader last reported (see [`leases`](super::leases)), its load (see [`load`](super::load)),
//! and a copy of where the catalog places it.
//!
//! **Why two lines, and these two.** A heartbeat's reports touch all of this for every shard
//! they name, and they name shards spread over the whole cluster. Kept in an array each, as the
//! parts once were (with the catalog's record beside them), a report cost four pages: at a
//! million shards a TLB miss and a cache miss apiece, taken one after another, 130 ns a report.
//! The scheduler's scans pull the other way: they read every shard's load and leader, in
//! order, and run fastest over a dense array of just that. So the *front* line holds what scans
//! read (load rates and placement) and the *back* line what only heartbeats add (lease and
//! sizes), each in an array of its own. One 128-byte entry per shard made a report cheaper
//! still (45 ns against 80) but doubled what a scan pulls through the cache, and slowed the
//! balance pass at 100k shards by a quarter to a third; the arrays' split keeps it as it was.
//!
//! **The copy of the placement** is there for the same reason: an unchanged report is checked
//! against it without reading the catalog's record, which would be a page more. It is written
//! with every shard record that lands and at every reload, and checked against the catalog in
//! [`LiveCluster::check_consistency`](super::LiveCluster::check_consistency) and, in debug
//! builds, on every report.

use super::leases::ShardLease;
use super::load::{Busiest, Sample, Sizes};
use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::input::{ShardLoad, TableLoad};
use crate::core::model::{ClusterCatalog, ShardRecord};
use crate::core::output::FailoverLog;
use crate::core::time::{Duration, Instant};

/// Where the catalog places a shard: what a report is checked against. 16 bytes, so that the
/// load rates and this share the shard's front line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placed {
    version: Version,
    leader: NodeSlot,
    /// The node a leader transfer in progress hands the shard to. It takes it from the leader
    /// (the catalog refuses a transfer from any other node).
    transfer_to: NodeSlot,
}

impl Placed {
    /// Where `s` places its shard.
    pub fn of(s: &ShardRecord) -> Placed {
        Placed {
            version: Version(s.version),
            leader: s.leader.map(NodeId).into(),
            transfer_to: s.transfer.map(|t| NodeId(t.to)).into(),
        }
    }

    /// The shard's version in the catalog.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The node that leads it; `None` while unassigned.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader.get()
    }

    /// The node a leader transfer in progress takes the shard from: its leader.
    pub fn transfer_from(&self) -> Option<NodeId> {
        self.transfer_to.get().and(self.leader())
    }

    /// The leader once a transfer in progress is done (see `live::planned`).
    pub fn planned_leader(&self) -> Option<NodeId> {
        self.transfer_to.get().or(self.leader())
    }
}

/// What scans over every shard read of it: its load rates and placement, in one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Front {
    load: Sample,
    placed: Placed,
}

/// What only the heartbeat path adds: its lease and sizes, in one cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Back {
    lease: ShardLease,
    sizes: Sizes,
}

/// Every shard's two lines, by shard id, and what the leases and loads keep beside them.
#[derive(Clone, Debug, Default)]
pub struct PerShard {
    front: Vec<Front>,
    back: Vec<Back>,
    /// Each shard's busiest tables: apart, since only shards whose leader names tables touch
    /// theirs.
    busiest: Vec<Busiest>,
    failovers: FailoverLog,
    /// The load window, and the windows closed before a shard's load is trusted.
    window: Duration,
    windows_trusted: u32,
}

impl PerShard {
    /// `shards` unassigned shards, none leased, nothing known of their load.
    pub(super) fn unassigned(shards: usize, config: &CoreConfig) -> PerShard {
        PerShard {
            front: vec![Front::default(); shards],
            back: vec![Back::default(); shards],
            busiest: vec![Busiest::default(); shards],
            failovers: FailoverLog::default(),
            window: Duration(config.load_window_ms),
            windows_trusted: config.load_windows_trusted,
        }
    }

    /// For a leader that just took over: every assigned shard counts as leased by its leader
    /// for one more lease, so that a meta failover never causes a shard failover by itself.
    pub(super) fn inherited(cluster: &ClusterCatalog, now: Instant, config: &CoreConfig) -> Self {
        let mut all = PerShard::unassigned(cluster.shards.len(), config);
        for (i, s) in cluster.shards.iter().enumerate() {
            all.back[i].lease = ShardLease::inherited(s.leader.map(NodeId), now, config);
            all.front[i].placed = Placed::of(s);
        }
        all
    }

    /// New shards (a split): unassigned, so no lease, and nothing known of their load.
    pub(super) fn grow(&mut self, shards: usize) {
        assert!(shards >= self.front.len(), "the shard count never shrinks");
        self.front.resize(shards, Front::default());
        self.back.resize(shards, Back::default());
        self.busiest.resize(shards, Busiest::default());
    }

    /// How many shards.
    pub fn len(&self) -> usize {
        self.front.len()
    }

    /// Whether the cluster has no shard.
    pub fn is_empty(&self) -> bool {
        self.front.is_empty()
    }

    /// Reads a word from both lines of each shard's state, and returns a fold of them that
    /// means nothing (see `LiveCluster::touch`).
    pub fn touch(&self, shards: impl Iterator<Item = ShardId>) -> u64 {
        shards.fold(0, |acc, id| {
            acc ^ self.front[id.index()].load.window_start().0
                ^ self.back[id.index()].lease.until().0
        })
    }

    /// Where the catalog places the shard (see the module notes).
    pub fn placed(&self, shard: ShardId) -> Placed {
        self.front[shard.index()].placed
    }

    /// The shard's record landed in the catalog.
    pub(super) fn place(&mut self, s: &ShardRecord) {
        self.front[s.id as usize].placed = Placed::of(s);
    }

    /// The catalog was reloaded: every shard's placement as it has it now, and every shard's
    /// leader must report its version again.
    pub(super) fn reloaded(&mut self, cluster: &ClusterCatalog) {
        assert_eq!(cluster.shards.len(), self.front.len(), "a line of each for every shard");
        for (i, s) in cluster.shards.iter().enumerate() {
            self.front[i].placed = Placed::of(s);
            self.back[i].lease.forget_ready(Version(s.version));
        }
    }

    /// The first shard whose copied placement is not the catalog's.
    pub(super) fn check_placed(&self, cluster: &ClusterCatalog) -> Result<(), String> {
        match self.front.iter().zip(&cluster.shards).find(|(e, s)| e.placed != Placed::of(s)) {
            Some((e, s)) => Err(format!(
                "shard {}: live copy of its placement {:?}, catalog {:?}",
                s.id,
                e.placed,
                Placed::of(s)
            )),
            None => Ok(()),
        }
    }
}

/// The leases' part (see [`leases`](super::leases)), by shard.
impl PerShard {
    /// Whether every lease any node may hold for the shard has surely ended.
    pub fn expired(&self, shard: ShardId, now: Instant, config: &CoreConfig) -> bool {
        self.back[shard.index()].lease.expired(now, config)
    }

    /// Whether `node` may be given a lease for `shard` (see [`ShardLease::free_for`]).
    pub fn free_for(
        &self,
        shard: ShardId,
        node: NodeId,
        now: Instant,
        config: &CoreConfig,
    ) -> bool {
        self.back[shard.index()].lease.free_for(node, now, config)
    }

    /// Grants or renews `node`'s lease on `shard` (see [`ShardLease::try_grant`]).
    pub(super) fn try_grant(
        &mut self,
        shard: ShardId,
        node: NodeId,
        now: Instant,
        config: &CoreConfig,
        offline: impl Fn(NodeId) -> bool,
    ) -> bool {
        let lease = &mut self.back[shard.index()].lease;
        lease.try_grant(node, now, config, offline, &mut self.failovers)
    }

    /// How long failed-over shards went without a writable leader.
    pub fn failovers(&self) -> &FailoverLog {
        &self.failovers
    }

    /// `node` let go of `shard`: its lease, if it held one, is over. `true` if it held one.
    pub(super) fn released(&mut self, shard: ShardId, node: NodeId) -> bool {
        self.back[shard.index()].lease.released(node)
    }

    /// Whether the shard's leader reported it open at its current version.
    pub fn leader_ready(&self, shard: ShardId) -> bool {
        self.back[shard.index()].lease.leader_ready()
    }

    /// The shard was re-opened at `version`: not ready until its leader reports it.
    pub(super) fn reopened(&mut self, shard: ShardId, version: Version) {
        self.back[shard.index()].lease.reopened(version);
    }

    /// The leader (as the catalog has it) reported the shard at `reported`.
    pub(super) fn leader_reported(&mut self, shard: ShardId, reported: Option<Version>) {
        self.back[shard.index()].lease.leader_reported(reported);
    }

    /// The shard's replicas were sent `version` at `now`, between heartbeats.
    pub(super) fn pushed(&mut self, shard: ShardId, version: Version, now: Instant) {
        self.back[shard.index()].lease.pushed(version, now);
    }

    /// Whether the push of `current` is on its way to a replica that reports `reported` (see
    /// [`ShardLease::push_in_flight`]).
    pub fn push_in_flight(
        &self,
        shard: ShardId,
        reported: Version,
        current: Version,
        now: Instant,
        config: &CoreConfig,
    ) -> bool {
        self.back[shard.index()].lease.push_in_flight(reported, current, now, config)
    }
}

/// The loads' part (see [`load`](super::load)), by shard.
impl PerShard {
    /// A report from the shard's leader at `now`; the mean load units of the window it closed,
    /// if it closed one.
    pub(super) fn record(&mut self, shard: ShardId, load: &ShardLoad, now: Instant) -> Option<f64> {
        self.back[shard.index()].sizes = Sizes::of(load);
        self.front[shard.index()].load.record(load, now, self.window)
    }

    /// The busiest tables its leader reported for the shard (see [`Busiest::record`]).
    pub(super) fn record_tables(&mut self, shard: ShardId, tables: &[TableLoad]) {
        if self.front[shard.index()].load.names(tables) {
            self.busiest[shard.index()].record(tables);
        }
    }

    /// The shard's busiest tables, busiest first as last reported, with smoothed rates.
    pub fn busiest(&self, shard: ShardId) -> impl Iterator<Item = TableLoad> + '_ {
        self.busiest[shard.index()].tables(shard)
    }

    /// The shard's smoothed load, if enough windows have been seen to trust it.
    pub fn trusted(&self, shard: ShardId) -> Option<ShardLoad> {
        let sizes = self.back[shard.index()].sizes;
        self.front[shard.index()].load.trusted(self.windows_trusted).map(|l| sizes.stamped(l))
    }

    /// The smoothed load whether trusted or not (for display), and the windows behind it.
    pub fn smoothed(&self, shard: ShardId) -> (ShardLoad, u32) {
        let (load, windows) = self.front[shard.index()].load.smoothed();
        (self.back[shard.index()].sizes.stamped(load), windows)
    }

    /// Whether anything is known of the shard's load: a window of it closed under this leader.
    pub fn known(&self, shard: ShardId) -> bool {
        self.front[shard.index()].load.known()
    }

    /// The shard's estimated load units (see [`Sample::estimate_units`]).
    pub fn estimate_units(&self, shard: ShardId) -> f64 {
        self.front[shard.index()].load.estimate_units()
    }

    /// The shard's load units over the long run, whether trusted or not.
    pub fn slow_units(&self, shard: ShardId) -> f64 {
        self.front[shard.index()].load.slow_units()
    }

    /// Whether the shard's load held steady (see [`Sample::steady`]).
    pub fn steady(&self, shard: ShardId) -> bool {
        self.front[shard.index()].load.steady()
    }

    /// The shard's load units and CPU, now and over the long run (see
    /// [`Sample::units_and_cpu`]).
    pub fn units_and_cpu(&self, shard: ShardId) -> [[f64; 2]; 2] {
        self.front[shard.index()].load.units_and_cpu()
    }

    /// The shard's leader changed: its load is learnt afresh (see [`Sample::moved`]).
    pub(super) fn moved(&mut self, shard: ShardId) {
        self.front[shard.index()].load.moved();
        self.back[shard.index()].sizes = Sizes::default();
        assert!(self.trusted(shard).is_none(), "a moved shard is not trusted until learnt again");
    }

    /// A split moved `share` of the source's load to the new shard: each keeps its part of the
    /// source's smoothed load as an estimate, and both are learnt afresh.
    pub(super) fn split(&mut self, source: ShardId, new: ShardId, share: f64) {
        assert!(source != new, "shard {source} split into itself");
        let share = share.clamp(0.0, 1.0) as f32;
        let old = self.front[source.index()].load;
        self.front[source.index()].load = old.part(1.0 - share);
        self.front[new.index()].load = old.part(share);
        self.back[source.index()].sizes = Sizes::default();
        self.back[new.index()].sizes = Sizes::default();
        self.busiest[new.index()] = Busiest::default();
        assert!(self.trusted(source).is_none() && self.trusted(new).is_none());
    }

    /// A merge moved `from`'s tables into `into`: `into`'s estimate is both, learnt afresh.
    pub(super) fn merge(&mut self, from: ShardId, into: ShardId) {
        assert!(from != into, "shard {from} merged into itself");
        let (a, b) = (&self.front[from.index()].load, &self.front[into.index()].load);
        self.front[into.index()].load = Sample::merged(a, b);
        self.front[from.index()].load = Sample::default();
        self.back[into.index()].sizes = Sizes::default();
        self.back[from.index()].sizes = Sizes::default();
        self.busiest[from.index()] = Busiest::default();
        assert!(!self.known(from), "a merged-away shard carries no load");
    }
}

const _: () = assert!(
    std::mem::size_of::<Front>() == 64 && std::mem::size_of::<Back>() == 64,
    "a shard's parts are a cache line each: load and placement, lease and sizes"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Catalog, ClusterRecord, Mutation, NodeRecord, Topology};

    #[test]
    fn a_copy_of_a_placement_that_missed_a_landed_record_is_caught() {
        let config = CoreConfig::default();
        let c = ClusterId(1);
        let mut catalog = Catalog::default();
        catalog
            .apply(Mutation::PutCluster(ClusterRecord {
                id: c.0,
                name: "c".into(),
                shard_count: 2,
                topology: ClusterRecord::topology_code(Topology::Dynamic),
                min_nodes: 1,
                ..Default::default()
            }))
            .unwrap();
        let node = NodeRecord { name: "n0".into(), endpoint: "n0:1".into(), ..Default::default() };
        catalog.apply(Mutation::PutNode(c, node)).unwrap();
        let mut shards = PerShard::inherited(catalog.cluster(c), Instant(0), &config);
        assert_eq!(shards.check_placed(catalog.cluster(c)), Ok(()));
        let moved = ShardRecord { id: 1, version: 3, leader: Some(0), ..Default::default() };
        catalog.apply(Mutation::PutShard(c, moved.clone())).unwrap();
        let missed = shards.check_placed(catalog.cluster(c)).unwrap_err();
        assert!(missed.starts_with("shard 1: live copy of its placement"), "{missed}");
        shards.place(&moved);
        assert_eq!(shards.check_placed(catalog.cluster(c)), Ok(()));
        assert_eq!(shards.placed(ShardId(1)).leader(), Some(NodeId(0)));
    }
}
