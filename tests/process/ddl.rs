//! What tests under faults measure from outside: DDL served per second, log lines counted, and
//! the time each shard went without a leader holding a lease.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardmeta::client::MetaClient;
use shardmeta::proto::{self, RequestHeader};

/// How many times `needle` occurs in the logs of the processes `names` (`NAME.log` in `dir`).
pub fn count_in_logs(dir: &Path, names: &[&str], needle: &str) -> usize {
    names.iter().map(|n| count_in_log(dir, n, needle)).sum()
}

pub fn count_in_log(dir: &Path, name: &str, needle: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{name}.log")))
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Creates tables one after another until `stop`; per second of the run, whether a create was
/// acknowledged in it.
pub async fn ddl_load(endpoints: Vec<String>, stop: Arc<AtomicBool>) -> Vec<bool> {
    let mut meta = MetaClient::new(endpoints, Duration::from_secs(3)).unwrap();
    let start = Instant::now();
    let mut slots = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let req = proto::CreateTableRequest {
            header: Some(RequestHeader { cluster: "default".into() }),
            name: format!("t{i}"),
            if_not_exists: true,
            ..Default::default()
        };
        let ok = meta
            .call(|mut c| {
                let req = req.clone();
                async move { c.create_table(req).await }
            })
            .await
            .is_ok();
        let slot = start.elapsed().as_secs() as usize;
        slots.resize(slots.len().max(slot + 1), false);
        slots[slot] |= ok;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    slots
}

/// The longest run of one-second slots without an acknowledged create.
pub fn longest_gap(slots: &[bool]) -> usize {
    slots.split(|ok| *ok).map(<[bool]>::len).max().unwrap_or(0)
}

/// Per shard, the milliseconds of `[from, to]` (wall clock) that no node's leadership log covers:
/// the time the shard had no leader holding a lease.
pub fn unleased_ms(logs: &[PathBuf], from: u64, to: u64) -> BTreeMap<u32, u64> {
    unleased_spans(logs, from, to)
        .into_iter()
        .map(|(shard, spans)| (shard, spans.iter().map(|(s, e)| e - s).sum()))
        .collect()
}

/// Per shard, the spans of `[from, to]` that no node's leadership log covers.
pub fn unleased_spans(logs: &[PathBuf], from: u64, to: u64) -> BTreeMap<u32, Vec<(u64, u64)>> {
    let mut by_shard: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
    for log in logs {
        for (shard, intervals) in super::read_leadership(log).0 {
            by_shard.entry(shard).or_default().extend(intervals);
        }
    }
    let mut out = BTreeMap::new();
    for (shard, mut intervals) in by_shard {
        intervals.sort_unstable();
        let (mut covered_to, mut gaps) = (from, Vec::new());
        for (start, end) in intervals.into_iter().filter(|&(s, e)| e >= from && s <= to) {
            if start > covered_to {
                gaps.push((covered_to, start.min(to)));
            }
            covered_to = covered_to.max(end);
        }
        if covered_to < to {
            gaps.push((covered_to, to));
        }
        out.insert(shard, gaps);
    }
    out
}

/// The shards some node's leadership log shows leased at `at` (wall clock).
pub fn leased_at(logs: &[PathBuf], at: u64) -> std::collections::BTreeSet<u32> {
    let mut leased = std::collections::BTreeSet::new();
    for log in logs {
        for (shard, intervals) in super::read_leadership(log).0 {
            if intervals.iter().any(|&(from, until)| from <= at && at < until) {
                leased.insert(shard);
            }
        }
    }
    leased
}

/// Per shard, handoffs: from a lease a node ended early (it let the shard go for a transfer or
/// a move, or meta revoked it) to the next lease on the shard, on any node. Cuts with no later
/// lease in the logs are left out.
pub fn handoff_spans(logs: &[PathBuf]) -> BTreeMap<u32, Vec<(u64, u64)>> {
    // (shard, when a lease was cut), and per shard when leases began.
    let mut cuts: Vec<(u32, u64)> = Vec::new();
    let mut grants: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for log in logs {
        for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue }; // torn by kill -9
            let Some(shard) = v["shard"].as_u64().map(|s| s as u32) else { continue };
            if let Some(at) = v["cut"].as_u64() {
                cuts.push((shard, at));
            } else if let Some(from) = v["from"].as_u64() {
                grants.entry(shard).or_default().push(from);
            }
        }
    }
    grants.values_mut().for_each(|g| g.sort_unstable());
    let mut out: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
    for (shard, at) in cuts {
        let Some(g) = grants.get(&shard) else { continue };
        if let Some(&next) = g.get(g.partition_point(|&from| from < at)) {
            out.entry(shard).or_default().push((at, next));
        }
    }
    out
}

/// What each handoff (see [`handoff_spans`]) cost its shard, in milliseconds.
pub fn handoff_gaps_ms(logs: &[PathBuf]) -> Vec<u64> {
    handoff_spans(logs).values().flatten().map(|(cut, next)| next - cut).collect()
}

/// Wall-clock milliseconds, as the leadership logs write them.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}
