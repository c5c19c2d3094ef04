//! A what-if: scheduling passes run on a copy of one cluster, each pass's moves landed in the
//! copy at once, until a pass has nothing left to do. Time steps a lease (and the drift
//! allowance) a pass, so that every lease a move waits on has run out and the move budgets
//! refill as they would; nodes keep whatever liveness the change gave them (no heartbeat
//! arrives). Balance is paused: what is counted is what the change itself forces.

use super::{Move, MoveReason, Planner};
use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::live::LiveCluster;
use crate::core::model::{ClusterCatalog, Mutation};
use crate::core::settings::SchedulerSettings;
use crate::core::time::{Duration, Instant};

/// The most passes a rehearsal runs: a change that has not settled by then says so.
pub const PASSES_MAX: u32 = 2_000;

/// The moves described in a report, the first ones.
pub const DESCRIBED_MAX: usize = 20;

/// What the passes did, and the copy as they left it.
pub struct Rehearsal {
    /// The cluster once the passes settled (or stopped at [`PASSES_MAX`]).
    pub catalog: ClusterCatalog,
    /// Leader moves: promotions, transfers started, reopens.
    pub leader_moves: u32,
    /// Replicas opened on a node that held none of the shard: data copied.
    pub replicas_copied: u32,
    /// How long it took at the move budgets, a lease a pass.
    pub took: Duration,
    /// Whether a pass found nothing left to do.
    pub settled: bool,
    /// The first moves, as the event log would say them.
    pub described: Vec<String>,
}

/// Runs passes over `catalog` and `live` (copies: the caller's change already in them).
pub fn rehearse(
    mut catalog: ClusterCatalog,
    mut live: LiveCluster,
    start: Instant,
    config: &CoreConfig,
) -> Rehearsal {
    live.set_settings(SchedulerSettings { paused: true, ..*live.settings() });
    let step = Duration(config.lease_ms + config.clock_drift_ms + 1);
    let config = CoreConfig { planted_bug: None, ..config.clone() };
    let mut now = start;
    let mut tally = Tally::default();
    let mut settled = false;
    for _ in 0..PASSES_MAX {
        now = now + step;
        let moves = Planner::new(&catalog, &mut live, now, &config).plan();
        if moves.is_empty() {
            settled = true;
            break;
        }
        for m in moves {
            tally.count(&catalog, &m);
            land(&mut catalog, m);
        }
        live.reset_intent(&catalog, now, &config);
        tally.took = now.saturating_since(start);
    }
    Rehearsal {
        catalog,
        leader_moves: tally.leader_moves,
        replicas_copied: tally.replicas_copied,
        took: tally.took,
        settled,
        described: tally.described,
    }
}

/// The moves counted so far.
#[derive(Default)]
struct Tally {
    leader_moves: u32,
    replicas_copied: u32,
    took: Duration,
    described: Vec<String>,
}

impl Tally {
    fn count(&mut self, catalog: &ClusterCatalog, m: &Move) {
        let before = catalog.shard(ShardId(m.record.id));
        let copied = m.record.replicas().filter(|n| !before.replicas().any(|o| o == *n)).count();
        self.replicas_copied += copied as u32;
        let leads = matches!(
            m.reason,
            MoveReason::PromoteFollower | MoveReason::ReopenElsewhere | MoveReason::StartTransfer
        );
        self.leader_moves += u32::from(leads);
        if self.described.len() < DESCRIBED_MAX && m.reason != MoveReason::FinishTransfer {
            self.described.push(m.describe(catalog, before.leader));
        }
    }
}

/// The move's writes, as if they had landed.
fn land(catalog: &mut ClusterCatalog, m: Move) {
    let cid = catalog.id();
    let writes = m.writes.into_iter().chain([Mutation::PutShard(cid, m.record)]);
    for w in writes {
        // Ids the copy allocates (a transfer's procedure) are the live state's own.
        if let Err(e) = catalog.apply(w) {
            debug_assert!(false, "a rehearsed write does not apply: {e}");
        }
    }
}
