//! The leader's live state of each shard: its lease and what its leader last reported (see
//! [`leases`](super::leases)), its load (see [`load`](super::load)), and a copy of where the
//! catalog places it, in one *entry* of 128 bytes; and beside the entries, a dense *scan copy*
//! of what the scheduler reads of every shard.
//!
//! **Why one entry.** A heartbeat's reports touch all of the entry for every shard they name,
//! and they name shards spread over the whole cluster. Kept in an array each, as the parts once
//! were (with the catalog's record beside them), a report cost four pages: at a million shards
//! a TLB miss and a cache miss apiece, taken one after another, 130 ns a report. One entry,
//! aligned to the pair of cache lines that the processor fetches together, costs one.
//!
//! **Why a scan copy.** The scheduler's scans pull the other way: every pass reads every
//! shard's load rates and leader, in order, and runs fastest over a dense array of just that.
//! Over the entries it would pull 128 bytes through the cache for 28 it reads. Two lines a
//! shard, one for what scans read and one for the rest, were the compromise before: the pass
//! as fast as over the old arrays, a report at 80 ns. The rates change only when a window
//! closes, about one report in ten, and the placement only when a record lands, so the copy
//! costs a report little. It is rewritten at each of those, in this module alone.
//!
//! **The copies** are there for the same reason: an unchanged report is checked against the
//! entry's placement without reading the catalog's record, which would be a page more, and a
//! pass reads the scan copy. The placement is written with every shard record that lands and
//! at every reload. Both are checked, against the catalog and against the entry, in
//! [`LiveCluster::check_consistency`](super::LiveCluster::check_consistency), and the placement,
//! in debug builds, on every report.

use super::leases::ShardLease;
use super::load::{Busiest, RatesDigest, Sample, Sizes};
use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::input::{ShardLoad, TableLoad};
use crate::core::model::{ClusterCatalog, ShardRecord};
use crate::core::output::FailoverLog;
use crate::core::time::{Duration, Instant};

/// Where the catalog places a shard: what a report is checked against. 16 bytes, so that the
/// load rates and this share the entry's first line.
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

/// What the scheduler's scan over every shard reads of one: its load rates and the leader it
/// will have once a transfer in progress is done. 28 bytes, a copy of its entry's, rewritten
/// whenever either changes (see the module notes).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scanned {
    rates: RatesDigest,
    planned_leader: NodeSlot,
}

impl Scanned {
    /// Its load rates, and whether they are known and trusted.
    pub fn rates(&self) -> &RatesDigest {
        &self.rates
    }

    /// Its leader once a transfer in progress is done, as the catalog has it.
    pub fn planned_leader(&self) -> Option<NodeId> {
        self.planned_leader.get()
    }
}

/// One shard's state on the heartbeat path, in 128 bytes aligned to them: a pair of cache
/// lines that the processor fetches together.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(128))]
struct Entry {
    load: Sample,
    placed: Placed,
    lease: ShardLease,
    sizes: Sizes,
}

/// Every shard's entry and scan copy, by shard id, and what the leases and loads keep beside
/// them.
#[derive(Clone, Debug, Default)]
pub struct PerShard {
    entries: Vec<Entry>,
    scanned: Vec<Scanned>,
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
            entries: vec![Entry::default(); shards],
            scanned: Vec::new(),
            busiest: vec![Busiest::default(); shards],
            failovers: FailoverLog::default(),
            window: Duration(config.load_window_ms),
            windows_trusted: config.load_windows_trusted,
        }
        .rescanned()
    }

    /// Every shard's scan copy made afresh from its entry.
    fn rescanned(mut self) -> PerShard {
        self.scanned = (0..self.entries.len()).map(|i| self.scan_of(i)).collect();
        self
    }

    /// What a scan reads of shard `i`, as its entry has it.
    fn scan_of(&self, i: usize) -> Scanned {
        let e = &self.entries[i];
        Scanned {
            rates: e.load.digest(self.windows_trusted),
            planned_leader: e.placed.planned_leader().into(),
        }
    }

    /// Shard `i`'s rates or placement changed: its scan copy follows.
    fn rescan(&mut self, i: usize) {
        self.scanned[i] = self.scan_of(i);
    }

    /// What the scheduler's scan over every shard reads of one (see the module notes).
    pub fn scanned(&self, shard: ShardId) -> &Scanned {
        &self.scanned[shard.index()]
    }

    /// For a leader that just took over: every assigned shard counts as leased by its leader
    /// for one more lease, so that a meta failover never causes a shard failover by itself.
    pub(super) fn inherited(cluster: &ClusterCatalog, now: Instant, config: &CoreConfig) -> Self {
        let mut all = PerShard::unassigned(cluster.shards.len(), config);
        for (i, s) in cluster.shards.iter().enumerate() {
            all.entries[i].lease = ShardLease::inherited(s.leader.map(NodeId), now, config);
            all.entries[i].placed = Placed::of(s);
        }
        all.rescanned()
    }

    /// New shards (a split): unassigned, so no lease, and nothing known of their load.
    pub(super) fn grow(&mut self, shards: usize) {
        assert!(shards >= self.entries.len(), "the shard count never shrinks");
        let from = self.entries.len();
        self.entries.resize(shards, Entry::default());
        self.busiest.resize(shards, Busiest::default());
        let added: Vec<Scanned> = (from..shards).map(|i| self.scan_of(i)).collect();
        self.scanned.extend(added);
    }

    /// How many shards.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cluster has no shard.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads a word from both lines of each shard's entry, and returns a fold of them that
    /// means nothing (see `LiveCluster::touch`).
    pub fn touch(&self, shards: impl Iterator<Item = ShardId>) -> u64 {
        shards.fold(0, |acc, id| {
            let e = &self.entries[id.index()];
            acc ^ e.load.window_start().0 ^ e.lease.until().0
        })
    }

    /// Where the catalog places the shard (see the module notes).
    pub fn placed(&self, shard: ShardId) -> Placed {
        self.entries[shard.index()].placed
    }

    /// The shard's record landed in the catalog.
    pub(super) fn place(&mut self, s: &ShardRecord) {
        self.entries[s.id as usize].placed = Placed::of(s);
        self.rescan(s.id as usize);
    }

    /// The catalog was reloaded: every shard's placement as it has it now, and every shard's
    /// leader must report its version again.
    pub(super) fn reloaded(&mut self, cluster: &ClusterCatalog) {
        assert_eq!(cluster.shards.len(), self.entries.len(), "an entry for every shard");
        for (i, s) in cluster.shards.iter().enumerate() {
            self.entries[i].placed = Placed::of(s);
            self.entries[i].lease.forget_ready(Version(s.version));
            self.rescan(i);
        }
    }

    /// The first shard whose copied placement is not the catalog's, or whose scan copy is not
    /// its entry's.
    pub(super) fn check_copies(&self, cluster: &ClusterCatalog) -> Result<(), String> {
        let placed = self.entries.iter().zip(&cluster.shards);
        if let Some((e, s)) = placed.clone().find(|(e, s)| e.placed != Placed::of(s)) {
            return Err(format!(
                "shard {}: live copy of its placement {:?}, catalog {:?}",
                s.id,
                e.placed,
                Placed::of(s)
            ));
        }
        match (0..self.entries.len()).find(|&i| self.scanned[i] != self.scan_of(i)) {
            Some(i) => Err(format!(
                "shard {i}: scan copy {:?}, its entry has {:?}",
                self.scanned[i],
                self.scan_of(i)
            )),
            None => Ok(()),
        }
    }
}

/// The leases' part (see [`leases`](super::leases)), by shard.
impl PerShard {
    /// Whether every lease any node may hold for the shard has surely ended.
    pub fn expired(&self, shard: ShardId, now: Instant, config: &CoreConfig) -> bool {
        self.entries[shard.index()].lease.expired(now, config)
    }

    /// Whether `node` may be given a lease for `shard` (see [`ShardLease::free_for`]).
    pub fn free_for(
        &self,
        shard: ShardId,
        node: NodeId,
        now: Instant,
        config: &CoreConfig,
    ) -> bool {
        self.entries[shard.index()].lease.free_for(node, now, config)
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
        let lease = &mut self.entries[shard.index()].lease;
        lease.try_grant(node, now, config, offline, &mut self.failovers)
    }

    /// How long failed-over shards went without a writable leader.
    pub fn failovers(&self) -> &FailoverLog {
        &self.failovers
    }

    /// `node` let go of `shard`: its lease, if it held one, is over. `true` if it held one.
    pub(super) fn released(&mut self, shard: ShardId, node: NodeId) -> bool {
        self.entries[shard.index()].lease.released(node)
    }

    /// Whether the shard's leader reported it open at its current version.
    pub fn leader_ready(&self, shard: ShardId) -> bool {
        self.entries[shard.index()].lease.leader_ready()
    }

    /// The shard was re-opened at `version`: not ready until its leader reports it.
    pub(super) fn reopened(&mut self, shard: ShardId, version: Version) {
        self.entries[shard.index()].lease.reopened(version);
    }

    /// The leader (as the catalog has it) reported the shard at `reported`.
    pub(super) fn leader_reported(&mut self, shard: ShardId, reported: Option<Version>) {
        self.entries[shard.index()].lease.leader_reported(reported);
    }

    /// The shard's replicas were sent `version` at `now`, between heartbeats.
    pub(super) fn pushed(&mut self, shard: ShardId, version: Version, now: Instant) {
        self.entries[shard.index()].lease.pushed(version, now);
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
        self.entries[shard.index()].lease.push_in_flight(reported, current, now, config)
    }
}

/// The loads' part (see [`load`](super::load)), by shard.
impl PerShard {
    /// A report from the shard's leader at `now`; the mean load units of the window it closed,
    /// if it closed one.
    pub(super) fn record(&mut self, shard: ShardId, load: &ShardLoad, now: Instant) -> Option<f64> {
        let e = &mut self.entries[shard.index()];
        e.sizes = Sizes::of(load);
        let closed = e.load.record(load, now, self.window);
        // Rates change only when a window closes.
        if closed.is_some() {
            self.rescan(shard.index());
        }
        closed
    }

    /// The busiest tables its leader reported for the shard (see [`Busiest::record`]).
    pub(super) fn record_tables(&mut self, shard: ShardId, tables: &[TableLoad]) {
        if self.entries[shard.index()].load.names(tables) {
            self.busiest[shard.index()].record(tables);
        }
    }

    /// The shard's busiest tables, busiest first as last reported, with smoothed rates.
    pub fn busiest(&self, shard: ShardId) -> impl Iterator<Item = TableLoad> + '_ {
        self.busiest[shard.index()].tables(shard)
    }

    /// The shard's smoothed load, if enough windows have been seen to trust it.
    pub fn trusted(&self, shard: ShardId) -> Option<ShardLoad> {
        let sizes = self.entries[shard.index()].sizes;
        self.entries[shard.index()].load.trusted(self.windows_trusted).map(|l| sizes.stamped(l))
    }

    /// The smoothed load whether trusted or not (for display), and the windows behind it.
    pub fn smoothed(&self, shard: ShardId) -> (ShardLoad, u32) {
        let (load, windows) = self.entries[shard.index()].load.smoothed();
        (self.entries[shard.index()].sizes.stamped(load), windows)
    }

    /// Whether anything is known of the shard's load: a window of it closed under this leader.
    pub fn known(&self, shard: ShardId) -> bool {
        self.entries[shard.index()].load.known()
    }

    /// The shard's estimated load units (see [`Sample::estimate_units`]).
    pub fn estimate_units(&self, shard: ShardId) -> f64 {
        self.entries[shard.index()].load.estimate_units()
    }

    /// Whether the shard's load held steady (see [`Sample::steady`]).
    pub fn steady(&self, shard: ShardId) -> bool {
        self.entries[shard.index()].load.steady()
    }

    /// The shard's leader changed: its load is learnt afresh (see [`Sample::moved`]).
    pub(super) fn moved(&mut self, shard: ShardId) {
        self.entries[shard.index()].load.moved();
        self.entries[shard.index()].sizes = Sizes::default();
        self.rescan(shard.index());
        assert!(self.trusted(shard).is_none(), "a moved shard is not trusted until learnt again");
    }

    /// A split moved `share` of the source's load to the new shard: each keeps its part of the
    /// source's smoothed load as an estimate, and both are learnt afresh.
    pub(super) fn split(&mut self, source: ShardId, new: ShardId, share: f64) {
        assert!(source != new, "shard {source} split into itself");
        let share = share.clamp(0.0, 1.0) as f32;
        let old = self.entries[source.index()].load;
        self.entries[source.index()].load = old.part(1.0 - share);
        self.entries[new.index()].load = old.part(share);
        self.entries[source.index()].sizes = Sizes::default();
        self.entries[new.index()].sizes = Sizes::default();
        self.busiest[new.index()] = Busiest::default();
        self.rescan(source.index());
        self.rescan(new.index());
        assert!(self.trusted(source).is_none() && self.trusted(new).is_none());
    }

    /// A merge moved `from`'s tables into `into`: `into`'s estimate is both, learnt afresh.
    pub(super) fn merge(&mut self, from: ShardId, into: ShardId) {
        assert!(from != into, "shard {from} merged into itself");
        let (a, b) = (&self.entries[from.index()].load, &self.entries[into.index()].load);
        self.entries[into.index()].load = Sample::merged(a, b);
        self.entries[from.index()].load = Sample::default();
        self.entries[into.index()].sizes = Sizes::default();
        self.entries[from.index()].sizes = Sizes::default();
        self.busiest[from.index()] = Busiest::default();
        self.rescan(from.index());
        self.rescan(into.index());
        assert!(!self.known(from), "a merged-away shard carries no load");
    }
}

const _: () = assert!(
    std::mem::size_of::<Entry>() == 128 && std::mem::size_of::<Scanned>() <= 28,
    "a shard's entry is two cache lines, and its scan copy fits two and a bit in one"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Catalog, ClusterRecord, Mutation, NodeRecord, Topology};

    /// A catalog of one cluster of `shards` unassigned shards and one node.
    fn one_cluster(shards: u32) -> (Catalog, ClusterId) {
        let c = ClusterId(1);
        let mut catalog = Catalog::default();
        catalog
            .apply(Mutation::PutCluster(ClusterRecord {
                id: c.0,
                name: "c".into(),
                shard_count: shards,
                topology: ClusterRecord::topology_code(Topology::Dynamic),
                min_nodes: 1,
                ..Default::default()
            }))
            .unwrap();
        let node = NodeRecord { name: "n0".into(), endpoint: "n0:1".into(), ..Default::default() };
        catalog.apply(Mutation::PutNode(c, node)).unwrap();
        (catalog, c)
    }

    #[test]
    fn a_copy_of_a_placement_that_missed_a_landed_record_is_caught() {
        let config = CoreConfig::default();
        let (mut catalog, c) = one_cluster(2);
        let mut shards = PerShard::inherited(catalog.cluster(c), Instant(0), &config);
        assert_eq!(shards.check_copies(catalog.cluster(c)), Ok(()));
        let moved = ShardRecord { id: 1, version: 3, leader: Some(0), ..Default::default() };
        catalog.apply(Mutation::PutShard(c, moved.clone())).unwrap();
        let missed = shards.check_copies(catalog.cluster(c)).unwrap_err();
        assert!(missed.starts_with("shard 1: live copy of its placement"), "{missed}");
        shards.place(&moved);
        assert_eq!(shards.check_copies(catalog.cluster(c)), Ok(()));
        assert_eq!(shards.placed(ShardId(1)).leader(), Some(NodeId(0)));
        assert_eq!(shards.scanned(ShardId(1)).planned_leader(), Some(NodeId(0)));
    }

    /// The scan copy follows each window that closes, and one that missed it is caught.
    #[test]
    fn a_scan_copy_that_missed_a_closed_window_is_caught() {
        let config = CoreConfig::default();
        let (catalog, c) = one_cluster(1);
        let mut shards = PerShard::inherited(catalog.cluster(c), Instant(0), &config);
        let (shard, window) = (ShardId(0), config.load_window_ms);
        let load = ShardLoad { write_units: 100.0, ..Default::default() };
        for w in 0..=config.load_windows_trusted as u64 {
            shards.record(shard, &load, Instant(w * window));
        }
        let rates = *shards.scanned(shard).rates();
        assert!(rates.known() && rates.trusted(), "{rates:?}");
        assert_eq!(rates.units_and_cpu()[0][0], 100.0);
        assert_eq!(shards.check_copies(catalog.cluster(c)), Ok(()));
        shards.scanned[0] = Scanned::default();
        let missed = shards.check_copies(catalog.cluster(c)).unwrap_err();
        assert!(missed.starts_with("shard 0: scan copy"), "{missed}");
    }
}
