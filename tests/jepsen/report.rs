//! What a run measured, and the report over many runs: availability per fault kind against the
//! issue's goals.

use std::collections::BTreeMap;
use std::time::Duration;

use super::history::{Kind, Op, Outcome as OpOutcome};
use super::nemesis::{Fault, Mix};
use super::process::ddl::longest_gap;

/// One fault's window, and what the logs counted from its start to the next fault's.
pub struct WindowStats {
    pub fault: Fault,
    pub target: String,
    pub from: Duration,
    pub to: Duration,
    /// The end of the quiet after the heal.
    pub until: Duration,
    pub elections: usize,
    /// Of those, the elections that followed etcd's revoking the meta leader's lease when its
    /// own paused leader resumed (etcd-io/etcd#15247): no client can keep a lease through that.
    pub old_etcd_leader_revoked: usize,
    pub unknown: usize,
    pub redirects_max: usize,
    pub refused: Option<String>,
    /// Shard-milliseconds without a leased leader, where only the meta leader was at fault.
    pub unleased: Option<Unleased>,
}

/// Shard-milliseconds without a leased leader through a window, split by whether the shard was
/// leased when the fault began.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unleased {
    /// Shards that held a lease when the fault began and lost it: the goal is none.
    pub lost_ms: u64,
    /// Shards already without one then (a transfer under way, a dead node's lease running out),
    /// whose wait the fault may have stretched.
    pub already_ms: u64,
    /// Planned handoffs during the window (a transfer's old leader let go until its new one
    /// held the lease; see `handoff_spans`), of shards that were leased when it began.
    pub handoff_ms: u64,
}

impl Unleased {
    fn add(&mut self, other: &Unleased) {
        self.lost_ms += other.lost_ms;
        self.already_ms += other.already_ms;
        self.handoff_ms += other.handoff_ms;
    }

    /// The two kinds besides lost leases, in seconds, if any.
    fn besides(&self) -> String {
        let mut parts = Vec::new();
        if self.handoff_ms > 0 {
            parts.push(format!("{:.1} in handoffs", self.handoff_ms as f64 / 1000.0));
        }
        if self.already_ms > 0 {
            parts.push(format!("{:.1} already unleased", self.already_ms as f64 / 1000.0));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" (+{})", parts.join(", +"))
        }
    }
}

impl WindowStats {
    /// A goal of the report missed in this window: a meta election while only one etcd member
    /// was down, or a lease lost while only the meta leader was hit.
    pub fn missed_goal(&self) -> bool {
        (self.fault.one_etcd_member() && self.elections > self.old_etcd_leader_revoked)
            || self.unleased.is_some_and(|u| u.lost_ms > 0)
    }

    pub fn line(&self) -> String {
        let refused = self.refused.as_deref().map_or(String::new(), |r| {
            format!(", refused: {}", r.chars().take(120).collect::<String>())
        });
        let unleased = self
            .unleased
            .map_or(String::new(), |u| format!(", {} shard-ms unleased{}", u.lost_ms, u.besides()));
        let revoked = match self.old_etcd_leader_revoked {
            0 => String::new(),
            n => format!(" ({n} after the resumed etcd leader revoked the lease: etcd#15247)"),
        };
        format!(
            "  {:6.1} s  {} on {} for {:.1} s: {} elections{revoked}, {} unknown storage outcomes, at most {} redirects per node{unleased}{refused}",
            self.from.as_secs_f64(),
            self.fault.name(),
            self.target,
            (self.to - self.from).as_secs_f64(),
            self.elections,
            self.unknown,
            self.redirects_max
        )
    }
}

pub struct Outcome {
    pub mix: Mix,
    pub seed: u64,
    pub seconds: u64,
    pub ops: Vec<Op>,
    pub writes_accepted: u64,
    pub watch_streams: usize,
    pub watch_resyncs: usize,
    pub watch_changes: usize,
    pub convergence: Duration,
    pub windows: Vec<WindowStats>,
    pub violations: Vec<String>,
    pub elections: usize,
    /// For every lease ended early, the time until the shard's next lease (see `handoff_gaps_ms`).
    pub handoff_gaps_ms: Vec<u64>,
}

impl Outcome {
    /// Per second of the run, whether a create, drop or alter was acknowledged in it.
    fn served(&self) -> Vec<bool> {
        let mut slots = vec![false; self.seconds as usize + 1];
        for op in self
            .ops
            .iter()
            .filter(|o| o.kind != Kind::Read && matches!(o.outcome, OpOutcome::Ok { .. }))
        {
            if let Some(s) = slots.get_mut((op.completed / 1_000_000) as usize) {
                *s = true;
            }
        }
        slots
    }

    pub fn summary(&self) -> String {
        let count = |f: &dyn Fn(&Op) -> bool| self.ops.iter().filter(|o| f(o)).count();
        let acked = count(&|o| o.kind != Kind::Read && matches!(o.outcome, OpOutcome::Ok { .. }));
        let unknown = count(&|o| o.outcome == OpOutcome::Unknown);
        let served = self.served();
        format!(
            "{} seed {}: {} s, {} faults, {} DDL requests ({acked} writes acknowledged, {unknown} unknown), {} data writes accepted, DDL in {} of {} s, {} meta elections, route watch: {} streams, {} resyncs, {} changes; converged {:.1} s after the last heal; {} violations",
            self.mix.name(),
            self.seed,
            self.seconds,
            self.windows.len(),
            self.ops.len(),
            self.writes_accepted,
            served.iter().filter(|s| **s).count(),
            served.len(),
            self.elections,
            self.watch_streams,
            self.watch_resyncs,
            self.watch_changes,
            self.convergence.as_secs_f64(),
            self.violations.len()
        )
    }
}

#[derive(Default)]
struct FaultRow {
    windows: usize,
    slots: usize,
    served: usize,
    longest_gap: usize,
    elections: usize,
    old_etcd_leader_revoked: usize,
    unknown: usize,
    redirects_max: usize,
    refused: usize,
    unleased: Option<Unleased>,
}

#[derive(Default)]
struct MixRow {
    runs: usize,
    seconds: u64,
    served: usize,
    slots: usize,
    violations: usize,
    acked: usize,
    unknown: usize,
    convergence_max: Duration,
    faults: BTreeMap<Fault, FaultRow>,
    handoff_gaps_ms: Vec<u64>,
}

impl MixRow {
    /// The goals, each with what was measured against it.
    fn goals(&self) -> String {
        let rows =
            |f: fn(Fault) -> bool| self.faults.iter().filter(move |(k, _)| f(**k)).map(|(_, r)| r);
        let mark = |ok: bool| if ok { "met" } else { "NOT met" };
        let mut out = String::from("\n");
        out.push_str(&format!(
            "- lost acknowledgements, overlapping tenures, route watch faults: {} ({})\n",
            self.violations,
            mark(self.violations == 0)
        ));
        if rows(Fault::one_etcd_member).next().is_some() {
            let revoked: usize =
                rows(Fault::one_etcd_member).map(|r| r.old_etcd_leader_revoked).sum();
            let elections =
                rows(Fault::one_etcd_member).map(|r| r.elections).sum::<usize>() - revoked;
            let unknown: usize = rows(Fault::one_etcd_member).map(|r| r.unknown).sum();
            out.push_str(&format!("- one etcd member down, quorum kept: {elections} meta elections, {unknown} unknown storage outcomes (goal 0: {})", mark(elections == 0)));
            if revoked > 0 {
                out.push_str(&format!("; besides, {revoked} after etcd's own leader was paused and, resumed, revoked the meta leader's lease (etcd-io/etcd#15247, fixed in etcd 3.4.30 and 3.5.11)"));
            }
            out.push('\n');
        }
        if rows(Fault::deposes_leader).next().is_some() {
            let gap = rows(Fault::deposes_leader).map(|r| r.longest_gap).max().unwrap_or(0);
            out.push_str(&format!(
                "- meta leader deposed: longest DDL gap {gap} s (goal at most TTL + 1 = 6 s: {})\n",
                mark(gap <= 6)
            ));
            let unleased: Vec<Unleased> =
                rows(Fault::deposes_leader).filter_map(|r| r.unleased).collect();
            if !unleased.is_empty() {
                let mut sum = Unleased::default();
                unleased.iter().for_each(|u| sum.add(u));
                out.push_str(&format!(
                    "- shards that held a lease when only the meta leader was hit and lost it: {:.1} shard-seconds (goal 0: {}); besides, planned handoffs took {:.1} and shards already without a lease then waited {:.1}\n",
                    sum.lost_ms as f64 / 1000.0,
                    mark(sum.lost_ms == 0),
                    sum.handoff_ms as f64 / 1000.0,
                    sum.already_ms as f64 / 1000.0
                ));
            }
        }
        let hops = self.faults.values().map(|r| r.redirects_max).max().unwrap_or(0);
        out.push_str(&format!(
            "- most redirects one node followed through one fault: {hops} (goal at most 3: {})\n",
            mark(hops <= 3)
        ));
        let (served, slots) =
            rows(|f| !f.deposes_leader()).fold((0, 0), |(s, n), r| (s + r.served, n + r.slots));
        let share = 100.0 * served as f64 / slots.max(1) as f64;
        out.push_str(&format!("- DDL while a fault that leaves the meta leader in place is on: {served} of {slots} slots, {share:.1}% (goal at least 95%: {})\n", mark(share >= 95.0)));
        out
    }
}

/// Runs added up per mix and fault kind.
#[derive(Default)]
pub struct Book {
    mixes: Vec<(Mix, MixRow)>,
}

impl Book {
    pub fn add(&mut self, mix: Mix, o: Outcome) {
        if !self.mixes.iter().any(|(m, _)| *m == mix) {
            self.mixes.push((mix, MixRow::default()));
        }
        let row = &mut self.mixes.iter_mut().find(|(m, _)| *m == mix).expect("added").1;
        let served = o.served();
        row.runs += 1;
        row.seconds += o.seconds;
        row.served += served.iter().filter(|s| **s).count();
        row.slots += served.len();
        row.violations += o.violations.len();
        row.acked += o
            .ops
            .iter()
            .filter(|op| op.kind != Kind::Read && matches!(op.outcome, OpOutcome::Ok { .. }))
            .count();
        row.unknown += o.ops.iter().filter(|op| op.outcome == OpOutcome::Unknown).count();
        row.convergence_max = row.convergence_max.max(o.convergence);
        row.handoff_gaps_ms.extend(&o.handoff_gaps_ms);
        for w in &o.windows {
            let f = row.faults.entry(w.fault).or_default();
            // The slots the fault was on for, whole seconds; the gap through its quiet after.
            let window = &served[(w.from.as_secs() as usize).min(served.len())
                ..(w.to.as_secs() as usize).min(served.len())];
            let through = &served[(w.from.as_secs() as usize).min(served.len())
                ..(w.until.as_secs() as usize).min(served.len())];
            f.windows += 1;
            f.slots += window.len();
            f.served += window.iter().filter(|s| **s).count();
            f.longest_gap = f.longest_gap.max(longest_gap(through));
            f.elections += w.elections;
            f.old_etcd_leader_revoked += w.old_etcd_leader_revoked;
            f.unknown += w.unknown;
            f.redirects_max = f.redirects_max.max(w.redirects_max);
            f.refused += usize::from(w.refused.is_some());
            if let Some(u) = w.unleased {
                f.unleased.get_or_insert_with(Unleased::default).add(&u);
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (mix, row) in &self.mixes {
            out.push_str(&format!(
                "\n### Mix `{}`: {} runs, {} s\n\nDDL acknowledged in {} of {} one-second slots ({:.1}%); {} writes acknowledged, {} requests of unknown outcome; {} violations; convergence after the last heal at most {:.1} s.\n\n",
                mix.name(),
                row.runs,
                row.seconds,
                row.served,
                row.slots,
                100.0 * row.served as f64 / row.slots.max(1) as f64,
                row.acked,
                row.unknown,
                row.violations,
                row.convergence_max.as_secs_f64()
            ));
            out.push_str("| fault | windows | slots with DDL while on | longest DDL gap (s) | meta elections | unknown storage outcomes | most redirects per node | shard-seconds unleased | operator refusals |\n");
            out.push_str("|---|---|---|---|---|---|---|---|---|\n");
            for (fault, f) in &row.faults {
                let share = 100.0 * f.served as f64 / f.slots.max(1) as f64;
                let unleased = f.unleased.map_or("–".into(), |u| {
                    format!("{:.1}{}", u.lost_ms as f64 / 1000.0, u.besides())
                });
                out.push_str(&format!(
                    "| {} | {} | {} of {} ({share:.0}%) | {} | {} | {} | {} | {unleased} | {} |\n",
                    fault.name(),
                    f.windows,
                    f.served,
                    f.slots,
                    f.longest_gap,
                    f.elections,
                    f.unknown,
                    f.redirects_max,
                    f.refused
                ));
            }
            out.push_str(&row.goals());
            out.push_str(&handoffs(&row.handoff_gaps_ms));
        }
        out
    }
}

/// What leases ended early cost the shards: how soon the next lease came.
fn handoffs(gaps_ms: &[u64]) -> String {
    if gaps_ms.is_empty() {
        return String::new();
    }
    let mut g = gaps_ms.to_vec();
    g.sort_unstable();
    let at = |q: f64| g[((g.len() - 1) as f64 * q).round() as usize];
    let over_1s = g.iter().filter(|&&ms| ms > 1_000).count();
    format!(
        "- leases ended early (transfers, moves, revocations): {}; the shard's next lease came after {} ms at the median, {} ms at the 90th percentile, {} ms at most; {over_1s} took over 1 s\n",
        g.len(),
        at(0.5),
        at(0.9),
        g[g.len() - 1]
    )
}
