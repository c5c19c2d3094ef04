//! Rebalancing by load: moving leader shards off overfull nodes, the way CockroachDB's store
//! rebalancer sheds QPS, with GreptimeDB's habit of preferring the cheap move.
//!
//! **Load and utilization.** A node's load is the sum of the smoothed load units (read + write
//! units per second) of the shards it is meant to lead, moves in flight counted as done; its
//! utilization is that load over its reported capacity. The mean is over placeable nodes.
//!
//! **Two views, lines as ratios.** Every line below is a ratio to the mean utilization, judged
//! in two views of load, now and over the long run (see [`super::load_view`]): a node is as full
//! as the lower of its two ratios when it gives load and as the higher when it takes load.
//!
//! **Overfull, and how far to shed.** A node is overfull when its utilization is above
//! mean × (1 + `overfull_pct`) in both views, its load above `load_floor_units`, and it has stood
//! over that line in the long run for `overfull_windows` windows (at once while some node
//! carries next to nothing, back from a failure or new: no cycle explains an empty node). The
//! standing is the long run's alone: a cycle of a few windows takes the current view under the
//! line at each trough, and a node over it on average would wait for a run of peaks long
//! enough, which comes by chance; the current view need only agree at the pass. It then sheds
//! until it is within mean × (1 + `overfull_pct`/2). The gap between the two lines is the
//! hysteresis: a node just relieved is not overfull again at the next wobble. A target must be
//! underfull before the move, below mean × (1 − `overfull_pct`/2), or still under the mean
//! after it (a shard small to a big node), and end it within the shedding line, or where whole
//! shards are too coarse for that, within the overfull line: load goes to nodes that have room
//! for it, never from one busy node to another (after a scale-out the old nodes feed the new
//! ones, not each other), and no target is made the next source.
//!
//! **Which move.** Among the shards the source leads, each carrying at least
//! `shard_share_min_permille` of the source's load, the one whose load is closest to the excess.
//! The target must end below where the source was (the pair's peak falls); once the source is
//! under the overfull line, the move must also bring it nearer the shedding line. A move that
//! takes it below that line (an *overshoot*) must bring it nearer by more than twice its
//! *wobble*: how far apart its two views have lately stood (`Recent::wobble`), which is the
//! noise and the cycles in its load (twice: the gap is about one reading's noise, and a gain
//! is the difference of two readings). An overshoot that gains less is the noise deciding: on
//! capacities 8/8/16 a small node half a shard over the shedding line gave a shard or kept it
//! as the noise fell (16 to 18 moves for a bound of 14); with the margin, 16 on every seed of
//! 1,000. Except where the wobble could take the source back over the overfull line: there the
//! overshoot buys the room a node whose load swings needs (without this exception, a node
//! under the madsim swarm's periodic load stayed near the overfull line, crossed it again and
//! shed into the quiet window: seeds 384 and 565). A move while the source is still overfull
//! needs no margin: its standing over the line in the long run, for several windows, has
//! already told load from noise. Nor does a pull (below): it is for the node far below the
//! mean, and where the source ends near the mean is no matter of precision (with the margin, a
//! node that lied about its load was pulled to more slowly, and found out later). The most
//! utilized source moves first, one shard at a time. A transfer to a follower comes first (the
//! follower has the data: only a role changes); a reopen on a node without a replica only when
//! no transfer fits. A reopen must not narrow the shard's spread over zones.
//!
//! **Pair memory.** After load moved from A to B, none moves from B to A for
//! `pair_cooldown_ms`, whichever shard (see `live::recent`): load that rises and falls must not
//! carry shards to and fro, a different one each time, which no shard's cooldown would stop.
//! B1 (`check::Steady`) holds the balancer to it. And a node that took load for balance within
//! the cooldown (a *taker*) is overfull only past twice the band (mean × (1 + 2 ×
//! `overfull_pct`)) and gives nothing to a pull, until more nodes are placeable than when it
//! took (the mean it was judged by fell) or some node carries nothing: the move was judged to
//! leave it room, and where whole shards left it near a line, the long run's ripple under a
//! cycle took it across and it passed a shard on, from node to node (a different pair each
//! time, which the pair memory does not stop).
//!
//! **Patience.** Only nodes whose every led shard has a trusted load are judged, as source or
//! target, and not for `load_windows_trusted` windows after a leader moved onto or off them, so
//! that the balancer never acts on stats from before its own last move. A shard whose leader
//! moved for any reason is left alone for `shard_cooldown_ms`. Moves are bounded per pass, per
//! node per pass, and in flight.
//!
//! **Pulls.** A node below mean × (1 − `overfull_pct`) in both views, and in the long run for
//! `overfull_windows` windows (or carrying next to nothing), pulls: when no node is overfull but
//! one is that far below the mean, nodes above the mean shed to the mean, only to nodes that
//! far below it, so that a new node fills even when no old node is over the line.
//!
//! While some led shard's load is not known at all (a new meta leader has seen no window of
//! it yet), nothing is balanced: uneven leader counts left by load balancing would look like
//! work. Once every load is known and no node carries more than the floor, load is too low to
//! act on and the pass evens leader counts instead ([`super::balance`]). In a lull (load was
//! above the floor earlier under this meta leader) the counts stay as the last pass by load
//! left them, so that a quiet night does not undo the day's balance: leaders only go back to
//! a node that leads fewer than it did then (back from a failure in the night) from nodes
//! that lead more, or fill a node that carries nothing, by moves that do not put the target
//! above the source in load ([`LoadView::keeps_order`]). A new meta leader has no such memory.

use super::load_view::{Judged, LoadView, Room};
use super::Planner;
use crate::core::cause::Cause;
use crate::core::config::PlantedBug;
use crate::core::ids::*;
use crate::core::settings::SchedulerSettings;
use crate::core::time::Duration;

/// A node that sheds in a pass: to the ratio `line`, onto nodes with `room`; `pull` when it
/// sheds to the mean for a node far below it (see the module notes).
#[derive(Clone, Copy)]
struct Source {
    node: u32,
    line: f64,
    room: Room,
    pull: bool,
}

/// One candidate move of a pass.
struct Candidate {
    shard: ShardId,
    to: u32,
    /// The shard's load now and over the long run.
    load: [f64; 2],
    reopen: bool,
}

impl Candidate {
    /// What the move surely takes off its source: the lower of its two loads.
    fn relief(&self) -> f64 {
        self.load[0].min(self.load[1])
    }
}

impl Planner<'_> {
    /// Balances by load, returning the view as the pass left it, or with
    /// [`Judged::ByCounts`] when no node carries enough load to act on, and leader counts
    /// should be balanced instead.
    pub(super) fn rebalance(&mut self) -> Judged {
        let settings = *self.live.settings();
        let mut view = LoadView::of(self.cluster, self.live, self.now, self.config);
        if view.peak_load <= settings.load_floor_units {
            // Low load, or load not known yet: a new meta leader would take the uneven leader
            // counts that load balancing left for work. Counts only once every load is known.
            self.live.unjudged();
            return match view.all_known {
                true => Judged::ByCounts(self.live.recent().load_mattered().then_some(view)),
                false => Judged::ByLoad(view),
            };
        }
        let mut sources = self.sources(&view, &settings);
        // The most utilized source sheds first, one move at a time: a source that sheds all it
        // can in one go may take the room that the next needed.
        let mut started = 0;
        while started < settings.moves_per_pass_max && self.may_start_transfer() {
            let shedding = |source: &&Source| {
                let n = source.node;
                view.giving(n) > source.line
                    && view
                        .get(n)
                        .is_some_and(|s| s.moves_out < settings.moves_per_node_per_pass_max)
                    && self.may_leave(NodeId(n))
            };
            let most = sources.iter().filter(shedding).max_by(|a, b| {
                view.giving(a.node).total_cmp(&view.giving(b.node)).then(b.node.cmp(&a.node))
            });
            let Some(&source) = most else { break };
            let src = source.node;
            let Some(c) = self.load_move(&view, source, &settings) else {
                sources.retain(|s| s.node != src);
                continue;
            };
            let why = self.explain(&view, src, &c);
            self.start_transfer(c.shard, src, c.to, Cause::Load, why);
            if !self.config.has_bug(PlantedBug::ForgetLoadFlows) {
                self.live.load_moved(NodeId(src), NodeId(c.to), view.placeable(), self.now);
            }
            view.shift(src, c.to, c.load);
            started += 1;
        }
        self.live.balanced_by_load();
        Judged::ByLoad(view)
    }

    /// Each source of this pass with the ratio it sheds to and the room its targets need:
    /// overfull nodes shed to the shedding line, onto underfull nodes or nodes the shard leaves
    /// under the mean; while some node is far below the mean, nodes above the mean shed to it,
    /// onto nodes that far below. Only a
    /// long-run standing that has lasted `overfull_windows` counts: a node at the peak of a
    /// cycle is not overfull in the long run, nor one in its trough underfull. Records each
    /// node's standing.
    fn sources(&mut self, view: &LoadView, settings: &SchedulerSettings) -> Vec<Source> {
        let sustain = settings.standing_needed(self.config.load_window_ms);
        let half_life = self.wobble_half_life();
        for n in 0..view.nodes.len() as u32 {
            let sides = view.get(n).map_or([false; 2], |s| view.long_run_sides(s, settings));
            self.live.stood(NodeId(n), sides, (view.gap(n), half_life), self.now);
        }
        let lasted = |n: u32, side: usize| {
            self.live.recent().standing(NodeId(n))[side].is_some_and(|at| self.now >= at + sustain)
        };
        // A node that carries next to nothing (back from a failure, new) is in no cycle's
        // trough: it pulls at once, and while one is there to fill, overfull nodes shed at once.
        let floor = settings.load_floor_units;
        let carries_nothing = |n: u32| view.carries_nothing(n, floor);
        let someone_empty = (0..view.nodes.len() as u32)
            .any(|n| carries_nothing(n) && view.get(n).is_some_and(|s| s.judged));
        // A node that took load for balance within the pair cooldown was judged to have room for
        // it, unless more nodes are placeable now (the mean it was judged by fell): it sheds
        // again only past the taker's line, and gives none to a pull, while no node is empty. A
        // cycle's ripple in the long run took nodes that a move left near a line across it, and
        // shards went on from node to node.
        let pair_cooldown = Duration(settings.pair_cooldown_ms);
        let placeable = view.placeable();
        let taker = |n: u32| {
            let took = self.live.recent().took_load(NodeId(n), self.now, pair_cooldown);
            !someone_empty && took.is_some_and(|then| then >= placeable)
        };
        let underfull = Room { below: settings.underfull_ratio(), or_under_mean: true };
        let overfull: Vec<Source> = view
            .overfull(settings)
            .into_iter()
            .filter(|&n| someone_empty || lasted(n, 0))
            .filter(|&n| !taker(n) || view.giving(n) > settings.taker_overfull_ratio())
            .map(|node| Source {
                node,
                line: settings.settle_ratio(),
                room: underfull,
                pull: false,
            })
            .collect();
        if !overfull.is_empty() {
            return overfull;
        }
        view.pull_sources(settings, |n| lasted(n, 1) || carries_nothing(n))
            .into_iter()
            .filter(|&n| !taker(n))
            .map(|node| {
                let room = Room { below: settings.pull_ratio(), or_under_mean: false };
                Source { node, line: 1.0, room, pull: true }
            })
            .collect()
    }

    /// The best move off a source onto a node with room that stays within the shedding line:
    /// a transfer to a follower if any fits, else a reopen.
    fn load_move(
        &self,
        view: &LoadView,
        source: Source,
        settings: &SchedulerSettings,
    ) -> Option<Candidate> {
        let Source { node: src, line: settle, room, pull } = source;
        let s = view.get(src)?;
        // What the source must shed to be at the line in both views.
        let excess = (s.load - settle * view.mean * s.capacity)
            .min(s.slow - settle * view.slow_mean * s.capacity);
        // An overfull source takes any move that lowers the pair's peak (checked per target
        // below); once under the overfull line, only moves that bring it nearer the shedding
        // line, never overshooting by more than they gain (a node a hair above it keeps its
        // shards, and the room they would take stays for nodes further over), and an overshoot
        // by more than twice its wobble (in load units), unless that wobble reaches the
        // overfull line from where it stands.
        let still_overfull = view.giving(src) > settings.overfull_ratio();
        let wobble = self.live.recent().wobble(NodeId(src), self.now, self.wobble_half_life());
        let safe_where_it_is = view.giving(src) + 2.0 * wobble < settings.overfull_ratio();
        let overshoot_margin =
            if pull || !safe_where_it_is { 0.0 } else { 2.0 * wobble * view.mean * s.capacity };
        let pair_cooldown = Duration(settings.pair_cooldown_ms);
        // The target ends below where the source was, and no load moved from it to the source
        // within the pair cooldown.
        let fits = |to: u32, [load, slow]: [f64; 2]| {
            view.taking_with(to, load, slow) < view.giving(src)
                && !self.live.recent().flowed_back(NodeId(src), NodeId(to), self.now, pair_cooldown)
                && self.may_enter(NodeId(to))
        };
        let least = s.load * settings.shard_share_min_permille as f64 / 1_000.0;
        let cooldown = Duration(settings.shard_cooldown_ms);
        let loads = self.live.loads();
        let led: Vec<(ShardId, [f64; 2])> = self.cluster.node_shards[src as usize]
            .iter()
            .copied()
            .filter(|&sh| self.movable(sh, src))
            .filter(|&sh| !self.live.recent().shard_cooling(sh, self.now, cooldown))
            .filter(|&sh| loads.trusted(sh).is_some())
            .map(|sh| (sh, view.shard_load(loads, sh)))
            .filter(|&(_, [l, slow])| {
                let relief = l.min(slow);
                let nearer = relief.min(2.0 * excess - relief);
                let overshoots = relief > excess;
                let gains = nearer > 0.0 && (!overshoots || nearer > overshoot_margin);
                relief > 0.0 && l >= least && (still_overfull || gains)
            })
            .collect();
        let closest = |a: &Candidate, b: &Candidate| {
            (a.relief() - excess).abs().total_cmp(&(b.relief() - excess).abs())
        };
        // Targets stay within the shedding line if they can; where whole shards are too coarse
        // for that, within the overfull line (no move makes a node overfull).
        let caps = [settings.settle_ratio(), settings.overfull_ratio()];
        for cap in caps {
            let transfers = led.iter().flat_map(|&(shard, load)| {
                self.intended(shard)
                    .followers
                    .iter()
                    .filter(move |&&f| view.takes(f, load, room, cap, settings) && fits(f, load))
                    .filter(move |&&f| self.live.laggards().lag(shard, NodeId(f)).is_none())
                    .filter(move |&&f| self.may_lead_instead(src, f))
                    .min_by(|&&a, &&b| view.taking(a).total_cmp(&view.taking(b)))
                    .map(|&to| Candidate { shard, to, load, reopen: false })
            });
            if let Some(best) = transfers.min_by(closest) {
                return Some(best);
            }
        }
        let mut targets: Vec<u32> =
            (0..view.nodes.len() as u32).filter(|&n| n != src && view.get(n).is_some()).collect();
        targets.sort_by(|&a, &b| view.taking(a).total_cmp(&view.taking(b)).then(a.cmp(&b)));
        caps.into_iter().find_map(|cap| {
            let reopens = led.iter().filter_map(|&(shard, load)| {
                let rec = self.intended(shard);
                let to = targets.iter().copied().find(|&t| {
                    !rec.replicas().any(|r| r == t)
                        && self.disk_fits(t, shard)
                        && view.takes(t, load, room, cap, settings)
                        && fits(t, load)
                        && self.keeps_placement(rec, src, t)
                })?;
                Some(Candidate { shard, to, load, reopen: true })
            });
            reopens.min_by(closest)
        })
    }

    /// How fast a node's wobble fades: over the long run's span (see `Recent::wobble`).
    fn wobble_half_life(&self) -> Duration {
        crate::core::live::recent::wobble_half_life(self.config.load_window_ms)
    }

    /// "n3 load 1.80× mean; shard 12 carries 22% of it; n5 at 0.70× takes it by transfer".
    fn explain(&self, view: &LoadView, src: u32, c: &Candidate) -> String {
        let ratio = |n: u32| if view.mean > 0.0 { view.utilization(n) / view.mean } else { 0.0 };
        let share = view.get(src).map_or(0.0, |s| 100.0 * c.load[0] / s.load);
        format!(
            "{} load {:.2}× mean; shard {} carries {share:.0}% of it; {} at {:.2}× takes it by {}",
            self.name(src),
            ratio(src),
            c.shard,
            self.name(c.to),
            ratio(c.to),
            if c.reopen { "reopen" } else { "transfer" }
        )
    }
}
