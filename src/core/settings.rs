//! The scheduler's thresholds and limits, per cluster. `CoreConfig::scheduler` gives every
//! cluster its starting settings; an operator changes one cluster's at runtime (pause, resume,
//! a new tolerance), and the change is stored with the cluster, so that a new meta leader keeps
//! it.

use crate::core::model::SchedulerRecord;

/// Every name ends in its unit.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(deny_unknown_fields, default))]
pub struct SchedulerSettings {
    /// No automatic moves for balance (failover, repair and drains still run: they are not
    /// optional).
    pub paused: bool,
    /// A node is overfull when its utilization is this far above the cluster's mean, in percent.
    /// It then sheds load until it is within half of it, to nodes at least half of it below
    /// the mean: the gaps are the hysteresis that keeps nodes from flapping across one line.
    pub overfull_pct: u32,
    /// No node carrying less than this is overfull, in load units (read + write units) per
    /// second: below it, load is noise, and balancing falls back to even leader counts.
    pub load_floor_units: f64,
    /// Moves one scheduler pass may start for balance.
    pub moves_per_pass_max: u32,
    /// Moves one pass may start out of one node, and into one node. This is the limit that
    /// protects a node: a node a move touched waits for fresh load windows before the next, so
    /// it is also about the most reopens a node loads at once.
    pub moves_per_node_per_pass_max: u32,
    /// Moves (transfers and reopens, for balance or drain) in flight at once in the cluster: a
    /// bound on the work outstanding, not the pace. (At 8, three new nodes among six took 8
    /// rounds of 30 s to fill, and a cluster of hundreds of nodes would fill new ones for
    /// hours; at 64 they fill in 3 rounds.)
    pub moves_in_flight_max: u32,
    /// A shard whose leader moved, for any reason, is not moved for balance again for this
    /// long, in ms.
    pub shard_cooldown_ms: u64,
    /// After load moved from node A to node B (any shard), no load moves from B back to A for
    /// this long, in ms: load that rises and falls must not carry shards to and fro between
    /// two nodes, a different shard each time, which no shard's own cooldown would stop.
    pub pair_cooldown_ms: u64,
    /// Load windows in a row a node must stand over the overfull line before it sheds, or
    /// under the pull line before it pulls, in the long run (see the scheduler's rebalance): a
    /// phase of a cycle is not a reason to move.
    pub overfull_windows: u32,
    /// The least share of its node's load that a shard must carry to be moved for balance, in
    /// thousandths: many small moves cost more than they help. (5‰ lets a node of 100 even
    /// shards shed.)
    pub shard_share_min_permille: u32,
    /// A shard splits when its load stays above this share of a node's fair load (the
    /// cluster's load over its placeable nodes), in percent: one shard above a node's share
    /// can only be moved, never balanced. 0 switches load splits off.
    pub split_load_pct: u32,
    /// No shard carrying less than this splits for load, in load units per second.
    pub split_floor_units: f64,
    /// Load windows in a row a shard must be above the split line, counted once its load is
    /// trusted: a burst is not a reason to split.
    pub split_windows: u32,
    /// A shard with more tables than this splits, whatever its load. 0 switches it off.
    pub tables_per_shard_max: u32,
    /// A shard whose leader reports more bytes than this splits, by table count (per-table
    /// sizes are not reported), whatever its load. 0 switches it off.
    pub shard_bytes_max: u64,
    /// A shard is cold below this share of the split line, in percent; two cold shards merge.
    /// At 25, both below a quarter of the line, the merged shard is below half of it: the gap
    /// is the hysteresis that keeps a merged shard from splitting again (CockroachDB merges
    /// below half its split load; FoundationDB keeps a 10× gap). 0, the default, switches
    /// automatic merges off: by load alone they would fold a cluster's shards down to one per
    /// node within minutes of quiet, undoing the shard count an operator chose (with 192
    /// modest shards on 6 nodes, the balancing scenarios lost most of theirs at 333 s).
    pub merge_load_pct: u32,
    /// How long both shards must have been cold, in ms (CockroachDB: 5 minutes).
    pub merge_window_ms: u64,
    /// Moves for balance, drains and slow nodes that may start into one node per minute: a
    /// token bucket holding up to a sixth of it (10 s worth), so that a node back from a restart
    /// is not flooded with leaders (failover and repair are never held back).
    pub moves_in_per_node_per_min: u32,
    /// The same out of one node.
    pub moves_out_per_node_per_min: u32,
    /// A node is slow when its heartbeat round trip or its reported request latency stays at
    /// this share of the cluster's median or more, in percent, for `slow_windows` load windows
    /// (see `live::slow`).
    pub slow_ratio_pct: u32,
    /// Load windows in a row over the slow line before a node is slow; it is well again only
    /// after four times as many under half the line.
    pub slow_windows: u32,
    /// No placement or move takes a node's disk past this share of its declared capacity, in
    /// percent, and a node above it sheds replicas, largest first, until 5 points under it.
    pub disk_high_water_pct: u32,
    /// The share of CPU time in the load the balancer weighs, in percent; the rest is request
    /// units (see the scheduler's `load_view`). CPU counts only while every node that leads
    /// loaded shards reports their CPU time. 0: units alone.
    pub cpu_weight_pct: u32,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            paused: false,
            overfull_pct: 10,
            load_floor_units: 100.0,
            moves_per_pass_max: 64,
            moves_per_node_per_pass_max: 6,
            moves_in_flight_max: 64,
            shard_cooldown_ms: 120_000,
            pair_cooldown_ms: 600_000,
            overfull_windows: 3,
            shard_share_min_permille: 5,
            split_load_pct: 100,
            split_floor_units: 1_000.0,
            split_windows: 3,
            tables_per_shard_max: 50_000,
            shard_bytes_max: 256 << 30,
            merge_load_pct: 0,
            merge_window_ms: 300_000,
            moves_in_per_node_per_min: 60,
            moves_out_per_node_per_min: 60,
            slow_ratio_pct: 400,
            slow_windows: 3,
            disk_high_water_pct: 85,
            cpu_weight_pct: 50,
        }
    }
}

impl SchedulerSettings {
    /// Refuses settings that make no sense, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("load_floor_units", self.load_floor_units),
            ("split_floor_units", self.split_floor_units),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("{name} ({value}) must be a number of at least 0"));
            }
        }
        let bounded = [
            ("overfull_pct", self.overfull_pct as u64, 1, 1_000),
            ("moves_per_pass_max", self.moves_per_pass_max as u64, 1, 100_000),
            ("moves_per_node_per_pass_max", self.moves_per_node_per_pass_max as u64, 1, 100_000),
            ("moves_in_flight_max", self.moves_in_flight_max as u64, 1, 100_000),
            ("shard_cooldown_ms", self.shard_cooldown_ms, 0, 7 * 24 * 3_600_000),
            ("pair_cooldown_ms", self.pair_cooldown_ms, 0, 7 * 24 * 3_600_000),
            ("overfull_windows", self.overfull_windows as u64, 1, 1_000),
            ("shard_share_min_permille", self.shard_share_min_permille as u64, 0, 1_000),
            ("split_load_pct", self.split_load_pct as u64, 0, 10_000),
            ("split_windows", self.split_windows as u64, 1, 1_000),
            ("tables_per_shard_max", self.tables_per_shard_max as u64, 0, 10_000_000),
            ("shard_bytes_max", self.shard_bytes_max, 0, 1 << 50),
            ("merge_load_pct", self.merge_load_pct as u64, 0, 50),
            ("merge_window_ms", self.merge_window_ms, 1_000, 7 * 24 * 3_600_000),
            ("moves_in_per_node_per_min", self.moves_in_per_node_per_min as u64, 1, 100_000),
            ("moves_out_per_node_per_min", self.moves_out_per_node_per_min as u64, 1, 100_000),
            ("slow_ratio_pct", self.slow_ratio_pct as u64, 150, 10_000),
            ("slow_windows", self.slow_windows as u64, 1, 1_000),
            ("disk_high_water_pct", self.disk_high_water_pct as u64, 50, 99),
            ("cpu_weight_pct", self.cpu_weight_pct as u64, 0, 100),
        ];
        for (name, value, lo, hi) in bounded {
            if !(lo..=hi).contains(&value) {
                return Err(format!("{name} ({value}) is outside {lo}..={hi}"));
            }
        }
        Ok(())
    }

    /// Sets the setting named `key` (its field name) from `value`; `Err` names an unknown key
    /// or a value that does not parse. (Ranges are `validate`'s.)
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e| format!("{key}: {value:?} {e}"))
        }
        match key {
            "paused" => self.paused = parse(key, value)?,
            "overfull_pct" => self.overfull_pct = parse(key, value)?,
            "load_floor_units" => self.load_floor_units = parse(key, value)?,
            "moves_per_pass_max" => self.moves_per_pass_max = parse(key, value)?,
            "moves_per_node_per_pass_max" => self.moves_per_node_per_pass_max = parse(key, value)?,
            "moves_in_flight_max" => self.moves_in_flight_max = parse(key, value)?,
            "shard_cooldown_ms" => self.shard_cooldown_ms = parse(key, value)?,
            "pair_cooldown_ms" => self.pair_cooldown_ms = parse(key, value)?,
            "overfull_windows" => self.overfull_windows = parse(key, value)?,
            "shard_share_min_permille" => self.shard_share_min_permille = parse(key, value)?,
            "split_load_pct" => self.split_load_pct = parse(key, value)?,
            "split_floor_units" => self.split_floor_units = parse(key, value)?,
            "split_windows" => self.split_windows = parse(key, value)?,
            "tables_per_shard_max" => self.tables_per_shard_max = parse(key, value)?,
            "shard_bytes_max" => self.shard_bytes_max = parse(key, value)?,
            "merge_load_pct" => self.merge_load_pct = parse(key, value)?,
            "merge_window_ms" => self.merge_window_ms = parse(key, value)?,
            "moves_in_per_node_per_min" => self.moves_in_per_node_per_min = parse(key, value)?,
            "moves_out_per_node_per_min" => self.moves_out_per_node_per_min = parse(key, value)?,
            "slow_ratio_pct" => self.slow_ratio_pct = parse(key, value)?,
            "slow_windows" => self.slow_windows = parse(key, value)?,
            "disk_high_water_pct" => self.disk_high_water_pct = parse(key, value)?,
            "cpu_weight_pct" => self.cpu_weight_pct = parse(key, value)?,
            _ => {
                return Err(format!(
                    "unknown setting {key:?}; the settings are {}",
                    Self::KEYS.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// The names `set` takes.
    pub const KEYS: &'static [&'static str] = &[
        "paused",
        "overfull_pct",
        "load_floor_units",
        "moves_per_pass_max",
        "moves_per_node_per_pass_max",
        "moves_in_flight_max",
        "shard_cooldown_ms",
        "pair_cooldown_ms",
        "overfull_windows",
        "shard_share_min_permille",
        "split_load_pct",
        "split_floor_units",
        "split_windows",
        "tables_per_shard_max",
        "shard_bytes_max",
        "merge_load_pct",
        "merge_window_ms",
        "moves_in_per_node_per_min",
        "moves_out_per_node_per_min",
        "slow_ratio_pct",
        "slow_windows",
        "disk_high_water_pct",
        "cpu_weight_pct",
    ];

    /// How long a node must stand over (or under) a line before it sheds (or pulls), for
    /// load windows of `window_ms`.
    pub fn standing_needed(&self, window_ms: u64) -> crate::core::time::Duration {
        crate::core::time::Duration(window_ms.saturating_mul(self.overfull_windows as u64))
    }

    /// The overfull line as a multiple of the mean utilization.
    pub fn overfull_ratio(&self) -> f64 {
        1.0 + self.overfull_pct as f64 / 100.0
    }

    /// The overfull line of a node that took load for balance within the pair cooldown: twice
    /// as far over the mean (see the scheduler's rebalance).
    pub fn taker_overfull_ratio(&self) -> f64 {
        1.0 + self.overfull_pct as f64 / 50.0
    }

    /// Where an overfull node sheds to, and how full a move may make its target.
    pub fn settle_ratio(&self) -> f64 {
        1.0 + self.overfull_pct as f64 / 200.0
    }

    /// Below this multiple of the mean a node pulls load from nodes above the mean.
    pub fn pull_ratio(&self) -> f64 {
        (1.0 - self.overfull_pct as f64 / 100.0).max(0.0)
    }

    /// Below this multiple of the mean a node is underfull: a target for moves.
    pub fn underfull_ratio(&self) -> f64 {
        (1.0 - self.overfull_pct as f64 / 200.0).max(0.0)
    }
}

impl From<&SchedulerRecord> for SchedulerSettings {
    fn from(r: &SchedulerRecord) -> Self {
        let d = SchedulerSettings::default();
        SchedulerSettings {
            paused: r.paused,
            overfull_pct: r.overfull_pct,
            load_floor_units: r.load_floor_units,
            moves_per_pass_max: r.moves_per_pass_max,
            moves_per_node_per_pass_max: r.moves_per_node_per_pass_max,
            moves_in_flight_max: r.moves_in_flight_max,
            shard_cooldown_ms: r.shard_cooldown_ms,
            shard_share_min_permille: r.shard_share_min_permille,
            // Absent in records stored before splits were automatic: the defaults.
            split_load_pct: r.split_load_pct.unwrap_or(d.split_load_pct),
            split_floor_units: r.split_floor_units.unwrap_or(d.split_floor_units),
            split_windows: r.split_windows.unwrap_or(d.split_windows),
            tables_per_shard_max: r.tables_per_shard_max.unwrap_or(d.tables_per_shard_max),
            shard_bytes_max: r.shard_bytes_max.unwrap_or(d.shard_bytes_max),
            merge_load_pct: r.merge_load_pct.unwrap_or(d.merge_load_pct),
            merge_window_ms: r.merge_window_ms.unwrap_or(d.merge_window_ms),
            pair_cooldown_ms: r.pair_cooldown_ms.unwrap_or(d.pair_cooldown_ms),
            overfull_windows: r.overfull_windows.unwrap_or(d.overfull_windows),
            moves_in_per_node_per_min: r
                .moves_in_per_node_per_min
                .unwrap_or(d.moves_in_per_node_per_min),
            moves_out_per_node_per_min: r
                .moves_out_per_node_per_min
                .unwrap_or(d.moves_out_per_node_per_min),
            slow_ratio_pct: r.slow_ratio_pct.unwrap_or(d.slow_ratio_pct),
            slow_windows: r.slow_windows.unwrap_or(d.slow_windows),
            disk_high_water_pct: r.disk_high_water_pct.unwrap_or(d.disk_high_water_pct),
            cpu_weight_pct: r.cpu_weight_pct.unwrap_or(d.cpu_weight_pct),
        }
    }
}

impl From<&SchedulerSettings> for SchedulerRecord {
    fn from(s: &SchedulerSettings) -> Self {
        SchedulerRecord {
            paused: s.paused,
            overfull_pct: s.overfull_pct,
            load_floor_units: s.load_floor_units,
            moves_per_pass_max: s.moves_per_pass_max,
            moves_per_node_per_pass_max: s.moves_per_node_per_pass_max,
            moves_in_flight_max: s.moves_in_flight_max,
            shard_cooldown_ms: s.shard_cooldown_ms,
            shard_share_min_permille: s.shard_share_min_permille,
            split_load_pct: Some(s.split_load_pct),
            split_floor_units: Some(s.split_floor_units),
            split_windows: Some(s.split_windows),
            tables_per_shard_max: Some(s.tables_per_shard_max),
            shard_bytes_max: Some(s.shard_bytes_max),
            merge_load_pct: Some(s.merge_load_pct),
            merge_window_ms: Some(s.merge_window_ms),
            pair_cooldown_ms: Some(s.pair_cooldown_ms),
            overfull_windows: Some(s.overfull_windows),
            moves_in_per_node_per_min: Some(s.moves_in_per_node_per_min),
            moves_out_per_node_per_min: Some(s.moves_out_per_node_per_min),
            slow_ratio_pct: Some(s.slow_ratio_pct),
            slow_windows: Some(s.slow_windows),
            disk_high_water_pct: Some(s.disk_high_water_pct),
            cpu_weight_pct: Some(s.cpu_weight_pct),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused_by_name() {
        SchedulerSettings::default().validate().unwrap();
        let nan = SchedulerSettings { load_floor_units: f64::NAN, ..Default::default() };
        assert!(nan.validate().unwrap_err().contains("load_floor_units"));
        let inf = SchedulerSettings { split_floor_units: f64::INFINITY, ..Default::default() };
        assert!(inf.validate().unwrap_err().contains("split_floor_units"));
        let zero = SchedulerSettings { moves_in_flight_max: 0, ..Default::default() };
        assert!(zero.validate().unwrap_err().contains("moves_in_flight_max"));
    }

    #[test]
    fn a_record_stored_before_the_split_settings_reads_with_their_defaults() {
        let old = SchedulerRecord {
            split_load_pct: None,
            split_floor_units: None,
            split_windows: None,
            tables_per_shard_max: None,
            shard_bytes_max: None,
            merge_load_pct: None,
            merge_window_ms: None,
            ..SchedulerRecord::from(&SchedulerSettings { paused: true, ..Default::default() })
        };
        assert_eq!(
            SchedulerSettings::from(&old),
            SchedulerSettings { paused: true, ..Default::default() }
        );
    }

    #[test]
    fn every_setting_is_set_by_its_name_and_nonsense_is_refused() {
        let mut s = SchedulerSettings::default();
        for (key, value) in SchedulerSettings::KEYS.iter().zip([
            "true", "7", "12.5", "3", "2", "5", "99", "300000", "5", "4", "150", "500", "2",
            "1000", "4096", "20", "60000", "12", "9", "300", "5", "90", "25",
        ]) {
            s.set(key, value).unwrap();
        }
        let want = SchedulerSettings {
            paused: true,
            overfull_pct: 7,
            load_floor_units: 12.5,
            moves_per_pass_max: 3,
            moves_per_node_per_pass_max: 2,
            moves_in_flight_max: 5,
            shard_cooldown_ms: 99,
            pair_cooldown_ms: 300_000,
            overfull_windows: 5,
            shard_share_min_permille: 4,
            split_load_pct: 150,
            split_floor_units: 500.0,
            split_windows: 2,
            tables_per_shard_max: 1_000,
            shard_bytes_max: 4_096,
            merge_load_pct: 20,
            merge_window_ms: 60_000,
            moves_in_per_node_per_min: 12,
            moves_out_per_node_per_min: 9,
            slow_ratio_pct: 300,
            slow_windows: 5,
            disk_high_water_pct: 90,
            cpu_weight_pct: 25,
        };
        assert_eq!(s, want);
        assert!(s.set("tolerance", "1").unwrap_err().contains("unknown setting"));
        assert!(s.set("overfull_pct", "ten").unwrap_err().contains("overfull_pct"));
    }
}
