//! Clusters of uneven shape: mixed capacities (CockroachDB's allocators end at 1.20 and 1.17 of
//! the mean on 8/8/16-vCPU nodes, cockroachdb#153777), and a scale-out that quadruples the
//! node count, whose fills show their progress.

use shardmeta::core::*;

use super::harness;
use super::world::World;
use super::{replay, seed};

/// Nodes of the given capacities, 120 even shards led evenly to begin with: utilization
/// max/mean reaches 1.10 within `deadline` seconds and stays there for a minute.
fn capacities(caps: &[f64], row: &str, lower_bound: usize, deadline: u64) -> World {
    let mut w = World::new(seed(), CoreConfig::default(), caps.len() as u64, 120, 1, 100.0);
    for (n, &c) in w.nodes.iter_mut().zip(caps) {
        n.capacity = c;
    }
    let mut held_since = None;
    let converged = w.run_until(600, |w| {
        if w.max_utilization_over_mean() <= 1.10 {
            held_since = held_since.or(Some(w.second));
        } else {
            held_since = None;
        }
        held_since.is_some_and(|s| w.second >= s + 60)
    });
    let converged = converged.map(|s| s - 60);
    let ratio = w.max_utilization_over_mean();
    w.report_of(row, converged, Some(lower_bound), ratio);
    let r = replay(&w, "capacities");
    assert!(
        converged.is_some_and(|s| s <= deadline),
        "{row}: converged at {converged:?}, max/mean {ratio:.3}; {r}"
    );
    // The goal: 1.2× the bound. (8/8/16 took 16-18 moves for 14, as the noise fell, before a
    // move under the overfull line had to gain more than the source's wobble.)
    assert!(
        w.moves.len() as f64 <= 1.2 * lower_bound as f64,
        "{row}: {} moves, the lower bound {lower_bound}; {r}",
        w.moves.len()
    );
    assert_eq!(w.pair_reversals(600), 0, "{row}: load went back and forth; {r}");
    w
}

/// 8/8/16: the big node's share is half (60 shards); it leads 40. Utilization within 1.10 of
/// the mean needs each small node at 33 or fewer: 14 moves at least.
#[test]
fn capacities_8_8_16_balance_within_1_10_in_three_minutes() {
    capacities(&[8.0, 8.0, 16.0], "capacities 8/8/16", 14, 180);
}

/// 1/1/2/4: shares of 15, 15, 30 and 60 shards from 30 each. Within 1.10 the small nodes hold
/// 16 at most (14 moves each) and the big one at least 50 (20 moves in): 28 moves at least.
/// Twice the imbalance of 8/8/16, and at most 6 moves out of a node per round of judgement
/// (30 s): 160-320 s over seeds 1-10, but 368-496 s on 5 seeds of 11-60, always in the 28
/// moves of the bound. Nine minutes.
#[test]
fn capacities_1_1_2_4_balance_within_1_10_in_nine_minutes() {
    capacities(&[1.0, 1.0, 2.0, 4.0], "capacities 1/1/2/4", 28, 540);
}

/// Four nodes of 48 shards; twelve empty nodes join. Each new node needs 0.9 × the new mean
/// (12 shards) of 100-unit shards: 11 moves apiece, 132 at least. Their fills show in
/// `scheduler status` with progress and an ETA while they run.
#[test]
fn scale_out_four_to_sixteen_fills_with_progress_shown() {
    let mut w = World::new(seed(), CoreConfig::default(), 4, 192, 1, 100.0);
    for i in 5..=16 {
        w.nodes.push(harness::Node::new(i));
        w.up.push(true);
    }
    let new: Vec<usize> = (4..16).collect();
    let mut fills_seen = 0;
    let mut eta_shown = false;
    let converged = w.run_until(900, |w| {
        if let Ok(Response::Scheduler(s)) =
            w.h.call(Request::SchedulerStatus { cluster: "c".into() })
        {
            let fills = s.jobs.iter().filter(|j| j.job == "fill");
            fills_seen = fills_seen.max(fills.clone().count());
            eta_shown |= fills.clone().any(|j| j.eta_ms.is_some() && j.done > 0);
        }
        w.min_over_mean(&new) >= 0.9 && w.max_over_mean() <= 1.10
    });
    w.run(120);
    let lower_bound = 12 * 11;
    w.report("scale-out 4 → 16 nodes", converged, Some(lower_bound));
    let r = replay(&w, "scale_out_four_to_sixteen");
    assert!(
        converged.is_some(),
        "min/mean of the new nodes {:.2}, max/mean {:.2}; {r}",
        w.min_over_mean(&new),
        w.max_over_mean()
    );
    assert!(
        w.moves.len() as f64 <= 1.2 * lower_bound as f64,
        "{} moves, the lower bound {lower_bound}; {r}",
        w.moves.len()
    );
    assert_eq!(fills_seen, 12, "every new node's fill shows; {r}");
    assert!(eta_shown, "no fill showed an ETA; {r}");
    assert_eq!(w.pair_reversals(600), 0, "load went back and forth; {r}");
}

/// Six nodes hold 120 shards of 1 GiB with a follower each: 40 GiB apiece, 67% of 60 GiB. One
/// node's disk is only 44 GiB (91%): it sheds replicas to 80% (5 points under the 85% high
/// water) while no other node passes 85%. Then a node dies: its replicas are re-made on the
/// others, none past the line (48 GiB of 60 is 80%).
#[test]
fn a_node_near_full_sheds_by_bytes_and_no_node_passes_the_high_water() {
    const GIB: u64 = 1 << 30;
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "disk_near_full");
    w.shard_bytes = GIB;
    w.disk_capacity = vec![60 * GIB; 6];
    w.disk_capacity[0] = 44 * GIB;
    let held = |w: &World, i: usize| w.nodes[i].host.shards().len() as u64 * GIB;
    let mut worst = 0.0_f64;
    let mut watch = |w: &World| {
        for i in (0..6).filter(|&i| w.up[i]) {
            let pct = held(w, i) as f64 / w.disk_capacity[i] as f64;
            // A replica being handed over is held twice for a moment: measured on what landed.
            worst = worst.max(if i == 0 { 0.0 } else { pct });
        }
    };
    let shed = w.run_until(300, |w| {
        watch(w);
        held(w, 0) <= 44 * GIB * 80 / 100 + GIB
    });
    let shed = shed.unwrap_or_else(|| panic!("n1 still holds {} GiB; {r}", held(&w, 0) / GIB));
    w.run(60);
    let moves_shed = w.moves.len();
    println!(
        "disk near full: n1 from 91% to {:.0}% in {shed} s; worst other node {:.0}%",
        100.0 * held(&w, 0) as f64 / (44 * GIB) as f64,
        100.0 * worst
    );
    assert!(worst <= 0.85, "a node passed the high water: {:.0}%; {r}", 100.0 * worst);
    let n6 = 5;
    w.up[n6] = false;
    let mut worst_after = 0.0_f64;
    w.run_until(300, |w| {
        for i in (0..5).filter(|&i| w.up[i]) {
            let pct = held(w, i) as f64 / w.disk_capacity[i] as f64;
            worst_after = worst_after.max(pct);
        }
        false
    });
    w.report_of(
        "a node's disk near full (91%), then another node dies",
        Some(shed),
        Some(5),
        worst_after,
    );
    assert!(
        worst_after <= 0.85 + 1.0 / 60.0,
        "after the failure a node reached {:.0}%; {r}",
        100.0 * worst_after
    );
    assert!(moves_shed <= 12, "{moves_shed} leader moves to shed 6 GiB; {r}");
}
