//! Runs a test body over a range of seeds: `MADSIM_TEST_SEED` (default 1) is the first and
//! `MADSIM_TEST_NUM` (default: the test's own count) how many. A failing seed prints the one
//! command that replays it; `MADSIM_TEST_CHECK_DETERMINISM=1` runs only the first seed, then
//! twice more under madsim's check of random draws, and compares the event traces too.

use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use madsim::runtime::Runtime;

use crate::{Coverage, Report};

/// Simulated time after which a seed counts as hung.
const TIME_LIMIT: Duration = Duration::from_secs(1_800);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// The command that reruns one seed of one test.
pub fn replay_command(binary: &str, test: &str, seed: u64) -> String {
    shardmeta::check::replay::madsim(binary, test, seed)
}

/// Everything a range of seeds did.
#[derive(Debug, Default)]
pub struct Summary {
    pub seeds: u64,
    pub coverage: Coverage,
    pub events: u64,
    pub simulated: Duration,
    /// Whether the whole default seed set ran (coverage is only meaningful then).
    pub full: bool,
}

fn run_one<F>(binary: &str, test: &str, seed: u64, body: fn() -> F) -> Report
where
    F: Future<Output = Report> + 'static,
{
    // A fresh thread per seed, as madsim's own runner does: hash maps seed their keys per
    // thread, so a seed run after others on one thread would not replay alone.
    let outcome = std::thread::spawn(move || {
        catch_unwind(AssertUnwindSafe(|| {
            let mut rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
            rt.set_time_limit(TIME_LIMIT);
            rt.block_on(body())
        }))
    })
    .join()
    .expect("the seed's thread");
    outcome.unwrap_or_else(|panic| {
        eprintln!(
            "\n{test} FAILED at seed {seed}. Replay it with:\n    {}\n",
            replay_command(binary, test, seed)
        );
        resume_unwind(panic)
    })
}

/// Runs `body` once per seed; panics on the first failing seed.
pub fn run_seeds<F>(binary: &str, test: &str, default_seeds: u64, body: fn() -> F) -> Summary
where
    F: Future<Output = Report> + 'static,
{
    let first = env_u64("MADSIM_TEST_SEED").unwrap_or(1);
    let check = std::env::var("MADSIM_TEST_CHECK_DETERMINISM").is_ok();
    // The check runs its seed on fresh threads; later seeds would not start from the state a
    // plain run has, so the check mode runs one seed only.
    let seeds = if check { 1 } else { env_u64("MADSIM_TEST_NUM").unwrap_or(default_seeds) };
    let wall = Instant::now();
    let mut summary = Summary { full: seeds >= default_seeds, ..Default::default() };
    for seed in first..first + seeds {
        let report = run_one(binary, test, seed, body);
        summary.seeds += 1;
        summary.coverage.add(&report.coverage);
        summary.events += report.events;
        summary.simulated += report.simulated;
        if check {
            let again = Runtime::check_determinism(seed, madsim::Config::default(), body);
            assert_eq!(
                (again.trace_hash, again.events),
                (report.trace_hash, report.events),
                "seed {seed} gave a different event trace on a second run. Replay: {}",
                replay_command(binary, test, seed)
            );
            println!(
                "{test}: seed {seed} is deterministic ({} events, same trace and random draws)",
                report.events
            );
        }
    }
    println!(
        "{test}: {} seeds from {first}, {} history events, {:.0} s simulated in {:.1} s",
        summary.seeds,
        summary.events,
        summary.simulated.as_secs_f64(),
        wall.elapsed().as_secs_f64()
    );
    summary
}

/// Fails unless every named count is positive, across a full seed set.
pub fn assert_covered(summary: &Summary, what: &str, counts: &[(&str, u64)]) {
    println!("{what}: {counts:?}");
    if !summary.full {
        println!("(coverage is checked only over the full seed set)");
        return;
    }
    let missing: Vec<&str> =
        counts.iter().filter(|(_, n)| *n == 0).map(|(name, _)| *name).collect();
    assert!(
        missing.is_empty(),
        "the seed set never exercised {what}: {missing:?}; it proves less than it claims"
    );
}
