//! Liveness, sessions and stats of a cluster's nodes, the intended leader and replica counts on
//! each, and the load index that orders the placeable ones. Only [`Nodes`] changes a node, so
//! the index can never miss a change to what it orders by.

use std::collections::BTreeSet;

use super::slow::{median, SlowChange, Slowness};
use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::error::quoted;
use crate::core::ids::*;
use crate::core::input::{Heartbeat, NodeStats};
use crate::core::settings::SchedulerSettings;
use crate::core::time::{Duration, Instant};

/// One node as this leader knows it: liveness, identity, admission, stats and the shards it is
/// meant to carry.
#[derive(Clone, Debug)]
pub struct LiveNode {
    /// The heartbeat stream it speaks over now, if one is open.
    pub session: Option<SessionId>,
    /// Chosen afresh at each start of the node: a new one is a restart.
    pub incarnation: u64,
    /// The sequence number of the last heartbeat taken; older ones are duplicates.
    pub last_seq: u64,
    /// When its last heartbeat arrived.
    pub last_heartbeat: Instant,
    /// Heard within its lease (and, after a restart, admitted again).
    pub online: bool,
    /// This leader has heard from the node. A node inherited by a new leader counts as online
    /// for a lease of grace (so that a meta failover moves no shard by itself), but it is no
    /// target for new replicas or leaders until it speaks: it may have been down all along.
    pub heard: bool,
    /// Where the current incarnation said it serves. With the incarnation, this is the identity
    /// a live node owns: see [`LiveNode::conflict`].
    pub endpoint: String,
    /// Heartbeats of the current incarnation this leader has heard, counted up to the settle
    /// count.
    pub beats: u32,
    /// The current incarnation has sent the settle count of heartbeats to this leader, so it
    /// may take new replicas and leaders: a one-shot sender, or a node that keeps restarting,
    /// gets none.
    pub admitted: bool,
    /// Mirrors the node record: the node takes no new replicas.
    pub draining: bool,
    /// What it reported about itself: capacity, CPU, disk.
    pub stats: NodeStats,
    /// Intended leader shards on the node.
    pub leaders: u32,
    /// Intended replicas (leader or follower) on the node.
    pub replicas: u32,
    /// Load values in this node's heartbeats that had to be clamped (NaN, negative, too large).
    pub load_rejections: u64,
    /// The current incarnation said it was leaving: it is heard no more (a restart is).
    pub left: bool,
    /// The current incarnation replaced one this leader had heard (a restart, which only comes
    /// once the old one's lease has run out): the node stays offline until the new one is
    /// admitted. A process that restarts, claims its old shards and dies again (a crash loop, or
    /// a stray process under its name) then neither renews their leases nor holds back their
    /// failover for another lease.
    pub returning: bool,
    /// The stats sample counter of its last heartbeat (`NodeStats::stats_sample`; 0: it does
    /// not count), and since when its heartbeats have carried that same counter.
    stats_sample: u64,
    stats_unchanged_since: Option<Instant>,
    /// Whether it answers slowly, by its figures or an operator's mark (see `live::slow`).
    pub slowness: Slowness,
    /// Mirrors the node record's planned restart (see `model::RestartRecord`).
    pub restart: Option<PlannedRestart>,
    /// The cluster's placement rule keeps replicas off it: the load index orders it after
    /// every node the rule lets hold one, so that placement finds those without passing the
    /// nodes it never picks (which, holding nothing, would otherwise come first).
    pub misfit: bool,
}

/// A planned restart, as the live state keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedRestart {
    /// The incarnation that is to restart.
    pub incarnation: u64,
    /// How long the node may stay down with its followers kept.
    pub window: Duration,
    /// The node is down and within its window (refreshed each tick): its followers stay.
    pub held: bool,
    /// When this leader first saw a new incarnation of the node online.
    pub back_since: Option<Instant>,
    /// Since when this leader has seen the process that is to restart still running: a restart
    /// begun but not carried out within its window ends (an operator who forgot it, or a begin
    /// that landed after the process had already restarted).
    pub running_since: Option<Instant>,
}

/// How long a node's load reports may repeat the same numbers, bit for bit, before its stats
/// count as frozen, in load windows. Real rates wobble from one report to the next; a node
/// that samples its rates once a window repeats them within a window, never for six.
pub const STATS_FROZEN_WINDOWS: u64 = 6;

impl LiveNode {
    /// A node seen alive at `now`: registered, or (not `heard`) inherited by a new leader as a
    /// grace period.
    fn fresh(now: Instant, heard: bool) -> LiveNode {
        LiveNode {
            session: None,
            incarnation: 0,
            last_seq: 0,
            last_heartbeat: now,
            online: true,
            heard,
            endpoint: String::new(),
            beats: 0,
            admitted: false,
            draining: false,
            stats: NodeStats::default(),
            leaders: 0,
            replicas: 0,
            load_rejections: 0,
            left: false,
            returning: false,
            stats_sample: 0,
            stats_unchanged_since: None,
            slowness: Slowness::default(),
            restart: None,
            misfit: false,
        }
    }

    /// The process that is to restart still runs: its leaders leave it.
    pub fn leaving_for_restart(&self) -> bool {
        self.online && self.restart.is_some_and(|r| r.incarnation == self.incarnation)
    }

    /// A new process of a node in a planned restart is online, heard and admitted: its leaders
    /// come back.
    pub fn back_from_restart(&self) -> bool {
        self.online
            && self.heard
            && self.admitted
            && self.restart.is_some_and(|r| r.incarnation != self.incarnation)
    }

    /// A heartbeat at `now` carried this stats sample counter.
    pub(super) fn stats_sampled(&mut self, sample: u64, now: Instant) {
        let same = sample != 0 && sample == self.stats_sample;
        self.stats_unchanged_since =
            if same { self.stats_unchanged_since.or(Some(now)) } else { None };
        self.stats_sample = sample;
        assert!(same || self.stats_unchanged_since.is_none());
    }

    /// Whether its stats froze: the sample counter it reports has not moved for
    /// [`STATS_FROZEN_WINDOWS`] windows. Nothing it says about load is then believed (the
    /// balancer neither moves load to it nor judges it as a source) until it moves again. A
    /// node that does not count (0) cannot be judged so: the same figures, even bit for bit,
    /// may be a steady load that a node reports in whole units.
    pub fn stats_frozen(&self, now: Instant, config: &CoreConfig) -> bool {
        let after = Duration(config.load_window_ms * STATS_FROZEN_WINDOWS);
        self.stats_unchanged_since.is_some_and(|since| now >= since + after)
            && !config.has_bug(PlantedBug::TrustFrozenStats)
    }

    /// Whether new replicas and leaders may go to the node: it is staying, speaks to this
    /// leader, has settled, and is not slow.
    pub fn placeable(&self) -> bool {
        self.staying()
            && self.heard
            && self.admitted
            && !self.slowness.slow()
            && !self.leaving_for_restart()
    }

    /// Whether the replicas the node holds stay there: it is online and not draining. (A node
    /// that is staying but not yet heard keeps its replicas and takes no new ones.)
    pub fn staying(&self) -> bool {
        self.online && !self.draining
    }

    /// Whether its followers stay in place: it is staying, or down within a planned restart's
    /// window.
    pub fn keeps_followers(&self) -> bool {
        self.staying() || (self.restart.is_some_and(|r| r.held) && !self.draining)
    }

    /// Why `hb`, which names this node, must be refused: it comes from another incarnation, or
    /// from another endpoint, while this leader has heard the node's current incarnation within
    /// a lease. A live incarnation owns its name; once its lease has run out, a new one takes
    /// over (a restart). A node inherited from an earlier meta leader and not yet heard has no
    /// owner yet: the first incarnation to speak takes it.
    pub fn conflict(&self, hb: &Heartbeat, now: Instant, lease: Duration) -> Option<String> {
        let live = self.beats > 0 && self.online && now <= self.last_heartbeat + lease;
        if !live || (hb.incarnation == self.incarnation && hb.endpoint == self.endpoint) {
            return None;
        }
        let ends_in = (self.last_heartbeat + lease).0.saturating_sub(now.0);
        let claim = if hb.incarnation != self.incarnation {
            format!("incarnation {} at {}", hb.incarnation, quoted(&hb.endpoint))
        } else {
            format!("endpoint {}", quoted(&hb.endpoint))
        };
        Some(format!(
            "node {:?} is live as incarnation {} at {:?}, whose lease ends in {ends_in} ms unless it heartbeats; refusing {claim}",
            hb.node, self.incarnation, self.endpoint
        ))
    }
}

/// What one fresh heartbeat changed about its node.
pub struct Heard {
    /// Whether the node is online and heard changed (it came online, or a restart took it
    /// offline): the shards it leads change class.
    pub reclassed: bool,
    /// The node became placeable.
    pub placeable: bool,
}

/// Placeable nodes (online, not draining) ordered by how loaded they are.
#[derive(Clone, Debug, Default)]
pub struct LoadIndex {
    by_leaders: BTreeSet<(u32, u32, NodeId)>,
    by_replicas: BTreeSet<(bool, u32, NodeId)>,
}

impl LoadIndex {
    fn insert(&mut self, id: NodeId, n: &LiveNode) {
        let fresh = self.by_leaders.insert((n.leaders, n.replicas, id))
            & self.by_replicas.insert((n.misfit, n.replicas, id));
        assert!(fresh, "load index: node {id} indexed twice");
    }

    fn remove(&mut self, id: NodeId, n: &LiveNode) {
        let held = self.by_leaders.remove(&(n.leaders, n.replicas, id))
            & self.by_replicas.remove(&(n.misfit, n.replicas, id));
        assert!(held, "load index: node {id} not indexed at its counts");
    }

    /// Placeable nodes, fewest leader shards first.
    pub fn by_leaders(&self) -> impl DoubleEndedIterator<Item = NodeId> + '_ {
        self.by_leaders.iter().map(|&(_, _, id)| id)
    }

    /// Placeable nodes, those the placement rule lets hold a replica first, then fewest
    /// replicas first.
    pub fn by_replicas(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.by_replicas.iter().map(|&(_, _, id)| id)
    }

    /// The same, only nodes the placement rule lets hold a replica.
    pub fn fitting_by_replicas(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.by_replicas.iter().take_while(|&&(misfit, _, _)| !misfit).map(|&(_, _, id)| id)
    }

    /// How many nodes it holds: the placeable ones.
    pub fn len(&self) -> usize {
        self.by_replicas.len()
    }

    /// Whether no node is placeable.
    pub fn is_empty(&self) -> bool {
        self.by_replicas.is_empty()
    }

    /// Whether every entry carries its node's current counts.
    fn matches(&self, nodes: &[LiveNode]) -> bool {
        let fresh = |id: NodeId| &nodes[id.index()];
        self.by_leaders.len() == self.by_replicas.len()
            && self
                .by_leaders
                .iter()
                .all(|&(l, r, id)| (fresh(id).leaders, fresh(id).replicas) == (l, r))
            && self
                .by_replicas
                .iter()
                .all(|&(m, r, id)| (fresh(id).misfit, fresh(id).replicas) == (m, r))
    }
}

/// Every node of the cluster, by id, with the load index over them.
#[derive(Clone, Debug)]
pub struct Nodes {
    list: Vec<LiveNode>,
    load: LoadIndex,
    /// Heartbeats an incarnation sends before it is admitted (at least 1).
    settle: u32,
}

impl Nodes {
    /// No nodes yet; a node is admitted after `settle_heartbeats` heartbeats.
    pub fn new(settle_heartbeats: u32) -> Nodes {
        Nodes { list: Vec::new(), load: LoadIndex::default(), settle: settle_heartbeats.max(1) }
    }

    /// A node known to exist.
    pub fn get(&self, id: NodeId) -> &LiveNode {
        &self.list[id.index()]
    }

    /// A heartbeat of `id` carried this stats sample counter (see `LiveNode::stats_frozen`).
    pub(super) fn stats_sampled(&mut self, id: NodeId, sample: u64, now: Instant) {
        self.list[id.index()].stats_sampled(sample, now);
    }

    /// How many nodes, removed ones included (ids are dense).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the cluster has no node.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every node with its id.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &LiveNode)> {
        self.list.iter().enumerate().map(|(i, n)| (NodeId(i as u32), n))
    }

    /// The placeable nodes, ordered by what they carry.
    pub fn load(&self) -> &LoadIndex {
        &self.load
    }

    /// A node registration landed (`heard`: the node is heartbeating to this leader), or a
    /// node was found in the catalog a new leader loaded: it takes the next id.
    pub(super) fn add(&mut self, id: NodeId, now: Instant, heard: bool) {
        assert_eq!(id.index(), self.list.len(), "nodes register densely");
        let node = LiveNode::fresh(now, heard);
        if node.placeable() {
            self.load.insert(id, &node);
        }
        self.list.push(node);
    }

    /// Sets the node's online or draining flag; `true` when the node became placeable.
    pub(super) fn set_flags(&mut self, id: NodeId, online: bool, draining: bool) -> bool {
        self.update(id, |n| (n.online, n.draining) = (online, draining))
    }

    /// Changes what decides whether a node is placeable, keeping the load index in step; `true`
    /// when the node became placeable.
    pub(super) fn update(&mut self, id: NodeId, change: impl FnOnce(&mut LiveNode)) -> bool {
        let node = &mut self.list[id.index()];
        let before = node.placeable();
        change(node);
        match (before, node.placeable()) {
            (false, true) => {
                self.load.insert(id, &self.list[id.index()]);
                true
            }
            (true, false) => {
                self.load.remove(id, &self.list[id.index()]);
                false
            }
            _ => false,
        }
    }

    /// A heartbeat from the node arrived over `session`: the node is online and heard, and
    /// admitted once its incarnation has sent the settle count. `None` for a duplicate or
    /// reordered heartbeat, which must not extend any lease.
    pub(super) fn heard(
        &mut self,
        id: NodeId,
        session: SessionId,
        hb: &Heartbeat,
        now: Instant,
    ) -> Option<Heard> {
        let n = &self.list[id.index()];
        if n.incarnation == hb.incarnation && (hb.seq <= n.last_seq || n.left) {
            return None;
        }
        assert!(now >= n.last_heartbeat, "meta's clock runs forward");
        let was_ready = n.online && n.heard;
        let settle = self.settle;
        let placeable = self.update(id, |n| {
            if n.incarnation != hb.incarnation || n.beats == 0 {
                // A new incarnation (a restart, or the first this leader hears) settles anew.
                // Heard before (beats counted), the node is restarting.
                n.returning = n.beats > 0;
                n.incarnation = hb.incarnation;
                n.endpoint.clone_from(&hb.endpoint);
                n.beats = 0;
                n.left = false;
            }
            n.beats = (n.beats + 1).min(settle);
            n.admitted = n.beats >= settle;
            n.returning &= !n.admitted;
            (n.online, n.heard) = (!n.returning, true);
            n.last_seq = hb.seq;
            n.session = Some(session);
            n.last_heartbeat = now;
            n.stats = hb.stats;
            n.slowness.observe(&hb.stats);
            n.load_rejections = n.load_rejections.saturating_add(hb.load_rejections as u64);
        });
        let n = &self.list[id.index()];
        assert!(
            n.admitted == (n.beats >= settle) && !(n.admitted && n.returning),
            "node {id}: admitted exactly at the settle count, and then not returning"
        );
        debug_assert!(n.online != n.returning && n.heard && n.last_heartbeat == now);
        let reclassed = was_ready != n.online;
        Some(Heard { reclassed, placeable })
    }

    /// The node's current incarnation is leaving: offline now, and not heard again.
    pub(super) fn left(&mut self, id: NodeId) {
        let became_placeable = self.update(id, |n| (n.online, n.left) = (false, true));
        assert!(
            !became_placeable && !self.list[id.index()].placeable(),
            "a leaving node takes nothing new"
        );
    }

    /// Checks every online node's figures against the cluster's medians (see `live::slow`):
    /// the nodes that became slow or well again.
    pub(super) fn check_slow(
        &mut self,
        now: Instant,
        settings: &SchedulerSettings,
        window_ms: u64,
    ) -> Vec<(NodeId, SlowChange)> {
        let judged = |n: &LiveNode| n.online && n.heard;
        let medians = [0, 1].map(|i| {
            median(
                self.list.iter().filter(|n| judged(n)).map(|n| n.slowness.figures()[i]).collect(),
            )
        });
        let mut changes = Vec::new();
        for i in 0..self.list.len() {
            if !judged(&self.list[i]) {
                continue;
            }
            let id = NodeId(i as u32);
            let mut change = None;
            self.update(id, |n| change = n.slowness.check(medians, now, settings, window_ms));
            changes.extend(change.map(|c| (id, c)));
        }
        changes
    }

    /// An operator marked the node slow, or unmarked it (which forgives what was detected);
    /// `true` when the node became placeable.
    pub(super) fn set_slow_mark(&mut self, id: NodeId, marked: bool) -> bool {
        self.update(id, |n| {
            if n.slowness.marked && !marked {
                n.slowness.forgive();
            }
            n.slowness.marked = marked;
        })
    }

    /// The node record's planned restart landed or joined the intent (`None`: none, or over);
    /// `true` when the node became placeable.
    pub(super) fn set_restart(&mut self, id: NodeId, restart: Option<(u64, Duration)>) -> bool {
        self.update(id, |n| {
            n.restart = restart.map(|(incarnation, window)| match n.restart {
                Some(r) if r.incarnation == incarnation => PlannedRestart { window, ..r },
                _ => PlannedRestart {
                    incarnation,
                    window,
                    held: false,
                    back_since: None,
                    running_since: None,
                },
            })
        })
    }

    /// Refreshes each planned restart at `now`: whether a node that is down is still within its
    /// window, counted from its last heartbeat, since when a new process is back, and since
    /// when the process that is to restart has been seen running.
    pub(super) fn refresh_restarts(&mut self, now: Instant) {
        for n in self.list.iter_mut() {
            let (online, back, last) = (n.online, n.back_from_restart(), n.last_heartbeat);
            let incarnation = n.incarnation;
            if let Some(r) = n.restart.as_mut() {
                r.held = !online && now <= last + r.window;
                r.back_since = if back { r.back_since.or(Some(now)) } else { None };
                let running = online && incarnation == r.incarnation;
                r.running_since = if running { r.running_since.or(Some(now)) } else { None };
            }
        }
    }

    /// Online nodes not heard from for longer than `silence`.
    pub(super) fn silent(&self, now: Instant, silence: Duration) -> Vec<NodeId> {
        self.iter()
            .filter(|(_, n)| n.online && now > n.last_heartbeat + silence)
            .map(|(id, _)| id)
            .collect()
    }

    /// Marks whether the placement rule keeps replicas off the node, keeping the index in step.
    pub(super) fn set_misfit(&mut self, id: NodeId, misfit: bool) {
        let node = &self.list[id.index()];
        if node.misfit == misfit {
            return;
        }
        let indexed = node.placeable();
        if indexed {
            self.load.remove(id, node);
        }
        self.list[id.index()].misfit = misfit;
        if indexed {
            self.load.insert(id, &self.list[id.index()]);
        }
    }

    /// Moves the node's intended counts by the given deltas, keeping the load index in step.
    pub(super) fn adjust(&mut self, id: NodeId, leaders: i32, replicas: i32, config: &CoreConfig) {
        let node = &self.list[id.index()];
        let indexed = node.placeable() && !config.has_bug(PlantedBug::StaleLoadIndex);
        if indexed {
            self.load.remove(id, node);
        }
        let node = &mut self.list[id.index()];
        node.replicas =
            node.replicas.checked_add_signed(replicas).expect("replica count stays in range");
        node.leaders =
            node.leaders.checked_add_signed(leaders).expect("leader count stays in range");
        assert!(node.leaders <= node.replicas, "node {id} leads more shards than it holds");
        if indexed {
            self.load.insert(id, &self.list[id.index()]);
        }
    }

    /// Sets every node's intended counts at once (a new intent), rebuilding the index.
    pub(super) fn recount(&mut self, counts: &[(u32, u32)]) {
        assert!(
            counts.len() >= self.list.len(),
            "a count for every node ({} for {})",
            counts.len(),
            self.list.len()
        );
        self.load = LoadIndex::default();
        for (i, (n, &(leaders, replicas))) in self.list.iter_mut().zip(counts).enumerate() {
            (n.leaders, n.replicas) = (leaders, replicas);
            if n.placeable() {
                self.load.insert(NodeId(i as u32), n);
            }
        }
        debug_assert_eq!(self.load.len(), self.list.iter().filter(|n| n.placeable()).count());
    }

    /// `Err` unless each node carries `counts` and the load index holds exactly the placeable
    /// nodes at those counts.
    pub(super) fn check_counts(&self, counts: &[(u32, u32)]) -> Result<(), String> {
        for (i, (n, want)) in self.list.iter().zip(counts).enumerate() {
            if (n.leaders, n.replicas) != *want {
                return Err(format!(
                    "node {i} counts {} leaders and {} replicas, the intent {} and {}",
                    n.leaders, n.replicas, want.0, want.1
                ));
            }
        }
        let placeable: Vec<NodeId> =
            self.iter().filter(|(_, n)| n.placeable()).map(|(id, _)| id).collect();
        let mut indexed: Vec<NodeId> = self.load.by_replicas().collect();
        indexed.sort_unstable();
        if indexed != placeable || !self.load.matches(&self.list) {
            return Err(format!("load index holds {indexed:?} with stale counts or misses placeable nodes {placeable:?}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(incarnation: u64, seq: u64) -> Heartbeat {
        Heartbeat {
            node: "n1".into(),
            endpoint: "n1:1".into(),
            incarnation,
            seq,
            ..Default::default()
        }
    }

    /// A restart is offline until admitted, also when it comes before the tick that would have
    /// marked the old incarnation silent; either change of state reclasses the node's shards.
    #[test]
    fn a_restart_is_offline_until_admitted_and_says_so() {
        let mut nodes = Nodes::new(3);
        let id = NodeId(0);
        nodes.add(id, Instant(0), true);
        for seq in 1..=3 {
            nodes.heard(id, SessionId(1), &beat(1, seq), Instant(seq * 1_000)).unwrap();
        }
        assert!(nodes.get(id).placeable());

        let heard = nodes.heard(id, SessionId(2), &beat(2, 1), Instant(14_000)).unwrap();
        assert!(heard.reclassed && !nodes.get(id).online && nodes.get(id).returning);
        assert!(nodes.load().is_empty(), "a restart takes nothing new");
        let heard = nodes.heard(id, SessionId(2), &beat(2, 2), Instant(15_000)).unwrap();
        assert!(!heard.reclassed && !nodes.get(id).online);
        let heard = nodes.heard(id, SessionId(2), &beat(2, 3), Instant(16_000)).unwrap();
        assert!(
            heard.reclassed && heard.placeable && nodes.get(id).online && !nodes.get(id).returning
        );

        // A node this leader never heard (inherited from the last one) is online at once.
        nodes.add(NodeId(1), Instant(16_000), false);
        let heard = nodes
            .heard(
                NodeId(1),
                SessionId(3),
                &Heartbeat { node: "n2".into(), ..beat(7, 1) },
                Instant(16_500),
            )
            .unwrap();
        assert!(heard.reclassed && nodes.get(NodeId(1)).online && !nodes.get(NodeId(1)).returning);
    }
}
