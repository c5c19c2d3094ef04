//! Stats that contradict the cluster: a node that reports a share of its true load (half, say)
//! draws load onto itself, and one that reports double sheds what it should keep. Meta has no
//! ground truth, but a shard's load does not change because its leader did: when a shard's
//! leader moves, the second window its new leader reports (the first may span the shard's
//! opening) is compared with what the old leader reported, if the shard's load held steady
//! before: its last 6 windows' means and its smoothed value within a fifth of its long run
//! (`PerShard::steady`). A load that rises and falls changes of itself; the madsim swarm's
//! periodic loads flagged honest nodes under weaker rules: the smoothed and long-run values
//! agreeing at the moment of the move (seed 235), and the open window agreeing too (seed 737:
//! 581, 552 and 635 units at the move, 121 two windows later). Each such *contrast* is evidence
//! about both nodes: the new one's figure over the old one's, for the new; its inverse, for
//! the old.
//!
//! An honest node's contrasts are near 1 with honest peers and off only with a liar; a liar's
//! are off with everyone. So a node is *contradicted* when its last [`KEPT`] contrasts, at
//! least [`NEEDED`] of them with at least two different nodes, are off by a factor of
//! [`FACTOR`] or more on average (geometrically): an honest node that dealt only with the liar
//! is not judged. A contradicted node's load is not believed, as with frozen stats: it is
//! neither a source nor a target of load moves. Its evidence goes on as shards move by
//! failover or drain, and clears when it restarts.

use std::collections::VecDeque;

use crate::core::ids::NodeId;

/// Contrasts kept per node, newest last.
pub const KEPT: usize = 8;

/// Contrasts a judgement needs.
pub const NEEDED: usize = 4;

/// How far off, on average, contradicts: a factor of 1.5 either way.
pub const FACTOR: f64 = 1.5;

/// Below this, in load units per second, a shard's load says too little to compare.
pub const UNITS_MIN: f64 = 10.0;

/// Each node's recent contrasts: (ln of its figure over the other's, the other node).
#[derive(Clone, Debug, Default)]
pub struct Contrasts {
    nodes: Vec<VecDeque<(f64, NodeId)>>,
}

impl Contrasts {
    /// A shard moved from `old` (which reported `before` units) to `new`, whose first window
    /// came to `after` units.
    pub(super) fn observed(&mut self, old: NodeId, new: NodeId, before: f64, after: f64) {
        if old == new || before < UNITS_MIN || !after.is_finite() {
            return;
        }
        let ln = (after / before).clamp(1.0 / 16.0, 16.0).ln();
        for (node, other, x) in [(new, old, ln), (old, new, -ln)] {
            if self.nodes.len() <= node.index() {
                self.nodes.resize(node.index() + 1, VecDeque::new());
            }
            let kept = &mut self.nodes[node.index()];
            if kept.len() == KEPT {
                kept.pop_front();
            }
            kept.push_back((x, other));
        }
    }

    /// The node restarted: what it said before says nothing of what it says now.
    pub(super) fn forget(&mut self, node: NodeId) {
        if let Some(kept) = self.nodes.get_mut(node.index()) {
            kept.clear();
        }
    }

    /// The factor by which `node`'s figures are off (its geometric mean contrast), when its
    /// evidence is enough to judge: [`NEEDED`] contrasts with two nodes or more.
    pub fn off_by(&self, node: NodeId) -> Option<f64> {
        let kept = self.nodes.get(node.index())?;
        let first = kept.front()?.1;
        if kept.len() < NEEDED || kept.iter().all(|&(_, other)| other == first) {
            return None;
        }
        Some((kept.iter().map(|&(x, _)| x).sum::<f64>() / kept.len() as f64).exp())
    }

    /// Whether `node`'s figures contradict the cluster's (see the module notes).
    pub fn contradicted(&self, node: NodeId) -> bool {
        self.off_by(node).is_some_and(|f| f >= FACTOR || f <= 1.0 / FACTOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node reporting half is found out after four moves with two nodes; the honest node
    /// that dealt only with it is not, nor are honest nodes among themselves.
    #[test]
    fn a_node_reporting_half_is_found_out_and_its_peers_are_not() {
        let (liar, a, b, c) = (NodeId(0), NodeId(1), NodeId(2), NodeId(3));
        let mut k = Contrasts::default();
        k.observed(a, liar, 100.0, 50.0);
        k.observed(a, liar, 120.0, 61.0);
        k.observed(a, liar, 90.0, 44.0);
        assert!(!k.contradicted(liar), "three contrasts are not enough");
        k.observed(a, liar, 100.0, 52.0);
        assert!(!k.contradicted(liar), "one counterpart is not enough");
        k.observed(b, liar, 100.0, 49.0);
        assert!(k.contradicted(liar));
        assert!(!k.contradicted(a) && !k.contradicted(b), "a and b dealt only with the liar");
        for _ in 0..4 {
            k.observed(b, c, 100.0, 104.0);
            k.observed(c, a, 100.0, 97.0);
        }
        assert!(!k.contradicted(a) && !k.contradicted(b) && !k.contradicted(c));
        k.forget(liar);
        assert!(!k.contradicted(liar), "a restart clears it");
        k.observed(a, liar, 5.0, 1.0);
        assert_eq!(k.off_by(liar), None, "tiny loads say nothing");
    }
}
