//! The safety invariants S1–S6, the liveness bounds L2 (under faults) and L4, the steadiness
//! rule B1 and the failover rule F1, each one function in one place; the variants of
//! [`Invariant`] say what each one requires. Simulators call them after every step; each has a
//! test that shows it catching a planted bug. L1–L3 after the heal are judged by the simulators at the end of a run
//! (`tests/inproc`, `sim/`).

mod fresh;
pub mod heartbeat_fuzz;
mod moves;
mod placement;
pub mod replay;
pub mod snapshot_fuzz;
mod steady;

pub use fresh::{Choice, Freshness};
pub use moves::LeaderMoves;
pub use placement::{placement_rule, zone_spread};
pub use steady::{load_moves_started, thrash_pct, LoadMove, Steady};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::core::ids::*;
use crate::core::model::Catalog;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// S1: at most one node acts as a shard's leader at any instant.
    SingleWriter,
    /// S2: an acknowledged create or drop is never lost or undone.
    Durability,
    /// S3: no node sees a shard version, cluster epoch or meta term go backwards.
    MonotonicVersions,
    /// S4: a write by a deposed meta leader never lands.
    Fencing,
    /// S5: tables in exactly one shard, replicas on distinct nodes (and spread over zones),
    /// ids unique.
    Integrity,
    /// S6: state rebuilt from storage equals the state before the restart.
    RestartEquivalence,
    /// L2 while faults run: a shard whose leader's node is dead gets a live leader within a
    /// bound (lease, drift and a few heartbeats) whenever a live replica can take over.
    PromptFailover,
    /// L4: every request gets a reply, or an error at its deadline.
    NoHang,
    /// B1: load moved for balance from one node to another does not move back within the pair
    /// cooldown.
    Steady,
    /// F1: a failover promotes a follower that said it lags only when no follower that said it
    /// is in sync was live and heard.
    FreshFailover,
}

impl Invariant {
    pub fn code(self) -> &'static str {
        match self {
            Invariant::SingleWriter => "S1",
            Invariant::Durability => "S2",
            Invariant::MonotonicVersions => "S3",
            Invariant::Fencing => "S4",
            Invariant::Integrity => "S5",
            Invariant::RestartEquivalence => "S6",
            Invariant::PromptFailover => "L2",
            Invariant::NoHang => "L4",
            Invariant::Steady => "B1",
            Invariant::FreshFailover => "F1",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} violated: {}", self.invariant.code(), self.invariant, self.detail)
    }
}

fn violation<T>(invariant: Invariant, detail: String) -> Result<T, Violation> {
    Err(Violation { invariant, detail })
}

/// S1 at an instant (the in-process simulator, which can look at every node at once). `leading`
/// lists every (cluster, shard, node) where the node, by its own clock and lease,
/// acts as the shard's leader right now.
pub fn single_writer<'a>(
    leading: impl IntoIterator<Item = (ClusterId, ShardId, &'a str)>,
) -> Result<(), Violation> {
    let mut seen: BTreeMap<(ClusterId, ShardId), &str> = BTreeMap::new();
    for (c, s, node) in leading {
        if let Some(other) = seen.insert((c, s), node) {
            return violation(
                Invariant::SingleWriter,
                format!("cluster {c} shard {s} led by both {other} and {node}"),
            );
        }
    }
    Ok(())
}

/// S1 per table at an instant: no table is served by two leaders at once, even while a split
/// moves it between shards led by different nodes. `leading` lists every (cluster, table, node)
/// where the node, by its own clock and lease, leads a shard that holds the table.
pub fn single_table_writer<'a>(
    leading: impl IntoIterator<Item = (ClusterId, TableId, &'a str)>,
) -> Result<(), Violation> {
    let mut seen: BTreeMap<(ClusterId, TableId), &str> = BTreeMap::new();
    for (c, t, node) in leading {
        if let Some(other) = seen.insert((c, t), node).filter(|other| *other != node) {
            return violation(
                Invariant::SingleWriter,
                format!("cluster {c} table {t} led by both {other} and {node}"),
            );
        }
    }
    Ok(())
}

/// What clients were told: the creates and drops acknowledged to them.
#[derive(Clone, Debug, Default)]
pub struct AckLog {
    pub created: BTreeMap<(ClusterId, TableId), String>,
    pub dropped: BTreeSet<(ClusterId, TableId)>,
    /// The highest table version each acknowledged alter gave its table.
    pub altered: BTreeMap<(ClusterId, TableId), u32>,
}

/// One node's time as a shard's leader, as its own lease log records it (milliseconds on a
/// clock shared by every node's log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenure {
    pub node: String,
    pub from: u64,
    pub until: u64,
}

/// S1 over recorded tenures of one shard or table, `what` ("shard 3", "table 1000"), in the
/// madsim simulation, where leadership is logged rather than looked at: no two nodes' tenures
/// overlap.
pub fn single_writer_over(what: &str, tenures: &[Tenure]) -> Result<(), Violation> {
    let mut sorted: Vec<&Tenure> = tenures.iter().filter(|t| t.from < t.until).collect();
    sorted.sort_by_key(|t| (t.from, t.until));
    let mut reach: Option<&Tenure> = None;
    for t in sorted {
        if let Some(r) = reach.filter(|r| t.from < r.until && t.node != r.node) {
            let detail = format!(
                "{what} led by {} over [{}, {}) ms and by {} over [{}, {}) ms",
                r.node, r.from, r.until, t.node, t.from, t.until
            );
            return violation(Invariant::SingleWriter, detail);
        }
        if reach.is_none_or(|r| t.until > r.until) {
            reach = Some(t);
        }
    }
    Ok(())
}

/// S2, against the durable state (a catalog loaded from storage).
pub fn durability(acked: &AckLog, durable: &Catalog) -> Result<(), Violation> {
    for (&(c, t), name) in &acked.created {
        if acked.dropped.contains(&(c, t)) {
            continue;
        }
        let found = durable.clusters.get(&c).and_then(|cl| cl.tables.get(t));
        match found {
            Some(rec) if *rec.name == **name => {}
            Some(rec) => {
                return violation(
                    Invariant::Durability,
                    format!("table {t} acknowledged as {name:?} is now {:?}", rec.name),
                )
            }
            None => {
                return violation(
                    Invariant::Durability,
                    format!("acknowledged create of {name:?} (id {t}) in cluster {c} is lost"),
                )
            }
        }
    }
    for &(c, t) in &acked.dropped {
        if durable.clusters.get(&c).is_some_and(|cl| cl.tables.contains(t)) {
            return violation(
                Invariant::Durability,
                format!("acknowledged drop of table {t} in cluster {c} is undone"),
            );
        }
    }
    // A table that is gone was dropped, which the creates above account for.
    for (&(c, t), &version) in &acked.altered {
        if let Some(rec) = durable
            .clusters
            .get(&c)
            .and_then(|cl| cl.tables.get(t))
            .filter(|rec| rec.version < version)
        {
            return violation(
                Invariant::Durability,
                format!(
                    "acknowledged alter of table {t} to version {version} is lost: it is at {}",
                    rec.version
                ),
            );
        }
    }
    Ok(())
}

/// What one data node has accepted from meta.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeView {
    pub term: Term,
    pub epoch: Epoch,
    pub versions: BTreeMap<ShardId, Version>,
}

/// S3, between two consecutive views of one node (one process lifetime).
pub fn monotonic(node: &str, before: &NodeView, after: &NodeView) -> Result<(), Violation> {
    if after.term < before.term {
        return violation(
            Invariant::MonotonicVersions,
            format!("{node}: meta term went from {} to {}", before.term, after.term),
        );
    }
    if after.epoch < before.epoch {
        return violation(
            Invariant::MonotonicVersions,
            format!("{node}: cluster epoch went from {} to {}", before.epoch, after.epoch),
        );
    }
    for (shard, v) in &after.versions {
        if let Some(old) = before.versions.get(shard) {
            if v < old {
                return violation(
                    Invariant::MonotonicVersions,
                    format!("{node}: shard {shard} version went from {old} to {v}"),
                );
            }
        }
    }
    Ok(())
}

/// One batch that landed in storage, with the term storage's fence held when it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LandedWrite {
    pub batch_term: Term,
    pub fence_term: Term,
}

/// S4.
pub fn fencing(landed: &[LandedWrite]) -> Result<(), Violation> {
    match landed.iter().find(|w| w.batch_term != w.fence_term) {
        Some(w) => violation(
            Invariant::Fencing,
            format!(
                "a write of term {} landed while term {} held the fence",
                w.batch_term, w.fence_term
            ),
        ),
        None => Ok(()),
    }
}

/// S5 (see [`Catalog::integrity_error`]).
pub fn integrity(catalog: &Catalog) -> Result<(), Violation> {
    match catalog.integrity_error() {
        Some(e) => violation(Invariant::Integrity, e),
        None => Ok(()),
    }
}

/// S6: the live catalog equals the catalog rebuilt from what storage holds.
pub fn restart_equivalence(live: &Catalog, stored: &[(String, Vec<u8>)]) -> Result<(), Violation> {
    match Catalog::load(stored.iter().map(|(k, v)| (k.as_str(), v.as_slice()))) {
        Ok(rebuilt) => matches_rebuilt(live, &rebuilt),
        Err(e) => violation(Invariant::RestartEquivalence, e.to_string()),
    }
}

/// S6 against a catalog already rebuilt from storage. A warm standby's catalog, which follows
/// storage change by change, is held to it too: it is what a new leader would start from.
pub fn matches_rebuilt(live: &Catalog, rebuilt: &Catalog) -> Result<(), Violation> {
    if *rebuilt == *live {
        return Ok(());
    }
    let detail = live
        .clusters
        .iter()
        .find_map(|(id, c)| {
            let r = rebuilt.clusters.get(id)?;
            let diff = if c.tables != r.tables {
                "tables"
            } else if c.shards != r.shards {
                "shards"
            } else if c.nodes != r.nodes {
                "nodes"
            } else if c.epoch != r.epoch {
                "epoch"
            } else {
                "indexes or counters"
            };
            let first = c
                .shards
                .iter()
                .zip(&r.shards)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!(" (shard in memory {a:?}, in storage {b:?})"))
                .unwrap_or_default();
            (c != r)
                .then(|| format!("cluster {id}: {diff} differ between memory and storage{first}"))
        })
        .unwrap_or_else(|| "the set of clusters differs between memory and storage".into());
    violation(Invariant::RestartEquivalence, detail)
}

/// L2 while faults run. `unled` lists each shard that has no live leader although its leader's
/// node is dead and a live replica could take over, with the instant since when; none may stay
/// so for longer than `bound`.
pub fn prompt_failover(
    unled: impl IntoIterator<Item = (ClusterId, ShardId, crate::core::Instant)>,
    now: crate::core::Instant,
    bound: crate::core::Duration,
) -> Result<(), Violation> {
    match unled.into_iter().find(|&(_, _, since)| now > since + bound) {
        Some((c, s, since)) => violation(
            Invariant::PromptFailover,
            format!("shard {s} of cluster {c} has had no live leader since {} ms though a live replica could lead it (now {} ms, bound {} ms)", since.0, now.0, bound.0),
        ),
        None => Ok(()),
    }
}

/// L3's balance: leader shards per placeable node (those `placeable` accepts) differ by at most
/// one. Shards led elsewhere (a draining or dead node) are not counted; the caller judges those.
pub fn leaders_balanced(
    c: &crate::core::model::ClusterCatalog,
    placeable: impl Fn(&crate::core::model::NodeRecord) -> bool,
) -> Result<(), String> {
    // Among the nodes the placement rule lets lead, if any can (the others lead nothing where
    // the rule can be met, which `placement_rule` judges).
    let may_lead =
        |n: &crate::core::model::NodeRecord| c.placement.as_ref().is_none_or(|r| r.fits_leader(n));
    let pool = |n: &&crate::core::model::NodeRecord| !n.removed && placeable(n);
    let some_may = c.nodes.iter().filter(pool).any(may_lead);
    let mut counts: BTreeMap<&str, u32> = c
        .nodes
        .iter()
        .filter(pool)
        .filter(|n| !some_may || may_lead(n))
        .map(|n| (n.name.as_str(), 0))
        .collect();
    for l in c.shards.iter().filter_map(|s| s.leader) {
        if let Some(n) = counts.get_mut(c.node(NodeId(l)).name.as_str()) {
            *n += 1;
        }
    }
    let (min, max) =
        (counts.values().min().copied().unwrap_or(0), counts.values().max().copied().unwrap_or(0));
    match max <= min + 1 {
        true => Ok(()),
        false => Err(format!(
            "L3: leader shards per placeable node {counts:?} are not within one of each other"
        )),
    }
}

/// L4. `owed` lists requests a running meta node received and has not answered, with their
/// deadlines.
pub fn no_hang(
    node: &str,
    owed: impl IntoIterator<Item = (RequestId, crate::core::Instant)>,
    now: crate::core::Instant,
) -> Result<(), Violation> {
    match owed.into_iter().find(|&(_, deadline)| now > deadline) {
        Some((id, deadline)) => violation(
            Invariant::NoHang,
            format!(
                "{node} left request {id} unanswered past its deadline ({} ms, now {} ms)",
                deadline.0, now.0
            ),
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenure(node: &str, from: u64, until: u64) -> Tenure {
        Tenure { node: node.into(), from, until }
    }

    #[test]
    fn overlapping_tenures_of_two_nodes_break_s1_and_touching_ones_do_not() {
        let shard = "shard 1";
        assert!(single_writer_over(
            shard,
            &[tenure("a", 0, 100), tenure("b", 100, 200), tenure("a", 50, 90)]
        )
        .is_ok());
        let err = single_writer_over(
            shard,
            &[tenure("a", 0, 100), tenure("b", 150, 300), tenure("a", 90, 200)],
        )
        .unwrap_err();
        assert_eq!(err.invariant, Invariant::SingleWriter);
        assert!(
            err.detail.contains("by a over [90, 200)")
                && err.detail.contains("by b over [150, 300)"),
            "{err}"
        );
    }
}
