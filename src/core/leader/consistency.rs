//! [`Leader::check_consistency`]: every derived index and counter the leader keeps, rebuilt from the
//! catalog and the intent and compared with what it holds. The live state updates these
//! incrementally on every decision and landing; a missed or doubled update would go unnoticed
//! until a placement or failover went wrong far from its cause. The core runs this after every
//! input in debug builds (every test and simulator), so a broken update trips next to its cause.

use super::Leader;

/// Above this many shards in all, [`Leader::check_consistency`] checks nothing: the check walks every
/// shard and node, which at a million shards (the benchmarks, run as tests too) costs far more
/// than the input it follows. Simulators and tests run clusters far below it.
pub(super) const VALIDATE_SHARDS_MAX: usize = 4_096;

/// Above this many tables in all, [`Leader::check_consistency`] leaves the catalog's own integrity
/// unchecked (it walks every table); the derived indexes are still checked.
pub(super) const VALIDATE_TABLES_MAX: usize = 10_000;

impl Leader {
    /// `Err` names the first derived value that disagrees with its source.
    pub fn check_consistency(&self) -> Result<(), String> {
        if self.clusters.values().map(|live| live.leases().len()).sum::<usize>()
            > VALIDATE_SHARDS_MAX
        {
            return Ok(());
        }
        if self.clusters.len() != self.catalog.clusters.len() {
            return Err(format!(
                "{} live cluster states for {} clusters",
                self.clusters.len(),
                self.catalog.clusters.len()
            ));
        }
        if self.catalog.clusters.values().map(|c| c.tables.len()).sum::<usize>()
            <= VALIDATE_TABLES_MAX
        {
            if let Some(e) = self.catalog.integrity_error() {
                return Err(format!("the catalog lost its integrity: {e}"));
            }
        }
        for (id, cluster) in &self.catalog.clusters {
            let live =
                self.clusters.get(id).ok_or_else(|| format!("cluster {id} has no live state"))?;
            live.check_consistency(cluster).map_err(|e| format!("cluster {id}: {e}"))?;
        }
        Ok(())
    }
}
