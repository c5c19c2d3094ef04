//! A Jepsen-style test of the whole service, with real processes and real partitions: 3 etcd
//! members, 3 meta servers and 3 node-agents, each in its own network namespace (`cluster`),
//! under a workload of concurrent DDL, routed data writes and a route watch (`workload`,
//! `watch`), while a nemesis injects one fault at a time from a seeded schedule (`nemesis`).
//! After the last heal the cluster must converge, and the checkers must find nothing:
//! - the DDL history (`history`): no acknowledged create, drop or alter lost, one value per
//!   table version, no stale read;
//! - single writer (S1) across processes: no two nodes' lease tenures of a shard overlap, and
//!   every accepted write falls inside a tenure of its node (the tenures are on one host's clock);
//! - the route watch: revisions only grow, and its view is meta's at the end.
//!
//! It prints availability per fault kind: the share of one-second slots with an acknowledged
//! DDL, the longest gap, meta elections, unknown storage outcomes, redirects per node and, for
//! faults that depose the meta leader, the seconds shards went without a leased leader.
//!
//!     cargo test --test jepsen -- [--mix crash|partition|operator|all] [--minutes M]
//!         [--seed S] [--runs N] [--report FILE]
//!
//! Without arguments (as `cargo test` runs it) each mix runs for 45 s, seed 1. Needs root, `ip`,
//! `nft` and `etcd` (`.ci/setup`).

#[path = "../process/mod.rs"]
mod process;

mod cluster;
mod history;
mod nemesis;
mod report;
mod run;
mod watch;
mod workload;

use std::time::Duration;

use nemesis::Mix;

struct Args {
    mixes: Vec<Mix>,
    minutes: f64,
    seed: u64,
    runs: u64,
    report: Option<std::path::PathBuf>,
}

const USAGE: &str = "usage: jepsen [--mix crash|partition|operator|all] [--minutes M] [--seed S] [--runs N] [--report FILE]";

/// The flags above, and libtest's own (`cargo test -- --nocapture` passes them to every test
/// binary), which mean nothing here. A name filter that does not match this test skips it.
fn parse(args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args { mixes: Mix::ALL.to_vec(), minutes: 0.75, seed: 1, runs: 1, report: None };
    let mut args = args.peekable();
    let (mut filters, mut skips) = (Vec::new(), Vec::new());
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline.clone().or_else(|| args.next()).ok_or(format!("{flag} needs {what}"))
        };
        match flag.as_str() {
            "--mix" => {
                let v = value("a mix")?;
                a.mixes = if v == "all" {
                    Mix::ALL.to_vec()
                } else {
                    vec![Mix::parse(&v)
                        .ok_or(format!("no mix {v:?}: crash, partition, operator or all"))?]
                };
            }
            "--minutes" => {
                a.minutes = value("minutes")?
                    .parse()
                    .ok()
                    .filter(|m: &f64| *m > 0.0 && *m <= 600.0)
                    .ok_or("--minutes: a number in (0, 600]")?
            }
            "--seed" => {
                a.seed = value("a seed")?.parse().map_err(|_| "--seed: an unsigned integer")?
            }
            "--runs" => {
                a.runs = value("a count")?
                    .parse()
                    .ok()
                    .filter(|r| (1..=100).contains(r))
                    .ok_or("--runs: 1 to 100")?
            }
            "--report" => a.report = Some(value("a file")?.into()),
            "--nocapture" | "--quiet" | "-q" | "--exact" | "--include-ignored" | "--ignored"
            | "--show-output" => {}
            "--test-threads" | "--color" | "--format" | "-Z" => {
                value("a value")?;
            }
            "--skip" => skips.push(value("a name")?),
            "-h" | "--help" => return Err(USAGE.into()),
            f if f.starts_with('-') => return Err(format!("unknown flag {f}\n{USAGE}")),
            _ => filters.push(arg),
        }
    }
    if skips.iter().any(|s| "jepsen".contains(s.as_str()))
        || (!filters.is_empty() && !filters.iter().any(|f| "jepsen".contains(f.as_str())))
    {
        return Ok(None);
    }
    Ok(Some(a))
}

fn main() {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("jepsen: filtered out");
            return;
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let planted = history::self_check();
    println!("history checker: caught {planted} planted violations, passed a clean history");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut failures = Vec::new();
    let mut book = report::Book::default();
    for mix in &args.mixes {
        for run in 0..args.runs {
            let seed = args.seed + run;
            let length = Duration::from_secs_f64(args.minutes * 60.0);
            let outcome = runtime.block_on(run::run(*mix, seed, length));
            println!("{}", outcome.summary());
            if !outcome.violations.is_empty() {
                failures.push(format!(
                    "{} seed {seed}: {} violations; replay: cargo test --test jepsen -- --mix {} --seed {seed} --minutes {}",
                    mix.name(),
                    outcome.violations.len(),
                    mix.name(),
                    args.minutes
                ));
                for v in outcome.violations.iter().take(20) {
                    println!("  VIOLATION {v}");
                }
            }
            book.add(*mix, outcome);
        }
    }
    let text = book.render();
    println!("{text}");
    if let Some(path) = &args.report {
        std::fs::write(path, &text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED {f}");
        }
        std::process::exit(1);
    }
}
