//! Each check of the madsim harness catches a planted bug: the history oracle a node that
//! overruns its leases (S1), the storage auditor a catalog broken behind meta's back (S2, S4,
//! S5) and a failover onto a follower that lags (F1), the quiet window a follower that keeps
//! moving (L3). A check that cannot fail proves nothing.
#![cfg(madsim)]

use std::time::Duration;

use prost::Message;
use shardmeta::core::model::FenceRecord;
use shardmeta::core::storage::{Key, FENCE_KEY};
use shardmeta::core::{ClusterId, Duration as CoreDuration, PlantedBug};
use shardmeta_sim::runner::run_seeds;
use shardmeta_sim::*;

fn planted<F: std::future::Future<Output = Report> + 'static>(name: &str, body: fn() -> F) {
    run_seeds("planted", name, 1, body);
}

/// The S1 check catches a node that keeps its leases 10 s longer than meta granted (as with a
/// clock running slow) once it is cut off and its shards move.
async fn lease_overrun_seed() -> Report {
    let sim = Sim::start(Spec { followers: 1, ..Spec::default() }).await;
    sim.sleep(Duration::from_secs(6)).await;
    let victim =
        sim.nodes.iter().position(|n| !n.view.leading().is_empty()).expect("some node leads");
    sim.nodes[victim].view.host.lock().unwrap().plant_lease_overrun(CoreDuration(10_000));
    sim.sleep(Duration::from_secs(1)).await;
    let metas: Vec<_> = sim.metas.iter().map(|m| m.id()).collect();
    let node = sim.nodes[victim].handle.id();
    for m in metas {
        sim.net.clog_link(m, node);
    }
    sim.sleep(Duration::from_secs(15)).await;
    let found = sim.check().expect_err("a lease outliving meta's grant should give two leaders");
    assert!(found.contains("S1"), "{found}");
    Report::default()
}

#[test]
fn single_writer_check_catches_a_lease_overrun() {
    planted("single_writer_check_catches_a_lease_overrun", lease_overrun_seed);
}

/// Followers lag for a while after they open (see `told::catch_up_ms`). Meta nodes that promote
/// without regard to lag pick one of them while a follower in sync lives, once the three nodes
/// that lead most die; the auditor's F1 check catches it.
async fn laggard_promoted_seed() -> Report {
    let planted = Some(PlantedBug::IgnoreFollowerLag);
    let sim = Sim::start(Spec { followers: 2, shards: 48, planted, ..Spec::default() }).await;
    sim.sleep(Duration::from_secs(5)).await;
    let mut busiest: Vec<usize> = (0..sim.nodes.len()).collect();
    busiest.sort_by_key(|&i| std::cmp::Reverse(sim.nodes[i].view.leading().len()));
    for &i in &busiest[..3] {
        sim.nodes[i].kill(&sim.handle, &sim.history);
    }
    sim.sleep(Duration::from_secs(10)).await;
    let found = sim.check().expect_err("a laggard promoted over a follower in sync");
    assert!(found.contains("F1"), "{found}");
    Report::default()
}

#[test]
fn fresh_failover_check_catches_a_laggard_promoted() {
    planted("fresh_failover_check_catches_a_laggard_promoted", laggard_promoted_seed);
}

/// A cluster with some acknowledged tables, then `plant`, then the auditor's verdict.
async fn audited(plant: impl AsyncFnOnce(&Sim, ClusterId)) -> String {
    let mut sim = Sim::start(Spec::default()).await;
    sim.start_frontends(1, Workload::FULL);
    sim.sleep(Duration::from_secs(8)).await;
    sim.stop_frontends();
    sim.sleep(Duration::from_secs(1)).await;
    sim.assert_safe();
    plant(&sim, ClusterId(1)).await;
    sim.sleep(Duration::from_secs(1)).await;
    sim.check().expect_err("the auditor should catch the planted catalog")
}

/// An acknowledged table disappears from storage.
async fn lost_table_seed() -> Report {
    let found = audited(async |sim, cluster| {
        let acked = sim
            .history
            .acks(cluster)
            .created
            .into_keys()
            .find(|t| !sim.history.drops_sent().contains(&t.1))
            .expect("an acknowledged table");
        sim.tamper(Key::Table(cluster, acked.1 .0).encode(), None).await;
    })
    .await;
    assert!(found.contains("S2"), "{found}");
    Report::default()
}

#[test]
fn durability_check_catches_a_lost_table() {
    planted("durability_check_catches_a_lost_table", lost_table_seed);
}

/// The fence advances under a term that does not hold the election.
async fn foreign_fence_seed() -> Report {
    let found = audited(async |sim, _| {
        sim.tamper(
            FENCE_KEY.to_owned(),
            Some(FenceRecord { term: 1 << 40, seq: 1 }.encode_to_vec()),
        )
        .await;
    })
    .await;
    assert!(found.contains("S4"), "{found}");
    Report::default()
}

#[test]
fn fencing_check_catches_a_write_under_a_foreign_term() {
    planted("fencing_check_catches_a_write_under_a_foreign_term", foreign_fence_seed);
}

/// A shard's leader is listed as its follower too.
async fn doubled_replica_seed() -> Report {
    let found = audited(async |sim, cluster| {
        let catalog = sim.audit.lock().unwrap().catalog.clone().expect("a catalog");
        let mut shard =
            catalog.shards.iter().find(|s| s.leader.is_some()).expect("a led shard").clone();
        shard.followers = vec![shard.leader.expect("led")];
        sim.tamper(Key::Shard(cluster, shard.id).encode(), Some(shard.encode_to_vec())).await;
    })
    .await;
    assert!(found.contains("S5"), "{found}");
    Report::default()
}

#[test]
fn integrity_check_catches_two_replicas_on_one_node() {
    planted("integrity_check_catches_two_replicas_on_one_node", doubled_replica_seed);
}

/// Once the cluster settles, a follower slot keeps moving: every 2 s, behind meta's back, shard
/// 0's follower goes to another node.
async fn restless_follower_seed() -> Report {
    let sim = Sim::start(Spec::default()).await;
    sim.sleep(Duration::from_secs(6)).await;
    let restless = async {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let Some(catalog) = sim.audit.lock().unwrap().catalog.clone() else { continue };
            let mut shard = catalog.shards[0].clone();
            let elsewhere = (0..catalog.nodes.len() as u32)
                .find(|n| Some(*n) != shard.leader && !shard.followers.contains(n));
            shard.followers = vec![elsewhere.expect("8 nodes leave room")];
            sim.tamper(Key::Shard(ClusterId(1), shard.id).encode(), Some(shard.encode_to_vec()))
                .await;
        }
    };
    let found = tokio::select! {
        biased; // a fixed order: see `client::node`
        verdict = sim.quiet() => verdict.expect_err("a follower moving every 2 s should break the quiet window"),
        never = restless => never,
    };
    assert!(found.contains("L3"), "{found}");
    Report::default()
}

#[test]
fn quiet_window_check_catches_a_restless_follower() {
    planted("quiet_window_check_catches_a_restless_follower", restless_follower_seed);
}
