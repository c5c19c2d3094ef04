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

    /// Evens leader counts to within one; in a lull, only gives leaders back towards the counts
    /// the day left, by moves that keep the order of the nodes' loads in `view` (which tracks
    /// them).
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
            let found = match view.as_deref() {
                Some(view) => self.lull_move(view),
                None => self.count_move(),
            };
            let (from, to, shard) = match found {
                Ok(found) => found,
                // Balanced within one, or as the day left it in a lull: stay quiet.
                Err(NoCountMove::Even | NoCountMove::LullKeeps) => return,
                Err(NoCountMove::NoneFits(to)) => {
                    if self.may_enter(to) {
                        self.swap_follower_for_count(to);
                    }
                    return;
                }
            };
            let recent = self.live.recent();
            let count = |n: NodeId| match (view.is_some(), recent.day_leads(n)) {
                (true, Some(day)) => format!("{} ({day} by day)", self.live.node(n).leaders),
                _ => self.live.node(n).leaders.to_string(),
            };
            let why = format!(
                "{} leads {} shards, {} leads {}",
                self.name(from.0),
                count(from),
                self.name(to.0),
                count(to)
            );
            self.start_transfer(shard, from.0, to.0, Cause::LeaderCount, why);
            if let Some(view) = view.as_deref_mut() {
                view.shift(from.0, to.0, view.shard_load(self.live.loads(), shard));
            }
        }
    }

    /// In a lull (load under the floor after a pass balanced by it), leader counts stay as the
    /// day left them, uneven as balancing by load made them: evened at some dusk where the
    /// loads happened to agree, they cost a move nothing asked for (nightly lull seeds 473 and
    /// 741), and evened every night they were undone every day. Leaders only go back, from a
    /// node that leads more than it did then to one that leads fewer (a node that failed in
    /// the night and returned, and the nodes its leaders went to), or fill a node that joined
    /// since, up to the mean count; and only by moves that keep the order of the two nodes'
    /// loads. No move makes a node lead more than the day left it, so none is ever undone.
    fn lull_move(&self, view: &LoadView) -> Result<(NodeId, NodeId, ShardId), NoCountMove> {
        const EACH_END: usize = 16;
        let (recent, leads) = (self.live.recent(), |n: NodeId| self.live.node(n).leaders);
        let short = |n: NodeId| match recent.day_leads(n) {
            Some(day) => leads(n) < day,
            None => f64::from(leads(n)) + 1.0 < view.mean_leads(),
        };
        let gained = |n: NodeId| recent.day_leads(n).is_some_and(|day| leads(n) > day);
        // Leaders go back from the nodes that gained them while there are any; a new node
        // takes from the busiest otherwise.
        let someone_gained = self.live.nodes().iter().any(|(n, _)| gained(n));
        let gives = |from: NodeId, to: NodeId| match someone_gained {
            true => gained(from),
            false => recent.day_leads(to).is_none() && leads(from) > leads(to) + 1,
        };
        let mut why = NoCountMove::LullKeeps;
        let takers = self
            .load()
            .by_leaders()
            .filter(|&n| short(n) && self.may_enter(n) && self.may_balance_to(n));
        for to in takers.take(EACH_END) {
            let givers = self
                .load()
                .by_leaders()
                .rev()
                .filter(|&f| f != to && gives(f, to) && self.may_leave(f));
            for from in givers.take(EACH_END) {
                match self.transferable(from, to, Some(view)) {
                    Ok(shard) => return Ok((from, to, shard)),
                    Err(NoCountMove::NoneFits(_)) => why = NoCountMove::NoneFits(to),
                    Err(_) => {}
                }
            }
        }
        Err(why)
    }

    /// The emptiest node that can take a shard from one that leads at least two more, without
    /// narrowing the shard's zones. The busiest node is not always the source: when a node's
    /// replicas span every zone, a node without a replica can only take over from a node in its
    /// own zone, and that one refills from promotions. The search looks at a few nodes at each
    /// end of the order.
    fn count_move(&self) -> Result<(NodeId, NodeId, ShardId), NoCountMove> {
        const EACH_END: usize = 16;
        // Counts are evened among the nodes the rule lets lead (see `may_balance_to`).
        let may_lead = |n: &NodeId| self.may_balance_to(*n);
        let (Some(min), Some(max)) =
            (self.load().by_leaders().find(may_lead), self.load().by_leaders().next_back())
        else {
            return Err(NoCountMove::Even);
        };
        let leaders = |n: NodeId| self.live.node(n).leaders;
        if leaders(max) <= leaders(min) + 1 {
            return Err(NoCountMove::Even);
        }
        let takers = self.load().by_leaders().filter(may_lead).take(EACH_END);
        for to in takers.filter(|&n| self.may_enter(n)) {
            for from in self
                .load()
                .by_leaders()
                .rev()
                .take(EACH_END)
                .take_while(|&f| leaders(f) > leaders(to) + 1)
                .filter(|&n| self.may_leave(n))
            {
                if let Ok(shard) = self.transferable(from, to, None) {
                    return Ok((from, to, shard));
                }
            }
        }
        Err(NoCountMove::NoneFits(min))
    }

    /// No transfer to `to` evens leader counts without narrowing zones (it has no replica of
    /// the busy nodes' shards, and each of those already has a replica in its zone). It then
    /// takes the follower slot of its zone-mate in one such shard, which keeps the zones, so
    /// that a later pass can promote it.
    fn swap_follower_for_count(&mut self, to: NodeId) {
        let leaders = |n: NodeId| self.live.node(n).leaders;
        let (zone, zone_id) = (self.zone(to.0).to_string(), self.zone_id(to.0));
        let busy: Vec<NodeId> =
            self.load().by_leaders().rev().take_while(|&f| leaders(f) > leaders(to) + 1).collect();
        for from in busy {
            for &shard in &self.cluster.node_shards[from.index()] {
                let rec = self.intended(shard);
                if !self.movable(shard, from.0) || rec.replicas().any(|r| r == to.0) {
                    continue;
                }
                let Some(slot) = rec.followers.iter().position(|&f| self.zone_id(f) == zone_id)
                else {
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
    /// one whose placement (rule and zone spread) the move keeps.
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
        let (mut first, mut why) = (None, NoCountMove::NoneFits(to));
        for s in candidates {
            if view.is_some_and(|v| !v.keeps_order(from.0, to.0, v.shard_load(loads, s))) {
                why = NoCountMove::LullKeeps;
                continue;
            }
            let rec = self.intended(s);
            if self.live.laggards().lag(s, to).is_some() {
                continue; // a follower that lags is no leader to make by plan
            }
            if rec.followers.contains(&to.0) {
                if self.may_lead_instead(from.0, to.0) {
                    return Ok(s);
                }
                continue;
            }
            if first.is_none() && self.keeps_placement(rec, from.0, to.0) {
                first = Some(s);
            }
        }
        first.ok_or(why)
    }
}

/// Why no count move was found.
#[derive(Clone, Copy)]
enum NoCountMove {
    /// Counts are within one of each other.
    Even,
    /// In a lull: no node leads fewer than the day left it (or joined since), or a move to one
    /// would put it above its source in load.
    LullKeeps,
    /// None fits: no shard moves to the node without narrowing its zones.
    NoneFits(NodeId),
}
