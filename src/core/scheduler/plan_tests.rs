//! The planner on small hand-built catalogs: one pass, the exact moves it decides.

use super::load_view::LoadView;
use super::{Move, MoveReason, Planner};
use crate::core::cause::Cause;
use crate::core::config::CoreConfig;
use crate::core::ids::*;
use crate::core::input::{Heartbeat, ShardLoad};
use crate::core::live::LiveCluster;
use crate::core::model::Mutation;
use crate::core::model::{
    Catalog, ClusterCatalog, ClusterRecord, NodeRecord, ProcedureRecord, ShardRecord, Topology,
    TransferRecord,
};
use crate::core::settings::SchedulerSettings;
use crate::core::time::{Duration, Instant};

const C: ClusterId = ClusterId(1);
const T0: Instant = Instant(1_000);

/// A cluster of `nodes` nodes whose shards hold `shards` (unassigned when absent).
fn catalog(nodes: u32, shard_count: u32, followers: u32, shards: &[ShardRecord]) -> Catalog {
    let mut c = Catalog::default();
    let topology = ClusterRecord::topology_code(Topology::Dynamic);
    c.apply(Mutation::PutCluster(ClusterRecord {
        id: C.0,
        name: "c".into(),
        shard_count,
        followers_per_shard: followers,
        topology,
        min_nodes: 1,
        dropped: false,
    }))
    .unwrap();
    for id in 0..nodes {
        c.apply(Mutation::PutNode(
            C,
            NodeRecord {
                id,
                name: format!("n{id}"),
                endpoint: format!("n{id}:1"),
                ..Default::default()
            },
        ))
        .unwrap();
    }
    for s in shards {
        c.apply(Mutation::PutShard(C, s.clone())).unwrap();
    }
    c
}

fn shard(id: u32, version: u64, leader: u32, followers: &[u32]) -> ShardRecord {
    ShardRecord {
        id,
        version,
        leader: Some(leader),
        followers: followers.to_vec(),
        ..Default::default()
    }
}

fn plan(cluster: &ClusterCatalog, live: &mut LiveCluster, now: Instant) -> Vec<Move> {
    Planner::new(cluster, live, now, &CoreConfig::default()).plan()
}

/// A new leader's live state after every node of `nodes` has settled (heartbeat enough times to
/// be admitted).
fn heard(cluster: &ClusterCatalog, nodes: u32) -> LiveCluster {
    let mut live = LiveCluster::new(cluster, T0, &CoreConfig::default());
    for id in 0..nodes {
        speak(cluster, &mut live, id);
    }
    live
}

/// Node `id` sends the settle count of heartbeats, the last with sequence number
/// [`SETTLED_SEQ`].
fn speak(cluster: &ClusterCatalog, live: &mut LiveCluster, id: u32) {
    for seq in 1..=SETTLED_SEQ {
        let hb = Heartbeat { seq, ..heartbeat(id) };
        live.heard_from(cluster, NodeId(id), SessionId(id as u64 + 1), &hb, T0);
    }
}

const SETTLED_SEQ: u64 = CoreConfig::DEFAULT_SETTLE_HEARTBEATS as u64;

/// Just enough of a heartbeat from node `id` for the live state to count the node as heard.
fn heartbeat(id: u32) -> Heartbeat {
    let (node, endpoint) = (format!("n{id}"), format!("n{id}:1"));
    Heartbeat {
        cluster: "c".into(),
        node,
        endpoint,
        zone: String::new(),
        labels: Vec::new(),
        incarnation: 1,
        seq: 1,
        stats: Default::default(),
        shards: vec![],
        tables: vec![],
        load_rejections: 0,
        leaving: false,
    }
}

/// A new leader inherits nodes as alive for a lease of grace, but gives them nothing new until
/// they speak: any of them may have been down all along.
#[test]
fn inherited_nodes_take_no_new_shards_until_they_heartbeat() {
    let catalog = catalog(2, 2, 0, &[]);
    let cluster = catalog.cluster(C);
    let mut live = LiveCluster::new(cluster, T0, &CoreConfig::default());
    assert_eq!(plan(cluster, &mut live, T0), vec![]);
    live.heard_from(cluster, NodeId(1), SessionId(2), &heartbeat(1), T0);
    assert_eq!(plan(cluster, &mut live, T0), vec![], "one heartbeat does not admit a node");
    speak(cluster, &mut live, 1);
    let moves = plan(cluster, &mut live, T0);
    assert_eq!(
        moves.iter().map(|m| m.record.leader).collect::<Vec<_>>(),
        vec![Some(1), Some(1)],
        "only the node heard from"
    );
}

#[test]
fn unassigned_shards_go_to_the_least_loaded_nodes_in_turn() {
    let catalog = catalog(2, 2, 0, &[]);
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 2);
    let moves = plan(cluster, &mut live, T0);
    let expected = vec![
        Move {
            record: ShardRecord { version: 1, ..shard(0, 0, 0, &[]) },
            closes: vec![],
            kept: vec![],
            reason: MoveReason::Assign,
            cause: Cause::Assign,
            why: String::new(),
            writes: vec![],
        },
        Move {
            record: ShardRecord { version: 1, ..shard(1, 0, 1, &[]) },
            closes: vec![],
            kept: vec![],
            reason: MoveReason::Assign,
            cause: Cause::Assign,
            why: String::new(),
            writes: vec![],
        },
    ];
    assert_eq!(moves, expected);
}

/// The leader's node died and its lease is surely over: the follower leads, and the old leader
/// keeps the follower slot (it may return; with no third node, repair has nowhere better).
#[test]
fn a_dead_leaders_follower_is_promoted_once_the_lease_is_over() {
    let config = CoreConfig::default();
    let catalog = catalog(2, 1, 1, &[shard(0, 3, 0, &[1])]);
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 2);
    live.set_online(NodeId(0), false);
    assert_eq!(plan(cluster, &mut live, T0), vec![], "not while the lease may still be held");
    let later = T0 + config.lease() + config.clock_drift() + Duration(1);
    let moves = plan(cluster, &mut live, later);
    let expected = vec![Move {
        record: shard(0, 4, 1, &[0]),
        closes: vec![],
        kept: vec![NodeId(1), NodeId(0)],
        reason: MoveReason::PromoteFollower,
        cause: Cause::Failover,
        why: "n0 is offline and its lease is over".into(),
        writes: vec![],
    }];
    assert_eq!(moves, expected);
}

/// Two leaders on one node and none on the other, no load: one transfer starts, to the idle
/// node. (Until every load is known, nothing is balanced at all.)
#[test]
fn balancing_starts_one_transfer_from_the_busiest_node() {
    let catalog = catalog(2, 2, 1, &[shard(0, 1, 0, &[1]), shard(1, 1, 0, &[1])]);
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 2);
    let now = warm(cluster, &mut live, &[0.0; 2]); // loads known, and too low to balance by
    let moves = plan(cluster, &mut live, now);
    let procedure = moves.first().and_then(|m| m.record.transfer).map_or(0, |t| t.procedure);
    let transfer = Some(TransferRecord { from: 0, to: 1, procedure });
    let stored = ProcedureRecord::transfer(
        procedure,
        0,
        Cause::LeaderCount,
        "leader n0 -> n1: n0 leads 2 shards, n1 leads 0".into(),
    );
    let writes = moves.first().map(|m| m.writes.clone()).unwrap_or_default();
    assert_eq!(
        writes.last(),
        Some(&Mutation::PutProcedure(C, stored)),
        "the transfer's procedure is stored with it"
    );
    let expected = vec![Move {
        record: ShardRecord { transfer, ..shard(0, 2, 0, &[1]) },
        closes: vec![NodeId(0)],
        kept: vec![NodeId(0), NodeId(1)],
        reason: MoveReason::StartTransfer,
        cause: Cause::LeaderCount,
        why: "n0 leads 2 shards, n1 leads 0".into(),
        writes,
    }];
    assert_eq!(moves, expected);
}

/// Reports each shard's load (`units[shard]`) for four 10 s windows from `T0`, so that every
/// load is trusted; the time after.
fn warm(cluster: &ClusterCatalog, live: &mut LiveCluster, units: &[f64]) -> Instant {
    report_windows(cluster, live, units, T0, 4)
}

/// Three nodes and six shards: n0 leads four, each followed on another node, n1 and n2 one.
fn n0_leads_four() -> Catalog {
    let shards = [
        shard(0, 1, 0, &[1]),
        shard(1, 1, 0, &[2]),
        shard(2, 1, 0, &[1]),
        shard(3, 1, 0, &[2]),
        shard(4, 1, 1, &[0]),
        shard(5, 1, 2, &[0]),
    ];
    catalog(3, 6, 1, &shards)
}

/// Three nodes, six shards of 100 units: n0 leads four (400, twice the mean of 200). It sheds
/// to 200 by two transfers to followers, one to each other node, and no further: a third would
/// take its target over the line.
#[test]
fn an_overfull_node_sheds_by_transfers_to_followers() {
    let catalog = n0_leads_four();
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 3);
    let now = warm(cluster, &mut live, &[100.0; 6]);
    assert_eq!(plan(cluster, &mut live, now), vec![], "not overfull for long enough yet");
    let moves = plan(cluster, &mut live, now + Duration(30_000));
    let targets: Vec<(u32, MoveReason, Cause)> =
        moves.iter().map(|m| (m.record.transfer.unwrap().to, m.reason, m.cause)).collect();
    assert_eq!(
        targets,
        vec![
            (1, MoveReason::StartTransfer, Cause::Load),
            (2, MoveReason::StartTransfer, Cause::Load)
        ]
    );
    assert!(
        moves.iter().all(|m| m.record.followers.contains(&m.record.transfer.unwrap().to)),
        "both are promotions"
    );
    assert!(
        moves[0].why.starts_with("n0 load 2.00× mean; shard 0 carries 25% of it; n1 at 0.50×"),
        "{}",
        moves[0].why
    );
}

/// A standing counts only passes that judged it: the node of the test above, over the line
/// when the scheduler is paused, sheds only once it has stood over it for `overfull_windows`
/// of passes after the pause. (A standing that spanned a pause, or a night under the floor,
/// counted passes that never looked, and the first pass after it shed at once.)
#[test]
fn a_standing_starts_again_after_passes_that_did_not_judge_it() {
    let catalog = n0_leads_four();
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 3);
    let units = [100.0; 6];
    let now = warm(cluster, &mut live, &units);
    assert_eq!(plan(cluster, &mut live, now), vec![], "not overfull for long enough yet");
    live.set_settings(SchedulerSettings { paused: true, ..Default::default() });
    let now = report_windows(cluster, &mut live, &units, now, 3);
    assert_eq!(plan(cluster, &mut live, now), vec![], "paused");
    live.set_settings(SchedulerSettings::default());
    assert_eq!(plan(cluster, &mut live, now), vec![], "standing again from the first pass");
    let now = report_windows(cluster, &mut live, &units, now, 3);
    assert_eq!(plan(cluster, &mut live, now).len(), 2, "stood long enough");
}

/// With no followers to promote, the shard is reopened on the coolest node.
#[test]
fn with_no_follower_to_take_it_a_shard_is_reopened() {
    let shards =
        [shard(0, 1, 0, &[]), shard(1, 1, 0, &[]), shard(2, 1, 0, &[]), shard(3, 1, 1, &[])];
    let catalog = catalog(3, 4, 0, &shards);
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 3);
    let now = warm(cluster, &mut live, &[100.0; 4]);
    let moves = plan(cluster, &mut live, now);
    assert_eq!(moves.len(), 1, "{moves:?}");
    let t = moves[0].record.transfer.expect("a transfer");
    assert_eq!((t.from, t.to, moves[0].closes.clone()), (0, 2, vec![NodeId(0)]));
    assert!(moves[0].why.ends_with("takes it by reopen"), "{}", moves[0].why);
}

/// Within the tolerance, below the floor, paused, or not yet trusted: no load move.
#[test]
fn no_load_move_within_tolerance_untrusted_or_paused() {
    let shards = [shard(0, 1, 0, &[1]), shard(1, 1, 1, &[0])];
    let catalog = catalog(2, 2, 1, &shards);
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 2);
    let now = warm(cluster, &mut live, &[1_090.0, 1_000.0]);
    assert_eq!(plan(cluster, &mut live, now), vec![], "4% above the mean is noise");

    let mut live = heard(cluster, 2);
    live.record_load(
        cluster,
        (NodeId(0), ShardId(0)),
        &ShardLoad { write_units: 5_000.0, ..Default::default() },
        T0,
    );
    assert_eq!(plan(cluster, &mut live, T0 + Duration(1)), vec![], "one report is not trusted");

    let mut live = heard(cluster, 2);
    let now = warm(cluster, &mut live, &[5_000.0, 100.0]);
    live.set_settings(SchedulerSettings { paused: true, ..Default::default() });
    assert_eq!(plan(cluster, &mut live, now), vec![], "paused");
}

/// A shard carrying less than the least share of its node's load is not worth a move, and a
/// shard too big for any target stays.
#[test]
fn small_shards_and_shards_no_target_can_take_stay() {
    // n0: one 1,000-unit shard and a 4-unit one (0.4%); n1 idle. Moving the big one would make
    // n1 the overfull one; the small one is below the 0.5% share.
    let shards = [shard(0, 1, 0, &[1]), shard(1, 1, 0, &[1]), shard(2, 1, 1, &[0])];
    let catalog = catalog(2, 3, 1, &shards);
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 2);
    let now = warm(cluster, &mut live, &[1_000.0, 4.0, 0.0]);
    assert_eq!(plan(cluster, &mut live, now), vec![]);
}

/// Two nodes of the given capacities over `total` 100-unit shards, the first `n0_leads` led by
/// n0 and followed on n1, the rest the other way round: the moves of a pass once a node has
/// stood over the line for `overfull_windows` (3 windows), after one pass that must wait.
fn two_capacities(capacities: [f64; 2], total: u32, n0_leads: u32) -> Vec<Move> {
    two_capacities_of(capacities, &vec![100.0; total as usize], n0_leads, |_, _| {})
}

/// The same with each shard's units given, and `before` run on the live state before the pass
/// that moves.
fn two_capacities_of(
    capacities: [f64; 2],
    units: &[f64],
    n0_leads: u32,
    before: impl FnOnce(&mut LiveCluster, Instant),
) -> Vec<Move> {
    let total = units.len() as u32;
    let shards: Vec<ShardRecord> = (0..total)
        .map(|s| if s < n0_leads { shard(s, 1, 0, &[1]) } else { shard(s, 1, 1, &[0]) })
        .collect();
    let catalog = catalog(2, total, 1, &shards);
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 2);
    for (id, capacity) in (0u32..).zip(capacities) {
        let mut hb = heartbeat(id);
        (hb.seq, hb.stats.capacity) = (SETTLED_SEQ + 1, capacity);
        live.heard_from(cluster, NodeId(id), SessionId(id as u64 + 1), &hb, T0);
    }
    let now = warm(cluster, &mut live, units);
    assert_eq!(plan(cluster, &mut live, now), vec![], "not overfull for long enough yet");
    let now = now + Duration(30_000);
    before(&mut live, now);
    plan(cluster, &mut live, now)
}

/// Once under the overfull line, a source gives a shard that takes it below the shedding line
/// only if that brings it nearer the line by more than twice its wobble, unless its wobble
/// could take it back over the overfull line where it is: n0 (capacity 1) leads 22 shards of
/// 100 units, 1.13× the mean; the first move leaves it at 1.081×, where a second would bring
/// it 20 units nearer 1.05× (2,100 − 2,040 = 60 over it, 40 under after). With steady loads it
/// makes both; with its two views 0.8% apart a moment ago (the margin 31 units), the first
/// only; 2% apart (1.081 + 2 × 0.02 reaches the overfull line), both again. (Capacities 8/8/16
/// made such moves or not as the noise fell: 16 to 18 moves for the 14 of the bound, scenario
/// seed 170.)
#[test]
fn under_the_overfull_line_an_overshoot_must_gain_more_than_the_wobble() {
    // n1 (capacity 2) leads 36 shards of 3,628.6 units in all: the mean is 1,942.9 a unit.
    let mut units = vec![100.0; 22];
    units.extend([3_628.6 / 36.0; 36]);
    let from_n0 = |wobble: f64| {
        let moves = two_capacities_of([1.0, 2.0], &units, 22, |live, now| {
            live.stood(NodeId(0), [true, false], (wobble, Duration(80_000)), now - Duration(500));
        });
        moves.iter().filter(|m| m.record.transfer.is_some_and(|t| t.from == 0)).count()
    };
    assert_eq!(from_n0(0.0), 2, "steady");
    assert_eq!(from_n0(0.008), 1, "the second gains less than the margin");
    assert_eq!(from_n0(0.02), 2, "where it is, its wobble reaches the overfull line");
}

/// Capacity counts: n0 (capacity 2) leading 4 shards is no busier than n1 (capacity 1) leading
/// 2, and nothing moves; with the shards the other way round, n1 is overfull and sheds to n0.
#[test]
fn nodes_balance_by_utilization_not_raw_load() {
    // Six 100-unit shards, n0 at capacity 2 and n1 at 1, `n0_leads` of them on n0.
    let pass = |n0_leads: u32| two_capacities([2.0, 1.0], 6, n0_leads);
    assert_eq!(pass(4), vec![], "both at 200 units per unit of capacity");
    let moves = pass(2);
    assert!(
        !moves.is_empty()
            && moves.iter().all(|m| m.record.transfer.is_some_and(|t| t.from == 1 && t.to == 0)),
        "{moves:?}"
    );
}

/// A node over the line on average, whose load rises and falls so that the current view dips
/// under the line one window in four, still sheds: it has stood over the line over the long
/// run, and the current view need only agree at the pass that moves. (Standing had to hold in
/// both views, and a cycle of three to six windows met that by chance: n1 of the madsim
/// swarm's seed 949 shed only when a trough ended a run of peaks.)
#[test]
fn a_node_over_the_line_on_average_sheds_though_its_cycle_dips_under_it() {
    // n0 leads s0, which swings 1,200 / 1,200 / 0 / 0 units, and s1-s3 at 100 (900 on
    // average); n1 and n2 lead six 100-unit shards each (600).
    let mut shards = vec![shard(0, 1, 0, &[1])];
    shards.extend((1..4).map(|s| shard(s, 1, 0, &[1 + s % 2])));
    shards.extend((4..16).map(|s| shard(s, 1, 1 + s % 2, &[0])));
    let catalog = catalog(3, 16, 1, &shards);
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 3);
    let mut now = T0;
    let (mut dips, mut moved) = (0, None);
    for window in 0..40 {
        for s in 0..16u32 {
            let units = match s {
                0 if window % 4 < 2 => 1_200.0,
                0 => 0.0,
                _ => 100.0,
            };
            let load = ShardLoad { write_units: units, ..Default::default() };
            live.record_load(cluster, (NodeId(0), ShardId(s)), &load, now);
        }
        // Once its loads are trusted, how often the current view had n0 under the line.
        let view = LoadView::of(cluster, &live, now, &CoreConfig::default());
        let n0 = view.nodes[0].expect("n0 is placeable");
        let under = n0.load / n0.capacity / view.mean <= live.settings().overfull_ratio();
        dips += (window >= 3 && under) as u32;
        let moves = plan(cluster, &mut live, now);
        if !moves.is_empty() {
            moved = Some((window, moves));
            break;
        }
        now = now + Duration(10_000);
    }
    let (window, moves) = moved.expect("n0 never shed");
    assert!(dips > 0, "the cycle never took n0 under the line before it shed");
    assert!(
        moves.iter().all(|m| m.record.transfer.is_some_and(|t| t.from == 0)),
        "window {window}: {moves:?}"
    );
}

/// A node that took load for balance within the pair cooldown sheds again only past the
/// taker's line (1.20× the mean), not at the overfull line, and gives nothing to a pull, until
/// more nodes are placeable than when it took: the swarm's seed 799 passed three 100-unit
/// shards from node to node for two minutes, each move leaving its target at 1.08×, where the
/// long run's ripple under a periodic load took it over 1.10 again.
#[test]
fn a_node_that_took_load_sheds_again_only_past_the_takers_line() {
    // Three nodes leading `counts` 100-unit shards each, every shard followed on n2 (n2's own
    // on n0); n0 took a shard from n1 at T0, when `then` nodes were placeable.
    let pass = |counts: [u32; 3], then: Option<u32>| {
        let mut shards = Vec::new();
        for (node, &count) in counts.iter().enumerate() {
            for _ in 0..count {
                let id = shards.len() as u32;
                let follower = if node == 2 { 0 } else { 2 };
                shards.push(shard(id, 1, node as u32, &[follower]));
            }
        }
        let catalog = catalog(3, shards.len() as u32, 1, &shards);
        let cluster = catalog.cluster(C);
        let mut live = heard(cluster, 3);
        if let Some(then) = then {
            live.load_moved(NodeId(1), NodeId(0), then, T0);
        }
        let now = warm(cluster, &mut live, &vec![100.0; shards.len()]);
        assert_eq!(plan(cluster, &mut live, now), vec![], "not overfull for long enough yet");
        plan(cluster, &mut live, now + Duration(30_000))
    };
    let from_n0 = |moves: &[Move]| {
        !moves.is_empty() && moves.iter().all(|m| m.record.transfer.is_some_and(|t| t.from == 0))
    };
    assert!(from_n0(&pass([7, 6, 5], None)), "n0 at 1.17× sheds");
    assert_eq!(pass([7, 6, 5], Some(3)), vec![], "a taker at 1.17× keeps its load");
    assert!(from_n0(&pass([7, 6, 5], Some(2))), "a node joined since: the mean it took by fell");
    assert!(from_n0(&pass([9, 6, 3], Some(3))), "a taker at 1.5× sheds");
    // n2 at 0.89× pulls from the nodes above the mean, n0 and n1 at 1.05×: not from a taker.
    let sources = |moves: Vec<Move>| -> Vec<u32> {
        moves.iter().filter_map(|m| m.record.transfer.map(|t| t.from)).collect()
    };
    assert!(sources(pass([20, 20, 17], None)).contains(&0), "n0 gives to the pull");
    assert_eq!(sources(pass([20, 20, 17], Some(3))), vec![1], "a taker gives to no pull");
}

/// A big node a hair over the underfull line takes a shard that leaves it under the mean: n0
/// (capacity 1) leads 6 shards, 1.2× the mean; n1 (capacity 4) leads 19, 0.95×, not below the
/// underfull line, and 20 would leave it at the mean.
#[test]
fn an_overfull_node_sheds_to_a_big_node_that_the_shard_leaves_under_the_mean() {
    let moves = two_capacities([1.0, 4.0], 25, 6);
    assert_eq!(moves.len(), 1, "one shard takes both to the mean: {moves:?}");
    assert!(moves[0].record.transfer.is_some_and(|t| t.from == 0 && t.to == 1), "{moves:?}");
}

/// Reports each shard's load (`units[shard]`) for `windows` 10 s windows from `start`; the
/// time after.
fn report_windows(
    cluster: &ClusterCatalog,
    live: &mut LiveCluster,
    units: &[f64],
    start: Instant,
    windows: u32,
) -> Instant {
    let mut now = start;
    for _ in 0..windows {
        for (s, &u) in units.iter().enumerate() {
            let load = ShardLoad { write_units: u, ..Default::default() };
            live.record_load(cluster, (NodeId(0), ShardId(s as u32)), &load, now);
        }
        now = now + Duration(10_000);
    }
    now
}

/// By day n0 leads 14 light shards (115 units) and n1 five heavy ones (96): balanced by load
/// (1.09 and 0.91 of the mean), with counts far apart. The night takes each to a fiftieth,
/// under the floor, where a transfer from n0 to n1 would leave the loads in order (2.13 against
/// 2.08), but the counts are as the day left them: the lull keeps them all night. A new meta
/// leader that never saw the day evens them. (Evened at some dusk where the loads happened to
/// agree, they cost a move nothing asked for: nightly lull seeds 473 and 741.)
#[test]
fn a_lull_keeps_the_leader_counts_the_day_left() {
    let shards: Vec<ShardRecord> =
        (0..19).map(|s| if s < 14 { shard(s, 1, 0, &[1]) } else { shard(s, 1, 1, &[0]) }).collect();
    let catalog = catalog(2, 19, 1, &shards);
    let cluster = catalog.cluster(C);
    let units = |light: f64, heavy: f64| -> Vec<f64> {
        (0..19).map(|s| if s < 14 { light } else { heavy }).collect()
    };
    let (day, night) = (units(8.2, 19.2), units(0.164, 0.384));
    let mut live = heard(cluster, 2);
    let mut now = warm(cluster, &mut live, &day);
    assert_eq!(plan(cluster, &mut live, now), vec![], "balanced by load");
    for _ in 0..60 {
        now = report_windows(cluster, &mut live, &night, now, 1);
        assert_eq!(plan(cluster, &mut live, now), vec![], "the night keeps the day's counts");
    }
    let mut fresh = heard(cluster, 2);
    let now = warm(cluster, &mut fresh, &night);
    let moves = plan(cluster, &mut fresh, now);
    assert!(
        moves.first().is_some_and(|m| m.cause == Cause::LeaderCount
            && m.record.transfer.is_some_and(|t| (t.from, t.to) == (0, 1))),
        "a leader that never saw load above the floor evens counts: {moves:?}"
    );
}

/// A transfer in flight is judged by the replicas it will leave. Here n1's zone changed to the
/// target's after the transfer started (a node back from an outage under a record an impostor
/// wrote): once it lands, two replicas share zone b. The spread scan must stay armed until then
/// (in-process seed 1592603999 passed the shard over while it was in flight, and nothing ever
/// looked again).
#[test]
fn a_transfer_that_will_crowd_a_zone_keeps_the_spread_scan_armed() {
    let mut catalog = catalog(0, 1, 2, &[]);
    for (id, zone) in ["a", "b", "c", "b", "a"].into_iter().enumerate() {
        let id = id as u32;
        catalog
            .apply(Mutation::PutNode(
                C,
                NodeRecord {
                    id,
                    name: format!("n{id}"),
                    endpoint: format!("n{id}:1"),
                    zone: zone.into(),
                    ..Default::default()
                },
            ))
            .unwrap();
    }
    catalog
        .apply(Mutation::PutProcedure(
            C,
            ProcedureRecord::transfer(7, 0, Cause::Load, "leader n0 -> n3".into()),
        ))
        .unwrap();
    let transfer = Some(TransferRecord { from: 0, to: 3, procedure: 7 });
    catalog
        .apply(Mutation::PutShard(C, ShardRecord { transfer, ..shard(0, 2, 0, &[1, 2]) }))
        .unwrap();
    let cluster = catalog.cluster(C);
    let mut live = heard(cluster, 5);
    assert!(live.take_deficit_scan(), "a new leader scans");
    live.deficit_scan_again();
    assert_eq!(
        plan(cluster, &mut live, T0),
        vec![],
        "the old leader has not let go: nothing to do yet"
    );
    assert!(
        live.take_deficit_scan(),
        "but the shard will be crowded once the transfer lands: look again"
    );
}
