//! Shards the placement rule cannot be met for with the nodes there are, as the scheduler's
//! last complete look at every shard found (`scheduler::rules`). Kept as a count and one
//! example, so it is bounded whatever the cluster's size.

use crate::core::ids::ShardId;

/// The shards a scan found against the rule with no node that fits to take them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unsatisfied {
    /// How many.
    pub shards: u32,
    /// Why, for the first: "shard 3: n2 may not hold a replica under the rule (...)".
    pub example: String,
}

impl Unsatisfied {
    /// One more, with why.
    pub fn add(&mut self, shard: ShardId, why: String) {
        if self.shards == 0 {
            self.example = format!("shard {shard}: {why}");
        }
        self.shards += 1;
    }

    /// The event a change from `before` to this is logged as: the rule becoming impossible to
    /// meet for some shard, or possible for all again. Changes in between are only counted
    /// (status, metric): shards waiting for budgets move in and out of the count pass by pass,
    /// and each would be an event.
    pub fn change_from(&self, before: &Unsatisfied) -> Option<String> {
        match (before.shards, self.shards) {
            (0, 0) => None,
            (_, 0) => Some("the placement rule is met for every shard again".into()),
            (0, n) => Some(format!(
                "the placement rule cannot be met for {n} shards with the nodes there are; {}",
                self.example
            )),
            _ => None,
        }
    }
}
