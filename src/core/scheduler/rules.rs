//! The cluster's placement rule (`model::rule`) as a pass judges it, and the scan that moves
//! shards where it says.
//!
//! Each choice of a node ranks the nodes that fit first: followers by [`Planner::pick_followers`]
//! (fit, then spread, then preference), leaders by [`Planner::pick_leader`] and promotions by
//! [`Planner::promotable_follower`]; and no move for balance, a drain or a full disk takes a
//! replica or a leader from a node that fits to one that does not ([`Planner::keeps_placement`]).
//! Durability comes first: a failover or a repair with no node that fits uses the best node
//! there is, and the shard is *unsatisfied* until one appears.
//!
//! [`Planner::meet_rule`] runs with the scan for follower deficits (when a node joins, returns
//! or changes its labels, the rule changes, or a shard was placed against it), and per shard:
//! 1. a leader that does not fit hands the shard to a follower that does, by transfer;
//! 2. else, with no replica that may lead, a follower makes room for a node that may;
//! 3. else a follower that does not fit gives its slot to a node that does.
//!
//! Each keeps the spread and spends the move budgets, so a rule change migrates the cluster at
//! the pace balance would. A shard with none of them possible is counted and reported (scheduler
//! status, placement, an event, a metric); nothing looks at it again until nodes or the rule
//! change, so an impossible rule costs one scan, not a loop.

use super::{MoveReason, Planner};
use crate::core::cause::Cause;
use crate::core::config::PlantedBug;
use crate::core::ids::*;
use crate::core::live::{LiveCluster, Unsatisfied};
use crate::core::model::{
    ClusterCatalog, ConstraintKind, NodeRecord, PlacementRecord, ShardRecord,
};

/// Which nodes fit the rule, judged once per pass (a node's labels only change in the catalog).
pub(super) struct RuleView {
    replica: Vec<bool>,
    leader: Vec<bool>,
    preferred: Vec<bool>,
    leader_preferred: Vec<bool>,
    /// Whether a replica constraint prefers: without, followers' preference tiers are skipped.
    prefers: bool,
    /// Whether some placeable node may lead: if none can, leader counts are evened over all.
    some_may_lead: bool,
}

impl RuleView {
    /// `None` when the cluster's rule constrains nothing (or a planted bug ignores it).
    pub(super) fn of(cluster: &ClusterCatalog, live: &LiveCluster, bug: bool) -> Option<RuleView> {
        let rule = cluster.placement.as_ref().filter(|r| r.constrains() && !bug)?;
        let judge = |f: &dyn Fn(&PlacementRecord, &NodeRecord) -> bool| {
            cluster.nodes.iter().map(|n| f(rule, n)).collect::<Vec<bool>>()
        };
        let leader = judge(&|r, n| r.fits_leader(n));
        let some_may_lead = live.nodes().iter().any(|(id, n)| n.placeable() && leader[id.index()]);
        Some(RuleView {
            replica: judge(&|r, n| r.fits_replica(n)),
            leader,
            some_may_lead,
            preferred: judge(&|r, n| r.preferred(n, false)),
            leader_preferred: judge(&|r, n| r.preferred(n, true)),
            prefers: rule.replicas.iter().any(|c| c.kind() == ConstraintKind::Prefer),
        })
    }
}

/// One tier of follower candidates: which of fit, spread and preference it insists on.
#[derive(Clone, Copy)]
pub(super) struct Tier {
    pub fit: bool,
    pub distinct: bool,
    pub preferred: bool,
}

impl Planner<'_> {
    /// The label replicas spread over, as `node` has it ("" for none).
    pub(super) fn zone(&self, node: u32) -> &str {
        self.cluster.node(NodeId(node)).label(self.spread_key)
    }

    /// The label replicas spread over, as `node` has it, as a number: 0 for none, and equal
    /// numbers for equal values. The placement paths compare these, not strings (judged per
    /// candidate, string lookups were a third of a rule's placement cost).
    pub(super) fn zone_id(&self, node: u32) -> u32 {
        let ids = self.zone_ids.get_or_init(|| {
            let mut seen: std::collections::BTreeMap<&str, u32> = Default::default();
            let mut ids = Vec::with_capacity(self.cluster.nodes.len());
            for n in &self.cluster.nodes {
                let value = n.label(self.spread_key);
                let next = seen.len() as u32 + 1;
                ids.push(if value.is_empty() { 0 } else { *seen.entry(value).or_insert(next) });
            }
            ids
        });
        ids[node as usize]
    }

    /// Whether `node` may hold a replica under the rule.
    pub(super) fn fits(&self, node: u32) -> bool {
        self.rules.as_ref().is_none_or(|r| r.replica[node as usize])
    }

    /// Whether `node` may lead under the rule.
    pub(super) fn fits_leader(&self, node: u32) -> bool {
        self.rules.as_ref().is_none_or(|r| r.leader[node as usize])
    }

    /// Whether `node` has what the rule prefers (for a leader, the leader's preferences too).
    pub(super) fn preferred(&self, node: u32, leader: bool) -> bool {
        self.rules.as_ref().is_none_or(|r| match leader {
            true => r.leader_preferred[node as usize],
            false => r.preferred[node as usize],
        })
    }

    /// Whether balance by leader counts takes `node` into account: counts are evened among the
    /// nodes the rule lets lead (the others lead nothing where the rule can be met), or among
    /// all when no placeable node may lead.
    pub(super) fn may_balance_to(&self, node: NodeId) -> bool {
        self.rules.as_ref().is_none_or(|r| !r.some_may_lead || r.leader[node.index()])
    }

    /// How well `node` would lead, best first: fits as leader, then preferred.
    pub(super) fn leader_rank(&self, node: u32) -> (bool, bool) {
        (!self.fits_leader(node), !self.preferred(node, true))
    }

    /// The tiers follower candidates are taken from, best first: nodes that fit before any
    /// that do not, then distinct spread, then preference.
    pub(super) fn follower_tiers(&self) -> Vec<Tier> {
        let ignore_zones = self.config.has_bug(PlantedBug::IgnoreZones);
        let (fits, prefers) = match &self.rules {
            Some(r) => (&[true, false][..], r.prefers),
            None => (&[false][..], false),
        };
        let mut tiers = Vec::new();
        for &fit in fits {
            for distinct in [true, false] {
                for preferred in [true, false] {
                    if (preferred && !prefers) || (distinct && ignore_zones) {
                        continue;
                    }
                    tiers.push(Tier { fit, distinct, preferred });
                }
            }
        }
        tiers
    }

    /// Whether handing `rec`'s replica on `out` to `into` keeps the rule: `into` fits where
    /// `out` did, and may lead where `out` led and could.
    pub(super) fn keeps_rule(&self, rec: &ShardRecord, out: u32, into: u32) -> bool {
        let replica = self.fits(into) || !self.fits(out);
        let leader = rec.leader != Some(out) || self.fits_leader(into) || !self.fits_leader(out);
        replica && leader
    }

    /// Whether a transfer of the lead from `from` to its follower `to` keeps the rule.
    pub(super) fn may_lead_instead(&self, from: u32, to: u32) -> bool {
        self.fits_leader(to) || !self.fits_leader(from)
    }

    /// Whether `rec`'s leader may lead and every follower may stay under the rule.
    pub(super) fn meets_rule(&self, rec: &ShardRecord) -> bool {
        self.rules.is_none()
            || rec.leader.is_none_or(|l| self.fits_leader(l))
                && rec.followers.iter().all(|&f| self.fits(f))
    }

    /// Moves shards where the rule says, within budgets, and counts those it cannot.
    pub(super) fn meet_rule(&mut self) {
        if self.rules.is_none() {
            self.live.set_unsatisfied(Unsatisfied::default(), self.now, self.config);
            return;
        }
        let mut unsatisfied = Unsatisfied::default();
        for shard in (0..self.cluster.record.shard_count).map(ShardId) {
            if self.exhausted() {
                self.live.deficit_scan_again();
                return; // the count stands until a scan gets through
            }
            if self.cluster.shard(shard).retired {
                continue;
            }
            let rec = self.intended(shard);
            let Some(leader) = rec.leader else { continue };
            let leader_ok = self.fits_leader(leader);
            let strays: Vec<u32> =
                rec.followers.iter().copied().filter(|&f| !self.fits(f)).collect();
            if leader_ok && strays.is_empty() {
                continue;
            }
            if !self.live.intent().settled(shard) || rec.transfer.is_some() {
                self.live.deficit_scan_again(); // look again once its change has landed
                continue;
            }
            match self.rule_move(shard, leader_ok, &strays) {
                Step::Staged | Step::Waits => self.live.deficit_scan_again(),
                Step::Impossible(why) => unsatisfied.add(shard, why),
            }
        }
        self.live.set_unsatisfied(unsatisfied, self.now, self.config);
    }

    /// One step towards the rule for a shard against it (see the module's list).
    fn rule_move(&mut self, shard: ShardId, leader_ok: bool, strays: &[u32]) -> Step {
        let rec = self.intended(shard).clone();
        let leader = rec.leader.expect("checked by the caller");
        let heirs = |p: &Self| {
            rec.followers
                .iter()
                .copied()
                .filter(|&f| p.fits_leader(f) && p.live.node(NodeId(f)).placeable())
                .collect::<Vec<u32>>()
        };
        let heirs = if leader_ok { Vec::new() } else { heirs(self) };
        let in_sync = |f: &&u32| self.live.laggards().lag(shard, NodeId(**f)).is_none();
        if let Some(&to) = heirs.iter().find(in_sync) {
            return self.hand_over(shard, leader, to);
        }
        if !heirs.is_empty() {
            return Step::Waits; // one that may lead lags: it leads once it catches up
        }
        // A follower makes room: for a node that may lead (any follower, strays first), else
        // for one that fits (a stray).
        let mut tries: Vec<(u32, bool)> = Vec::new();
        if !leader_ok {
            let others = rec.followers.iter().filter(|f| !strays.contains(f));
            tries.extend(strays.iter().chain(others).map(|&f| (f, true)));
        }
        tries.extend(strays.iter().map(|&f| (f, false)));
        let replicas: Vec<u32> = rec.replicas().collect();
        for (out, to_lead) in tries {
            let staying: Vec<u32> = replicas.iter().copied().filter(|&r| r != out).collect();
            let allowed = |n: u32| {
                self.fits(n)
                    && (!to_lead || self.fits_leader(n))
                    && self.spread_kept_for_rule(&rec, out, n)
            };
            let fresh = self.pick_followers_where(shard, &replicas, &staying, 1, allowed);
            let Some(&into) = fresh.first() else { continue };
            if !self.may_enter(NodeId(into)) || !self.may_leave(NodeId(out)) {
                return Step::Waits;
            }
            let why = match to_lead && !strays.contains(&out) {
                true => format!("{}; {} may lead it", self.misfit(leader, true), self.name(into)),
                false => format!("{}; {} may", self.misfit(out, false), self.name(into)),
            };
            self.live.spend_budget(NodeId(out), NodeId(into), self.now);
            let mut record = rec.clone();
            let slot = record.followers.iter().position(|&f| f == out).expect("a follower");
            record.followers[slot] = into;
            self.stage(record, vec![NodeId(out)], MoveReason::RepairFollowers, Cause::Rule, why);
            return Step::Staged;
        }
        // No follower to hand over to or make room with (a shard without followers): the
        // shard reopens on a node that may lead it, by transfer.
        if !leader_ok {
            let staying: Vec<u32> = rec.followers.clone();
            let allowed =
                |n: u32| self.fits_leader(n) && self.spread_kept_for_rule(&rec, leader, n);
            let fresh = self.pick_followers_where(shard, &replicas, &staying, 1, allowed);
            if let Some(&to) = fresh.first() {
                return self.hand_over(shard, leader, to);
            }
        }
        let (who, as_leader) = match strays.first() {
            Some(&f) if leader_ok => (f, false),
            _ => (leader, true),
        };
        Step::Impossible(format!(
            "{}, and no placeable node that may holds no replica of it",
            self.misfit(who, as_leader)
        ))
    }

    /// Whether `into` in place of `out` keeps the spread, as far as the rule asks it to: a
    /// replica on a node the rule forbids leaves whatever the spread (the rule is hard, the
    /// spread a preference: a rule that requires one zone must narrow it), the others only
    /// where the spread holds.
    fn spread_kept_for_rule(&self, rec: &ShardRecord, out: u32, into: u32) -> bool {
        !self.fits(out) || self.keeps_zone_spread(rec, out, into)
    }

    /// Moves the lead of `shard` from `leader`, which may not lead it, to `to`, which may, by
    /// transfer, once the shard, a transfer slot and both nodes' budgets allow.
    fn hand_over(&mut self, shard: ShardId, leader: u32, to: u32) -> Step {
        if !self.movable(shard, leader)
            || !self.may_start_transfer()
            || !self.may_leave(NodeId(leader))
            || !self.may_enter(NodeId(to))
        {
            return Step::Waits;
        }
        let why = format!("{}; {} may", self.misfit(leader, true), self.name(to));
        self.start_transfer(shard, leader, to, Cause::Rule, why);
        Step::Staged
    }

    /// "n3 may not hold a replica under the rule (replicas require disk=ssd; spread over zone)".
    fn misfit(&self, node: u32, as_leader: bool) -> String {
        let rule = self.cluster.placement.as_ref().map(|r| r.describe()).unwrap_or_default();
        let role = if as_leader { "lead" } else { "hold a replica" };
        format!("{} may not {role} under the rule ({rule})", self.name(node))
    }
}

/// What the scan could do for a shard against the rule.
enum Step {
    /// A move was decided.
    Staged,
    /// A move is possible but waits: for budgets, a transfer slot, or a follower to catch up.
    Waits,
    /// No node that fits could take it: why.
    Impossible(String),
}
