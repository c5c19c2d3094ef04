//! How shard leaders changed between two durable states: the recovery paths a run exercised.
//! Both simulators count these to prove that their seeds reached every path.

use crate::core::model::ClusterCatalog;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaderMoves {
    /// A shard without a leader got one.
    pub assigned: u64,
    /// A follower took over from a leader (failover).
    pub promoted: u64,
    /// A node that held no replica took over (failover without a follower to promote).
    pub reopened: u64,
    /// A balancing or draining transfer finished.
    pub transfers_finished: u64,
}

impl LeaderMoves {
    /// Classifies every shard whose leader differs between `old` and `new`.
    pub fn between(old: &ClusterCatalog, new: &ClusterCatalog) -> LeaderMoves {
        let mut m = LeaderMoves::default();
        for (o, n) in old.shards.iter().zip(&new.shards) {
            let Some(leader) = n.leader.filter(|&l| o.leader != Some(l)) else { continue };
            match o.leader {
                None => m.assigned += 1,
                Some(_) if o.transfer.is_some() => m.transfers_finished += 1,
                Some(_) if o.followers.contains(&leader) => m.promoted += 1,
                Some(_) => m.reopened += 1,
            }
        }
        m
    }

    pub fn add(&mut self, o: &LeaderMoves) {
        self.assigned += o.assigned;
        self.promoted += o.promoted;
        self.reopened += o.reopened;
        self.transfers_finished += o.transfers_finished;
    }

    /// Failovers: leaders that moved without a transfer.
    pub fn failovers(&self) -> u64 {
        self.promoted + self.reopened
    }
}
