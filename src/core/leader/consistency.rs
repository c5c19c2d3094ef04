//! [`Leader::check_consistency`]: every derived index and counter the leader keeps, rebuilt from the
//! catalog and the intent and compared with what it holds. The live state updates these
//! incrementally on every decision and landing; a missed or doubled update would go unnoticed
//! until a placement or failover went wrong far from its cause. The core runs this after every
//! input in debug builds (every test and simulator), so a broken update trips next to its cause.

use super::Leader;

/// How much of the catalog one input's check may walk, in shards and in tables. A larger
/// catalog is checked in full every so many inputs instead ([`Leader::consistency_period`]), so
/// that the check costs about the same per input at any scale, and a cluster of a million shards
/// (the benchmarks, run as tests too) is checked as well, only less often.
pub(super) const CHECK_SHARDS_PER_INPUT: usize = 4_096;
pub(super) const CHECK_TABLES_PER_INPUT: usize = 1_000;

impl Leader {
    /// Every how many inputs [`Leader::check_consistency`] runs: 1 while the catalog is within
    /// the per-input walk, and in proportion past it.
    pub fn consistency_period(&self) -> u64 {
        let shards: usize = self.clusters.values().map(|live| live.leases().len()).sum();
        let tables: usize = self.catalog.clusters.values().map(|c| c.tables.len()).sum();
        let period =
            shards.div_ceil(CHECK_SHARDS_PER_INPUT).max(tables.div_ceil(CHECK_TABLES_PER_INPUT));
        period.max(1) as u64
    }

    /// `Err` names the first derived value that disagrees with its source.
    pub fn check_consistency(&self) -> Result<(), String> {
        if self.clusters.len() != self.catalog.clusters.len() {
            return Err(format!(
                "{} live cluster states for {} clusters",
                self.clusters.len(),
                self.catalog.clusters.len()
            ));
        }
        if let Some(e) = self.catalog.integrity_error() {
            return Err(format!("the catalog lost its integrity: {e}"));
        }
        for (id, cluster) in &self.catalog.clusters {
            let live =
                self.clusters.get(id).ok_or_else(|| format!("cluster {id} has no live state"))?;
            live.check_consistency(cluster).map_err(|e| format!("cluster {id}: {e}"))?;
        }
        Ok(())
    }
}
