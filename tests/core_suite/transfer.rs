//! Leader transfers as procedures: stored with the shard's record in one write, listed, holding
//! the shard's lock, resumed by a new meta leader, and cancelled with the old leader keeping the
//! shard. S5 (a transfer and its procedure name each other) and S1 are checked every round.

use crate::harness::*;
use shardmeta::core::model::{ProcedureKind, ProcedureStep};
use shardmeta::core::*;

fn transfer_to_follower(h: &mut Harness) -> (u32, u32) {
    let rec = catalog(h).shards[0].clone();
    let (leader, follower) = (rec.leader.unwrap(), rec.followers[0]);
    let moved = h.call(Request::MoveShard {
        cluster: "c".into(),
        shard: ShardId(0),
        node: format!("n{}", follower + 1),
        reopen: false,
    });
    assert!(matches!(moved, Ok(Response::Moved(_))), "{moved:?}");
    (leader, follower)
}

/// The one procedure running: a transfer of shard 0, waiting for its leader to let go.
fn the_transfer(h: &mut Harness) -> ProcedureInfo {
    let all = procedures(h);
    assert_eq!(all.len(), 1, "{all:?}");
    let p = all[0].clone();
    assert_eq!(
        (p.kind, p.step, p.shard),
        (ProcedureKind::Transfer, ProcedureStep::AwaitingLeaderRelease, ShardId(0))
    );
    p
}

#[test]
fn a_transfer_is_a_procedure_that_locks_its_shard_and_survives_a_meta_failover() {
    let (mut h, mut nodes) = steady_cluster_of(3, 3, 1);
    let (leader, follower) = transfer_to_follower(&mut h);
    let p = the_transfer(&mut h);
    assert!(p.why.contains(&format!("leader n{} -> n{}", leader + 1, follower + 1)), "{}", p.why);
    assert_eq!(
        catalog(&h).shards[0].transfer.map(|t| t.procedure),
        Some(p.id),
        "the shard names its procedure"
    );

    let held = |r: Result<Response, MetaError>| match r {
        Err(MetaError::FailedPrecondition(m)) => {
            assert!(m.contains(&format!("transfer procedure {}", p.id)), "{m}")
        }
        other => panic!("{other:?}"),
    };
    held(h.call(Request::MoveShard {
        cluster: "c".into(),
        shard: ShardId(0),
        node: format!("n{}", leader + 1),
        reopen: false,
    }));
    held(h.call(Request::SplitShard { cluster: "c".into(), shard: ShardId(0), tables: vec![] }));
    held(h.call(Request::MergeShards { cluster: "c".into(), shards: [ShardId(0), ShardId(1)] }));

    let logged = |h: &mut Harness, what: &str| {
        events(h).iter().any(|e| e.shard == Some(ShardId(0)) && e.text.contains(what))
    };
    assert!(logged(&mut h, "start transfer"), "the start is in the event log");

    fail_over(&mut h, 2);
    assert_eq!(the_transfer(&mut h).id, p.id, "the new meta leader loaded it");
    run_out(&mut h, &mut nodes);
    assert_eq!(catalog(&h).shards[0].leader, Some(follower), "the follower leads");
    assert_eq!(catalog(&h).shards[0].transfer, None);
    assert!(logged(&mut h, "finish transfer"), "and the finish, in the new meta leader's log");
}

/// A transfer leaves its shard without a leader only for a few messages, not for heartbeat
/// intervals: the old leader's report that it let go brings the next scheduling pass forward
/// (a tenth of a tick after the last), and the new leader's lease comes with the answer to its
/// next heartbeat (which a real node sends at once; see `NodeSession::on_message`).
#[test]
fn a_transfer_finishes_on_the_pass_right_after_the_old_leader_lets_go() {
    let (mut h, mut nodes) = steady_cluster_of(3, 3, 1);
    let rec = catalog(&h).shards[0].clone();
    let (leader, follower) = (rec.leader.unwrap() as usize, rec.followers[0] as usize);
    h.request(Request::MoveShard {
        cluster: "c".into(),
        shard: ShardId(0),
        node: format!("n{}", follower + 1),
        reopen: false,
    });
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    assert!(
        !nodes[leader].host.shards().contains_key(&ShardId(0)),
        "told to let go, the old leader closed the shard"
    );
    let hear = |h: &mut Harness, nodes: &mut [Node], i: usize| {
        nodes[i].heartbeat(h).unwrap();
        let outs = h.settle();
        nodes.iter_mut().for_each(|n| n.receive(&outs));
    };
    let let_go = h.now;
    hear(&mut h, &mut nodes, leader);
    let tick = h.core.config().tick_interval_ms;
    let (due, why) = h.core.poll_timeout().expect("a leader always has a next pass");
    assert_eq!(why, Timer::SchedulerTick);
    assert!(
        due <= let_go + Duration(tick / 10),
        "the finish is planned at once, not at the next tick: due {due:?}, let go at {let_go:?}"
    );
    h.now = due;
    h.core.handle(due, Input::Timeout);
    let outs = h.settle();
    nodes.iter_mut().for_each(|n| n.receive(&outs));
    assert_eq!(catalog(&h).shards[0].leader, Some(follower as u32), "the transfer finished");
    assert!(
        !nodes[follower].host.is_leading(ShardId(0), h.now),
        "the new leader waits for its lease"
    );
    hear(&mut h, &mut nodes, follower);
    assert!(nodes[follower].host.is_leading(ShardId(0), h.now), "which its next heartbeat brings");
    check(&h, &nodes);
}

#[test]
fn a_cancelled_transfer_leaves_the_old_leader_leading_at_a_new_version() {
    let (mut h, mut nodes) = steady_cluster_of(3, 3, 1);
    let version = catalog(&h).shards[0].version;
    let (leader, _) = transfer_to_follower(&mut h);
    let p = the_transfer(&mut h);
    let cancelled = h.call(Request::CancelProcedure { cluster: "c".into(), id: p.id });
    assert!(matches!(&cancelled, Ok(Response::Procedure(c)) if c.id == p.id), "{cancelled:?}");
    assert!(procedures(&mut h).is_empty(), "the procedure is deleted with the transfer");
    let gone = h.call(Request::CancelProcedure { cluster: "c".into(), id: p.id });
    assert!(matches!(gone, Err(MetaError::NotFound(_))), "{gone:?}");
    for _ in 0..6 {
        round(&mut h, &mut nodes, 500);
        check(&h, &nodes);
    }
    let rec = catalog(&h).shards[0].clone();
    assert_eq!((rec.leader, rec.transfer), (Some(leader), None), "the old leader keeps it");
    assert_eq!(rec.version, version + 2, "the start and the cancel each wrote a version");
    assert!(
        nodes[leader as usize].host.is_leading(ShardId(0), h.now),
        "and leads it again under lease"
    );
    assert!(events(&mut h).iter().any(|e| e.text.contains("cancelled by an operator")));
}

/// S5 catches a transfer stored without its procedure (or the reverse): such storage is
/// refused by the loader, where whole it loads.
#[test]
fn storage_with_a_transfer_but_not_its_procedure_is_refused() {
    let (mut h, _nodes) = steady_cluster_of(3, 3, 1);
    transfer_to_follower(&mut h);
    let load = |skip: &str| {
        let pairs = h.store.iter().filter(|(k, _)| skip.is_empty() || !k.contains(skip));
        shardmeta::core::model::Catalog::load(pairs.map(|(k, v)| (k.as_str(), v.as_slice())))
    };
    assert!(load("").is_ok(), "whole storage loads");
    let err = load("/procedures/").unwrap_err().to_string();
    assert!(err.contains("is in transfer by procedure"), "{err}");
}
