//! Slow nodes and move budgets: a node whose request latency stays far above the cluster's
//! loses its leaders at its outbound budget and takes nothing, a node on the edge does not
//! flap, and a node back to health, or unmarked by an operator, fills at its inbound budget
//! with its progress and ETA in `scheduler status`.

use shardmeta::core::settings::SchedulerSettings;
use shardmeta::core::*;

use super::world::{Moved, World};
use super::{replay, seed};

/// Node `name` as `node list` shows it.
fn node(w: &mut World, name: &str) -> NodeInfo {
    let req = Request::ListNodes { cluster: "c".into(), page: PageRequest::default() };
    match w.h.call(req) {
        Ok(Response::Nodes(page)) => page.items.into_iter().find(|n| n.name == name).unwrap(),
        other => panic!("{other:?}"),
    }
}

fn status(w: &mut World) -> SchedulerStatus {
    match w.h.call(Request::SchedulerStatus { cluster: "c".into() }) {
        Ok(Response::Scheduler(s)) => s,
        other => panic!("{other:?}"),
    }
}

/// Whether the moves into (`into`) or out of `node` kept to a budget of `per_min` a minute:
/// within any stretch of time, at most a burst (a sixth of it) plus what refills meanwhile.
pub fn paced(moves: &[Moved], node: u32, into: bool, per_min: u64) -> Result<(), String> {
    let at: Vec<u64> = moves
        .iter()
        .filter(|m| if into { m.to == Some(node) } else { m.from == Some(node) })
        .map(|m| m.second)
        .collect();
    let burst = (per_min / 6).max(1);
    for i in 0..at.len() {
        for j in i..at.len() {
            // Moves land up to a second after they start: one second of slack.
            let allowed = burst + (at[j] - at[i] + 1) * per_min / 60;
            if (j - i + 1) as u64 > allowed {
                return Err(format!(
                    "{} moves {} node {node} between {} s and {} s, a budget of {per_min}/min allows {allowed}",
                    j - i + 1,
                    if into { "into" } else { "out of" },
                    at[i],
                    at[j]
                ));
            }
        }
    }
    Ok(())
}

/// Six even nodes; n2's request latency goes from 5 ms to 400 ms. It is found slow after three
/// load windows, its leaders leave at its outbound budget while its followers stay, and it
/// takes nothing. Back to 5 ms, it is well again only after twelve windows, and then fills at
/// its inbound budget, with the fill's progress and ETA in `scheduler status`.
#[test]
fn a_slow_node_sheds_its_leaders_at_its_budget_and_refills_once_well() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "a_slow_node");
    let n2 = w.id_of(1).unwrap();
    let leaders = |w: &World| w.catalog().shards.iter().filter(|s| s.leader == Some(n2)).count();
    let replicas =
        |w: &World| w.catalog().shards.iter().filter(|s| s.replicas().any(|x| x == n2)).count();
    let held = replicas(&w);
    w.latency_ms = vec![5.0; 6];
    w.latency_ms[1] = 400.0;
    let found = w.run_until(120, |w| node(w, "n2").slow);
    let found = found.unwrap_or_else(|| panic!("n2 never found slow; {r}"));
    assert!((30..=40).contains(&found), "found slow after {found} s; {r}");
    let mut eta_seen = None;
    let emptied = w.run_until(120, |w| {
        let s = status(w);
        if let Some(j) = s.jobs.iter().find(|j| j.node == "n2" && j.job == "slow") {
            eta_seen = eta_seen.or(j.eta_ms.map(|eta| (w.second, eta, j.remaining)));
        }
        leaders(w) == 0
    });
    let emptied = emptied.unwrap_or_else(|| panic!("n2 still leads {}; {r}", leaders(&w)));
    println!("slow node: found after {found} s, its leaders gone {emptied} s later; ETA first shown {eta_seen:?}");
    assert!(eta_seen.is_some(), "no ETA shown while its leaders left; {r}");
    assert!(replicas(&w) >= held, "its followers stay: {} of {held} replicas; {r}", replicas(&w));
    let per_min = SchedulerSettings::default().moves_out_per_node_per_min as u64;
    paced(&w.moves, n2, false, per_min).unwrap_or_else(|e| panic!("{e}; {r}"));
    assert!(w.moves.iter().all(|m| m.to != Some(n2)), "moves onto a slow node; {r}");

    // Well again: not before twelve windows under half the line.
    w.latency_ms[1] = 5.0;
    let well = w.run_until(300, |w| !node(w, "n2").slow);
    let well = well.unwrap_or_else(|| panic!("n2 never well again; {r}"));
    // Twelve windows, after the smoothed latency fell under half the line (about 12 s).
    assert!((120..=150).contains(&well), "well again after {well} s; {r}");
    let before = w.moves.len();
    let mut fill_seen = false;
    let refilled = w.run_until(300, |w| {
        fill_seen |= status(w).jobs.iter().any(|j| j.node == "n2" && j.job == "fill");
        w.max_over_mean() <= 1.10
    });
    w.run(60);
    let per_min = SchedulerSettings::default().moves_in_per_node_per_min as u64;
    paced(&w.moves[before..], n2, true, per_min).unwrap_or_else(|e| panic!("{e}; {r}"));
    w.report(
        "a slow node (latency 80× the median), then well",
        refilled.map(|s| s + well),
        Some(40),
    );
    assert!(refilled.is_some(), "max/mean {:.3} after n2 came back; {r}", w.max_over_mean());
    assert!(fill_seen, "the refill never showed as a fill; {r}");
}

/// n2's latency swings between 400 ms and 5 ms every 15 s for 15 minutes: with the smoothing's
/// lag it stands over the slow line for about 26 s at a time, never three windows in a row, so
/// it is never slow, and nothing moves.
#[test]
fn a_node_on_the_edge_of_slow_does_not_flap() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "edge_of_slow");
    w.latency_ms = vec![5.0; 6];
    let mut ever_slow = false;
    for half in 0..60 {
        w.latency_ms[1] = if half % 2 == 0 { 400.0 } else { 5.0 };
        for _ in 0..15 {
            w.step();
            ever_slow |= node(&mut w, "n2").slow;
        }
    }
    w.report("a node's latency swinging 5-400 ms every 15 s", None, Some(0));
    assert!(!ever_slow, "n2 was judged slow; {r}");
    assert!(w.moves.is_empty(), "{:?}; {r}", w.moves);
}

/// An operator marks n3 slow: its leaders leave although its figures are fine, and it stays
/// slow until unmarked; unmarked, it fills again.
#[test]
fn an_operator_marks_a_node_slow_and_unmarks_it() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "marks_a_node_slow");
    let n3 = w.id_of(2).unwrap();
    let mark = |w: &mut World, slow: bool| {
        let req = Request::MarkNodeSlow { cluster: "c".into(), node: "n3".into(), slow };
        match w.h.call(req) {
            Ok(Response::Node(n)) => assert_eq!((n.slow_marked, n.slow), (slow, slow), "{n:?}"),
            other => panic!("{other:?}"),
        }
    };
    mark(&mut w, true);
    let leaders = |w: &World| w.catalog().shards.iter().filter(|s| s.leader == Some(n3)).count();
    let emptied = w.run_until(120, |w| leaders(w) == 0);
    assert!(emptied.is_some(), "n3 still leads {}; {r}", leaders(&w));
    w.run(300);
    assert!(node(&mut w, "n3").slow && leaders(&w) == 0, "n3 stays slow while marked; {r}");
    mark(&mut w, false);
    let refilled = w.run_until(300, |w| w.max_over_mean() <= 1.10);
    assert!(refilled.is_some(), "max/mean {:.3}; {r}", w.max_over_mean());
    let unknown =
        w.h.call(Request::MarkNodeSlow { cluster: "c".into(), node: "ghost".into(), slow: true });
    assert!(matches!(unknown, Err(MetaError::NotFound(_))), "{unknown:?}");
}
