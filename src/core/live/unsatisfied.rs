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

    /// The event a change from `before` to this is logged as; `None` when the count stays.
    pub fn change_from(&self, before: &Unsatisfied) -> Option<String> {
        match (before.shards, self.shards) {
            (a, b) if a == b => None,
            (_, 0) => Some("the placement rule is met for every shard again".into()),
            (_, n) => Some(format!(
                "the placement rule cannot be met for {n} shards with the nodes there are (was {}); {}",
                before.shards, self.example
            )),
        }
    }
}
