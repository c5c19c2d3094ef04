//! Route watches: every landed change that moves a route (a table created, dropped or moved, a
//! shard's version, leader or followers changed, a replica's endpoint moved) is numbered and
//! kept in a bounded log per cluster, and sent to the cluster's watchers as it lands.
//!
//! A revision is `term << 40 | seq`: it grows within a term and from one term to the next. A
//! watcher resumes after the last revision it saw. The log covers only this leader's term and
//! its newest `route_log_max` changes, so a watcher resuming from before that, from another
//! leader's term, or across a reload (which replaces the catalog whole) is told to resync: drop
//! what it holds and read routes again, with the changes after the new revision to follow.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::views;
use crate::core::config::CoreConfig;
use crate::core::error::quoted;
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::input::WatchRoutes;
use crate::core::model::ClusterCatalog;
use crate::core::model::Mutation;
use crate::core::outbox::Outbox;
use crate::core::output::{Output, RouteChange, RouteUpdate};

/// Changes in one update at most, so that one message stays far below the gRPC limit (a shard
/// change with its endpoints is a few hundred bytes).
pub(super) const CHANGES_PER_UPDATE: usize = 1_000;

const SEQ_BITS: u32 = 40;

pub(super) struct RouteWatches {
    /// The revision of this term's change 0: a change's revision is `base + seq`.
    base: u64,
    logs: BTreeMap<ClusterId, RouteLog>,
    watchers: BTreeMap<WatchId, Watcher>,
}

#[derive(Default)]
struct RouteLog {
    /// Kept changes, oldest first, with their sequence numbers.
    changes: VecDeque<(u64, RouteChange)>,
    /// The newest sequence number given (0: none yet this term).
    head: u64,
    /// The oldest position a watcher can resume after: every change after it is kept.
    floor: u64,
}

struct Watcher {
    cluster: ClusterId,
    schema: Option<String>,
}

impl Watcher {
    fn wants(&self, change: &RouteChange) -> bool {
        match (change, &self.schema) {
            (_, None) | (RouteChange::Shard { .. }, _) => true,
            (
                RouteChange::Table { schema, .. } | RouteChange::TableDropped { schema, .. },
                Some(only),
            ) => schema == only,
        }
    }
}

impl RouteWatches {
    pub(super) fn new(term: Term) -> RouteWatches {
        RouteWatches {
            base: term.0.saturating_mul(1 << SEQ_BITS),
            logs: BTreeMap::new(),
            watchers: BTreeMap::new(),
        }
    }

    /// Opens a watch: the changes after the watcher's revision, or a resync, go out at once.
    pub(super) fn open(
        &mut self,
        watch: WatchId,
        cluster: &ClusterCatalog,
        req: &WatchRoutes,
        config: &CoreConfig,
        out: &mut Outbox,
    ) -> MetaResult<()> {
        if self.watchers.len() >= config.watchers_max {
            return Err(MetaError::ResourceExhausted(format!(
                "{} route watches are open, the most this meta leader keeps",
                config.watchers_max
            )));
        }
        if let Some(schema) =
            req.schema.as_deref().filter(|s| !cluster.schema_by_name.contains_key(*s))
        {
            return Err(MetaError::NotFound(format!(
                "schema {schema} in cluster {:?}",
                cluster.record.name,
                schema = quoted(schema)
            )));
        }
        let watcher = Watcher { cluster: cluster.id(), schema: req.schema.clone() };
        let log = self.logs.entry(cluster.id()).or_default();
        // Another term's revision falls outside this term's range of positions.
        let seq = req
            .from_revision
            .checked_sub(self.base)
            .filter(|s| req.from_revision != 0 && (log.floor..=log.head).contains(s));
        let resumable = seq.is_some();
        let missed: Vec<(u64, RouteChange)> = match seq {
            Some(seq) => {
                log.changes.iter().filter(|(s, c)| *s > seq && watcher.wants(c)).cloned().collect()
            }
            None => Vec::new(),
        };
        send(out, watch, self.base, log.head, !resumable, missed);
        self.watchers.insert(watch, watcher);
        Ok(())
    }

    pub(super) fn close(&mut self, watch: WatchId) {
        self.watchers.remove(&watch);
    }

    /// Numbers and keeps `changes` of `cluster`, and sends them to its watchers.
    pub(super) fn record(
        &mut self,
        cluster: ClusterId,
        changes: Vec<RouteChange>,
        config: &CoreConfig,
        out: &mut Outbox,
    ) {
        if changes.is_empty() {
            return;
        }
        let log = self.logs.entry(cluster).or_default();
        let numbered: Vec<(u64, RouteChange)> =
            changes.into_iter().enumerate().map(|(i, c)| (log.head + 1 + i as u64, c)).collect();
        log.head += numbered.len() as u64;
        log.changes.extend(numbered.iter().cloned());
        while log.changes.len() > config.route_log_max {
            let (dropped, _) = log.changes.pop_front().expect("over the limit, so not empty");
            log.floor = dropped;
        }
        let head = log.head;
        for (&watch, w) in self.watchers.iter().filter(|(_, w)| w.cluster == cluster) {
            let wanted: Vec<(u64, RouteChange)> =
                numbered.iter().filter(|(_, c)| w.wants(c)).cloned().collect();
            if !wanted.is_empty() {
                send(out, watch, self.base, head, false, wanted);
            }
        }
    }

    /// The catalog was replaced whole (a reload): no log describes the difference, so every
    /// watcher resyncs, and no earlier revision can be resumed.
    pub(super) fn resync_all(&mut self, out: &mut Outbox) {
        for log in self.logs.values_mut() {
            log.changes.clear();
            log.head += 1;
            log.floor = log.head;
        }
        for (&watch, w) in &self.watchers {
            send(out, watch, self.base, self.logs[&w.cluster].head, true, Vec::new());
        }
    }

    /// The cluster was dropped: its watches end, and its log goes.
    pub(super) fn forget_cluster(&mut self, cluster: ClusterId, out: &mut Outbox) {
        self.logs.remove(&cluster);
        let gone: Vec<WatchId> =
            self.watchers.iter().filter(|(_, w)| w.cluster == cluster).map(|(&id, _)| id).collect();
        for watch in gone {
            self.watchers.remove(&watch);
            out.push(Output::EndWatch {
                watch,
                error: MetaError::NotFound("the cluster was dropped".into()),
            });
        }
    }

    /// Ends every watch: this leadership is over.
    pub(super) fn end_all(&mut self, out: &mut Outbox) {
        for (watch, _) in std::mem::take(&mut self.watchers) {
            let error = MetaError::Unavailable(
                "meta leadership moved; watch again at the new leader, from the last revision seen"
                    .into(),
            );
            out.push(Output::EndWatch { watch, error });
        }
    }
}

/// The changes after a watcher's position, as one update or several when they are many, each
/// at the revision of its last change; an empty update at `head` when there are none (a
/// watch's first answer says where it stands).
fn send(
    out: &mut Outbox,
    watch: WatchId,
    base: u64,
    head: u64,
    resync: bool,
    changes: Vec<(u64, RouteChange)>,
) {
    if changes.is_empty() {
        out.push(Output::ToWatcher {
            watch,
            update: RouteUpdate {
                revision: base.saturating_add(head),
                resync,
                changes: Vec::new(),
            },
        });
        return;
    }
    for (i, chunk) in changes.chunks(CHANGES_PER_UPDATE).enumerate() {
        let revision = base.saturating_add(chunk.last().expect("chunks are not empty").0);
        let changes = chunk.iter().map(|(_, c)| c.clone()).collect();
        out.push(Output::ToWatcher {
            watch,
            update: RouteUpdate { revision, resync: resync && i == 0, changes },
        });
    }
}

/// What one change touched that routes show, noted mutation by mutation before each is applied
/// (a drop must be described while the table is still there), then read back once all are.
#[derive(Default)]
pub(super) struct Touched {
    tables: Vec<TableId>,
    dropped: Vec<RouteChange>,
    shards: BTreeSet<ShardId>,
    nodes: Vec<NodeId>,
}

impl Touched {
    /// Notes `m`, about to be applied to `c` (`None`: the change creates the cluster, which
    /// has no routes yet).
    pub(super) fn note(&mut self, c: Option<&ClusterCatalog>, m: &Mutation) {
        let Some(c) = c else { return };
        match m {
            Mutation::PutTable(_, t)
                if c.tables.get(TableId(t.id)).is_none_or(|old| old.shard != t.shard) =>
            {
                self.tables.push(TableId(t.id))
            }
            Mutation::DeleteTable(_, id) => {
                if let Some(t) = c.tables.get(*id) {
                    let schema = c.schemas[&t.schema].name.clone();
                    self.dropped.push(RouteChange::TableDropped {
                        schema,
                        name: t.name.to_string(),
                        id: *id,
                    });
                }
            }
            Mutation::PutShard(_, s) => {
                let old = c.shard(ShardId(s.id));
                if (old.version, old.leader, &old.followers) != (s.version, s.leader, &s.followers)
                {
                    self.shards.insert(ShardId(s.id));
                }
            }
            Mutation::PutNode(_, n)
                if c.nodes
                    .get(n.id as usize)
                    .is_some_and(|old| old.endpoint != n.endpoint && !n.removed) =>
            {
                self.nodes.push(NodeId(n.id))
            }
            _ => {}
        }
    }

    /// The route changes, read from `c` once the change is applied.
    pub(super) fn changes(mut self, c: &ClusterCatalog) -> Vec<RouteChange> {
        let mut changes =
            Vec::with_capacity(self.tables.len() + self.dropped.len() + self.shards.len());
        for id in self.tables {
            if let Some(t) = c.tables.get(id) {
                let schema = c.schemas[&t.schema].name.clone();
                changes.push(RouteChange::Table {
                    schema,
                    name: t.name.to_string(),
                    id,
                    shard: ShardId(t.shard),
                });
            }
        }
        changes.append(&mut self.dropped);
        for node in self.nodes {
            self.shards.extend(c.node_shards[node.index()].iter().copied());
        }
        let endpoint = |n: u32| views::endpoint(c, n);
        for shard in self.shards {
            let s = c.shard(shard);
            changes.push(RouteChange::Shard {
                shard,
                version: Version(s.version),
                leader: s.leader.map(endpoint),
                followers: s.followers.iter().map(|&f| endpoint(f)).collect(),
            });
        }
        changes
    }
}
