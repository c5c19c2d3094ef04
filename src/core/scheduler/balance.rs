//! Balancing leader counts across online nodes with leader transfers: a persisted two-step
//! procedure. Step one stores the transfer (the old leader then gets no lease and is asked to
//! close); step two, once the old leader has reported the shard closed or its lease has surely
//! ended, makes the target the leader. A new meta leader resumes transfers from the records.

use super::load_view::LoadView;
use super::{MoveReason, Planner};
use crate::core::cause::Cause;
use crate::core::ids::*;
use crate::core::live::planned;
use crate::core::model::{ShardRecord, TransferRecord};

impl Planner<'_> {
    pub(super) fn finish_transfers(&mut self) {
        let ready: Vec<ShardId> =
            self.live.intent().transfers().filter(|&s| self.live.intent().settled(s)).collect();
        for shard in ready {
            if self.exhausted() {
                return;
            }
            let rec = self.intended(shard);
            let t = rec.transfer.expect("indexed as a transfer");
            // A target that died or is being drained is replaced; with no other node to take
            // the shard, the old leader takes it back.
            let to = if self.staying(t.to) {
                Some(t.to)
            } else {
                self.successor(shard).or(self.online(t.from).then_some(t.from))
            };
            let Some(to) = to else { continue };
            if !self.live.leases().free_for(shard, NodeId(to), self.now, self.config) {
                continue;
            }
            let record =
                planned(&ShardRecord { transfer: Some(TransferRecord { to, ..t }), ..rec.clone() })
                    .into_owned();
            let closes = if record.replicas().any(|r| r == t.from) {
                Vec::new()
            } else {
                vec![NodeId(t.from)]
            };
            self.stage(record, closes, MoveReason::FinishTransfer, Cause::Finish, String::new());
        }
    }

    /// Evens leader counts to within one; in a lull, by moves that keep the order of the
    /// nodes' loads in `view` (which tracks them).
    pub(super) fn balance(&mut self, mut view: Option<&mut LoadView>) {
        let nothing_else_to_do = self.live.intent().unassigned().is_empty()
            && self
                .live
                .nodes()
                .iter()
                .all(|(_, n)| (n.online || n.leaders == 0) && (!n.draining || n.replicas == 0));
        if !nothing_else_to_do {
            return;
        }
        while self.may_start_transfer() {
            let (Some(min), Some(max)) =
                (self.load().by_leaders().next(), self.load().by_leaders().next_back())
            else {
                return;
            };
            let (lo, hi) = (self.live.node(min).leaders, self.live.node(max).leaders);
            if hi <= lo + 1 {
                return; // balanced within one: stay quiet
            }
            let (from, to, shard) = match self.count_move(view.as_deref()) {
                Ok(found) => found,
                // Some transfer would even the counts but not keep the loads' order: the
                // counts stay as load left them, and no follower needs to move either.
                Err(NoCountMove::LoadsDisagree) => return,
                Err(NoCountMove::NoneFits) => {
                    if self.may_enter(min) {
                        self.swap_follower_for_count();
                    }
                    return;
                }
            };
            let (hi, lo) = (self.live.node(from).leaders, self.live.node(to).leaders);
            let why =
                format!("{} leads {hi} shards, {} leads {lo}", self.name(from.0), self.name(to.0));
            self.start_transfer(shard, from.0, to.0, Cause::LeaderCount, why);
            if let Some(view) = view.as_deref_mut() {
                view.shift(from.0, to.0, view.shard_load(self.live.loads(), shard));
            }
        }
    }

    /// The emptiest node that can take a shard from one that leads at least two more, without
    /// narrowing the shard's zones. The busiest node is not always the source: when a node's
    /// replicas span every zone, a node without a replica can only take over from a node in its
    /// own zone, and that one refills from promotions. The search looks at a few nodes at each
    /// end of the order.
    fn count_move(
        &self,
        view: Option<&LoadView>,
    ) -> Result<(NodeId, NodeId, ShardId), NoCountMove> {
        const EACH_END: usize = 16;
        let mut why = NoCountMove::NoneFits;
        let leaders = |n: NodeId| self.live.node(n).leaders;
        for to in self.load().by_leaders().take(EACH_END).filter(|&n| self.may_enter(n)) {
            for from in self
                .load()
                .by_leaders()
                .rev()
                .take(EACH_END)
                .take_while(|&f| leaders(f) > leaders(to) + 1)
                .filter(|&n| self.may_leave(n))
            {
                match self.transferable(from, to, view) {
                    Ok(shard) => return Ok((from, to, shard)),
                    Err(NoCountMove::LoadsDisagree) => why = NoCountMove::LoadsDisagree,
                    Err(NoCountMove::NoneFits) => {}
                }
            }
        }
        Err(why)
    }

    /// No transfer evens leader counts without narrowing zones (the emptiest node has no
    /// replica of the busy nodes' shards, and each of those already has a replica in its zone).
    /// The emptiest node then takes the follower slot of its zone-mate in one such shard, which
    /// keeps the zones, so that a later pass can promote it.
    fn swap_follower_for_count(&mut self) {
        let Some(to) = self.load().by_leaders().next() else { return };
        let leaders = |n: NodeId| self.live.node(n).leaders;
        let zone = self.zone(to.0).to_string();
        let busy: Vec<NodeId> =
            self.load().by_leaders().rev().take_while(|&f| leaders(f) > leaders(to) + 1).collect();
        for from in busy {
            for &shard in &self.cluster.node_shards[from.index()] {
                let rec = self.intended(shard);
                if !self.movable(shard, from.0) || rec.replicas().any(|r| r == to.0) {
                    continue;
                }
                let Some(slot) = rec.followers.iter().position(|&f| self.zone(f) == zone) else {
                    continue;
                };
                let mut record = rec.clone();
                let mate = std::mem::replace(&mut record.followers[slot], to.0);
                let why = format!("{} takes {}'s follower slot (zone {zone:?}) so that it can lead shard {shard} in a later pass", self.name(to.0), self.name(mate));
                self.stage(
                    record,
                    vec![NodeId(mate)],
                    MoveReason::RepairFollowers,
                    Cause::LeaderCount,
                    why,
                );
                return;
            }
        }
    }

    /// A shard that `from` leads and could hand to `to`, keeping the order of their loads,
    /// preferring one where `to` already follows (a promotion needs no new replica); otherwise
    /// one whose zone spread the move keeps.
    fn transferable(
        &self,
        from: NodeId,
        to: NodeId,
        view: Option<&LoadView>,
    ) -> Result<ShardId, NoCountMove> {
        let candidates = self.cluster.node_shards[from.index()]
            .iter()
            .copied()
            .filter(|&s| self.movable(s, from.0));
        let loads = self.live.loads();
        let (mut first, mut why) = (None, NoCountMove::NoneFits);
        for s in candidates {
            if view.is_some_and(|v| !v.keeps_order(from.0, to.0, v.shard_load(loads, s))) {
                why = NoCountMove::LoadsDisagree;
                continue;
            }
            let rec = self.intended(s);
            if rec.followers.contains(&to.0) {
                return Ok(s);
            }
            if first.is_none() && self.keeps_zone_spread(rec, from.0, to.0) {
                first = Some(s);
            }
        }
        first.ok_or(why)
    }
}

/// Why no count move was found.
#[derive(Clone, Copy)]
enum NoCountMove {
    /// Some transfer would have evened the counts, but it would put the target above the
    /// source in load (in a lull).
    LoadsDisagree,
    /// None fits: no shard moves without narrowing its zones.
    NoneFits,
}
