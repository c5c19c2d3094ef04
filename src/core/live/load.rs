//! The load each shard puts on its leader's node, as the leader reports it in heartbeats,
//! smoothed.
//!
//! **Smoothing: an EWMA over fixed windows.** Reports within one window (`load_window_ms`,
//! 10 s) are averaged; when a window closes its mean joins the smoothed value with weight ½.
//! A windowed *maximum* would be cheaper to explain but chases every spike, and a balancer that
//! moves shards on spikes thrashes; the mean of a window absorbs the ±15% noise of a steady
//! load, and the ½ weight still follows a real step within about three windows.
//!
//! **The long run.** Beside it, each shard's load units (read + write) and CPU time smoothed
//! with weight 1/8 per window ([`SLOW_WEIGHT`]): an average over about the last eight windows,
//! which a load that rises and falls every few windows hardly moves (a swing with a period of 6
//! windows passes at a fifth of its size, one of 20 windows at two fifths). The balancer moves load
//! only where both agree (see the scheduler's rebalance): the fast value so that it acts on
//! what is true now, the slow one so that it does not act on a phase of a cycle. It is kept
//! across a move, like the estimate: the load moved with the shard.
//!
//! **Trust.** Decisions read a shard's load only once `load_windows_trusted` windows (3) have
//! closed since it was last reset, and a shard is reset when its leader changes: its new node
//! reports from scratch, and the scheduler never judges a node by stats from before its own
//! last move. Until then the old smoothed value is kept as an estimate, so that the node it
//! moved to does not look idle to other decisions.
//!
//! **Busiest tables.** Beside each shard's totals, the tables its leader last named as its
//! busiest (at most [`TOP_TABLES_PER_SHARD`]), each table's rates smoothed per report with
//! weight ¼ while it stays on the list: what a split needs to cut a shard into pieces of even
//! load. A table that drops off the list is forgotten. Table ids are kept as reported; whoever
//! reads them checks them against the catalog (a node may name a table it no longer holds).
//!
//! **Cost.** Fixed-size parts of each shard's state (48 bytes of rates, 16 of sizes, see
//! [`per_shard`](super::per_shard); 136 bytes of tables apart), updated in place on the
//! heartbeat path: no allocation, no map lookup.

use crate::core::ids::ShardId;
use crate::core::input::{ShardLoad, TableLoad, TOP_TABLES_PER_SHARD};
use crate::core::time::{Duration, Instant};

/// One shard's load rates: 48 bytes, so that the first cache line of its entry also holds its
/// placement (see [`per_shard`](super::per_shard)). Rates are kept as `f32` (7 digits are
/// plenty for a load).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Smoothed read units, write units and CPU ms per second, over closed windows.
    smoothed: [f32; 3],
    /// Read and write units, and CPU ms, per second over the long run (see the module notes).
    slow: [f32; 2],
    /// The open window's sums of the same.
    sum: [f32; 3],
    /// When the open window started (meaningless until `started`: no report yet). Not an
    /// `Option`, whose tag would push the sample past its 48 bytes.
    window_start: Instant,
    started: bool,
    /// Windows closed since the last move, and reports in the open window.
    windows: u16,
    reports: u16,
    /// A window of the shard has closed under this leader (kept across moves, whose estimate
    /// carries over).
    known: bool,
    /// Windows in a row, under this leader, whose mean and smoothed value were both within
    /// [`STEADY_BAND`] of the long run (see [`Sample::steady`]).
    steady: u8,
    /// Its busiest tables may be on record: its leader named some since they were last
    /// cleared. A report that names none then need not touch them.
    named: bool,
}

const _: () = assert!(std::mem::size_of::<Sample>() <= 48, "a sample leaves 16 bytes of its line");

/// What a scan over every shard reads of a shard's load: its rates, and whether they are known
/// and trusted. They change only when a window closes (or the shard moves, splits or merges),
/// so a copy of them in a dense array of their own stays true at a tenth of the reports'
/// writes (see [`per_shard`](super::per_shard)).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RatesDigest {
    smoothed: [f32; 3],
    slow: [f32; 2],
    known: bool,
    trusted: bool,
}

impl RatesDigest {
    /// Load units and CPU ms per second, whether trusted or not, now (smoothed: the estimate)
    /// and over the long run: what the balancer weighs (see the scheduler's `load_view`).
    pub fn units_and_cpu(&self) -> [[f64; 2]; 2] {
        let [read, write, cpu] = self.smoothed.map(f64::from);
        [[read + write, cpu], self.slow.map(f64::from)]
    }

    /// Whether a window of the shard closed under this leader (see [`Sample::known`]).
    pub fn known(&self) -> bool {
        self.known
    }

    /// Whether enough windows closed to trust the rates (see [`Sample::trusted`]).
    pub fn trusted(&self) -> bool {
        self.trusted
    }
}

/// One shard's sizes: levels, not rates, so the latest report's stand. Apart from the rates,
/// which scans read far more often.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sizes {
    bytes: u64,
    rows: u64,
}

impl Sizes {
    /// The sizes a report gave.
    pub fn of(load: &ShardLoad) -> Sizes {
        Sizes { bytes: load.bytes, rows: load.rows }
    }

    /// `load` with these sizes.
    pub fn stamped(self, load: ShardLoad) -> ShardLoad {
        ShardLoad { bytes: self.bytes, rows: self.rows, ..load }
    }
}

impl Sample {
    /// When its open window started (see `LiveCluster::touch`).
    pub fn window_start(&self) -> Instant {
        self.window_start
    }

    /// The smoothed rates, with no sizes (see [`Sizes::stamped`]).
    fn load(&self) -> ShardLoad {
        let [read_units, write_units, cpu_ms] = self.smoothed.map(f64::from);
        ShardLoad { read_units, write_units, cpu_ms, bytes: 0, rows: 0 }
    }
}

/// One shard's busiest tables, busiest first as last reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Busiest {
    ids: [u64; TOP_TABLES_PER_SHARD],
    /// Read and write units per second.
    rates: [[f32; 2]; TOP_TABLES_PER_SHARD],
    len: u8,
}

/// How much of a closed window's mean the long-run load takes (see the module notes).
pub const SLOW_WEIGHT: f32 = 0.125;

/// How far from its long run a window's mean and the smoothed value may be, as a share of it,
/// for the window to count as steady.
pub const STEADY_BAND: f32 = 0.2;

/// Steady windows in a row that make a shard's load steady: a load that rises and falls with a
/// period of up to a few dozen windows leaves the band within this many.
pub const STEADY_WINDOWS: u8 = 6;

/// How much of a new report a busiest table's smoothed rates take.
const TABLE_REPORT_WEIGHT: f32 = 0.25;

impl Busiest {
    /// The busiest tables a report named (at most [`TOP_TABLES_PER_SHARD`], for one shard):
    /// they replace the last list, smoothing the rates of tables on both.
    pub fn record(&mut self, reported: &[TableLoad]) {
        debug_assert!(reported.iter().all(|t| t.read_units >= 0.0 && t.write_units >= 0.0));
        if reported.is_empty() {
            self.len = 0; // the common case of a node that names no tables: no copy
            return;
        }
        let old = *self;
        self.len = 0;
        for t in reported.iter().take(TOP_TABLES_PER_SHARD) {
            let rates = [t.read_units as f32, t.write_units as f32];
            let i = self.len as usize;
            self.ids[i] = t.table.0;
            self.rates[i] = match old.position(t.table.0) {
                Some(j) => [0, 1]
                    .map(|k| old.rates[j][k] + TABLE_REPORT_WEIGHT * (rates[k] - old.rates[j][k])),
                None => rates,
            };
            self.len += 1;
        }
        assert!(self.len as usize <= TOP_TABLES_PER_SHARD);
    }

    /// The tables, busiest first as last reported, with smoothed rates.
    pub fn tables(&self, shard: ShardId) -> impl Iterator<Item = TableLoad> + '_ {
        (0..self.len as usize).map(move |i| TableLoad {
            shard,
            table: crate::core::ids::TableId(self.ids[i]),
            read_units: f64::from(self.rates[i][0]),
            write_units: f64::from(self.rates[i][1]),
        })
    }

    fn position(&self, table: u64) -> Option<usize> {
        self.ids[..self.len as usize].iter().position(|&id| id == table)
    }
}

impl Sample {
    /// A report from the shard's leader at `now`, with windows of `window`; the mean load
    /// units of the window it closed, if it closed one.
    pub fn record(&mut self, load: &ShardLoad, now: Instant, window: Duration) -> Option<f64> {
        // The input's validation refuses negative, infinite and NaN rates: one such report
        // would poison the smoothed value for good.
        assert!(
            [load.read_units, load.write_units, load.cpu_ms]
                .iter()
                .all(|x| x.is_finite() && *x >= 0.0),
            "a load report with a rate that is not a finite, non-negative number"
        );
        let s = self;
        if !s.started {
            (s.window_start, s.started) = (now, true);
        }
        let closes = now >= s.window_start + window && s.reports > 0;
        let mut closed = None;
        if closes {
            let mean = s.sum.map(|x| x / s.reports as f32);
            let units = mean[0] + mean[1];
            closed = Some(f64::from(units));
            let long = [units, mean[2]];
            (s.smoothed, s.slow) = if s.windows == 0 {
                // The first window under this leader: a moved shard keeps its long run (its
                // load moved with it), a shard never heard starts from this window.
                (mean, if s.known { s.slow } else { long })
            } else {
                ([0, 1, 2].map(|k| 0.5 * s.smoothed[k] + 0.5 * mean[k]), s.slow)
            };
            s.slow = [0, 1].map(|k| s.slow[k] + SLOW_WEIGHT * (long[k] - s.slow[k]));
            let near = |x: f32| (x - s.slow[0]).abs() <= STEADY_BAND * s.slow[0];
            let steady = near(units) && near(s.smoothed[0] + s.smoothed[1]);
            s.steady = if steady { s.steady.saturating_add(1) } else { 0 };
            s.windows = s.windows.saturating_add(1);
            s.known = true;
            (s.window_start, s.sum, s.reports) = (now, [0.0; 3], 0);
        }
        let rates = [load.read_units, load.write_units, load.cpu_ms].map(|x| x as f32);
        s.sum = [0, 1, 2].map(|k| s.sum[k] + rates[k]);
        s.reports = s.reports.saturating_add(1);
        debug_assert!(s.smoothed.iter().chain(&s.slow).all(|x| x.is_finite() && *x >= 0.0));
        closed
    }

    /// Whether a report naming `tables` as the busiest must touch the shard's [`Busiest`]:
    /// not when it names none and none are on record, the common case.
    pub fn names(&mut self, tables: &[TableLoad]) -> bool {
        let touch = self.named || !tables.is_empty();
        self.named = !tables.is_empty();
        touch
    }

    /// The smoothed rates, if `trusted_after` windows have been seen to trust them.
    pub fn trusted(&self, trusted_after: u32) -> Option<ShardLoad> {
        (u32::from(self.windows) >= trusted_after).then(|| self.load())
    }

    /// The smoothed rates whether trusted or not (for display), and the windows behind them.
    pub fn smoothed(&self) -> (ShardLoad, u32) {
        (self.load(), u32::from(self.windows))
    }

    /// Whether anything is known of the load: a window of it closed under this leader.
    pub fn known(&self) -> bool {
        self.known
    }

    /// The smoothed load units (read + write) whether trusted or not: after a move, what the
    /// shard carried on its last leader, until its new one has reported a window.
    pub fn estimate_units(&self) -> f64 {
        f64::from(self.smoothed[0] + self.smoothed[1])
    }

    /// Whether the load held steady: its last [`STEADY_WINDOWS`] windows under this leader
    /// each had a mean, and left a smoothed value, within [`STEADY_BAND`] of the long run. A
    /// load that rises and falls passes its long run now and then, with the smoothed value
    /// near it, but does not stay there.
    pub fn steady(&self) -> bool {
        self.steady >= STEADY_WINDOWS
    }

    /// What a scan over every shard reads of its load, trusted once `trusted_after` windows
    /// have closed.
    pub fn digest(&self, trusted_after: u32) -> RatesDigest {
        RatesDigest {
            smoothed: self.smoothed,
            slow: self.slow,
            known: self.known,
            trusted: u32::from(self.windows) >= trusted_after,
        }
    }

    /// The shard's leader changed: its load is learnt afresh, and until the new leader's first
    /// window closes the old smoothed value stands in as an estimate (the tables, and so the
    /// load, moved with the shard).
    pub fn moved(&mut self) {
        let s = *self;
        *self = Sample {
            smoothed: s.smoothed,
            slow: s.slow,
            known: s.known,
            named: s.named,
            ..Sample::default()
        };
        assert_eq!(self.windows, 0, "a moved shard is not trusted until learnt again");
    }

    /// `share` of the load, as the estimate of a piece of a split, learnt afresh: nothing may
    /// judge either piece by windows from before the split (it would split again at once).
    pub fn part(&self, share: f32) -> Sample {
        Sample {
            smoothed: self.smoothed.map(|x| x * share),
            slow: self.slow.map(|x| x * share),
            known: self.known,
            named: self.named,
            ..Sample::default()
        }
    }

    /// The estimate of a merge of `a` and `b`, learnt afresh.
    pub fn merged(a: &Sample, b: &Sample) -> Sample {
        Sample {
            smoothed: [0, 1, 2].map(|k| a.smoothed[k] + b.smoothed[k]),
            slow: [0, 1].map(|k| a.slow[k] + b.slow[k]),
            known: a.known && b.known,
            named: a.named || b.named,
            ..Sample::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::CoreConfig;

    fn writes(w: f64) -> ShardLoad {
        ShardLoad { write_units: w, ..Default::default() }
    }

    /// Reports every second for `secs` seconds from `from`, of `load(second)`.
    fn feed(sample: &mut Sample, from: u64, secs: u64, load: impl Fn(u64) -> f64) {
        let window = Duration(CoreConfig::default().load_window_ms);
        for t in from..from + secs {
            sample.record(&writes(load(t)), Instant(t * 1_000), window);
        }
    }

    fn trusted(sample: &Sample) -> Option<ShardLoad> {
        sample.trusted(CoreConfig::default().load_windows_trusted)
    }

    #[test]
    fn a_load_is_trusted_after_three_windows_and_noise_is_smoothed_away() {
        let mut load = Sample::default();
        feed(&mut load, 0, 30, |t| if t % 2 == 0 { 115.0 } else { 85.0 });
        assert_eq!(trusted(&load), None, "two windows closed, the third still open");
        feed(&mut load, 30, 1, |_| 100.0);
        let w = trusted(&load).expect("three windows closed").write_units;
        assert!((w - 100.0).abs() < 1.0, "±15% noise averages out: {w}");
    }

    #[test]
    fn a_load_is_steady_after_six_windows_in_the_band_and_a_cycle_never_is() {
        let mut load = Sample::default();
        feed(&mut load, 0, 61, |t| if t % 2 == 0 { 115.0 } else { 85.0 });
        assert!(load.steady(), "±15% noise around a level is steady");
        let mut cycling = Sample::default();
        // 100 to 800 units and back every 6 windows, for an hour: it crosses its long run
        // every cycle, but never stays near it.
        let cycle = |t: u64| 450.0 - 350.0 * (t as f64 / 60.0 * std::f64::consts::TAU).cos();
        for t in 0..3_600 {
            feed(&mut cycling, t, 1, cycle);
            assert!(!cycling.steady(), "steady at {t} s");
        }
    }

    #[test]
    fn busiest_tables_are_smoothed_while_listed_and_forgotten_once_off_the_list() {
        let mut busiest = Busiest::default();
        let t = |table: u64, w: f64| TableLoad {
            shard: ShardId(0),
            table: crate::core::ids::TableId(table),
            read_units: 0.0,
            write_units: w,
        };
        let listed = |b: &Busiest| {
            b.tables(ShardId(0)).map(|t| (t.table.0, t.write_units)).collect::<Vec<_>>()
        };
        busiest.record(&[t(7, 100.0), t(3, 40.0)]);
        busiest.record(&[t(3, 80.0), t(9, 10.0)]);
        assert_eq!(
            listed(&busiest),
            vec![(3, 50.0), (9, 10.0)],
            "3 moves a quarter of the way to 80; 7 is gone"
        );
        let many: Vec<TableLoad> = (0..20).map(|i| t(i, 1.0)).collect();
        busiest.record(&many);
        assert_eq!(listed(&busiest).len(), TOP_TABLES_PER_SHARD, "the list is bounded");
    }

    #[test]
    fn only_a_report_naming_tables_or_clearing_them_touches_the_busiest() {
        let table = TableLoad {
            shard: ShardId(0),
            table: crate::core::ids::TableId(1),
            read_units: 0.0,
            write_units: 1.0,
        };
        let mut load = Sample::default();
        assert!(!load.names(&[]), "none named, none on record");
        assert!(load.names(&[table]));
        assert!(load.names(&[]), "the list on record must be cleared");
        assert!(!load.names(&[]), "and is");
        assert!(load.names(&[table]));
        load.moved();
        assert!(load.names(&[]), "a move keeps what is on record, so it is still cleared");
    }

    #[test]
    fn a_step_is_followed_within_a_few_windows_and_a_move_is_learnt_afresh() {
        let mut load = Sample::default();
        feed(&mut load, 0, 40, |_| 100.0);
        feed(&mut load, 40, 31, |_| 300.0);
        let w = trusted(&load).unwrap().write_units;
        assert!(w > 270.0, "three windows after a step the smoothed load is near it: {w}");
        load.moved();
        assert_eq!(trusted(&load), None, "a moved shard is learnt afresh");
        assert!(load.estimate_units() > 270.0, "its old load stands in meanwhile");
    }
}
