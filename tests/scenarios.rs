//! The scheduling scenario suite: seeded, deterministic, through the real core and the real
//! `ShardHost` (see `scenarios/world.rs`). Each scenario checks its pass criteria and prints a
//! row of the results table in BENCHMARKS.md (`cargo test --test scenarios -- --nocapture`).

#[path = "scenarios/cpu.rs"]
mod cpu;
mod harness;
#[path = "scenarios/messy.rs"]
mod messy;
#[path = "scenarios/restart.rs"]
mod restart;
#[path = "scenarios/shapes.rs"]
mod shapes;
#[path = "scenarios/slow.rs"]
mod slow;
#[path = "scenarios/world.rs"]
mod world;

use shardmeta::core::settings::SchedulerSettings;
use shardmeta::core::*;
use world::World;

fn seed() -> u64 {
    std::env::var("SCENARIO_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// On failure: the seed, and how to run it again.
fn replay(w: &World, test: &str) -> String {
    format!(
        "seed {0} (replay: SCENARIO_SEED={0} cargo test --test scenarios {test} -- --nocapture)",
        w.seed
    )
}

/// Six nodes at an even 2,000 units each, every report ±15% noise, for a simulated hour:
/// smoothing absorbs the noise and nothing moves.
#[test]
fn quiet_cluster_with_noise_makes_no_moves() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    w.run(3_600);
    w.report("quiet cluster, ±15% noise, 1 simulated hour", Some(0), Some(0));
    assert_eq!(w.moves.len(), 0, "{:?}; {}", &w.moves[..w.moves.len().min(5)], replay(&w, "quiet"));
    // The noise of 20 shards' windows, shown as each node's wobble: a small fraction of a shard.
    let wobbles = wobbles(&mut w);
    println!("quiet cluster: wobble {wobbles:.4?}");
    assert!(wobbles.iter().all(|&x| x > 0.0 && x < 0.02), "{wobbles:?}");
}

/// Each placeable node's wobble, as `scheduler status` shows it.
fn wobbles(w: &mut World) -> Vec<f64> {
    match w.h.call(Request::SchedulerStatus { cluster: "c".into() }) {
        Ok(Response::Scheduler(s)) => s.nodes.iter().map(|n| n.wobble).collect(),
        other => panic!("{other:?}"),
    }
}

/// Six nodes of 30 shards at 100 units each; three empty nodes join. Old nodes (1.5× the new
/// mean) shed to the new ones by reopen (their followers are all on old nodes, which are over
/// the line too), and no shard moves between two old nodes. Returns the balance rounds taken
/// (a round: the passes between two judgements, a node waiting 3 load windows after a move) and
/// the most moves seen in flight at once.
fn scale_out(config: CoreConfig, row: &str) -> (usize, usize) {
    let mut w = World::new(seed(), config, 6, 180, 1, 100.0);
    for i in 7..=9 {
        w.nodes.push(harness::Node::new(i));
        w.up.push(true);
    }
    let new = [6, 7, 8];
    let mut peak_in_flight = 0;
    let converged = w.run_until(1_200, |w| {
        peak_in_flight =
            peak_in_flight.max(w.catalog().shards.iter().filter(|s| s.transfer.is_some()).count());
        w.min_over_mean(&new) >= 0.9
    });
    // Moves land in bursts, one a round; a gap of more than 5 s starts the next.
    let rounds = 1 + w.moves.windows(2).filter(|p| p[1].second > p[0].second + 5).count();
    w.run(120);
    // Each new node needs 0.9 × mean (2,000) of 100-unit shards: 18 moves apiece at least.
    let lower_bound = 3 * 18;
    w.report(row, converged, Some(lower_bound));
    let r = replay(&w, "scale_out");
    assert!(
        converged.is_some(),
        "the new nodes never reached 0.9 × mean: {:.2}; {r}",
        w.min_over_mean(&new)
    );
    let new_ids: Vec<u32> = new.iter().filter_map(|&i| w.id_of(i)).collect();
    let between_old: Vec<_> =
        w.moves.iter().filter(|m| !m.to.is_some_and(|t| new_ids.contains(&t))).collect();
    assert!(between_old.is_empty(), "moves between old nodes: {between_old:?}; {r}");
    assert!(
        w.moves.len() as f64 <= 1.2 * lower_bound as f64,
        "{} moves for a lower bound of {lower_bound}; {r}",
        w.moves.len()
    );
    println!("{row}: moves in {rounds} rounds, at most {peak_in_flight} in flight");
    (rounds, peak_in_flight)
}

#[test]
fn scale_out_six_to_nine_fills_the_new_nodes_within_three_rounds() {
    let (rounds, _) = scale_out(CoreConfig::default(), "scale-out 6 → 9 nodes");
    assert!(rounds <= 3, "{rounds} rounds");
}

/// Narrower limits bind: the same scale-out in more rounds, with the same guarantees (no move
/// between old nodes, moves near the bound) and never more moves in flight than allowed.
#[test]
fn scale_out_under_narrow_limits_takes_more_rounds_and_keeps_them() {
    let scheduler = SchedulerSettings {
        moves_in_flight_max: 8,
        moves_per_pass_max: 16,
        moves_per_node_per_pass_max: 4,
        ..Default::default()
    };
    let (rounds, peak_in_flight) = scale_out(
        CoreConfig { scheduler, ..Default::default() },
        "scale-out 6 → 9, 8 in flight, 4 per node per pass",
    );
    assert!(rounds > 3, "8 moves in flight cannot place 54 moves in {rounds} rounds");
    assert!(peak_in_flight <= 8, "{peak_in_flight} moves in flight, the limit is 8");
}

/// Nine nodes of 20 shards; the shards of three nodes run at twice the load. Transfers to
/// followers on cold nodes relieve them to within 5% of the mean (a reopen only where no
/// follower has room).
#[test]
fn three_hot_nodes_of_nine_are_relieved_by_transfers() {
    let mut w = World::new(seed(), CoreConfig::default(), 9, 180, 1, 100.0);
    let hot_ids: Vec<u32> = (0..3).filter_map(|i| w.id_of(i)).collect();
    let hot: Vec<bool> =
        w.catalog().shards.iter().map(|s| s.leader.is_some_and(|l| hot_ids.contains(&l))).collect();
    w.load = Box::new(move |s, _| if hot[s.index()] { 200.0 } else { 100.0 });
    let converged = w.run_until(1_200, |w| w.max_over_mean() <= 1.05);
    w.run(120);
    w.report("3 of 9 nodes hot", converged, Some(18));
    let r = replay(&w, "three_hot");
    assert!(
        converged.is_some() && w.max_over_mean() <= 1.05,
        "max/mean {:.3}; {r}",
        w.max_over_mean()
    );
    // A reopen only where no follower of the source's shards has room.
    let reopens = w.moves.iter().filter(|m| !m.promoted).count();
    println!("3 of 9 hot: {} transfers to followers, {reopens} reopens", w.moves.len() - reopens);
    assert!(reopens * 4 <= w.moves.len(), "{reopens} of {} moves were reopens; {r}", w.moves.len());
    assert_eq!(w.reversals(300), 0, "no shard went back: {r}");
}

/// Six even nodes; n1 is drained. Its leaders leave by transfer, and the survivors end within
/// 10% of their mean.
#[test]
fn draining_a_node_leaves_the_survivors_even() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let drained =
        w.h.call(Request::DrainNode { cluster: "c".into(), node: "n1".into(), cancel: false });
    assert!(drained.is_ok(), "{drained:?}");
    let n1 = w.id_of(0).unwrap();
    let survivors = [1, 2, 3, 4, 5];
    let empty = |w: &World| {
        w.catalog().shards.iter().all(|s| s.leader != Some(n1) && !s.followers.contains(&n1))
    };
    let converged = w.run_until(1_200, |w| empty(w) && w.max_over_mean_of(&survivors) <= 1.10);
    w.run(120);
    w.report_of("drain a node", converged, Some(20), w.max_over_mean_of(&survivors));
    let r = replay(&w, "draining");
    assert!(
        converged.is_some(),
        "survivors at {:.3} of their mean; {r}",
        w.max_over_mean_of(&survivors)
    );
    assert!(w.max_over_mean_of(&survivors) <= 1.10, "{r}");
}

/// A node silent for less than a lease keeps its shards: nothing moves. Silent for longer, its
/// shards fail over within the lease, the drift allowance and a pass. Back after a minute, it
/// is refilled from the next pass on; back at once, only once the failover's moves are learnt
/// (the patience after any leader move: no node is judged by stats from before it).
#[test]
fn a_short_outage_moves_nothing_and_a_long_one_fails_over_then_refills() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    w.up[2] = false;
    w.run(8);
    w.up[2] = true;
    w.run(120);
    let r = replay(&w, "outage");
    assert_eq!(w.moves.len(), 0, "a node down for 8 s of a 10 s lease: {:?}; {r}", w.moves);

    let config = CoreConfig::default();
    let patience = config.load_window_ms * config.load_windows_trusted as u64 / 1_000;
    for (down_s, row) in [
        (60, "node down 60 s (> lease), then back"),
        (0, "node down > lease, back right after its failover"),
    ] {
        let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
        w.run(60);
        let n3 = w.id_of(2).unwrap();
        w.up[2] = false;
        let led = |w: &World| w.catalog().shards.iter().filter(|s| s.leader == Some(n3)).count();
        let failed_over = w.run_until(60, |w| led(w) == 0);
        let bound = (config.lease_ms + config.clock_drift_ms + config.tick_interval_ms) / 1_000 + 2;
        assert!(
            failed_over.is_some_and(|s| s <= bound),
            "failover took {failed_over:?} s, the bound is {bound} s; {r}"
        );
        let failovers = w.moves.len();
        w.run(down_s);
        w.nodes[2].restart();
        w.up[2] = true;
        let refill_started = w.run_until(600, |w| led(w) > 0);
        let refilled =
            w.run_until(900, |w| w.max_over_mean() <= 1.10 && w.min_over_mean(&[2]) >= 0.9);
        w.report(row, refilled, Some(2 * failovers));
        println!("{row}: failover in {failed_over:?} s ({failovers} shards); refill started {refill_started:?} s after the return");
        assert!(
            refill_started.is_some() && refilled.is_some(),
            "the returned node was not refilled; {r}"
        );
        // A heartbeat to register the return, the rest of the settle count to admit it, a pass
        // to plan, a heartbeat to open: 5 s. Back at once, the patience after the failover
        // comes first.
        let admitted = 3 + config.node_settle_heartbeats as u64 - 1;
        let wait = if down_s > patience { admitted } else { patience + admitted };
        assert!(
            refill_started.unwrap() <= wait,
            "refill started {refill_started:?} s after the return, the bound is {wait} s; {r}"
        );
    }
}

/// Zone spread at every second, over the nodes that are up.
fn zones_spread(w: &World) -> Result<(), String> {
    let c = w.catalog();
    let live: Vec<u32> =
        (0..w.nodes.len()).filter(|&i| w.up[i]).filter_map(|i| w.id_of(i)).collect();
    shardmeta::check::zone_spread(c, |n| live.contains(&n.0)).map_err(|v| v.to_string())
}

/// Nine nodes in three zones, shards of two replicas. Zone c is lost for five minutes and comes
/// back: at no second do a shard's live replicas share a zone while another zone could take
/// one, and the leaders spread over the zones left.
#[test]
fn losing_a_zone_keeps_replicas_spread_and_leaders_over_the_zones_left() {
    let mut w = World::zoned(seed(), CoreConfig::default(), 9, 90, 1, 100.0, &["a", "b", "c"]);
    let r = replay(&w, "losing_a_zone");
    zones_spread(&w).unwrap_or_else(|e| panic!("{e}; {r}"));
    let in_c: Vec<usize> = (0..9).filter(|i| i % 3 == 2).collect();
    for &i in &in_c {
        w.up[i] = false;
    }
    for _ in 0..300 {
        w.step();
        zones_spread(&w).unwrap_or_else(|e| panic!("second {}: {e}; {r}", w.second));
    }
    let zone_of = |w: &World, leader: u32| {
        w.nodes
            .iter()
            .find(|n| w.catalog().node_by_name.get(&n.name).is_some_and(|id| id.0 == leader))
            .map(|n| n.zone.clone())
    };
    let leaders = |w: &World, zone: &str| {
        w.catalog()
            .shards
            .iter()
            .filter(|s| s.leader.is_some_and(|l| zone_of(w, l).as_deref() == Some(zone)))
            .count()
    };
    let (a, b) = (leaders(&w, "a"), leaders(&w, "b"));
    assert!(a + b == 90 && a.abs_diff(b) <= 9, "leaders in zone a {a}, zone b {b}; {r}");
    for &i in &in_c {
        w.nodes[i].restart();
        w.up[i] = true;
    }
    for _ in 0..300 {
        w.step();
        zones_spread(&w).unwrap_or_else(|e| panic!("second {}: {e}; {r}", w.second));
    }
    w.report("3 zones, one lost for 5 min and back", Some(0), None);
    assert!(leaders(&w, "c") > 0, "zone c leads again once back; {r}");
}

/// The zone checker catches a scheduler that ignores zones.
#[test]
fn the_zone_checker_catches_placement_that_ignores_zones() {
    let config = CoreConfig { planted_bug: Some(PlantedBug::IgnoreZones), ..Default::default() };
    let w = World::zoned(seed(), config, 6, 60, 1, 100.0, &["a", "b", "c"]);
    assert!(zones_spread(&w).is_err(), "with zones ignored some shard's two replicas share a zone");
}

/// Every node of six restarts in turn, each down for 15 s (longer than the 10 s lease), a
/// minute apart. Its leader shards fail over and come back by refill; nothing else moves, and
/// the cluster ends with no node over the overfull line.
#[test]
fn a_rolling_restart_moves_only_failovers_and_refills() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "rolling_restart");
    let mut failovers = 0;
    for i in 0..6 {
        let id = w.id_of(i).unwrap();
        w.up[i] = false;
        let before = w.moves.len();
        w.run(15);
        failovers += w.moves[before..].iter().filter(|m| m.from == Some(id)).count();
        w.nodes[i].restart();
        w.up[i] = true;
        w.run(60);
    }
    // Within the overfull line: a node between the shedding line (1.05) and it is left alone
    // unless both views of load agree it should shed, which after six restarts in ten minutes
    // the long run may not (seed 9 ends at 1.100).
    let settled = w.run_until(600, |w| w.max_over_mean() <= 1.10);
    w.run(60);
    // Every move either left a node that was down, or went to one that had come back.
    let refills = w.moves.len() - failovers;
    w.report("rolling restart of 6 nodes, each down 15 s", settled, Some(2 * failovers));
    println!("rolling restart: {failovers} failovers, {refills} refill moves");
    assert!(settled.is_some(), "max/mean {:.3}; {r}", w.max_over_mean());
    assert!(
        refills <= failovers + failovers / 10,
        "{refills} refill moves for {failovers} failovers; {r}"
    );
    // Each restarted node takes its leaders back at its inbound budget, not all at once.
    let per_min = SchedulerSettings::default().moves_in_per_node_per_min as u64;
    for i in 0..6 {
        let id = w.id_of(i).unwrap();
        slow::paced(&w.moves, id, true, per_min).unwrap_or_else(|e| panic!("{e}; {r}"));
    }
}

/// The meta leader dies while load moves are in flight: a new one loads the catalog, finishes
/// (or takes back) each transfer it finds, makes no move while it learns the loads afresh,
/// and then balances to the same end.
#[test]
fn a_meta_failover_in_the_middle_of_moves_loses_and_repeats_none() {
    let mut w = World::new(seed(), CoreConfig::default(), 9, 180, 1, 100.0);
    let r = replay(&w, "meta_failover");
    let hot_ids: Vec<u32> = (0..3).filter_map(|i| w.id_of(i)).collect();
    let hot: Vec<bool> =
        w.catalog().shards.iter().map(|s| s.leader.is_some_and(|l| hot_ids.contains(&l))).collect();
    w.load = Box::new(move |s, _| if hot[s.index()] { 200.0 } else { 100.0 });
    w.run_until(300, |w| w.catalog().shards.iter().any(|s| s.transfer.is_some()))
        .unwrap_or_else(|| panic!("no move started; {r}"));
    let in_flight: Vec<(u32, u32, u32)> = w
        .catalog()
        .shards
        .iter()
        .filter_map(|s| s.transfer.map(|t| (s.id, t.from, t.to)))
        .collect();
    let (stored, store) = (w.h.stored(), w.h.store.clone());
    w.h = harness::Harness::follower_with(CoreConfig::default());
    w.h.store = store;
    w.h.gain(Term(2), stored);
    let takeover = w.second;
    let moves_before = w.moves.len();
    w.run(20);
    let c = w.catalog();
    for &(shard, from, to) in &in_flight {
        let rec = &c.shards[shard as usize];
        assert!(
            rec.transfer.is_none() && (rec.leader == Some(to) || rec.leader == Some(from)),
            "shard {shard}: {rec:?}; {r}"
        );
    }
    let early: Vec<_> = w.moves[moves_before..]
        .iter()
        .filter(|m| !in_flight.iter().any(|t| t.0 == m.shard))
        .collect();
    assert!(early.is_empty(), "moves before the new leader trusted any load: {early:?}; {r}");
    let twice =
        w.moves[moves_before..].iter().filter(|m| in_flight.iter().any(|t| t.0 == m.shard)).count();
    assert!(
        twice <= in_flight.len(),
        "{twice} leader changes for {} transfers in flight; {r}",
        in_flight.len()
    );
    let converged = w.run_until(600, |w| w.max_over_mean() <= 1.05);
    w.run(60);
    w.report(
        &format!("meta leader killed with {} moves in flight", in_flight.len()),
        converged.map(|s| s + 20),
        None,
    );
    println!(
        "meta failover at {takeover} s: {} transfers in flight, each finished once",
        in_flight.len()
    );
    assert!(converged.is_some(), "max/mean {:.3} after the failover; {r}", w.max_over_mean());
}

/// Load that rises and falls: four of n1's shards swing between 100 and `amplitude` × 100
/// units with a period of `period_windows` load windows, the rest stay at 100. Returns the
/// world after `seconds`, and each shard's load over a whole cycle.
fn periodic(
    config: CoreConfig,
    period_windows: u64,
    amplitude: f64,
    seconds: u64,
) -> (World, Vec<f64>) {
    let mut w = World::new(seed(), config, 6, 120, 1, 100.0);
    let n1 = w.id_of(0).unwrap();
    let mut picked = 0;
    let swinging: Vec<bool> = w
        .catalog()
        .shards
        .iter()
        .map(|s| {
            let pick = s.leader == Some(n1) && picked < 4;
            picked += pick as usize;
            pick
        })
        .collect();
    let period = (period_windows * 10) as f64;
    let typical: Vec<f64> =
        swinging.iter().map(|&s| if s { 100.0 * (1.0 + amplitude) / 2.0 } else { 100.0 }).collect();
    w.load = Box::new(move |s, t| {
        if !swinging[s.index()] {
            return 100.0;
        }
        let phase = (t as f64 / period * std::f64::consts::TAU).cos();
        100.0 * (1.0 + (amplitude - 1.0) * (0.5 - 0.5 * phase))
    });
    w.run(seconds);
    (w, typical)
}

/// The scheduler's events of jobs of the kind named (`"fill"`, `"drain"`, `"slow"`) ending.
fn job_events(w: &mut World, job: &str) -> Vec<String> {
    let events = match w.h.call(Request::ListEvents { cluster: "c".into(), after: 0, limit: 1_000 })
    {
        Ok(Response::Events { events, .. }) => events,
        other => panic!("{other:?}"),
    };
    let ended = format!(" {job} ended: ");
    events.into_iter().map(|e| e.text).filter(|t| t.contains(&ended)).collect()
}

/// The periodic loads of the issue that found the balancer thrashing (10 moves in 40 windows,
/// back and forth): periods of 1 to 20 windows, swings of 2× and 5×, for half an hour each.
/// Over a cycle n1 is 1.31× the mean at 5×: a few moves off it are right, and then none.
/// Every node only fills or only empties (thrash 0%), and B1 holds. Periods of 40 and 60
/// windows are shown too: a load that holds for three minutes or more is followed, on purpose,
/// and then B1 must still hold.
#[test]
fn periodic_load_moves_a_few_shards_once_and_never_back() {
    for period in [1, 2, 3, 4, 6, 8, 12, 20, 40, 60] {
        for amplitude in [2.0, 5.0] {
            let (mut w, typical) = periodic(CoreConfig::default(), period, amplitude, 1_800);
            let thrash = w.thrash_pct(|s| typical[s.index()]);
            let row = format!("periodic load, {period} windows, {amplitude}×");
            let balance = w.typical_max_over_mean(|s| typical[s.index()]);
            w.report_of(&row, None, None, balance);
            let wobble = wobbles(&mut w).into_iter().fold(0.0, f64::max);
            println!(
                "{row}: thrash {thrash:.0}%, {} pair reversals, widest wobble {wobble:.3}",
                w.pair_reversals(600)
            );
            let r = replay(&w, "periodic_load");
            assert!(w.unsteady.is_empty(), "{row}: {:?}; {r}", w.unsteady);
            let fills = job_events(&mut w, "fill");
            if period <= 20 {
                // No node is ever far enough below its share for long enough to fill. (A fill
                // judged by leader counts in a pass that judged nothing started and ended at
                // once, each time a transfer finished.)
                assert!(
                    fills.is_empty(),
                    "{row}: {} fills, first {:?}; {r}",
                    fills.len(),
                    fills[0]
                );
                assert!(thrash <= 5.0, "{row}: thrash {thrash:.0}%; {r}");
                assert!(w.moves.len() <= 8, "{row}: {} moves; {r}", w.moves.len());
                assert!(balance <= 1.15, "{row}: max/mean over a cycle {balance:.3}; {r}");
                // The swing shows in the wobble of a node that leads swinging shards (a quiet
                // node's is under 0.01), and keeps the precision margin off it.
                if amplitude == 5.0 && period >= 3 {
                    assert!(wobble > 0.05, "{row}: the widest wobble {wobble:.3}; {r}");
                }
            }
        }
    }
}

/// B1 catches a balancer that forgets which way it moved load.
#[test]
fn the_steadiness_checker_catches_a_balancer_without_pair_memory() {
    let config =
        CoreConfig { planted_bug: Some(PlantedBug::ForgetLoadFlows), ..Default::default() };
    let caught = [20, 40, 60, 90].into_iter().find_map(|period| {
        let (w, _) = periodic(config.clone(), period, 5.0, 3_600);
        w.unsteady.first().cloned()
    });
    let v = caught.expect("no period made load flow back without the pair memory");
    assert_eq!(v.invariant, shardmeta::check::Invariant::Steady, "{v}");
}

/// A node whose stats froze is not believed. n1 keeps reporting the same numbers while its
/// true load rises to 1.5×; a minute later n2's shards double. Before, n1 took n2's shards while
/// its true load was 1.44× the mean; now it is shown as frozen, and n2 sheds to the others only.
fn frozen_stats(config: CoreConfig) -> World {
    let mut w = World::new(seed(), config, 6, 120, 1, 100.0);
    let (n1, n2) = (w.id_of(0).unwrap(), w.id_of(1).unwrap());
    let leaders: Vec<Option<u32>> = w.catalog().shards.iter().map(|s| s.leader).collect();
    w.freeze(0);
    let on = move |s: ShardId, n: u32| leaders[s.index()] == Some(n);
    w.load = Box::new(move |s, t| match () {
        _ if on(s, n1) => 150.0,
        _ if on(s, n2) && t >= 100 => 200.0,
        _ => 100.0,
    });
    w.run(420);
    w
}

#[test]
fn a_node_whose_stats_froze_gets_no_load() {
    let mut w = frozen_stats(CoreConfig::default());
    let n1 = w.id_of(0).unwrap();
    let r = replay(&w, "frozen_stats");
    let status = match w.h.call(Request::SchedulerStatus { cluster: "c".into() }) {
        Ok(Response::Scheduler(s)) => s,
        other => panic!("{other:?}"),
    };
    let shown = status.nodes.iter().find(|n| n.name == "n1").expect("n1");
    assert!(shown.stats_frozen && !shown.judged, "{shown:?}; {r}");
    let onto_n1: Vec<_> = w.moves.iter().filter(|m| m.to == Some(n1)).collect();
    assert!(onto_n1.is_empty(), "moves onto the frozen node: {onto_n1:?}; {r}");
    let others = [1, 2, 3, 4, 5];
    let balance = w.max_over_mean_of(&others);
    w.report_of("a node's stats frozen, another node's load doubles", None, None, balance);
    assert!(balance <= 1.10, "the others are not balanced: {balance:.3}; {r}");
}

/// The frozen-stats scenario catches a balancer that believes them.
#[test]
fn believing_frozen_stats_gives_the_frozen_node_load() {
    let config =
        CoreConfig { planted_bug: Some(PlantedBug::TrustFrozenStats), ..Default::default() };
    let w = frozen_stats(config);
    let n1 = w.id_of(0).unwrap();
    assert!(w.moves.iter().any(|m| m.to == Some(n1)), "{:?}", w.moves);
}
