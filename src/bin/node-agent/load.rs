//! Synthetic load that can be changed while the agent runs: a TOML file, read again whenever
//! it changes. Give every agent the same file and a shard reports the same load whichever node
//! leads it, as a real shard's traffic would.
//!
//! ```toml
//! per_shard = 10.0          # units per second (write units) each led shard reports
//! [shards]                  # overrides, by shard id
//! 3 = 400.0
//! [tables]                  # load of single tables, by table id, added to their shard's
//! 1042 = 300.0
//! [hot_spot]                # shards first..=last run `factor` times hotter
//! first = 0
//! last = 3
//! factor = 20.0
//! [request_latency_ms]      # the request latency a node reports, by node name (none: 0)
//! n2 = 400.0
//! cpu_ms_per_unit = 0.5     # CPU ms each unit costs (default 0: no CPU time reported)
//! [cpu_ms]                  # CPU ms per second, by shard id, instead of its units' cost
//! 5 = 900.0
//! [disk_gib]                # the disk a node declares, by node name (none: not declared)
//! n3 = { capacity = 100.0, used = 92.0 }
//! ```
//!
//! A shard's own load is spread evenly over its tables, and each table's own load is added to
//! its share; the shard reports the total and its busiest tables, so that a table made hot here
//! shows as the shard's busiest in `metactl shard list`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use shardmeta::client::LoadSource;
use shardmeta::core::{ShardId, ShardLoad, TableId, TableLoad, TOP_TABLES_PER_SHARD};

/// The most a synthetic shard may report, units per second (meta clamps above 1e12 anyway).
const UNITS_MAX: f64 = 1e9;

/// The longest request latency a node may be given, in ms (meta clamps above 10 minutes).
const LATENCY_MS_MAX: f64 = 600_000.0;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoadSpec {
    pub per_shard: f64,
    #[serde(default)]
    pub shards: BTreeMap<u32, f64>,
    #[serde(default)]
    pub tables: BTreeMap<u64, f64>,
    pub hot_spot: Option<HotSpot>,
    #[serde(default)]
    pub request_latency_ms: BTreeMap<String, f64>,
    #[serde(default)]
    pub cpu_ms_per_unit: f64,
    #[serde(default)]
    pub cpu_ms: BTreeMap<u32, f64>,
    #[serde(default)]
    pub disk_gib: BTreeMap<String, Disk>,
}

/// A node's disk, in GiB.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Disk {
    pub capacity: f64,
    pub used: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct HotSpot {
    pub first: u32,
    pub last: u32,
    pub factor: f64,
}

impl LoadSpec {
    pub(crate) fn flat(per_shard: f64) -> LoadSpec {
        LoadSpec {
            per_shard,
            shards: BTreeMap::new(),
            tables: BTreeMap::new(),
            hot_spot: None,
            request_latency_ms: BTreeMap::new(),
            cpu_ms_per_unit: 0.0,
            cpu_ms: BTreeMap::new(),
            disk_gib: BTreeMap::new(),
        }
    }

    pub(crate) fn parse(text: &str) -> Result<LoadSpec, String> {
        let spec: LoadSpec = toml::from_str(text).map_err(|e| e.to_string())?;
        let bad = |what: String, v: f64| {
            (!(v.is_finite() && (0.0..=UNITS_MAX).contains(&v)))
                .then(|| format!("{what} = {v} is outside 0..={UNITS_MAX}"))
        };
        let mut problems = vec![bad("per_shard".into(), spec.per_shard)];
        problems.extend(spec.shards.iter().map(|(s, &v)| bad(format!("shards.{s}"), v)));
        problems.extend(spec.tables.iter().map(|(t, &v)| bad(format!("tables.{t}"), v)));
        problems.extend(spec.request_latency_ms.iter().map(|(n, &v)| {
            (!(v.is_finite() && (0.0..=LATENCY_MS_MAX).contains(&v)))
                .then(|| format!("request_latency_ms.{n} = {v} is outside 0..={LATENCY_MS_MAX}"))
        }));
        problems.push(bad("cpu_ms_per_unit".into(), spec.cpu_ms_per_unit));
        problems.extend(spec.cpu_ms.iter().map(|(s, &v)| bad(format!("cpu_ms.{s}"), v)));
        problems.extend(spec.disk_gib.iter().flat_map(|(n, d)| {
            let over = (d.used > d.capacity).then(|| {
                format!("disk_gib.{n}: used ({}) is over capacity ({})", d.used, d.capacity)
            });
            [
                bad(format!("disk_gib.{n}.capacity"), d.capacity),
                bad(format!("disk_gib.{n}.used"), d.used),
                over,
            ]
        }));
        if let Some(h) = &spec.hot_spot {
            problems.push(bad("hot_spot.factor".into(), h.factor));
            problems.push((h.first > h.last).then(|| {
                format!("hot_spot.first ({}) is after hot_spot.last ({})", h.first, h.last)
            }));
        }
        match problems.into_iter().flatten().next() {
            Some(p) => Err(p),
            None => Ok(spec),
        }
    }

    /// The hot-spot factor of a shard.
    fn factor(&self, shard: ShardId) -> f64 {
        self.hot_spot
            .as_ref()
            .filter(|h| (h.first..=h.last).contains(&shard.0))
            .map_or(1.0, |h| h.factor)
    }

    /// Each table's load in the shard: its share of the shard's own load plus its own.
    fn table_loads<'a>(
        &'a self,
        shard: ShardId,
        tables: &'a BTreeSet<TableId>,
    ) -> impl Iterator<Item = (TableId, f64)> + 'a {
        let base = self.shards.get(&shard.0).copied().unwrap_or(self.per_shard);
        let share = base / tables.len().max(1) as f64;
        let factor = self.factor(shard);
        tables.iter().map(move |&t| {
            (t, ((share + self.tables.get(&t.0).copied().unwrap_or(0.0)) * factor).min(UNITS_MAX))
        })
    }

    pub(crate) fn load(&self, shard: ShardId, tables: &BTreeSet<TableId>) -> ShardLoad {
        let base = self.shards.get(&shard.0).copied().unwrap_or(self.per_shard);
        let own: f64 = tables.iter().filter_map(|t| self.tables.get(&t.0)).sum();
        let write_units = ((base + own) * self.factor(shard)).min(UNITS_MAX);
        let cpu_ms = match self.cpu_ms.get(&shard.0) {
            Some(&ms) => ms,
            None => (write_units * self.cpu_ms_per_unit).min(UNITS_MAX),
        };
        ShardLoad { write_units, cpu_ms, ..Default::default() }
    }

    /// The shard's busiest tables, busiest first (lowest id first among equals).
    pub(crate) fn busiest(
        &self,
        shard: ShardId,
        tables: &BTreeSet<TableId>,
        out: &mut Vec<TableLoad>,
    ) {
        let mut loads: Vec<(TableId, f64)> = self.table_loads(shard, tables).collect();
        loads.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.extend(loads.into_iter().take(TOP_TABLES_PER_SHARD).map(|(table, units)| TableLoad {
            shard,
            table,
            read_units: 0.0,
            write_units: units,
        }));
    }
}

/// The spec in force as the heartbeat loop's load source. Its figures are sampled afresh at
/// every heartbeat, and its sample counter says so: the same figures from a spec that did not
/// change are not frozen stats.
pub(crate) struct Synthetic {
    spec: Shared,
    samples: AtomicU64,
    /// This node's name, which picks its request latency out of the spec.
    node: String,
}

impl Synthetic {
    pub(crate) fn new(spec: Shared, node: String) -> Synthetic {
        Synthetic { spec, samples: AtomicU64::new(0), node }
    }
}

impl LoadSource for Synthetic {
    fn shard_load(&self, shard: ShardId, tables: &BTreeSet<TableId>) -> ShardLoad {
        self.spec.read().expect("load lock").load(shard, tables)
    }

    fn busiest_tables(&self, shard: ShardId, tables: &BTreeSet<TableId>, out: &mut Vec<TableLoad>) {
        self.spec.read().expect("load lock").busiest(shard, tables, out)
    }

    fn stats_sample(&self) -> u64 {
        self.samples.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn request_latency_us(&self) -> u32 {
        let spec = self.spec.read().expect("load lock");
        let ms = spec.request_latency_ms.get(&self.node).copied().unwrap_or(0.0);
        (ms * 1_000.0) as u32
    }

    fn disk_bytes(&self) -> [u64; 2] {
        let spec = self.spec.read().expect("load lock");
        let gib = |x: f64| (x * (1u64 << 30) as f64) as u64;
        spec.disk_gib.get(&self.node).map_or([0, 0], |d| [gib(d.capacity), gib(d.used)])
    }
}

/// The spec in force, shared with the heartbeat loop.
pub(crate) type Shared = Arc<RwLock<LoadSpec>>;

/// Reads `path` now (a bad file is an error) and again each second when it changed; a bad
/// change is logged and the spec in force is kept.
pub(crate) fn watch(path: PathBuf) -> Result<Shared, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let spec = LoadSpec::parse(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let shared = Arc::new(RwLock::new(spec));
    let updated = shared.clone();
    tokio::spawn(async move {
        let mut last = modified(&path);
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let now = modified(&path);
            if now == last {
                continue;
            }
            last = now;
            match read(&path).and_then(|t| LoadSpec::parse(&t)) {
                Ok(spec) => {
                    tracing::info!(file = %path.display(), ?spec, "synthetic load changed");
                    *updated.write().expect("load lock") = spec;
                }
                Err(e) => tracing::warn!(file = %path.display(), "synthetic load not changed: {e}"),
            }
        }
    });
    Ok(shared)
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_a_hot_spot_shape_the_load_and_nonsense_is_refused() {
        let spec = LoadSpec::parse("per_shard = 10.0\n[shards]\n3 = 400.0\n[hot_spot]\nfirst = 0\nlast = 1\nfactor = 20.0\n").unwrap();
        let none = BTreeSet::new();
        let units = |s| spec.load(ShardId(s), &none).write_units;
        assert_eq!((units(0), units(1), units(2), units(3)), (200.0, 200.0, 10.0, 400.0));
        assert!(LoadSpec::parse("per_shard = -1.0").unwrap_err().contains("per_shard"));
        assert!(LoadSpec::parse("per_shard = nan").unwrap_err().contains("per_shard"));
        assert!(LoadSpec::parse("per_shard = 1.0\nhot = 3").is_err(), "unknown keys are refused");
        assert!(LoadSpec::parse("per_shard = 1.0\n[hot_spot]\nfirst = 5\nlast = 1\nfactor = 2.0")
            .unwrap_err()
            .contains("first"));
        assert!(LoadSpec::parse("per_shard = 1.0\n[tables]\n4 = inf")
            .unwrap_err()
            .contains("tables.4"));
        assert!(LoadSpec::parse(
            "per_shard = 1.0\n[disk_gib]\nn1 = { capacity = 10.0, used = 11.0 }"
        )
        .unwrap_err()
        .contains("over capacity"));
        assert!(LoadSpec::parse("per_shard = 1.0\ncpu_ms_per_unit = -2.0")
            .unwrap_err()
            .contains("cpu_ms_per_unit"));
    }

    #[test]
    fn the_shipped_load_file_parses_and_takes_the_readmes_appended_tables() {
        let shipped = include_str!("../../../config/load.toml");
        let spec = LoadSpec::parse(shipped).unwrap();
        assert_eq!((spec.per_shard, spec.cpu_ms_per_unit), (100.0, 0.0));
        // The README's walk-through edits and appends to it.
        let edited = shipped.replace("cpu_ms_per_unit = 0.0", "cpu_ms_per_unit = 0.5")
            + "[request_latency_ms]\nn3 = 400.0\n[cpu_ms]\n0 = 400.0\n";
        let spec = LoadSpec::parse(&edited).unwrap();
        assert_eq!((spec.cpu_ms_per_unit, spec.cpu_ms.get(&0).copied()), (0.5, Some(400.0)));
    }

    #[test]
    fn cpu_time_follows_units_unless_a_shard_says_otherwise_and_disks_are_by_node() {
        let spec = LoadSpec::parse(
            "per_shard = 10.0\ncpu_ms_per_unit = 0.5\n[cpu_ms]\n2 = 90.0\n[disk_gib]\nn1 = { capacity = 2.0, used = 1.0 }\n",
        )
        .unwrap();
        let none = BTreeSet::new();
        assert_eq!(spec.load(ShardId(1), &none).cpu_ms, 5.0);
        assert_eq!(spec.load(ShardId(2), &none).cpu_ms, 90.0);
        let shared = Arc::new(RwLock::new(spec));
        let n1 = Synthetic::new(shared.clone(), "n1".into());
        assert_eq!(n1.disk_bytes(), [2 << 30, 1 << 30]);
        assert_eq!(Synthetic::new(shared, "n2".into()).disk_bytes(), [0, 0]);
    }

    #[test]
    fn a_hot_table_adds_to_its_shard_and_heads_its_busiest_list() {
        let spec = LoadSpec::parse("per_shard = 30.0\n[tables]\n12 = 100.0\n").unwrap();
        let tables: BTreeSet<TableId> = (10..13).map(TableId).collect();
        assert_eq!(spec.load(ShardId(0), &tables).write_units, 130.0);
        let mut out = Vec::new();
        spec.busiest(ShardId(0), &tables, &mut out);
        let listed: Vec<(u64, f64)> = out.iter().map(|t| (t.table.0, t.write_units)).collect();
        assert_eq!(listed, vec![(12, 110.0), (10, 10.0), (11, 10.0)]);
        let many: BTreeSet<TableId> = (0..50).map(TableId).collect();
        out.clear();
        spec.busiest(ShardId(0), &many, &mut out);
        assert_eq!(out.len(), TOP_TABLES_PER_SHARD);
    }
}
