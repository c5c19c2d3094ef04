//! The scheduling events of one cluster, newest last, for operators (`metactl events`): every
//! decided move with its reason, and every change to the scheduler's settings. Bounded: the
//! oldest are dropped. Kept by the leader only; a new leader starts a new log.

use std::collections::VecDeque;

use crate::core::cause::Cause;
use crate::core::ids::ShardId;
use crate::core::time::Instant;

/// One scheduling decision or settings change, as operators read it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Numbers events of this leader's log in order, from 1; a reader asks for those after one.
    pub seq: u64,
    /// When it was decided.
    pub at: Instant,
    /// Why.
    pub cause: Cause,
    /// The shard it moved, if it moved one.
    pub shard: Option<ShardId>,
    /// What happened and why, in words.
    pub text: String,
}

/// The leader's event log: the newest events, bounded, and counts by cause that are not.
#[derive(Clone, Debug, Default)]
pub struct Events {
    kept: VecDeque<Event>,
    last_seq: u64,
    /// Every event pushed, by cause (`cause as usize`): unlike the log, never dropped (for
    /// metrics).
    counts: [u64; Cause::ALL.len()],
}

impl Events {
    pub(super) fn push(
        &mut self,
        at: Instant,
        cause: Cause,
        shard: Option<ShardId>,
        text: String,
        kept_max: usize,
    ) {
        self.last_seq += 1;
        self.counts[cause as usize] += 1;
        if self.kept.len() >= kept_max {
            self.kept.pop_front();
        }
        self.kept.push_back(Event { seq: self.last_seq, at, cause, shard, text });
    }

    /// Up to `limit` events after `after`, oldest first.
    pub fn after(&self, after: u64, limit: usize) -> impl Iterator<Item = &Event> {
        let skip = self.kept.partition_point(|e| e.seq <= after);
        self.kept.range(skip..).take(limit)
    }

    /// How many events of each cause this leader's log has had, dropped ones included; every
    /// cause, zeros too, so that a counter exists before its first event (Prometheus's
    /// `increase` counts nothing for the sample a series starts with).
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Cause::ALL.iter().zip(self.counts).map(|(c, n)| (c.name(), n))
    }

    /// The newest event's number (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_newest_and_reads_from_a_number() {
        let mut log = Events::default();
        for i in 0..5 {
            log.push(Instant(i), Cause::Load, None, format!("e{i}"), 3);
        }
        let seqs: Vec<u64> = log.after(0, 10).map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5], "the two oldest were dropped");
        let seqs: Vec<u64> = log.after(3, 1).map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4]);
        assert_eq!(log.last_seq(), 5);
        let counts: Vec<_> = log.counts().filter(|(_, n)| *n > 0).collect();
        assert_eq!(counts, vec![("load", 5)], "counts keep the dropped ones");
        assert_eq!(log.counts().count(), Cause::ALL.len(), "every cause is counted, zeros too");
    }
}
