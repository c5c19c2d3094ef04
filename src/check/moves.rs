//! How shard leaders changed between two durable states: the recovery paths a run exercised.
//! Both simulators count these to prove that their seeds reached every path.

use crate::core::model::{ClusterCatalog, ShardRecord};

/// How one shard's leader changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Assigned,
    Promoted,
    Reopened,
    TransferFinished,
}

/// How `o`'s leader changed in `n` (`None`: it did not, or the shard lost its leader), and the
/// new leader.
fn change(o: &ShardRecord, n: &ShardRecord) -> Option<(Change, u32)> {
    let leader = n.leader.filter(|&l| o.leader != Some(l))?;
    let change = match o.leader {
        None => Change::Assigned,
        Some(_) if o.transfer.is_some() => Change::TransferFinished,
        Some(_) if o.followers.contains(&leader) => Change::Promoted,
        Some(_) => Change::Reopened,
    };
    Some((change, leader))
}

/// The failovers that promoted a follower between two durable states of one cluster: each
/// shard's record before, and the follower that leads it now.
pub(super) fn promotions<'a>(
    old: &'a ClusterCatalog,
    new: &'a ClusterCatalog,
) -> impl Iterator<Item = (&'a ShardRecord, u32)> {
    old.shards.iter().zip(&new.shards).filter_map(|(o, n)| match change(o, n)? {
        (Change::Promoted, to) => Some((o, to)),
        _ => None,
    })
}

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
            match change(o, n) {
                Some((Change::Assigned, _)) => m.assigned += 1,
                Some((Change::TransferFinished, _)) => m.transfers_finished += 1,
                Some((Change::Promoted, _)) => m.promoted += 1,
                Some((Change::Reopened, _)) => m.reopened += 1,
                None => {}
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
