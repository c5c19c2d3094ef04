//! Load that is neither still nor periodic: a random walk per shard, and a flash crowd that
//! comes and goes. The balancer follows what lasts, and load never goes back and forth
//! between two nodes (B1, and no pair reversal within the 10 min cooldown).

use shardmeta::core::cause::Cause;
use shardmeta::core::*;

use super::world::World;
use super::{replay, seed};

/// A number in [0, 1) from the seed, a shard and a step, without state.
fn unit(seed: u64, shard: u64, step: u64) -> f64 {
    let mut x =
        seed ^ shard.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Each of 120 shards' load takes a step of up to ±10% every 30 s, kept within 50-300 units,
/// for an hour: load drifts apart and the balancer follows it, a little at a time.
#[test]
fn a_random_walk_is_followed_without_going_back() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "random_walk");
    let (shards, steps, s) = (120usize, 130usize, w.seed);
    let mut walk = vec![vec![100.0f64; shards]];
    for step in 1..steps {
        let last = &walk[step - 1];
        let next = (0..shards)
            .map(|shard| {
                let factor = 0.9 + 0.2 * unit(s, shard as u64, step as u64);
                (last[shard] * factor).clamp(50.0, 300.0)
            })
            .collect();
        walk.push(next);
    }
    let start = w.second;
    w.load = Box::new(move |shard, t| {
        let step = ((t.saturating_sub(start)) / 30) as usize;
        walk[step.min(steps - 1)].get(shard.index()).copied().unwrap_or(100.0)
    });
    let mut worst_late = 0.0_f64;
    for minute in 0..60 {
        w.run(60);
        if minute >= 10 {
            worst_late = worst_late.max(w.max_over_mean());
        }
    }
    let reversals = w.pair_reversals(600);
    w.report("random walk of every shard's load, ±10% per 30 s, 1 hour", None, None);
    println!(
        "random walk: {} moves in an hour, {reversals} pair reversals, worst max/mean after 10 min {worst_late:.3}",
        w.moves.len()
    );
    assert_eq!(reversals, 0, "load went back and forth; {r}");
    assert!(worst_late <= 1.25, "max/mean reached {worst_late:.3}; {r}");
    assert!(w.moves.len() <= 60, "{} moves in an hour; {r}", w.moves.len());
}

/// A flash crowd: ten shards, five led by n1 and five by n2, jump to 10× for five minutes, then
/// fall back. The two hot nodes are relieved before it ends; once it is gone no load moves
/// back between the same nodes (B1), and the cluster ends within the overfull line.
#[test]
fn a_flash_crowd_is_relieved_and_nothing_moves_back_after_it() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "flash_crowd");
    let (n1, n2) = (w.id_of(0).unwrap(), w.id_of(1).unwrap());
    let mut picked = [0, 0];
    let hot: Vec<bool> = w
        .catalog()
        .shards
        .iter()
        .map(|s| {
            let side = [Some(n1), Some(n2)].iter().position(|&n| s.leader == n);
            side.is_some_and(|i| {
                picked[i] += 1;
                picked[i] <= 5
            })
        })
        .collect();
    let start = w.second;
    let crowd = move |t: u64| (start + 60..start + 360).contains(&t);
    w.load = Box::new(move |s, t| if hot[s.index()] && crowd(t) { 1_000.0 } else { 100.0 });
    w.run(60);
    let relieved = w.run_until(300, |w| w.max_over_mean() <= 1.25);
    let during = w.moves.len();
    w.run_until(360 - w.second.saturating_sub(start).min(360), |_| false);
    w.run(1_200);
    let after = w.moves.len() - during;
    w.report("flash crowd: 10 shards of 2 nodes at 10× for 5 min", relieved, None);
    println!("flash crowd: relieved in {relieved:?} s with {during} moves; {after} moves after it");
    // Both views of load must agree, for three windows, and a node a move touched waits three
    // more: relief comes within the crowd, but slowly (to 1.25× of the mean; the 1.10 line is
    // not reached on every seed before the crowd is gone). B1 holds (`report` checks it): what
    // moves after the crowd never goes back between the same two nodes within the cooldown.
    assert!(relieved.is_some(), "not relieved to 1.25× while it lasted; {r}");
    // The nodes the crowd hit shed to every other node, so no node may give load back to them
    // until the 10 min pair memory ends: they stand at about half the mean until then, and
    // refill once it has passed: moves back just outside the cooldown, which
    // `pair_reversals(601)` counts and `pair_reversals(600)` does not.
    let back = w.pair_reversals(601) - w.pair_reversals(600);
    println!("flash crowd: {back} moves back at the end of the pair memory");
    assert!(w.max_over_mean() <= 1.10, "max/mean {:.3} at the end; {r}", w.max_over_mean());
}

/// n1 reports half its true load. Believed, it would draw shards until its reports matched
/// the others': twice its share. The shards that move to it report half what their last
/// leaders did, so after a few moves with two nodes its figures are contradicted, shown so,
/// and not believed: it takes nothing more, and ends near its share.
#[test]
fn a_node_reporting_half_its_load_is_found_out() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "reporting_half");
    let n1 = w.id_of(0).unwrap();
    w.report_factor = vec![0.5];
    let mut flagged_at = None;
    w.run_until(900, |w| {
        if flagged_at.is_none() {
            if let Ok(Response::Scheduler(s)) =
                w.h.call(Request::SchedulerStatus { cluster: "c".into() })
            {
                if s.nodes.iter().any(|n| n.name == "n1" && n.stats_contradicted) {
                    flagged_at = Some((w.second, w.moves.len()));
                }
            }
        }
        false
    });
    let (at, moves_then) = flagged_at.unwrap_or_else(|| panic!("n1 never found out; {r}"));
    let onto: Vec<_> = w.moves.iter().filter(|m| m.to == Some(n1)).collect();
    let after: Vec<_> = w.moves[moves_then..].iter().filter(|m| m.to == Some(n1)).collect();
    let loads = w.node_loads();
    let mean = loads.iter().sum::<f64>() / 6.0;
    let n1_ratio = loads[n1 as usize] / mean;
    w.report_of("a node reporting half its load", Some(at), None, n1_ratio);
    println!("reporting half: found out at {at} s, {} moves onto it, then {}; its true load {n1_ratio:.2}× the mean", onto.len(), after.len());
    assert!(after.is_empty(), "moves onto n1 after it was found out: {after:?}; {r}");
    assert!(onto.len() <= 8, "{} moves onto n1; {r}", onto.len());
    assert!(n1_ratio <= 1.5, "n1 carries {n1_ratio:.2}× the mean; {r}");
}

/// From now on, the nightly lull's load: 120 shards of uneven weight (50-300 units) by day,
/// `night` of that by night, 20 minutes each with 5 minutes of dusk and dawn between.
fn nightly(w: &mut World, night: f64) {
    let s = w.seed;
    let start = w.second;
    w.load = Box::new(move |shard, t| {
        let weight = 50.0 + 250.0 * unit(s, shard.index() as u64, 0);
        // Through the day's 2,400 s: day, dusk, night, dawn (then day again).
        let at = t.saturating_sub(start) % 2_400;
        let ramp = |x: u64| (x as f64 / 300.0 * std::f64::consts::PI).cos() * 0.5 + 0.5;
        let daylight = match at {
            0..900 => 1.0,
            900..1_200 => ramp(at - 900),
            1_200..2_100 => 0.0,
            _ => 1.0 - ramp(at - 2_100),
        };
        weight * (night + (1.0 - night) * daylight)
    });
}

/// Load that falls under the floor every night: 120 shards of uneven weight (50-300 units) by
/// day, a fiftieth of that by night, 20 minutes each with 5 minutes of dusk and dawn between
/// (every shard alike), for four days. By day the balancer evens the load, which leaves leader
/// counts uneven; by night no node carries enough load for it to mean anything, and counts
/// are balanced instead. Counts must not undo each day's work, and nothing may move at dawn,
/// when every node rises through the floor, each as its shards' windows close.
#[test]
fn a_nightly_lull_under_the_floor_does_not_undo_the_days_balance() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "nightly_lull");
    nightly(&mut w, 0.02);
    w.run(2 * 2_400);
    let two_days = w.moves.len();
    w.run(2 * 2_400);
    let last_two = w.moves.len() - two_days;
    let back = w.reversals(4 * 2_400);
    w.report("nightly lull under the load floor, 4 days", None, None);
    let counts_evened = count_moves_within(&mut w, 2 * 2_400);
    println!("nightly lull: {two_days} moves in the first two days, {last_two} in the last two ({counts_evened} for counts), {back} shards back");
    assert_eq!(back, 0, "shards went back where they were; {r}");
    // Counts evened each night and undone each day moved shards every day (5-11 after the
    // first, seeds 1-3); evened once at some dusk where the loads happened to agree, they cost
    // a move nothing asked for (seeds 473 and 741). The lull keeps the counts the day left.
    assert_eq!(counts_evened, 0, "{counts_evened} count moves in the last two days; {r}");
    // The first dawns and dusks may settle a shard or two more (a move a cooldown put off).
    // After them, a node that has stood within a hair of a line all along may cross it once,
    // as its shards' windows close at different times in a ramp, and shed a shard that lowers
    // the pair's peak (none comes back, above): seeds 79, 339, 473, 545 and 580 of 753, one
    // move each. More than that is a lull that does not settle.
    assert!(last_two <= 1, "{last_two} moves in the last two days; {r}");
}

/// How many leader transfers for counts started in the last `seconds`.
fn count_moves_within(w: &mut World, seconds: u64) -> usize {
    let events = match w.h.call(Request::ListEvents { cluster: "c".into(), after: 0, limit: 1_000 })
    {
        Ok(Response::Events { events, .. }) => events,
        other => panic!("{other:?}"),
    };
    events
        .iter()
        .filter(|e| e.cause == Cause::LeaderCount && e.age_ms < seconds * 1_000)
        .filter(|e| e.text.contains(" start transfer: "))
        .count()
}

/// The nightly lull's load (nights at a hundredth, well under the floor), and a node down for
/// two minutes in the night: its leaders fail over to their followers, and when it returns the
/// lull gives them back (the nodes that took them lead more than the day left them, and it
/// fewer) before dawn, so that the day starts from the day's balance. Not the same shards: a
/// leader goes back only while the loads' order holds, so the returned node may end a few
/// short, and the next day settles that by load.
#[test]
fn a_node_down_in_the_night_gets_its_leaders_back_before_dawn() {
    let mut w = World::new(seed(), CoreConfig::default(), 6, 120, 1, 100.0);
    let r = replay(&w, "night_outage");
    nightly(&mut w, 0.01);
    w.run(2_400 + 1_600); // a day, and the first 400 s of the night
    let leads = |w: &World| -> Vec<usize> {
        let c = w.catalog();
        (0..6).map(|i| c.shards.iter().filter(|s| s.leader == w.id_of(i)).count()).collect()
    };
    let day = leads(&w);
    w.up[2] = false;
    w.run(120);
    let failed_over = leads(&w);
    w.nodes[2].restart();
    w.up[2] = true;
    w.run(380); // to 20 s before dawn
    let before_dawn = leads(&w);
    let moves_at_night = w.moves.len();
    w.run(2_400);
    let next_day = w.moves.len() - moves_at_night;
    w.report("a node down in the nightly lull, then back", None, None);
    println!("night outage: day {day:?}, failed over {failed_over:?}, before dawn {before_dawn:?}; {next_day} moves the next day");
    assert_eq!(failed_over[2], 0, "n3 failed over; {r}");
    assert!(5 * before_dawn[2] >= 4 * day[2], "n3 got {before_dawn:?} of {day:?} back; {r}");
    assert!(
        (0..6).all(|i| i == 2 || before_dawn[i] >= day[i]),
        "only leaders that failed over went back: {before_dawn:?}, by day {day:?}; {r}"
    );
    // Seeds 1-160: at most 4.
    assert!(next_day <= 6, "{next_day} moves the next day; {r}");
}
