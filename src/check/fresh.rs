//! F1, fresh failover: a failover promotes a follower that said it lags its leader only when
//! no follower that said it is in sync could have been chosen.
//!
//! The checker judges what a meta leader was told, not the data's truth: it hears the follower
//! reports a simulator delivered to that leader (or, where deliveries cannot be seen, the
//! reports nodes sent while in contact with it). To be sure the leader knew what the checker
//! knows when it chose, a report counts only once it has stood unchanged for `settled_ms`,
//! longer than a promotion takes from the choice to storage, and a follower in sync counts only
//! while its node was heard within that time (meta takes a node for dead much later).

use std::collections::BTreeMap;

use super::{violation, Invariant, Violation};
use crate::core::ids::{NodeId, ShardId};
use crate::core::model::ClusterCatalog;

/// What one follower last said of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Said {
    /// Entries behind its leader; `None`: in sync.
    lag: Option<u64>,
    /// Since when it has said so without a break.
    since: u64,
}

/// One node's last heartbeat, as the leader got it.
#[derive(Clone, Debug, Default)]
struct Heard {
    at: u64,
    follows: BTreeMap<ShardId, Said>,
}

/// What a promotion had to choose from, for coverage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Choice {
    /// A follower known to lag was passed over for one known to be in sync.
    pub passed_over_laggard: bool,
    /// A follower known to lag was promoted: none known in sync was heard.
    pub promoted_laggard: bool,
}

/// The follower reports one meta leader heard, by node name.
#[derive(Clone, Debug)]
pub struct Freshness {
    settled_ms: u64,
    nodes: BTreeMap<String, Heard>,
}

impl Freshness {
    pub fn new(settled_ms: u64) -> Freshness {
        Freshness { settled_ms, nodes: BTreeMap::new() }
    }

    /// A heartbeat of `node` reached the leader at `at_ms`, reporting these shards it follows
    /// with their lag. It replaces what the node said before, as it does in meta: a shard left
    /// out is no longer followed there.
    pub fn heard(
        &mut self,
        node: &str,
        at_ms: u64,
        follows: impl IntoIterator<Item = (ShardId, Option<u64>)>,
    ) {
        let before = self.nodes.remove(node).unwrap_or_default();
        let follows = follows
            .into_iter()
            .map(|(shard, lag)| {
                let kept = before.follows.get(&shard).filter(|s| s.lag.is_some() == lag.is_some());
                (shard, Said { lag, since: kept.map_or(at_ms, |s| s.since) })
            })
            .collect();
        self.nodes.insert(node.to_owned(), Heard { at: at_ms, follows });
    }

    /// The node stopped, or its reports can no longer be trusted to reach the leader.
    pub fn forget(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// What `node` has said of `shard` for at least `settled_ms` before `at_ms`.
    fn settled(&self, node: &str, shard: ShardId, at_ms: u64) -> Option<(Said, u64)> {
        let heard = self.nodes.get(node)?;
        let said = *heard.follows.get(&shard)?;
        (said.since + self.settled_ms <= at_ms).then_some((said, heard.at))
    }

    /// F1 over the failovers between two durable states of one cluster, the second seen at
    /// `at_ms`: shards whose leader became one of their followers without a transfer. Returns
    /// what each had to choose from.
    pub fn failovers(
        &self,
        old: &ClusterCatalog,
        new: &ClusterCatalog,
        at_ms: u64,
    ) -> Result<Vec<Choice>, Violation> {
        let name = |id: u32| old.node(NodeId(id)).name.as_str();
        super::moves::promotions(old, new)
            .map(|(o, to)| {
                let others = o.followers.iter().filter(|&&f| f != to).map(|&f| name(f));
                self.promoted(ShardId(o.id), name(to), others, at_ms)
            })
            .collect()
    }

    /// A failover that landed at `at_ms` made `to` the leader of `shard`, whose other followers
    /// were `others`.
    pub fn promoted<'a>(
        &self,
        shard: ShardId,
        to: &str,
        others: impl IntoIterator<Item = &'a str>,
        at_ms: u64,
    ) -> Result<Choice, Violation> {
        let others: Vec<(&str, Said, u64)> = others
            .into_iter()
            .filter_map(|g| self.settled(g, shard, at_ms).map(|(said, last)| (g, said, last)))
            .collect();
        // In sync, and heard lately enough that meta still counts the node as live.
        let fresher = others
            .iter()
            .find(|(_, said, last)| said.lag.is_none() && last + self.settled_ms >= at_ms);
        let lagging = others.iter().any(|(_, said, _)| said.lag.is_some());
        match (self.settled(to, shard, at_ms).map(|(said, _)| said), fresher) {
            (Some(Said { lag: Some(lag), since }), Some((g, in_sync, _))) => violation(
                Invariant::FreshFailover,
                format!(
                    "shard {shard} failed over at {at_ms} ms to {to}, which had said since \
                     {since} ms that it was {lag} entries behind, while follower {g} had said \
                     since {} ms that it was in sync",
                    in_sync.since
                ),
            ),
            (Some(Said { lag: Some(_), .. }), None) => {
                Ok(Choice { promoted_laggard: true, ..Choice::default() })
            }
            (Some(_), _) => Ok(Choice { passed_over_laggard: lagging, ..Choice::default() }),
            (None, _) => Ok(Choice::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ShardId = ShardId(3);

    #[test]
    fn a_laggard_promoted_over_a_follower_in_sync_is_caught_once_both_reports_settled() {
        let mut f = Freshness::new(2_000);
        for at in [0, 1_000, 2_000, 3_000] {
            f.heard("a", at, [(S, Some(40))]);
            f.heard("b", at, [(S, None)]);
        }
        let err = f.promoted(S, "a", ["b"], 3_000).unwrap_err();
        assert_eq!(err.invariant, Invariant::FreshFailover);
        assert!(err.detail.contains("to a, which had said since 0 ms that it was 40"), "{err}");
        assert_eq!(
            f.promoted(S, "b", ["a"], 3_000),
            Ok(Choice { passed_over_laggard: true, promoted_laggard: false })
        );
        // b's report of being in sync is new: the leader may not have had it when it chose.
        f.heard("b", 3_500, [(S, Some(5))]);
        f.heard("b", 4_000, [(S, None)]);
        assert!(f.promoted(S, "a", ["b"], 4_500).is_ok());
        // b went silent: meta may already count it as gone.
        assert_eq!(
            f.promoted(S, "a", ["b"], 9_000),
            Ok(Choice { passed_over_laggard: false, promoted_laggard: true })
        );
        // A heartbeat without the shard: b no longer follows it.
        f.heard("b", 9_000, []);
        assert!(f.promoted(S, "a", ["b"], 12_000).is_ok());
    }
}
