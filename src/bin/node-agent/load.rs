//! Synthetic load that can be changed while the agent runs: a TOML file, read again whenever
//! it changes. Give every agent the same file and a shard reports the same load whichever node
//! leads it, as a real shard's traffic would.
//!
//! ```toml
//! per_shard = 10.0          # units per second (write units) each led shard reports
//! [shards]                  # overrides, by shard id
//! 3 = 400.0
//! [hot_spot]                # shards first..=last run `factor` times hotter
//! first = 0
//! last = 3
//! factor = 20.0
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use shardmeta::core::{ShardId, ShardLoad};

/// The most a synthetic shard may report, units per second (meta clamps above 1e12 anyway).
const UNITS_MAX: f64 = 1e9;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    pub per_shard: f64,
    #[serde(default)]
    pub shards: BTreeMap<u32, f64>,
    pub hot_spot: Option<HotSpot>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HotSpot {
    pub first: u32,
    pub last: u32,
    pub factor: f64,
}

impl LoadSpec {
    pub fn flat(per_shard: f64) -> LoadSpec {
        LoadSpec { per_shard, shards: BTreeMap::new(), hot_spot: None }
    }

    pub fn parse(text: &str) -> Result<LoadSpec, String> {
        let spec: LoadSpec = toml::from_str(text).map_err(|e| e.to_string())?;
        let bad = |what: String, v: f64| (!(v.is_finite() && (0.0..=UNITS_MAX).contains(&v))).then(|| format!("{what} = {v} is outside 0..={UNITS_MAX}"));
        let mut problems = vec![bad("per_shard".into(), spec.per_shard)];
        problems.extend(spec.shards.iter().map(|(s, &v)| bad(format!("shards.{s}"), v)));
        if let Some(h) = &spec.hot_spot {
            problems.push(bad("hot_spot.factor".into(), h.factor));
            problems.push((h.first > h.last).then(|| format!("hot_spot.first ({}) is after hot_spot.last ({})", h.first, h.last)));
        }
        match problems.into_iter().flatten().next() {
            Some(p) => Err(p),
            None => Ok(spec),
        }
    }

    pub fn load(&self, shard: ShardId) -> ShardLoad {
        let base = self.shards.get(&shard.0).copied().unwrap_or(self.per_shard);
        let factor = self.hot_spot.as_ref().filter(|h| (h.first..=h.last).contains(&shard.0)).map_or(1.0, |h| h.factor);
        ShardLoad { write_units: (base * factor).min(UNITS_MAX), ..Default::default() }
    }
}

/// The spec in force, shared with the heartbeat loop.
pub type Shared = Arc<RwLock<LoadSpec>>;

/// Reads `path` now (a bad file is an error) and again each second when it changed; a bad
/// change is logged and the spec in force is kept.
pub fn watch(path: PathBuf) -> Result<Shared, String> {
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
        let units = |s| spec.load(ShardId(s)).write_units;
        assert_eq!((units(0), units(1), units(2), units(3)), (200.0, 200.0, 10.0, 400.0));
        assert!(LoadSpec::parse("per_shard = -1.0").unwrap_err().contains("per_shard"));
        assert!(LoadSpec::parse("per_shard = nan").unwrap_err().contains("per_shard"));
        assert!(LoadSpec::parse("per_shard = 1.0\nhot = 3").is_err(), "unknown keys are refused");
        assert!(LoadSpec::parse("per_shard = 1.0\n[hot_spot]\nfirst = 5\nlast = 1\nfactor = 2.0").unwrap_err().contains("first"));
    }
}
