//! Helpers for tests of procedures (splits and merges) on cluster `c`: listing them, running
//! them out while checking S5 and S1 per table at every round, and a meta failover.

use super::*;
use shardmeta::core::model::ProcedureStep;

pub fn procedures(h: &mut Harness) -> Vec<ProcedureInfo> {
    match h.call(Request::ListProcedures { cluster: "c".into() }) {
        Ok(Response::Procedures(p)) => p,
        other => panic!("{other:?}"),
    }
}

pub fn catalog(h: &Harness) -> &shardmeta::core::model::ClusterCatalog {
    h.core.catalog().unwrap().cluster_by_name("c").unwrap()
}

/// S5 and S1 per table, now: the catalog's integrity holds, and no table is in a shard that two
/// nodes lead under lease at once.
pub fn check(h: &Harness, nodes: &[Node]) {
    if let Err(v) = check_tables(h, nodes) {
        panic!("{v}");
    }
}

pub fn check_tables(h: &Harness, nodes: &[Node]) -> Result<(), shardmeta::check::Violation> {
    shardmeta::check::integrity(h.core.catalog().unwrap())?;
    let cid = catalog(h).id();
    let leading = nodes.iter().flat_map(|n| {
        let led = n.host.shards().iter().filter(|(&shard, _)| n.host.is_leading(shard, h.now));
        led.flat_map(move |(_, s)| s.tables.iter().map(move |&t| (cid, t, n.name.as_str())))
    });
    shardmeta::check::single_table_writer(leading)
}

/// Runs rounds (checking every step) until no procedure is left; the rounds taken.
pub fn run_out(h: &mut Harness, nodes: &mut [Node]) -> usize {
    for i in 1..=60 {
        round(h, nodes, 500);
        check(h, nodes);
        if catalog(h).procedures.is_empty() {
            return i;
        }
    }
    panic!("the procedure never ended: {:?}", procedures(h));
}

/// Ticks with no heartbeat until the procedure is at `step`; nodes hear what meta pushes.
pub fn tick_to(h: &mut Harness, nodes: &mut [Node], step: ProcedureStep) {
    for _ in 0..10 {
        if catalog(h).procedures.values().next().is_some_and(|p| p.step() == step) {
            return;
        }
        h.advance(200);
        let outs = h.settle();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
    }
    panic!("the procedure never reached {step:?}: {:?}", catalog(h).procedures);
}

/// A heartbeat from every node, reporting what it holds.
pub fn report(h: &mut Harness, nodes: &mut [Node]) {
    round(h, nodes, 0);
}

pub fn fail_over(h: &mut Harness, term: u64) {
    let mut next = Harness::leader_with(CoreConfig::default());
    next.now = h.now;
    next.store = h.store.clone();
    next.gain(Term(term), h.stored());
    *h = next;
}

/// Three nodes, `shards` shards with a follower each, and 12 tables spread over them.
pub fn tabled_cluster(shards: u32) -> (Harness, Vec<Node>) {
    tabled_cluster_with(CoreConfig::default(), shards)
}

/// The same, with a leader of `config`.
pub fn tabled_cluster_with(config: CoreConfig, shards: u32) -> (Harness, Vec<Node>) {
    let (mut h, mut nodes) = steady_cluster_configured(config, 3, shards, 1, &[]);
    for t in 0..12 {
        h.create_table(&format!("t{t}"), false).unwrap();
    }
    round(&mut h, &mut nodes, 500);
    (h, nodes)
}

/// The cluster's event log, oldest first.
pub fn events(h: &mut Harness) -> Vec<EventInfo> {
    match h.call(Request::ListEvents { cluster: "c".into(), after: 0, limit: 0 }) {
        Ok(Response::Events { events, .. }) => events,
        other => panic!("{other:?}"),
    }
}

/// `rounds` rounds of 250 ms in which node `deaf` hears no push: it hears only the answers to
/// its own heartbeats, and with `heartbeats: false` sends none. The first S5 or S1-per-table
/// violation seen after a round, if any: a leader that was not told to let go keeps serving.
pub fn rounds_with_a_deaf_node(
    h: &mut Harness,
    nodes: &mut [Node],
    deaf: usize,
    heartbeats: bool,
    rounds: usize,
) -> Option<shardmeta::check::Violation> {
    let mut caught = None;
    for _ in 0..rounds {
        h.advance(250);
        let outs = h.settle();
        nodes
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| *i != deaf)
            .for_each(|(_, n)| n.receive(&outs));
        for i in (0..nodes.len()).filter(|&i| heartbeats || i != deaf) {
            nodes[i].heartbeat(h).unwrap();
            let outs = h.settle();
            nodes
                .iter_mut()
                .enumerate()
                .filter(|(j, _)| *j != deaf || *j == i)
                .for_each(|(_, n)| n.receive(&outs));
        }
        caught = caught.or(check_tables(h, nodes).err());
    }
    caught
}

/// Ticks until the procedure is at `step`, then a new meta leader takes over from storage;
/// it must have loaded the procedure at that step. The procedure is then run out.
pub fn fail_over_at(h: &mut Harness, nodes: &mut [Node], step: ProcedureStep, term: u64) {
    tick_to(h, nodes, step);
    check(h, nodes);
    fail_over(h, term);
    assert_eq!(procedures(h)[0].step, step, "the new leader loaded the procedure at its step");
    run_out(h, nodes);
}
