//! Balancing leader counts across online nodes with leader transfers: a persisted two-step
//! procedure. Step one stores the transfer (the old leader then gets no lease and is asked to
//! close); step two, once the old leader has reported the shard closed or its lease has surely
//! ended, makes the target the leader. A new meta leader resumes transfers from the records.

use super::{Cause, MoveReason, Planner};
use crate::core::ids::*;
use crate::core::leader::runtime::planned;
use crate::core::model::{ShardRecord, TransferRecord};

impl Planner<'_> {
    pub(super) fn finish_transfers(&mut self) {
        let ready: Vec<ShardId> = self.rt.intent().transfers().filter(|&s| self.rt.intent().settled(s)).collect();
        for shard in ready {
            if self.exhausted() {
                return;
            }
            let rec = self.intended(shard);
            let t = rec.transfer.expect("indexed as a transfer");
            // A target that died or is being drained is replaced; with no other node to take
            // the shard, the old leader takes it back.
            let to = if self.staying(t.to) { Some(t.to) } else { self.successor(shard).or(self.online(t.from).then_some(t.from)) };
            let Some(to) = to else { continue };
            if !self.rt.leases().free_for(shard, NodeId(to), self.now, self.config) {
                continue;
            }
            let record = planned(&ShardRecord { transfer: Some(TransferRecord { from: t.from, to }), ..rec.clone() }).into_owned();
            let closes = if record.replicas().any(|r| r == t.from) { Vec::new() } else { vec![NodeId(t.from)] };
            self.stage(record, closes, MoveReason::FinishTransfer, Cause::Finish, String::new());
        }
    }

    pub(super) fn balance(&mut self) {
        let nothing_else_to_do = self.rt.intent().unassigned().is_empty()
            && self.rt.nodes().iter().all(|(_, n)| (n.online || n.leaders == 0) && (!n.draining || n.replicas == 0));
        if !nothing_else_to_do {
            return;
        }
        while self.may_start_transfer() {
            let (Some(min), Some(max)) = (self.load().by_leaders().next(), self.load().by_leaders().next_back()) else {
                return;
            };
            let (lo, hi) = (self.rt.node(min).leaders, self.rt.node(max).leaders);
            if hi <= lo + 1 {
                return; // balanced within one: stay quiet
            }
            let Some(shard) = self.transferable(max, min) else { return };
            let mut record = self.intended(shard).clone();
            record.transfer = Some(TransferRecord { from: max.0, to: min.0 });
            let why = format!("{} leads {hi} shards, {} leads {lo}", self.name(max.0), self.name(min.0));
            self.stage(record, vec![max], MoveReason::StartTransfer, Cause::LeaderCount, why);
        }
    }

    /// A shard that `from` leads and could hand to `to`, preferring one where `to` already
    /// follows (a promotion needs no new replica).
    fn transferable(&self, from: NodeId, to: NodeId) -> Option<ShardId> {
        let candidates = self.cluster.node_shards[from.index()].iter().copied().filter(|&s| {
            let rec = self.intended(s);
            self.rt.intent().settled(s) && rec.leader == Some(from.0) && rec.transfer.is_none()
        });
        let mut first = None;
        for s in candidates {
            if self.intended(s).followers.contains(&to.0) {
                return Some(s);
            }
            first.get_or_insert(s);
        }
        first
    }
}
