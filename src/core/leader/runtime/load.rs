//! The load each shard puts on its leader's node, as the leader reports it in heartbeats,
//! smoothed.
//!
//! **Smoothing: an EWMA over fixed windows.** Reports within one window (`load_window_ms`,
//! 10 s) are averaged; when a window closes its mean joins the smoothed value with weight ½.
//! A windowed *maximum* would be cheaper to explain but chases every spike, and a balancer that
//! moves shards on spikes thrashes; the mean of a window absorbs the ±15% noise of a steady
//! load, and the ½ weight still follows a real step within about three windows.
//!
//! **Trust.** Decisions read a shard's load only once `load_windows_trusted` windows (3) have
//! closed since it was last reset, and a shard is reset when its leader changes: its new node
//! reports from scratch, and the scheduler never judges a node by stats from before its own
//! last move.
//!
//! **Cost.** One fixed-size entry per shard, updated in place on the heartbeat path: no
//! allocation, no map lookup.

use crate::core::config::CoreConfig;
use crate::core::ids::ShardId;
use crate::core::input::ShardLoad;
use crate::core::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// The smoothed load, over closed windows.
    smoothed: ShardLoad,
    /// Windows closed since the last reset.
    windows: u32,
    /// The open window: when it started, and the sum and count of its reports.
    window_start: Option<Instant>,
    sum: ShardLoad,
    reports: u32,
}

/// Smoothed load per shard, by shard id.
#[derive(Clone, Debug, Default)]
pub struct Loads {
    shards: Vec<Sample>,
    window: Duration,
    windows_trusted: u32,
}

impl Loads {
    pub(super) fn new(shards: usize, config: &CoreConfig) -> Loads {
        Loads { shards: vec![Sample::default(); shards], window: Duration(config.load_window_ms), windows_trusted: config.load_windows_trusted }
    }

    /// A report from the shard's leader at `now`; `true` when it closed a window.
    pub(super) fn record(&mut self, shard: ShardId, load: &ShardLoad, now: Instant) -> bool {
        let s = &mut self.shards[shard.index()];
        let start = *s.window_start.get_or_insert(now);
        let closes = now >= start + self.window && s.reports > 0;
        if closes {
            let mean = scale(&s.sum, 1.0 / s.reports as f64);
            s.smoothed = if s.windows == 0 { mean } else { blend(&s.smoothed, &mean, 0.5) };
            s.windows = s.windows.saturating_add(1);
            (s.window_start, s.sum, s.reports) = (Some(now), ShardLoad::default(), 0);
        }
        s.sum = add(&s.sum, load);
        s.reports += 1;
        closes
    }

    /// The shard's smoothed load, if enough windows have been seen to trust it.
    pub fn trusted(&self, shard: ShardId) -> Option<ShardLoad> {
        let s = &self.shards[shard.index()];
        (s.windows >= self.windows_trusted).then_some(s.smoothed)
    }

    /// The smoothed load whether trusted or not (for display), and the windows behind it.
    pub fn smoothed(&self, shard: ShardId) -> (ShardLoad, u32) {
        let s = &self.shards[shard.index()];
        (s.smoothed, s.windows)
    }

    /// The shard's leader changed: its load is learnt afresh.
    pub(super) fn reset(&mut self, shard: ShardId) {
        self.shards[shard.index()] = Sample::default();
    }

    pub fn len(&self) -> usize {
        self.shards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }
}

fn add(a: &ShardLoad, b: &ShardLoad) -> ShardLoad {
    ShardLoad {
        read_units: a.read_units + b.read_units,
        write_units: a.write_units + b.write_units,
        cpu_ms: a.cpu_ms + b.cpu_ms,
        bytes: a.bytes.saturating_add(b.bytes),
        rows: a.rows.saturating_add(b.rows),
    }
}

fn scale(a: &ShardLoad, k: f64) -> ShardLoad {
    ShardLoad {
        read_units: a.read_units * k,
        write_units: a.write_units * k,
        cpu_ms: a.cpu_ms * k,
        bytes: (a.bytes as f64 * k) as u64,
        rows: (a.rows as f64 * k) as u64,
    }
}

/// `old` moved towards `new` by `weight`.
fn blend(old: &ShardLoad, new: &ShardLoad, weight: f64) -> ShardLoad {
    add(&scale(old, 1.0 - weight), &scale(new, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(w: f64) -> ShardLoad {
        ShardLoad { write_units: w, ..Default::default() }
    }

    /// Reports every second for `secs` seconds from `from`, of `load(second)`.
    fn feed(loads: &mut Loads, from: u64, secs: u64, load: impl Fn(u64) -> f64) {
        for t in from..from + secs {
            loads.record(ShardId(0), &writes(load(t)), Instant(t * 1_000));
        }
    }

    #[test]
    fn a_load_is_trusted_after_three_windows_and_noise_is_smoothed_away() {
        let mut loads = Loads::new(1, &CoreConfig::default());
        feed(&mut loads, 0, 30, |t| if t % 2 == 0 { 115.0 } else { 85.0 });
        assert_eq!(loads.trusted(ShardId(0)), None, "two windows closed, the third still open");
        feed(&mut loads, 30, 1, |_| 100.0);
        let w = loads.trusted(ShardId(0)).expect("three windows closed").write_units;
        assert!((w - 100.0).abs() < 1.0, "±15% noise averages out: {w}");
    }

    #[test]
    fn a_step_is_followed_within_a_few_windows_and_a_reset_forgets() {
        let mut loads = Loads::new(1, &CoreConfig::default());
        feed(&mut loads, 0, 40, |_| 100.0);
        feed(&mut loads, 40, 31, |_| 300.0);
        let w = loads.trusted(ShardId(0)).unwrap().write_units;
        assert!(w > 270.0, "three windows after a step the smoothed load is near it: {w}");
        loads.reset(ShardId(0));
        assert_eq!(loads.trusted(ShardId(0)), None);
    }
}
