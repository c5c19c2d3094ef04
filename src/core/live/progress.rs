//! Progress of the long jobs an operator waits on: a drain (every replica leaves a node), a
//! slow node's leaders leaving, and a fill (a new or returning node taking its share). Without
//! it operators tune budgets blindly (tikv/pd#9145). Each planning pass tells every node's job
//! how much is left; the job keeps when it began and how much there was, so it can say how
//! much is done and, from the pace so far and the node's budget, when it should end.

use std::collections::BTreeMap;

use crate::core::cause::Cause;
use crate::core::ids::NodeId;
use crate::core::time::{Duration, Instant};

/// What a node is going through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Drained by an operator: its replicas leave. Counted in replicas.
    Drain,
    /// Slow: its leaders leave. Counted in leader shards.
    Slow,
    /// New or back, and far below its share: moves come in. Counted in moves, the rest
    /// estimated from the balancer's measure (leader counts, or load over the mean shard's).
    Fill,
}

impl Job {
    /// The word status, metrics and events use.
    pub fn name(self) -> &'static str {
        match self {
            Job::Drain => "drain",
            Job::Slow => "slow",
            Job::Fill => "fill",
        }
    }

    /// What its counts count, as its end is logged.
    pub fn unit(self) -> &'static str {
        match self {
            Job::Drain => "replicas moved",
            Job::Slow => "leaders moved",
            Job::Fill => "moves onto it",
        }
    }

    /// The cause its events are logged under.
    pub fn cause(self) -> Cause {
        match self {
            Job::Drain => Cause::Drain,
            Job::Slow => Cause::Slow,
            Job::Fill => Cause::Load,
        }
    }
}

/// One node's job so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What it is.
    pub job: Job,
    /// When this leader saw it begin.
    pub since: Instant,
    /// How much there was at the start, or since, done and left together.
    pub planned: u32,
    /// How much is left, as the last pass saw it.
    pub remaining: u32,
}

impl Progress {
    /// How much is done.
    pub fn done(&self) -> u32 {
        self.planned - self.remaining
    }

    /// When it should end, from `now`: the pace so far carried on, but never sooner than the
    /// node's budget of `per_min` moves a minute allows. `None` before anything is done.
    pub fn eta(&self, now: Instant, per_min: u32) -> Option<Duration> {
        let done = self.done() as u64;
        let left = self.remaining as u64;
        if done == 0 {
            return (left == 0).then_some(Duration::ZERO);
        }
        let elapsed = now.saturating_since(self.since).as_millis();
        let at_pace = elapsed.saturating_mul(left) / done;
        let at_budget = left.saturating_mul(60_000) / per_min.max(1) as u64;
        Some(Duration(at_pace.max(at_budget)))
    }
}

/// Every node's job under way, by node.
#[derive(Clone, Debug, Default)]
pub struct Jobs {
    jobs: BTreeMap<NodeId, Progress>,
}

impl Jobs {
    /// A pass saw `node`'s `job` with `remaining` left: none left means done, and no job at
    /// all means none applies, so one under way stops with what it had left. Returns the job
    /// that just ended, if one did.
    pub(super) fn saw(
        &mut self,
        node: NodeId,
        job: Option<(Job, u32)>,
        now: Instant,
    ) -> Option<Progress> {
        match (job, self.jobs.get_mut(&node)) {
            (Some((job, 0)), Some(p)) if p.job == job => {
                self.jobs.remove(&node).map(|p| Progress { remaining: 0, ..p })
            }
            (Some((job, remaining)), Some(p)) if p.job == job => {
                // More may turn up than was planned (a fill's estimate grows): the plan grows.
                p.planned = p.planned.max(p.done() + remaining).max(remaining);
                p.remaining = remaining;
                None
            }
            (Some((_, 0)), _) | (None, _) => self.jobs.remove(&node),
            (Some((job, remaining)), _) => {
                let fresh = Progress { job, since: now, planned: remaining, remaining };
                self.jobs.insert(node, fresh).filter(|old| old.job != job)
            }
        }
    }

    /// `node`'s job under way, if any.
    pub fn get(&self, node: NodeId) -> Option<&Progress> {
        self.jobs.get(&node)
    }

    /// Every job under way, by node.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Progress)> {
        self.jobs.iter().map(|(&n, p)| (n, p))
    }

    /// How many jobs are under way.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_counts_down_and_says_when_it_ends() {
        let mut jobs = Jobs::default();
        let n = NodeId(3);
        assert_eq!(jobs.saw(n, Some((Job::Drain, 40)), Instant(0)), None);
        let p = *jobs.iter().next().unwrap().1;
        assert_eq!((p.done(), p.eta(Instant(0), 60)), (0, None), "no pace yet");
        jobs.saw(n, Some((Job::Drain, 30)), Instant(20_000));
        let p = *jobs.iter().next().unwrap().1;
        assert_eq!((p.planned, p.done(), p.remaining), (40, 10, 30));
        assert_eq!(p.eta(Instant(20_000), 60), Some(Duration(60_000)), "10 in 20 s: 30 in 60 s");
        assert_eq!(p.eta(Instant(20_000), 6), Some(Duration(300_000)), "the budget is slower");
        let ended = jobs.saw(n, Some((Job::Drain, 0)), Instant(80_000)).unwrap();
        assert_eq!((ended.job, ended.done(), ended.remaining), (Job::Drain, 40, 0));
        assert!(jobs.is_empty());
    }

    #[test]
    fn a_job_that_stops_applying_ends_with_what_it_had_left() {
        let mut jobs = Jobs::default();
        let n = NodeId(3);
        jobs.saw(n, Some((Job::Drain, 40)), Instant(0));
        jobs.saw(n, Some((Job::Drain, 30)), Instant(20_000));
        // The drain is cancelled (or the node goes offline): 10 done, 30 undone.
        let ended = jobs.saw(n, None, Instant(30_000)).unwrap();
        assert_eq!((ended.done(), ended.remaining), (10, 30));
        // Nothing left of a job that was never under way starts none.
        assert_eq!(jobs.saw(n, Some((Job::Fill, 0)), Instant(40_000)), None);
        assert!(jobs.is_empty());
        // A different job replaces one under way, which ends with what it had left.
        jobs.saw(n, Some((Job::Fill, 5)), Instant(50_000));
        let ended = jobs.saw(n, Some((Job::Drain, 0)), Instant(60_000)).unwrap();
        assert_eq!((ended.job, ended.remaining), (Job::Fill, 5));
    }
}
