//! Scheduling: pure planning over the catalog and the leader's intent. Each decision updates the
//! intent at once, so later decisions in the same pass see it; the leader turns the decisions
//! into changes that become visible only when their writes land.
//!
//! One pass, in order of urgency:
//! 1. finish leader transfers whose old leader has let go ([`balance`]);
//! 2. fail over shards whose leader's node is dead and lease surely over ([`failover`]);
//! 3. replace followers on dead or draining nodes and fill missing follower slots ([`failover`]),
//!    and when a node joins or returns, move shards where the placement rule says ([`rules`])
//!    and spread replicas crowded into one zone ([`zones`]);
//! 4. assign unassigned shards once enough nodes are online ([`assign`]);
//! 5. move leader shards off draining and slow nodes and nodes about to restart ([`drain`]),
//!    back to nodes returned from a planned restart ([`restart`]), and replicas off nodes above
//!    their disk high water ([`disk`]);
//! 6. balance, dynamic clusters only, unless an operator paused it: by load ([`rebalance`])
//!    once some node carries more than the load floor, else by leader counts ([`balance`]).
//!
//! Placement only ever picks *placeable* nodes: online, not draining, not slow, and heard from
//! by this leader (a node inherited from the last leader keeps its replicas through the grace
//! period, but takes nothing new until it speaks).
//!
//! Moves for balance, drains and slow nodes spend from per-node budgets, in and out
//! (`live::budgets`); failover and repair never wait for them. Replicas leave only nodes that are not *staying*:
//! dead or draining.

mod assign;
mod balance;
mod disk;
mod drain;
mod failover;
mod jobs;
mod load_view;
pub mod merges;
mod operator;
mod placement;
mod rebalance;
pub mod rehearsal;
mod restart;
mod rules;
pub mod split_choice;
pub mod splits;
mod zones;

use load_view::Judged;
pub use load_view::{CpuWeighing, LoadView, NodeStanding};

use crate::core::cause::Cause;
use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::ids::*;
use crate::core::live::{LiveCluster, LoadIndex};
use crate::core::model::Mutation;
use crate::core::model::{
    ClusterCatalog, ProcedureRecord, ShardRecord, Topology, TransferRecord, ZONE_LABEL,
};
use crate::core::time::Instant;

/// Why a shard's record changes; for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveReason {
    /// A shard without a leader got one (and followers).
    Assign,
    /// A follower took over from a dead leader: the data stays in place.
    PromoteFollower,
    /// A shard whose leader died was opened on another node (no follower could take it).
    ReopenElsewhere,
    /// Follower slots were filled or moved off nodes that are leaving.
    RepairFollowers,
    /// A leader transfer began: the old leader is asked to let go.
    StartTransfer,
    /// A leader transfer ended: the target leads.
    FinishTransfer,
}

/// One decided change to a shard's record.
#[derive(Clone, Debug, PartialEq)]
pub struct Move {
    /// The shard's record after the move.
    pub record: ShardRecord,
    /// Nodes that no longer hold a replica (or, for a transfer start, must close the shard).
    pub closes: Vec<NodeId>,
    /// Nodes that held a replica before and still do: their table set is unchanged, so a role
    /// change is enough for them.
    pub kept: Vec<NodeId>,
    /// What kind of change to the record it is.
    pub reason: MoveReason,
    /// What it is for.
    pub cause: Cause,
    /// Why, in words an operator reads: "n3 load 1.80× mean; shard 12 carries 22% of it".
    pub why: String,
    /// Other writes of the same transaction: a transfer's procedure record, stored as the
    /// transfer starts and deleted as it ends.
    pub writes: Vec<Mutation>,
}

impl Move {
    /// One line for the event log, naming nodes as the cluster names them.
    pub fn describe(&self, cluster: &ClusterCatalog, before: Option<u32>) -> String {
        let name =
            |n: Option<u32>| n.map_or("none".to_string(), |n| cluster.node(NodeId(n)).name.clone());
        let after = self.record.transfer.map_or(self.record.leader, |t| Some(t.to));
        let what = match self.reason {
            MoveReason::Assign => "assign",
            MoveReason::PromoteFollower => "promote follower",
            MoveReason::ReopenElsewhere => "reopen",
            MoveReason::RepairFollowers => "repair followers",
            MoveReason::StartTransfer => "start transfer",
            MoveReason::FinishTransfer => "finish transfer",
        };
        let mut line = format!(
            "shard {} v{} {what}: leader {} -> {}",
            self.record.id,
            self.record.version,
            name(before),
            name(after)
        );
        if !self.why.is_empty() {
            line.push_str("; ");
            line.push_str(&self.why);
        }
        line
    }
}

/// One scheduling pass over a cluster: reads the catalog and the live state, and decides moves,
/// each updating the intent at once so that later rules in the pass see it.
pub struct Planner<'a> {
    /// What storage holds.
    pub cluster: &'a ClusterCatalog,
    /// The leader's live state, whose intent each decision updates.
    pub live: &'a mut LiveCluster,
    /// The time of the pass.
    pub now: Instant,
    /// The core's settings and limits.
    pub config: &'a CoreConfig,
    /// The moves decided so far, in order.
    pub moves: Vec<Move>,
    budget: usize,
    /// Each node's disk, when some node declares one.
    disk: Option<disk::DiskView>,
    /// Which nodes fit the placement rule, when the cluster has one.
    rules: Option<rules::RuleView>,
    /// The label replicas spread over (`zone` unless the rule says another).
    spread_key: &'a str,
    /// Each node's value of it as a number (see `Planner::zone_id`), once first needed.
    zone_ids: std::cell::OnceCell<Vec<u32>>,
}

impl<'a> Planner<'a> {
    /// A pass over `cluster`, with the move budget of one tick.
    pub fn new(
        cluster: &'a ClusterCatalog,
        live: &'a mut LiveCluster,
        now: Instant,
        config: &'a CoreConfig,
    ) -> Self {
        let disk = disk::DiskView::of(cluster, live);
        let bug = config.has_bug(PlantedBug::IgnorePlacementRules);
        let rules = rules::RuleView::of(cluster, live, bug);
        let spread_key = cluster.placement.as_ref().map_or(ZONE_LABEL, |r| r.spread_key());
        Planner {
            cluster,
            live,
            now,
            config,
            moves: Vec::new(),
            budget: config.shard_moves_per_tick_max,
            disk,
            rules,
            spread_key,
            zone_ids: std::cell::OnceCell::new(),
        }
    }

    /// Runs one planning pass and returns its decisions.
    pub fn plan(mut self) -> Vec<Move> {
        self.finish_transfers();
        self.fail_over();
        self.repair_followers();
        self.assign();
        self.drain();
        self.return_leaders();
        self.shed_disk();
        let balancing = self.dynamic()
            && !self.live.settings().paused
            && !self.config.has_bug(PlantedBug::SkipBalance);
        let mut judged = Judged::NotThisPass;
        if !balancing {
            self.live.unjudged();
        }
        if balancing && self.moves.is_empty() {
            judged = self.rebalance();
            if let Judged::ByCounts(view) = &mut judged {
                self.balance(view.as_mut());
            }
        }
        self.track_jobs(&judged);
        self.moves
    }

    fn dynamic(&self) -> bool {
        self.cluster.record.topology() == Topology::Dynamic
    }

    fn exhausted(&self) -> bool {
        self.moves.len() >= self.budget
    }

    /// Room for one more leader transfer (balancing and draining share the limit).
    fn may_start_transfer(&self) -> bool {
        self.live.intent().transfers_in_flight() < self.live.settings().moves_in_flight_max as usize
            && !self.exhausted()
    }

    /// Whether `node`'s inbound budget holds a move now.
    fn may_enter(&self, node: NodeId) -> bool {
        self.live.budgets().may_enter(node, self.now, self.live.settings())
    }

    /// Whether `node`'s outbound budget holds a move now.
    fn may_leave(&self, node: NodeId) -> bool {
        self.live.budgets().may_leave(node, self.now, self.live.settings())
    }

    /// Whether the planner may move the shard's leader off `from` (a transfer, for balance or a
    /// drain): `from` leads it, nothing about it is pending or in transfer, and no procedure
    /// (a split or merge) holds it or is starting to.
    fn movable(&self, shard: ShardId, from: u32) -> bool {
        let rec = self.intended(shard);
        self.live.intent().settled(shard)
            && rec.leader == Some(from)
            && rec.transfer.is_none()
            && !self.live.locked(self.cluster, shard)
    }

    fn intended(&self, shard: ShardId) -> &ShardRecord {
        self.live.intended(self.cluster, shard)
    }

    fn name(&self, node: u32) -> &str {
        &self.cluster.node(NodeId(node)).name
    }

    fn online(&self, node: u32) -> bool {
        self.live.node(NodeId(node)).online
    }

    fn staying(&self, node: u32) -> bool {
        self.live.node(NodeId(node)).staying()
    }

    fn keeps_followers(&self, node: u32) -> bool {
        self.live.node(NodeId(node)).keeps_followers()
    }

    fn load(&self) -> &LoadIndex {
        self.live.nodes().load()
    }

    /// Starts moving the shard's leader from `from` to `to`: a transfer procedure, whose record
    /// is stored with the shard's. `from` is asked to let the shard go.
    fn start_transfer(&mut self, shard: ShardId, from: u32, to: u32, cause: Cause, why: String) {
        let target = self.live.node(NodeId(to));
        debug_assert!(
            cause == Cause::Operator || target.placeable() || self.config.planted_bug.is_some(),
            "shard {shard}: a {} move onto node {to}, which takes nothing new (slow: {})",
            cause.name(),
            target.slowness.slow()
        );
        // An operator's move is an order; the scheduler's own wait for the nodes' budgets.
        if cause != Cause::Operator {
            self.live.spend_budget(NodeId(from), NodeId(to), self.now);
        }
        let cid = self.cluster.id();
        let mut writes = Vec::new();
        let procedure = self.live.alloc_id(cid, self.config.id_block, &mut writes);
        let step_why = format!("leader {} -> {}: {why}", self.name(from), self.name(to));
        writes.push(Mutation::PutProcedure(
            cid,
            ProcedureRecord::transfer(procedure, shard.0, cause, step_why),
        ));
        let record = ShardRecord {
            transfer: Some(TransferRecord { from, to, procedure }),
            ..self.intended(shard).clone()
        };
        self.stage_with(record, vec![NodeId(from)], MoveReason::StartTransfer, cause, why, writes);
    }

    /// Records a decision: a new version of the shard's record, in the intent at once.
    fn stage(
        &mut self,
        record: ShardRecord,
        closes: Vec<NodeId>,
        reason: MoveReason,
        cause: Cause,
        why: String,
    ) {
        self.stage_with(record, closes, reason, cause, why, Vec::new());
    }

    /// [`Self::stage`] with other writes for the same transaction. A record that ends the
    /// shard's transfer (finished, or overtaken by a failover) deletes its procedure.
    fn stage_with(
        &mut self,
        mut record: ShardRecord,
        closes: Vec<NodeId>,
        reason: MoveReason,
        cause: Cause,
        why: String,
        mut writes: Vec<Mutation>,
    ) {
        let old = self.intended(ShardId(record.id));
        record.version = old.version + 1;
        if let Some(t) =
            old.transfer.filter(|t| record.transfer.is_none_or(|n| n.procedure != t.procedure))
        {
            writes.push(Mutation::DeleteProcedure(self.cluster.id(), t.procedure));
        }
        let kept =
            record.replicas().filter(|r| old.replicas().any(|o| o == *r)).map(NodeId).collect();
        debug_assert!(
            distinct_replicas(&record) || self.config.planted_bug.is_some(),
            "S5: replicas on distinct nodes"
        );
        let before = self.disk.is_some().then(|| old.clone());
        if let (Some(d), Some(old)) = (&mut self.disk, before) {
            d.restage(&old, &record, disk::shard_bytes(self.live, ShardId(record.id)));
        }
        // A shard placed against the rule (a failover or repair with no node that fits, or a
        // step of the rule's own migration) is looked at again by the next scan.
        if !self.meets_rule(&record) {
            self.live.deficit_scan_again();
        }
        self.live.set_intended(self.cluster, record.clone(), self.now, self.config);
        self.moves.push(Move { record, closes, kept, reason, cause, why, writes });
    }
}

fn distinct_replicas(s: &ShardRecord) -> bool {
    let mut all: Vec<u32> = s.replicas().collect();
    all.sort_unstable();
    all.windows(2).all(|w| w[0] != w[1])
}

#[cfg(test)]
mod plan_tests;
