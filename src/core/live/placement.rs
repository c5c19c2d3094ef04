//! Where new tables go: the shard with the lowest projected load among the shards that can
//! serve a table soonest.
//!
//! **Classes**, best first:
//! 1. ready: a live node leads it (online, and heard by this leader);
//! 2. assigned to a node that is offline, or not yet heard since a meta failover;
//! 3. unassigned.
//!
//! (Whether the leader has reported the current version is not part of it: every create bumps
//! its shard's version, and the shard would drop out of the first class until the next
//! heartbeat, sending a burst of creates to the shards it has not touched yet.)
//!
//! A create never waits for nodes: a cluster whose nodes have not joined yet still takes
//! tables, on the best shards it has, and they open with their shard.
//!
//! **Projected load**, within a class: the shard's trusted smoothed load (0 until trusted, see
//! [`super::load`]) plus an estimate for each table placed on it since its last load window
//! closed. The estimate is the cluster's mean trusted load per table, counting at least one
//! table per shard (one unit while nothing is known), so a burst of creates spreads over the
//! cold shards instead of piling onto the one that was coldest when the burst began. Ties go to the shard with fewer tables, then the
//! lower id.

use std::collections::BTreeSet;

use crate::core::ids::ShardId;

/// The shard's place in the order; `Ord` compares class, then load, then tables, then id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Ready shards first, then assigned, then unassigned, then leaving.
    pub class: Class,
    /// Projected load, in thousandths of a unit per second.
    pub load_milli: u64,
    /// Tables it holds, and those placed on it since its last load window.
    pub tables: u32,
    /// Which shard.
    pub shard: ShardId,
}

/// How soon a shard can serve a new table, best first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// A live node leads it and reported it open.
    Ready,
    /// It has a leader that has not reported it open yet.
    #[default]
    Assigned,
    /// No leader yet: a new table waits for one.
    Unassigned,
    /// Being merged away, or retired: takes a new table only when no other shard exists (never,
    /// as a merge keeps its target).
    Leaving,
}

/// What a shard's key is made of, but the tables placed on it lately.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    /// How soon it can serve a new table.
    pub class: Class,
    /// The trusted smoothed load, 0 until trusted.
    pub load: f64,
    /// Tables it holds.
    pub tables: u32,
}

/// Every shard ordered by [`Key`]: a new table goes to the first.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    keys: Vec<Key>,
    order: BTreeSet<Key>,
    /// The trusted load each key was built from, and their sum over the cluster.
    loads: Vec<f64>,
    load_sum: f64,
    /// Estimated load of the tables placed on each shard since its last load window closed.
    placed: Vec<f64>,
}

impl Placement {
    pub(super) fn new(standings: impl Iterator<Item = Standing>) -> Placement {
        let mut p = Placement::default();
        for (i, s) in standings.enumerate() {
            let key = Key { shard: ShardId(i as u32), ..Key::default() };
            p.keys.push(key);
            p.order.insert(key);
            p.loads.push(0.0);
            p.placed.push(0.0);
            p.set(ShardId(i as u32), s);
        }
        p
    }

    /// New shards (a split) join the order with their standings.
    pub(super) fn grow(&mut self, standings: impl Iterator<Item = Standing>) {
        for s in standings {
            let shard = ShardId(self.keys.len() as u32);
            let key = Key { shard, ..Key::default() };
            self.keys.push(key);
            self.order.insert(key);
            self.loads.push(0.0);
            self.placed.push(0.0);
            self.set(shard, s);
        }
    }

    /// The shard the next table goes to.
    pub fn best(&self) -> ShardId {
        self.order.first().expect("a cluster has at least one shard").shard
    }

    /// What a new table is expected to cost: the mean trusted load per table, counting at
    /// least one table per shard (a cluster with few tables, or load not yet tied to tables,
    /// would otherwise make one table look as costly as a whole shard).
    pub fn table_estimate(&self, tables: usize) -> f64 {
        let per = tables.max(self.keys.len()).max(1) as f64;
        if self.load_sum > 0.0 {
            self.load_sum / per
        } else {
            1.0
        }
    }

    /// The shard's standing changed (or a table was placed on it, costing `added`).
    pub(super) fn set(&mut self, shard: ShardId, s: Standing) {
        let i = shard.index();
        self.load_sum += s.load - self.loads[i];
        self.loads[i] = s.load;
        let key = Key {
            class: s.class,
            load_milli: milli(s.load + self.placed[i]),
            tables: s.tables,
            shard,
        };
        if key != self.keys[i] {
            assert!(
                self.order.remove(&self.keys[i]),
                "shard {shard} is in the placement order at its key"
            );
            self.order.insert(key);
            self.keys[i] = key;
        }
    }

    /// A table with estimated load `estimate` was placed on the shard (its standing follows).
    pub(super) fn placed(&mut self, shard: ShardId, estimate: f64) {
        self.placed[shard.index()] += estimate;
    }

    /// The shard's load window closed: the tables placed on it are in its load from now on.
    pub(super) fn window_closed(&mut self, shard: ShardId) {
        self.placed[shard.index()] = 0.0;
    }

    /// `Err` unless the order holds exactly each shard's key, built from `standings`.
    pub(super) fn check(&self, standings: impl Iterator<Item = Standing>) -> Result<(), String> {
        for (i, s) in standings.enumerate() {
            let want = Key {
                class: s.class,
                load_milli: milli(s.load + self.placed[i]),
                tables: s.tables,
                shard: ShardId(i as u32),
            };
            if self.keys.get(i) != Some(&want) || !self.order.contains(&want) {
                return Err(format!(
                    "placement key of shard {i} is {:?}, its standing says {want:?}",
                    self.keys.get(i)
                ));
            }
        }
        if self.order.len() != self.keys.len() {
            return Err(format!(
                "{} placement entries for {} shards",
                self.order.len(),
                self.keys.len()
            ));
        }
        Ok(())
    }
}

fn milli(load: f64) -> u64 {
    (load * 1_000.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(class: Class, load: f64, tables: u32) -> Standing {
        Standing { class, load, tables }
    }

    /// Places `n` tables as `LiveCluster::place_table` does; the shards chosen, in turn.
    fn place(p: &mut Placement, standings: &mut [Standing], n: usize) -> Vec<u32> {
        let mut chosen = Vec::new();
        for _ in 0..n {
            let tables: u32 = standings.iter().map(|s| s.tables).sum();
            let shard = p.best();
            let estimate = p.table_estimate(tables as usize);
            standings[shard.index()].tables += 1;
            p.placed(shard, estimate);
            p.set(shard, standings[shard.index()]);
            chosen.push(shard.0);
        }
        chosen
    }

    #[test]
    fn with_nothing_known_a_burst_spreads_evenly() {
        let mut standings = vec![standing(Class::Ready, 0.0, 0); 4];
        let mut p = Placement::new(standings.iter().copied());
        assert_eq!(place(&mut p, &mut standings, 8), vec![0, 1, 2, 3, 0, 1, 2, 3]);
    }

    /// Shard 0 carries 300 units over 3 tables, shard 1 is cold. Each new table is expected to
    /// cost the mean per table so far (100, then 75, 60, 50, 43): the cold shard takes five
    /// before its projection (328) passes the warm one's, and the sixth goes to the warm one.
    /// (With 2 shards and at least 3 tables, the floor of one table per shard does not bite.)
    #[test]
    fn new_tables_go_to_the_coldest_shard_until_its_projection_catches_up() {
        let mut standings = vec![standing(Class::Ready, 300.0, 3), standing(Class::Ready, 0.0, 0)];
        let mut p = Placement::new(standings.iter().copied());
        assert_eq!(place(&mut p, &mut standings, 6), vec![1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn ready_shards_come_first_and_unassigned_ones_last() {
        let standings = [
            standing(Class::Unassigned, 0.0, 0),
            standing(Class::Assigned, 0.0, 0),
            standing(Class::Ready, 500.0, 40),
        ];
        let mut p = Placement::new(standings.iter().copied());
        assert_eq!(
            p.best(),
            ShardId(2),
            "a busy ready shard beats an idle one that cannot serve yet"
        );
        p.set(ShardId(2), standing(Class::Assigned, 500.0, 40));
        assert_eq!(p.best(), ShardId(1));
        p.set(ShardId(1), standing(Class::Unassigned, 0.0, 0));
        p.set(ShardId(2), standing(Class::Unassigned, 500.0, 40));
        assert_eq!(p.best(), ShardId(0), "with nothing assigned, creates still land");
        assert!(p.check(standings.iter().copied()).is_err(), "the check sees stale keys");
    }
}
