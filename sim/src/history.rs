//! The history oracle: what data nodes and clients saw, on one simulated wall clock, and the
//! checks over it.
//! - Lease tenures per shard (from each node-agent's lease log) never overlap between nodes
//!   (S1), nor do tenures per table (a table is served under the lease of whichever shard holds
//!   it on that node; splits and merges move tables between shards while leases run on).
//! - Every routed write was accepted inside a tenure of the accepting node, and a shard's writes
//!   never go back to an older version (only the one valid leader accepts writes).
//! - Each node's view of term, epoch and shard versions never goes backwards within one process
//!   lifetime (S3), checked on every change.
//! - Acknowledged creates and drops, for the durability check (S2) against storage.
//! - What meta heard of followers' lag, for the check of failovers (F1, see `told`).
//!
//! Simulated nodes share one clock, so the node-local instants converted to wall milliseconds
//! are comparable across nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use shardmeta::check::{self, AckLog, NodeView, Tenure};
use shardmeta::client::{LeaseEvent, TableLeaseEvent};
use shardmeta::core::{ClusterId, ShardId, TableId, Version};

use crate::told::Told;

/// Simulated wall-clock milliseconds.
pub type Ms = u64;

pub fn now_ms() -> Ms {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A routed write a node accepted.
#[derive(Clone, Copy, Debug)]
struct Write {
    shard: ShardId,
    version: Version,
    at: Ms,
}

/// Nodes' tenures over units (shards, or tables), and the one each node is extending.
struct Tenures<K> {
    all: BTreeMap<K, Vec<Tenure>>,
    /// The tenure each (node, unit) is extending, as an index into `all`.
    open: BTreeMap<(String, K), usize>,
}

impl<K> Default for Tenures<K> {
    fn default() -> Self {
        Tenures { all: BTreeMap::new(), open: BTreeMap::new() }
    }
}

impl<K: Ord + Copy> Tenures<K> {
    /// A grant or extension: extends the open tenure if it reaches `from`, else opens one.
    fn held(&mut self, node: &str, unit: K, from: Ms, until: Ms) {
        let key = (node.to_owned(), unit);
        let tenures = self.all.entry(unit).or_default();
        match self.open.get(&key).copied().filter(|&i| tenures[i].until >= from) {
            Some(i) => tenures[i].until = tenures[i].until.max(until),
            None => {
                tenures.push(Tenure { node: node.to_owned(), from, until });
                self.open.insert(key, tenures.len() - 1);
            }
        }
    }

    fn cut(&mut self, node: &str, unit: K, at: Ms) {
        if let Some(i) = self.open.remove(&(node.to_owned(), unit)) {
            let t = &mut self.all.get_mut(&unit).expect("open tenure")[i];
            t.until = t.until.min(at);
        }
    }

    /// Every tenure the node has open ends at `at`.
    fn died(&mut self, node: &str, at: Ms) {
        let open: Vec<K> = self.open.keys().filter(|(n, _)| n == node).map(|(_, u)| *u).collect();
        for unit in open {
            self.cut(node, unit, at);
        }
    }

    fn open(&self, node: &str, unit: K) -> Option<&Tenure> {
        self.open.get(&(node.to_owned(), unit)).map(|&i| &self.all[&unit][i])
    }

    /// S1 over each unit's tenures; `name` says what a unit is ("shard 3").
    fn check(&self, name: impl Fn(K) -> String) -> Result<(), String> {
        self.all.iter().try_for_each(|(&unit, tenures)| {
            check::single_writer_over(&name(unit), tenures).map_err(|v| v.to_string())
        })
    }
}

#[derive(Default)]
struct Inner {
    shards: Tenures<ShardId>,
    tables: Tenures<TableId>,
    writes: BTreeMap<String, Vec<Write>>,
    views: BTreeMap<String, NodeView>,
    created: BTreeMap<TableId, String>,
    dropped: BTreeSet<TableId>,
    /// Tables with a drop sent but not acknowledged: they may exist or not.
    in_doubt: BTreeSet<TableId>,
    violations: Vec<String>,
    /// A running hash of every recorded event: equal seeds must give equal traces.
    trace: std::collections::hash_map::DefaultHasher,
    events: u64,
}

impl Inner {
    fn trace(&mut self, event: impl Hash) {
        event.hash(&mut self.trace);
        self.events += 1;
    }
}

#[derive(Clone, Default)]
pub struct History {
    inner: Arc<Mutex<Inner>>,
    /// What meta heard of followers' lag (F1).
    pub told: Told,
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("history lock")
    }

    /// A node-agent's lease log entry, converted to wall milliseconds.
    pub fn lease(
        &self,
        node: &str,
        event: LeaseEvent,
        wall: impl Fn(shardmeta::core::Instant) -> Ms,
    ) {
        let mut h = self.lock();
        match event {
            LeaseEvent::Held { shard, from, until } => {
                let (from, until) = (wall(from), wall(until));
                h.trace(("held", node, shard.0, from, until));
                h.shards.held(node, shard, from, until);
            }
            LeaseEvent::Cut { shard, at } => {
                let at = wall(at);
                h.trace(("cut", node, shard.0, at));
                h.shards.cut(node, shard, at);
            }
        }
    }

    /// The same per table (not traced: it follows from the shard leases and the node's views).
    pub fn table_lease(
        &self,
        node: &str,
        event: TableLeaseEvent,
        wall: impl Fn(shardmeta::core::Instant) -> Ms,
    ) {
        let mut h = self.lock();
        match event {
            TableLeaseEvent::Held { table, from, until } => {
                h.tables.held(node, table, wall(from), wall(until))
            }
            TableLeaseEvent::Cut { table, at } => h.tables.cut(node, table, wall(at)),
        }
    }

    /// The harness killed the node's process: it leads nothing from `at` on, and its next
    /// lifetime starts a fresh S3 chain.
    pub fn node_died(&self, node: &str, at: Ms) {
        let mut h = self.lock();
        h.trace(("died", node, at));
        h.shards.died(node, at);
        h.tables.died(node, at);
        h.views.remove(node);
        self.told.died(node);
    }

    /// A routed write the node accepted. It is recorded under the node's host lock, so the
    /// lease log is up to date: the write must fall inside the tenure open now. (Checked here,
    /// in event order, because a lease cut in the same millisecond as the write came after it.)
    pub fn write(&self, node: &str, shard: ShardId, version: Version, at: Ms) {
        let mut h = self.lock();
        h.trace(("write", node, shard.0, version.0, at));
        if !h.shards.open(node, shard).is_some_and(|t| t.from <= at && at < t.until) {
            let held: Vec<(Ms, Ms)> = h
                .shards
                .all
                .get(&shard)
                .into_iter()
                .flatten()
                .filter(|t| t.node == node)
                .map(|t| (t.from, t.until))
                .collect();
            let v = format!("{node} accepted a write to shard {shard} at {at} ms outside any lease it held (its tenures: {held:?})");
            h.violations.push(v);
        }
        h.writes.entry(node.to_owned()).or_default().push(Write { shard, version, at });
    }

    /// The node's view after a change (S3, within one lifetime).
    pub fn view(&self, node: &str, view: NodeView) {
        let mut h = self.lock();
        h.trace(("view", node, view.term.0, view.epoch.0));
        if let Some(before) = h.views.get(node) {
            if let Err(v) = check::monotonic(node, before, &view) {
                h.violations.push(v.to_string());
            }
        }
        h.views.insert(node.to_owned(), view);
    }

    pub fn acked_create(&self, table: TableId, name: &str) {
        let mut h = self.lock();
        h.trace(("created", table.0, name));
        h.created.insert(table, name.to_owned());
    }

    /// Call before sending a drop: until it is acknowledged the table may or may not exist.
    pub fn dropping(&self, table: TableId) {
        let mut h = self.lock();
        h.in_doubt.insert(table);
    }

    pub fn acked_drop(&self, table: TableId) {
        let mut h = self.lock();
        h.trace(("dropped", table.0));
        h.in_doubt.remove(&table);
        h.dropped.insert(table);
    }

    /// What clients were told, for cluster `cluster`; tables with a drop in doubt are left out.
    pub fn acks(&self, cluster: ClusterId) -> AckLog {
        let h = self.lock();
        let mut log = AckLog::default();
        for (&t, name) in &h.created {
            if !h.in_doubt.contains(&t) {
                log.created.insert((cluster, t), name.clone());
            }
        }
        log.dropped = h.dropped.iter().map(|&t| (cluster, t)).collect();
        log
    }

    /// Tables with a drop sent, acknowledged or not.
    pub fn drops_sent(&self) -> BTreeSet<TableId> {
        let h = self.lock();
        h.in_doubt.union(&h.dropped).copied().collect()
    }

    pub fn trace_hash(&self) -> (u64, u64) {
        let h = self.lock();
        (h.trace.clone().finish(), h.events)
    }

    /// Every check over the history so far; the first violation found.
    pub fn check(&self) -> Result<(), String> {
        let h = self.lock();
        if let Some(v) = h.violations.first() {
            return Err(v.clone());
        }
        h.shards.check(|s| format!("shard {s}"))?;
        h.tables.check(|t| format!("table {t}"))?;
        let mut by_shard: BTreeMap<ShardId, Vec<(Ms, Version, &str)>> = BTreeMap::new();
        for (node, writes) in &h.writes {
            for w in writes {
                by_shard.entry(w.shard).or_default().push((w.at, w.version, node));
            }
        }
        for (shard, mut writes) in by_shard {
            writes.sort();
            if let Some(w) = writes.windows(2).find(|w| w[1].1 < w[0].1) {
                return Err(format!("shard {shard}: {} accepted a write at version {} after {} accepted one at version {}", w[1].2, w[1].1, w[0].2, w[0].1));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardmeta::core::Instant;

    fn held(h: &History, node: &str, shard: u32, from: u64, until: u64) {
        h.lease(
            node,
            LeaseEvent::Held { shard: ShardId(shard), from: Instant(from), until: Instant(until) },
            |i| i.0,
        );
    }

    #[test]
    fn overlapping_tenures_of_two_nodes_are_caught() {
        let h = History::default();
        held(&h, "a", 1, 0, 100);
        held(&h, "b", 1, 150, 300);
        assert!(h.check().is_ok());
        held(&h, "a", 1, 90, 200); // a extends its lease past b's start
        assert!(h.check().unwrap_err().contains("S1"));
    }

    /// A table moved between shards by a split: its old leader must stop serving it before
    /// the new shard's leader starts, though both keep their shard leases.
    #[test]
    fn overlapping_tenures_over_a_table_in_two_shards_are_caught() {
        let table = |h: &History, node: &str, from: u64, until: u64| {
            h.table_lease(
                node,
                TableLeaseEvent::Held {
                    table: TableId(7),
                    from: Instant(from),
                    until: Instant(until),
                },
                |i| i.0,
            );
        };
        let h = History::default();
        held(&h, "a", 1, 0, 100);
        table(&h, "a", 0, 100);
        h.table_lease("a", TableLeaseEvent::Cut { table: TableId(7), at: Instant(40) }, |i| i.0);
        held(&h, "b", 2, 50, 200);
        table(&h, "b", 50, 200);
        assert!(h.check().is_ok(), "a let the table go at 40 ms, before b took it");
        table(&h, "a", 60, 100); // a serves it again: the release was not final
        let err = h.check().unwrap_err();
        assert!(err.contains("S1") && err.contains("table 7"), "{err}");
    }

    #[test]
    fn a_death_or_a_cut_ends_a_tenure() {
        let h = History::default();
        held(&h, "a", 1, 0, 100);
        h.node_died("a", 40);
        h.lease(
            "c",
            LeaseEvent::Held { shard: ShardId(2), from: Instant(0), until: Instant(100) },
            |i| i.0,
        );
        h.lease("c", LeaseEvent::Cut { shard: ShardId(2), at: Instant(10) }, |i| i.0);
        held(&h, "b", 1, 50, 200);
        held(&h, "d", 2, 20, 200);
        assert!(h.check().is_ok());
    }

    #[test]
    fn a_write_outside_the_lease_or_at_an_older_version_is_caught() {
        let h = History::default();
        held(&h, "a", 1, 0, 100);
        h.write("a", ShardId(1), Version(3), 50);
        assert!(h.check().is_ok());
        h.write("a", ShardId(1), Version(3), 100);
        assert!(h.check().unwrap_err().contains("outside"));
        // Order decides within a millisecond: before the cut is inside, after it is not.
        let h = History::default();
        held(&h, "a", 1, 0, 100);
        h.write("a", ShardId(1), Version(3), 40);
        h.lease("a", LeaseEvent::Cut { shard: ShardId(1), at: Instant(40) }, |i| i.0);
        assert!(h.check().is_ok());
        h.write("a", ShardId(1), Version(3), 40);
        assert!(h.check().unwrap_err().contains("outside"));
        let h = History::default();
        held(&h, "a", 1, 0, 100);
        held(&h, "b", 1, 100, 200);
        h.write("a", ShardId(1), Version(4), 50);
        h.write("b", ShardId(1), Version(3), 150);
        assert!(h.check().unwrap_err().contains("version"));
    }

    #[test]
    fn a_view_going_backwards_is_caught() {
        let h = History::default();
        let v = |term| NodeView { term: shardmeta::core::Term(term), ..Default::default() };
        h.view("a", v(5));
        h.node_died("a", 10);
        h.view("a", v(3)); // a new process starts afresh
        assert!(h.check().is_ok());
        h.view("a", v(2));
        assert!(h.check().unwrap_err().contains("S3"));
    }
}
