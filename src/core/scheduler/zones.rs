//! Zone spread: a shard's replicas sit in as many zones as they can. Placement prefers unused
//! zones, and no move narrows a shard's spread where another keeps it; but a zone that was lost
//! leaves shards crowded into the zones that stayed (two replicas in one zone), and when it
//! returns nothing else would spread them again. So whenever a node joins or comes back, a
//! follower that shares its zone with another replica moves to a placeable node in a zone the
//! shard does not use yet.

use super::{MoveReason, Planner};
use crate::core::cause::Cause;
use crate::core::ids::*;
use crate::core::live::planned;
use crate::core::model::ShardRecord;

impl Planner<'_> {
    pub(super) fn spread_zones(&mut self) {
        for shard in (0..self.cluster.record.shard_count).map(ShardId) {
            if self.exhausted() {
                self.live.deficit_scan_again();
                return;
            }
            let rec = self.intended(shard);
            // A transfer in flight is judged as it will land: the replicas it leaves may crowd a
            // zone its current ones do not, when a node's zone changed since it started (in-process
            // seed 1592603999: the scan passed the shard over, and nothing looked again).
            let Some(crowded) = self.crowded_follower(&planned(rec)) else { continue };
            if !self.live.intent().settled(shard) || rec.leader.is_none() || rec.transfer.is_some()
            {
                self.live.deficit_scan_again(); // look again once its change has landed
                continue;
            }
            let replicas: Vec<u32> = rec.replicas().collect();
            let staying: Vec<u32> = replicas.iter().copied().filter(|&r| r != crowded).collect();
            // Never onto a node the placement rule forbids: the rule would move it back.
            let fits = |n: u32| self.keeps_rule(rec, crowded, n);
            let Some(&fresh) =
                self.pick_followers_where(shard, &replicas, &staying, 1, fits).first()
            else {
                continue;
            };
            let zone = self.zone_id(fresh);
            if zone == 0 || replicas.iter().any(|&r| self.zone_id(r) == zone) {
                continue; // no zone without a replica has room
            }
            let key = self.spread_key;
            let why = format!(
                "{} shares {key} {:?} with another replica; {} is in {key} {:?}",
                self.name(crowded),
                self.zone(crowded),
                self.name(fresh),
                self.zone(fresh)
            );
            let mut record = rec.clone();
            let slot = record.followers.iter().position(|&f| f == crowded).expect("a follower");
            record.followers[slot] = fresh;
            self.stage(
                record,
                vec![NodeId(crowded)],
                MoveReason::RepairFollowers,
                Cause::Repair,
                why,
            );
            // One follower per shard per scan: another may share a zone too (three replicas in
            // one, or the spread label changed), and it moves once this has landed.
            self.live.deficit_scan_again();
        }
    }

    /// A follower whose (named) zone another replica of `rec` also sits in.
    fn crowded_follower(&self, rec: &ShardRecord) -> Option<u32> {
        rec.followers.iter().copied().find(|&f| {
            let zone = self.zone_id(f);
            zone != 0 && rec.replicas().any(|r| r != f && self.zone_id(r) == zone)
        })
    }
}
