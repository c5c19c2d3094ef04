//! A cluster's placement rule: which nodes may hold its shards' replicas and lead them, judged
//! by the labels nodes report (the zone among them, as `zone`), and the label replicas spread
//! over.
//!
//! - **require** `key=v1,v2`: only a node whose label `key` is one of the values fits;
//! - **avoid** `key=v1,v2`: a node whose label `key` is one of them does not fit;
//! - **prefer** `key=v1,v2`: among nodes that fit, those with one of the values come first.
//!
//! Replica constraints hold for every replica, the leader's included; leader constraints hold
//! for the leader besides. Durability comes first: a replica or leader is placed where the rule
//! says only while such a node can take it; with none, it goes to the best node there is, the
//! shard counts as *unsatisfied* (reported, never hidden), and it moves where the rule says once
//! a node that fits appears.

use super::records::{NodeRecord, ZONE_LABEL};

/// What a constraint asks of a node's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConstraintKind {
    /// The label must have one of the values.
    Require,
    /// Nodes whose label has one of the values come first.
    Prefer,
    /// The label must not have any of the values.
    Avoid,
}

impl ConstraintKind {
    /// Every kind, in the order stored codes number them.
    pub const ALL: [ConstraintKind; 3] =
        [ConstraintKind::Require, ConstraintKind::Prefer, ConstraintKind::Avoid];

    /// The word operators write (`require`, `prefer`, `avoid`).
    pub fn name(self) -> &'static str {
        match self {
            ConstraintKind::Require => "require",
            ConstraintKind::Prefer => "prefer",
            ConstraintKind::Avoid => "avoid",
        }
    }

    /// The kind a stored code names; `None` for a code this version does not know.
    pub fn from_code(code: u32) -> Option<ConstraintKind> {
        Self::ALL.get(code as usize).copied()
    }

    /// How it is stored.
    pub fn code(self) -> u32 {
        Self::ALL.iter().position(|&k| k == self).expect("listed") as u32
    }
}

/// One constraint on a label: `require disk=ssd`, `avoid rack=r1,r2`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Constraint {
    /// A [`ConstraintKind`] code.
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    /// The label it looks at (`zone` is the node's zone).
    #[prost(string, tag = "2")]
    pub key: String,
    /// The values it names, at least one.
    #[prost(string, repeated, tag = "3")]
    pub values: Vec<String>,
}

impl Constraint {
    /// `kind key=v1,v2`.
    pub fn new(kind: ConstraintKind, key: &str, values: &[&str]) -> Constraint {
        Constraint {
            kind: kind.code(),
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    /// Its kind (an unknown code, which validation refuses, reads as prefer: it never forbids).
    pub fn kind(&self) -> ConstraintKind {
        ConstraintKind::from_code(self.kind).unwrap_or(ConstraintKind::Prefer)
    }

    /// Whether `node`'s label names one of the values.
    fn names(&self, node: &NodeRecord) -> bool {
        let value = node.label(&self.key);
        self.values.iter().any(|v| v == value)
    }

    /// `require disk=ssd,nvme`.
    pub fn describe(&self) -> String {
        format!("{} {}={}", self.kind().name(), self.key, self.values.join(","))
    }
}

/// A cluster's placement rule, as an operator last set it; absent until the first one, when
/// any node fits and replicas spread over zones.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PlacementRecord {
    /// Raised by each change, so that an operator can change it only from the version read.
    #[prost(uint64, tag = "1")]
    pub version: u64,
    /// What every replica asks of its node.
    #[prost(message, repeated, tag = "2")]
    pub replicas: Vec<Constraint>,
    /// What the leader asks of its node, besides.
    #[prost(message, repeated, tag = "3")]
    pub leader: Vec<Constraint>,
    /// The label a shard's replicas spread over, one per value where they can; empty: `zone`.
    #[prost(string, tag = "4")]
    pub spread: String,
}

impl PlacementRecord {
    /// The label replicas spread over.
    pub fn spread_key(&self) -> &str {
        if self.spread.is_empty() {
            ZONE_LABEL
        } else {
            &self.spread
        }
    }

    /// Whether it asks anything beyond the default spread over zones.
    pub fn constrains(&self) -> bool {
        !self.replicas.is_empty() || !self.leader.is_empty()
    }

    /// Whether `node` may hold a replica: every require and avoid of the replicas holds.
    pub fn fits_replica(&self, node: &NodeRecord) -> bool {
        hard(&self.replicas, node)
    }

    /// Whether `node` may lead: it may hold a replica, and every require and avoid of the
    /// leader holds.
    pub fn fits_leader(&self, node: &NodeRecord) -> bool {
        self.fits_replica(node) && hard(&self.leader, node)
    }

    /// Whether `node` has every value the replicas' (and, for a leader, the leader's) prefer
    /// constraints name.
    pub fn preferred(&self, node: &NodeRecord, leader: bool) -> bool {
        let lists = [&self.replicas, &self.leader];
        let lists = if leader { &lists[..] } else { &lists[..1] };
        lists
            .iter()
            .flat_map(|l| l.iter())
            .all(|c| c.kind() != ConstraintKind::Prefer || c.names(node))
    }

    /// One line: "replicas require disk=ssd; leader prefer zone=a; spread over rack".
    pub fn describe(&self) -> String {
        let list = |l: &[Constraint]| l.iter().map(Constraint::describe).collect::<Vec<_>>();
        let mut parts = Vec::new();
        if !self.replicas.is_empty() {
            parts.push(format!("replicas {}", list(&self.replicas).join(", ")));
        }
        if !self.leader.is_empty() {
            parts.push(format!("leader {}", list(&self.leader).join(", ")));
        }
        parts.push(format!("spread over {}", self.spread_key()));
        parts.join("; ")
    }
}

fn hard(constraints: &[Constraint], node: &NodeRecord) -> bool {
    constraints.iter().all(|c| match c.kind() {
        ConstraintKind::Require => c.names(node),
        ConstraintKind::Avoid => !c.names(node),
        ConstraintKind::Prefer => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Label;

    fn node(zone: &str, labels: &[(&str, &str)]) -> NodeRecord {
        NodeRecord {
            zone: zone.into(),
            labels: labels.iter().map(|(k, v)| Label::new(k, v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn require_avoid_and_prefer_judge_labels_and_the_zone() {
        use ConstraintKind::*;
        let rule = PlacementRecord {
            replicas: vec![
                Constraint::new(Require, "disk", &["ssd", "nvme"]),
                Constraint::new(Avoid, "zone", &["c"]),
            ],
            leader: vec![
                Constraint::new(Prefer, "zone", &["a"]),
                Constraint::new(Avoid, "gen", &["1"]),
            ],
            ..Default::default()
        };
        let ssd_a = node("a", &[("disk", "ssd")]);
        let nvme_b_old = node("b", &[("disk", "nvme"), ("gen", "1")]);
        let hdd_a = node("a", &[("disk", "hdd")]);
        let ssd_c = node("c", &[("disk", "ssd")]);
        let bare = node("", &[]);
        assert!(rule.fits_replica(&ssd_a) && rule.fits_leader(&ssd_a));
        assert!(rule.fits_replica(&nvme_b_old) && !rule.fits_leader(&nvme_b_old));
        assert!(!rule.fits_replica(&hdd_a) && !rule.fits_leader(&hdd_a));
        assert!(!rule.fits_replica(&ssd_c), "avoided zone");
        assert!(!rule.fits_replica(&bare), "a node without the label has none of the values");
        assert!(rule.preferred(&ssd_a, true) && !rule.preferred(&nvme_b_old, true));
        assert!(rule.preferred(&nvme_b_old, false), "leader preferences are not the replicas'");
        assert_eq!(
            rule.describe(),
            "replicas require disk=ssd,nvme, avoid zone=c; leader prefer zone=a, avoid gen=1; spread over zone"
        );
    }
}
