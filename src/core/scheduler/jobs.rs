//! Telling each node's long job how much is left, once a pass has planned (see
//! `live::progress`): a drain by the replicas still on the node, a slow node by the leaders it
//! still has, a fill by the balancer's own measure. A node starts to fill when it has stood
//! under the pull line as long as a pull needs (`overfull_windows`), or carries next to nothing
//! (a new or returning node), and is full once it reaches the underfull line, the band the
//! balancer leaves alone. (Judged at each instant, a node in the trough of a periodic load
//! started and ended a fill every cycle, and the events of those fills crowded the log.)
//!
//! A fill is judged only by a pass that judged balance, by load or by leader counts. A pass that
//! found moves to make first (a transfer to finish, a failover), or a load too low to act on,
//! balances nothing; judging fills by leader counts in such a pass started a fill on every node
//! with a few leaders fewer than the mean, and the next pass ended them all (the madsim swarm's
//! seed 949 logged fourteen at once).
//!
//! A job ends done when nothing is left of it, and with what was left undone when it stops
//! applying first (a node going offline, a drain cancelled).

use super::load_view::Judged;
use super::Planner;
use crate::core::ids::NodeId;
use crate::core::live::progress::Job;

impl Planner<'_> {
    /// Tells every node's job how much is left, as the pass judged balance.
    pub(super) fn track_jobs(&mut self, judged: &Judged) {
        let fill = |n: NodeId| self.live.jobs().get(n).filter(|p| p.job == Job::Fill).copied();
        let filling = |n: NodeId| fill(n).is_some();
        let settings = *self.live.settings();
        // A view of load too low to act on (or not all known yet) judged nothing either.
        let floor = settings.load_floor_units;
        let (view, counts, judging) = match judged {
            Judged::ByLoad(view) if view.peak_load > floor => (Some(view), None, true),
            Judged::ByCounts(view) => (None, view.as_ref(), true),
            Judged::ByLoad(_) | Judged::NotThisPass => (None, None, false),
        };
        let placeable: Vec<NodeId> =
            self.live.nodes().iter().filter(|(_, n)| n.placeable()).map(|(id, _)| id).collect();
        let leaders: u32 = placeable.iter().map(|&n| self.live.node(n).leaders).sum();
        let mean_leaders = leaders as f64 / placeable.len().max(1) as f64;
        // The load one led shard carries on average: a fill's remaining moves, by load.
        let shard_load = view.map_or(0.0, |v| {
            let load: f64 = v.nodes.iter().flatten().map(|s| s.load).sum();
            load / leaders.max(1) as f64
        });
        let sustain = settings.standing_needed(self.config.load_window_ms);
        let stood_under = |id: NodeId| {
            self.live.recent().standing(id)[1].is_some_and(|since| self.now >= since + sustain)
        };
        let mut seen = Vec::new();
        for (id, n) in self.live.nodes().iter() {
            let job = if !n.online || !self.dynamic() {
                None
            } else if n.draining {
                Some((Job::Drain, n.replicas))
            } else if n.slowness.slow() {
                Some((Job::Slow, n.leaders))
            } else if !n.placeable() {
                None
            } else if !judging {
                fill(id).map(|p| (Job::Fill, p.remaining)) // as the last judging pass left it
            } else {
                // How far below the band it is, in the balancer's measure, to start a fill
                // and to keep one going, how many moves that is, and whether one is due. By
                // load, a fill under way is judged by the long run alone: in the trough of a
                // cycle a node stands under the pull line, and at each peak the current view
                // took it over the underfull line, so that fills started and ended with every
                // cycle, with no move (the madsim swarm's quiet window caught it). And one
                // starts only for a node that carries nothing or that this pass moved load
                // onto: a node under its share on average whom no pull reaches (shards too
                // coarse, sources held back) is not filling, and fills with nothing coming in
                // started and ended as the long run rippled (swarm seed 274).
                let (level, holding, short, due) = match view
                    .and_then(|v| v.get(id.0).map(|s| (v, s)))
                {
                    Some((v, s)) if shard_load > 0.0 => {
                        // What is left is measured in the long run too: at a peak the
                        // current view had nothing left, which ended the fill all the same.
                        let want = settings.underfull_ratio() * v.slow_mean * s.capacity;
                        let empty = v.carries_nothing(id.0, settings.load_floor_units);
                        (
                            v.taking(id.0),
                            v.long_run(id.0),
                            ((want - s.slow) / shard_load).ceil(),
                            empty || (stood_under(id) && s.moves_in > 0),
                        )
                    }
                    Some(_) => (1.0, 1.0, 0.0, false),
                    // By counts; in a lull, only where the little load there is agrees: a node
                    // that leads few heavy shards is not short of anything.
                    None if mean_leaders > 0.0
                        && counts.is_none_or(|v| v.taking(id.0) < settings.pull_ratio()) =>
                    {
                        let level = n.leaders as f64 / mean_leaders;
                        (
                            level,
                            level,
                            (settings.underfull_ratio() * mean_leaders).floor() - n.leaders as f64,
                            true,
                        )
                    }
                    None => (1.0, 1.0, 0.0, false),
                };
                let under = (level < settings.pull_ratio() && due)
                    || (filling(id) && holding < settings.underfull_ratio());
                // Not under (any more): a fill under way is done.
                let left = if under { short.clamp(0.0, u32::MAX as f64) as u32 } else { 0 };
                Some((Job::Fill, left))
            };
            seen.push((id, job));
        }
        for (id, job) in seen {
            self.live.job_seen(self.cluster, id, job, self.now, self.config);
        }
    }
}
