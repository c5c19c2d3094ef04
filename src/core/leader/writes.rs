//! The write pipeline: decided changes wait in a queue and leave as batches of whole changes,
//! one batch in flight at a time. Changes that arrive while a batch is in flight share the next
//! one (group commit), so concurrent creates cost one transaction, not one each.

use std::collections::VecDeque;

use prost::Message;

use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::ids::*;
use crate::core::model::{FenceRecord, Mutation, TableRecord};
use crate::core::output::{Output, Response};
use crate::core::storage::batch::BatchBuilder;
use crate::core::storage::Op;

/// What a shard's replicas must hear once a change lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A table was created in the shard.
    Created(TableId),
    /// Tables left the shard.
    Dropped(Vec<TableId>),
    /// The table's record has a new version (an alter).
    Altered(TableId, u32),
    /// More than one thing changed: send the whole shard (`Open` with every table).
    Resync,
}

/// A set of mutations that land together, and what becomes visible when they do.
#[derive(Debug)]
pub struct Change {
    /// The cluster it changes.
    pub cluster: ClusterId,
    /// What it writes, in one transaction.
    pub mutations: Vec<Mutation>,
    /// The answer to the request that asked for it, sent once it lands.
    pub reply: Option<(RequestId, Response)>,
    /// Shards whose replicas get commands on landing; each shard at most once.
    pub notify: Vec<(ShardId, Notice)>,
    /// Nodes that lost a replica in this change.
    pub closes: Vec<(NodeId, ShardId)>,
    /// Nodes whose replica of a re-synced shard keeps its tables: they get a role change
    /// instead of the whole table set.
    pub kept: Vec<(NodeId, ShardId)>,
    /// The procedure whose step this is: it takes no next step until this lands.
    pub procedure: Option<u64>,
}

impl Change {
    /// An empty change to `cluster`.
    pub fn new(cluster: ClusterId) -> Change {
        Change {
            cluster,
            mutations: Vec::new(),
            reply: None,
            notify: Vec::new(),
            closes: Vec::new(),
            kept: Vec::new(),
            procedure: None,
        }
    }

    /// Drops gather into one notice; any other two things for one shard make a re-sync.
    pub fn notify(&mut self, shard: ShardId, notice: Notice) {
        match (self.notify.iter_mut().find(|(s, _)| *s == shard), notice) {
            (Some((_, Notice::Dropped(held))), Notice::Dropped(more)) => held.extend(more),
            (Some(entry), _) => entry.1 = Notice::Resync,
            (None, notice) => self.notify.push((shard, notice)),
        }
    }

    fn ops(&self, config: &CoreConfig) -> Vec<Op> {
        let drop_options = config.has_bug(PlantedBug::DropOptionsOnEncode);
        self.mutations
            .iter()
            .map(|m| match m {
                // The planted bug: a table's options are lost on their way to storage.
                Mutation::PutTable(c, r) if drop_options => {
                    Mutation::PutTable(*c, TableRecord { options: Default::default(), ..r.clone() })
                        .to_op()
                }
                m => m.to_op(),
            })
            .collect()
    }
}

/// Changes queued for storage and the batch in flight: one batch at a time, in order, each
/// chained to the last by the fence.
#[derive(Default)]
pub struct Writes {
    queued: VecDeque<Change>,
    in_flight: Option<(WriteId, Vec<Change>, Vec<u8>)>,
    next_write: u64,
    /// The write chain: the fence value storage holds after the last landed batch, and the
    /// sequence number of the next batch in this term.
    fence: Option<Vec<u8>>,
    fence_seq: u64,
    /// A write's outcome is unknown; nothing is decided or written until a snapshot is loaded
    /// and a barrier has landed after it.
    pub recovering: bool,
}

impl Writes {
    /// An empty pipeline whose first batch gets id `next_write + 1`. Ids must stay unique for
    /// the core's whole life: a late result from an earlier leadership must never match.
    pub fn starting_after(next_write: u64, fence: Option<Vec<u8>>) -> Writes {
        let mut w = Writes { next_write, ..Default::default() };
        w.reset_fence(fence);
        w
    }

    /// The fence value read from storage: the chain continues from it.
    pub fn reset_fence(&mut self, fence: Option<Vec<u8>>) {
        let seq = fence.as_deref().and_then(|f| FenceRecord::decode(f).ok()).map_or(0, |f| f.seq);
        self.fence_seq = self.fence_seq.max(seq);
        self.fence = fence;
    }

    /// The number of the last batch sent.
    pub fn last_id(&self) -> u64 {
        self.next_write
    }

    /// Queues a change behind those already queued.
    pub fn queue(&mut self, change: Change) {
        assert!(!self.recovering, "no decisions while recovering");
        self.queued.push_back(change);
    }

    /// Changes not yet acknowledged.
    pub fn backlog(&self) -> usize {
        self.queued.len() + self.in_flight.as_ref().map_or(0, |(_, c, _)| c.len())
    }

    /// Changes to `cluster` not yet acknowledged.
    pub fn pending(&self, cluster: ClusterId) -> usize {
        let in_flight = self.in_flight.iter().flat_map(|(_, c, _)| c);
        self.queued.iter().chain(in_flight).filter(|c| c.cluster == cluster).count()
    }

    /// Whether nothing is queued or in flight.
    pub fn idle(&self) -> bool {
        self.in_flight.is_none() && self.queued.is_empty()
    }

    /// Sends the next batch if none is in flight.
    pub fn flush(&mut self, term: Term, config: &CoreConfig, out: &mut VecDeque<Output>) {
        if self.in_flight.is_some() || self.recovering || self.queued.is_empty() {
            return;
        }
        let mut builder = BatchBuilder::default();
        let mut changes = Vec::new();
        // One op of every transaction advances the fence.
        let ops_max = config.txn_ops_max - 1;
        while let Some(change) = self.queued.front() {
            let ops = change.ops(config);
            // A range delete shares its transaction with nothing (see `Op::DeletePrefix`).
            let alone = ops.iter().any(|op| matches!(op, Op::DeletePrefix { .. }));
            if alone && !changes.is_empty() {
                break;
            }
            let fits = builder.len_with(ops.iter()) <= ops_max;
            if !fits {
                assert!(
                    !changes.is_empty(),
                    "one change has more than txn_ops_max ops: a limit is missing"
                );
                break;
            }
            ops.into_iter().for_each(|op| builder.push(op));
            changes.push(self.queued.pop_front().expect("front exists"));
            if alone {
                break;
            }
        }
        self.next_write += 1;
        self.fence_seq += 1;
        let id = WriteId(self.next_write);
        let fence = FenceRecord { term: term.0, seq: self.fence_seq }.encode_to_vec();
        out.push_back(Output::Persist(builder.finish(id, term, self.fence.clone(), fence.clone())));
        self.in_flight = Some((id, changes, fence));
    }

    /// The changes of the batch `id`, if it is the one in flight.
    /// After a snapshot reload: an empty batch that advances the fence from the value read. Once
    /// it lands, a batch whose outcome was unknown can never land any more, so the reloaded
    /// catalog stays true; if that batch landed after the read, the barrier conflicts instead.
    pub fn flush_barrier(&mut self, term: Term, out: &mut VecDeque<Output>) {
        assert!(self.recovering && self.idle(), "a barrier follows a reload");
        self.next_write += 1;
        self.fence_seq += 1;
        let id = WriteId(self.next_write);
        let fence = FenceRecord { term: term.0, seq: self.fence_seq }.encode_to_vec();
        out.push_back(Output::Persist(BatchBuilder::default().finish(
            id,
            term,
            self.fence.clone(),
            fence.clone(),
        )));
        self.in_flight = Some((id, Vec::new(), fence));
    }

    /// The changes of the batch `id`, if it is the one in flight; `landed` moves the chain on.
    pub fn take_in_flight(&mut self, id: WriteId, landed: bool) -> Option<Vec<Change>> {
        match &self.in_flight {
            Some((current, ..)) if *current == id => {
                let (_, changes, fence) = self.in_flight.take().expect("matched above");
                if landed {
                    self.fence = Some(fence);
                }
                Some(changes)
            }
            _ => None,
        }
    }

    /// Every change not yet acknowledged, in order; the pipeline is left empty.
    pub fn drain(&mut self) -> Vec<Change> {
        let mut all = self.in_flight.take().map(|(_, c, _)| c).unwrap_or_default();
        all.extend(self.queued.drain(..));
        all
    }
}
