//! Slow nodes: a node that answers, but slowly. One network-slow store cost TiKV users elections
//! for ten minutes (tikv/pd#9716) while the scheduler treated it as healthy; PD answered with
//! evict-slow-store. Here a node is judged by two figures it reports with each heartbeat: the
//! round trip of its previous heartbeat, as it measured it (network and meta's queue), and its
//! requests' latency (its disk and CPU). Each is smoothed over heartbeats and compared with the
//! cluster's median of the same figure, because only the cluster says what normal is.
//!
//! **The rule.** A figure is over the slow line at `slow_ratio_pct` of the median, and at least
//! [`FLOOR_US`] (a node at 2 ms among nodes at 0.2 ms is not slow). A node whose figure stays
//! over its line for `slow_windows` load windows becomes *slow*: it takes no new replicas or
//! leaders, and its leaders leave it by transfer within its outbound budget; its followers stay.
//! It is well again only once every figure has stayed under *half* the line for four times as
//! long: the gap and the longer stretch are the hysteresis that keeps a node on the edge from
//! flapping. With fewer than [`REPORTERS_MIN`] nodes reporting a figure there is no median to
//! judge by, and every node counts as under the line.
//!
//! An operator may mark a node slow (it stays so until unmarked) and unmark it, which also
//! forgives what was detected: the node must be slow for the full stretch again.

use crate::core::input::NodeStats;
use crate::core::settings::SchedulerSettings;
use crate::core::time::{Duration, Instant};

/// Below these, in microseconds, no figure is slow whatever the median: the heartbeat round
/// trip (50 ms) and request latency (20 ms).
pub const FLOOR_US: [f64; 2] = [50_000.0, 20_000.0];

/// The least number of nodes reporting a figure for its median to mean anything.
pub const REPORTERS_MIN: usize = 3;

/// Each heartbeat's figure moves the smoothed one this far (a quarter): one slow answer is
/// not a slow node.
const SMOOTHING: f64 = 0.25;

/// How much longer a slow node must stay well than it took to become slow.
pub const RECOVERY_FACTOR: u64 = 4;

/// What one node's figures say, and since when.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slowness {
    /// Smoothed heartbeat round trip and request latency, in µs; 0 when not reported.
    figures: [f64; 2],
    /// Since when a figure has stood over its slow line, every check.
    over_since: Option<Instant>,
    /// Since when every figure has stood under half its line, every check.
    well_since: Option<Instant>,
    /// Its figures made it slow.
    pub detected: bool,
    /// An operator marked it slow.
    pub marked: bool,
}

/// A change of a node's state for the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct SlowChange {
    /// It became slow (`true`) or well again.
    pub slow: bool,
    /// Which figure, how far over, for how long.
    pub why: String,
}

impl Slowness {
    /// Whether the node is slow, detected or marked.
    pub fn slow(&self) -> bool {
        self.detected || self.marked
    }

    /// The smoothed figures: heartbeat round trip and request latency, in µs (0: none).
    pub fn figures(&self) -> [f64; 2] {
        self.figures
    }

    /// A heartbeat's figures: each smoothed, or forgotten when the node stops reporting it.
    pub(super) fn observe(&mut self, stats: &NodeStats) {
        let reported = [stats.heartbeat_rtt_us as f64, stats.request_latency_us as f64];
        for (f, x) in self.figures.iter_mut().zip(reported) {
            *f = if x <= 0.0 {
                0.0
            } else if *f <= 0.0 {
                x
            } else {
                *f + (x - *f) * SMOOTHING
            };
        }
    }

    /// Checks the figures against the cluster's `medians` (`None`: too few reporters) at `now`;
    /// returns the change of state, if any.
    pub(super) fn check(
        &mut self,
        medians: [Option<f64>; 2],
        now: Instant,
        settings: &SchedulerSettings,
        window_ms: u64,
    ) -> Option<SlowChange> {
        let ratio = settings.slow_ratio_pct as f64 / 100.0;
        let line = |i: usize| medians[i].map(|m| (m * ratio).max(FLOOR_US[i]));
        let over = (0..2)
            .find(|&i| line(i).is_some_and(|l| self.figures[i] >= l && self.figures[i] > 0.0));
        let well = (0..2).all(|i| line(i).is_none_or(|l| self.figures[i] < l / 2.0));
        self.over_since = over.map(|_| self.over_since.unwrap_or(now));
        self.well_since = well.then(|| self.well_since.unwrap_or(now));
        let stretch = Duration(window_ms.saturating_mul(settings.slow_windows as u64));
        let lasted = |since: Option<Instant>, d: Duration| since.is_some_and(|s| now >= s + d);
        if !self.detected && lasted(self.over_since, stretch) {
            self.detected = true;
            let i = over.expect("over since some time");
            let what = ["heartbeat round trip", "request latency"][i];
            let median = medians[i].unwrap_or(0.0);
            let why = format!(
                "{what} {:.0} ms, {:.1}× the cluster's median {:.1} ms, for {} windows",
                self.figures[i] / 1_000.0,
                self.figures[i] / median.max(1.0),
                median / 1_000.0,
                settings.slow_windows
            );
            return Some(SlowChange { slow: true, why });
        }
        let recovery = Duration(stretch.0.saturating_mul(RECOVERY_FACTOR));
        if self.detected && lasted(self.well_since, recovery) {
            self.detected = false;
            let why = format!(
                "under half the slow line for {} windows",
                settings.slow_windows as u64 * RECOVERY_FACTOR
            );
            return Some(SlowChange { slow: false, why });
        }
        None
    }

    /// The operator unmarked the node: nothing detected so far counts.
    pub(super) fn forgive(&mut self) {
        *self = Slowness { figures: self.figures, ..Slowness::default() };
    }
}

/// The median of the non-zero values, when at least [`REPORTERS_MIN`] nodes report one.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|&v| v > 0.0);
    if values.len() < REPORTERS_MIN {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(rtt_ms: u32) -> NodeStats {
        NodeStats { heartbeat_rtt_us: rtt_ms * 1_000, ..Default::default() }
    }

    /// A node four times the median for three windows is slow; it recovers only after twelve
    /// windows under half the line, and a figure between the lines holds its state.
    #[test]
    fn slow_after_a_stretch_well_after_a_longer_one() {
        let settings = SchedulerSettings::default();
        let window = 10_000;
        let medians = [Some(20_000.0), None];
        let mut s = Slowness::default();
        s.observe(&stats(400));
        let mut t = 0;
        let mut changes = Vec::new();
        while t <= 40_000 {
            changes.extend(s.check(medians, Instant(t), &settings, window).map(|c| (t, c.slow)));
            t += 1_000;
        }
        assert_eq!(changes, vec![(30_000, true)], "slow after 3 windows");
        // Between the lines (60 ms: over half of 80 ms): it stays slow however long.
        for _ in 0..40 {
            s.observe(&stats(60));
        }
        for _ in 0..200 {
            assert_eq!(s.check(medians, Instant(t), &settings, window), None);
            t += 1_000;
        }
        for _ in 0..40 {
            s.observe(&stats(20));
        }
        let well_from = t;
        let mut recovered = None;
        while recovered.is_none() {
            recovered = s.check(medians, Instant(t), &settings, window).map(|_| t);
            t += 1_000;
        }
        assert_eq!(recovered, Some(well_from + 120_000), "well after 12 windows");
    }

    #[test]
    fn a_small_figure_is_never_slow_and_too_few_reporters_judge_nothing() {
        let settings = SchedulerSettings::default();
        let mut s = Slowness::default();
        s.observe(&stats(40)); // 40 ms, 40× a 1 ms median, but under the 50 ms floor
        for t in (0..100_000).step_by(1_000) {
            assert_eq!(s.check([Some(1_000.0), None], Instant(t), &settings, 10_000), None);
        }
        assert_eq!(median(vec![5.0, 0.0, 7.0]), None, "two reporters");
        assert_eq!(median(vec![5.0, 9.0, 7.0, 0.0]), Some(7.0));
    }
}
