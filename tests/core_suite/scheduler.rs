//! Operator controls of the scheduler through the real core: status, pause and resume (kept by
//! a new meta leader), the dry-run plan, the event log, and moves by hand.

use crate::harness::*;
use shardmeta::core::cause::Cause;
use shardmeta::core::settings::SchedulerSettings;
use shardmeta::core::*;

fn set(h: &mut Harness, settings: SchedulerSettings) -> Result<Response, MetaError> {
    h.call(Request::SetScheduler { cluster: "c".into(), settings })
}

fn status(h: &mut Harness) -> SchedulerStatus {
    match h.call(Request::SchedulerStatus { cluster: "c".into() }) {
        Ok(Response::Scheduler(s)) => s,
        other => panic!("{other:?}"),
    }
}

fn plan(h: &mut Harness) -> Vec<PlannedMove> {
    match h.call(Request::PlanScheduler { cluster: "c".into() }) {
        Ok(Response::Plan(p)) => p,
        other => panic!("{other:?}"),
    }
}

fn events(h: &mut Harness) -> Vec<EventInfo> {
    match h.call(Request::ListEvents { cluster: "c".into(), after: 0, limit: 0 }) {
        Ok(Response::Events { events, .. }) => events,
        other => panic!("{other:?}"),
    }
}

fn move_shard(
    h: &mut Harness,
    shard: u32,
    node: &str,
    reopen: bool,
) -> Result<Response, MetaError> {
    h.call(Request::MoveShard {
        cluster: "c".into(),
        shard: ShardId(shard),
        node: node.into(),
        reopen,
    })
}

/// Shard 0's record in the leader's catalog.
fn shard0(h: &Harness) -> shardmeta::core::model::ShardRecord {
    h.core.catalog().unwrap().cluster_by_name("c").unwrap().shards[0].clone()
}

/// A paused scheduler moves nothing, though its dry run shows what it would do; the pause is
/// stored, so a new meta leader keeps it; resuming lets the moves happen.
#[test]
fn a_pause_holds_across_a_meta_failover_and_the_plan_shows_what_resume_would_do() {
    let (mut h, mut nodes) = steady_cluster_of(2, 4, 1);
    // A third node joins: leader counts (no load yet) say it should lead some shards.
    nodes.push(Node::new(3));
    let paused = SchedulerSettings { paused: true, ..Default::default() };
    assert!(matches!(set(&mut h, paused), Ok(Response::Scheduler(s)) if s.settings.paused));
    for _ in 0..10 {
        round(&mut h, &mut nodes, 1_000);
    }
    let n3 = NodeId(2);
    let leads = |h: &Harness| {
        h.core
            .catalog()
            .unwrap()
            .cluster_by_name("c")
            .unwrap()
            .shards
            .iter()
            .filter(|s| s.leader == Some(n3.0))
            .count()
    };
    assert_eq!(leads(&h), 0, "paused: nothing moved to the new node");
    let planned = plan(&mut h);
    assert!(
        !planned.is_empty() && planned.iter().all(|m| m.cause == Cause::LeaderCount),
        "{planned:?}"
    );
    assert!(planned[0].text.contains("-> n3"), "{}", planned[0].text);
    assert_eq!(leads(&h), 0, "the plan is a dry run");

    let mut next = Harness::leader_with(CoreConfig::default());
    next.gain(Term(2), h.stored());
    assert!(status(&mut next).settings.paused, "the new leader keeps the pause");

    set(&mut h, SchedulerSettings::default()).unwrap();
    for _ in 0..10 {
        round(&mut h, &mut nodes, 1_000);
    }
    assert!(leads(&h) > 0, "resumed: the new node leads shards");
    let log = events(&mut h);
    assert!(log.iter().any(|e| e.text == "scheduler paused" && e.cause == Cause::Operator));
    assert!(log.iter().any(|e| e.text == "scheduler resumed"));
    assert!(log.iter().any(|e| e.cause == Cause::LeaderCount && e.shard.is_some()), "{log:?}");
}

#[test]
fn nonsense_settings_are_refused_by_name() {
    let (mut h, _nodes) = steady_cluster_of(2, 2, 0);
    let bad = SchedulerSettings { overfull_pct: 0, ..Default::default() };
    let err = set(&mut h, bad).unwrap_err();
    assert!(matches!(&err, MetaError::InvalidArgument(m) if m.contains("overfull_pct")), "{err:?}");
    assert!(!status(&mut h).settings.paused);
}

/// A transfer to a follower lands; moves that are unsafe or mistaken are refused with why.
#[test]
fn moves_by_hand_are_checked_and_then_done() {
    let (mut h, mut nodes) = steady_cluster_of(3, 3, 1);
    let rec = shard0(&h);
    let (leader, follower) = (rec.leader.unwrap(), rec.followers[0]);
    let other = (0..3).find(|n| *n != leader && *n != follower).unwrap();
    let name = |n: u32| format!("n{}", n + 1);

    let refused = |r: Result<Response, MetaError>, needle: &str| match r {
        Err(MetaError::FailedPrecondition(m)) | Err(MetaError::NotFound(m)) => {
            assert!(m.contains(needle), "{m}")
        }
        other => panic!("{other:?}"),
    };
    refused(move_shard(&mut h, 0, &name(other), false), "holds no replica");
    refused(move_shard(&mut h, 0, &name(follower), true), "already follows");
    refused(move_shard(&mut h, 0, &name(leader), false), "already leads");
    refused(move_shard(&mut h, 0, "n9", false), "n9");
    refused(move_shard(&mut h, 7, &name(follower), false), "shard 7");

    let moved = move_shard(&mut h, 0, &name(follower), false);
    assert!(matches!(&moved, Ok(Response::Moved(m)) if m.cause == Cause::Operator), "{moved:?}");
    let again = move_shard(&mut h, 0, &name(follower), false);
    assert!(
        matches!(&again, Err(MetaError::FailedPrecondition(m)) if m.contains("held by transfer procedure")),
        "one move at a time: {again:?}"
    );
    for _ in 0..5 {
        round(&mut h, &mut nodes, 1_000);
    }
    assert_eq!(shard0(&h).leader, Some(follower), "the follower leads");
    assert!(events(&mut h).iter().any(|e| e.cause == Cause::Operator), "the move is in the log");
}
