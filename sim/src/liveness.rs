//! The checks after the heal: a meta leader serves (L1), every shard has exactly one live leader
//! (L2), leader counts balance and then stay quiet (L3), what the leader serves equals what
//! storage holds (S6), and every acknowledged create and drop shows in the listing (S2).

use std::collections::BTreeMap;
use std::time::Duration;

use shardmeta::core::model::{ClusterCatalog, ProcedureKind};
use shardmeta::core::{NodeId, ShardId};
use shardmeta::proto;

use crate::cluster::{
    SimLoad, CLOCK_DRIFT_MS, ELECTION_TTL_MS, HEARTBEAT_MS, LEASE_MS, LOAD_WINDOW_MS,
    PERIOD_WINDOWS,
};
use crate::frontend::header;
use crate::history::{now_ms, Ms};
use crate::Sim;

const POLL: Duration = Duration::from_millis(200);
/// How old the auditor's last read may be for the liveness checks to judge by it.
const FRESH: Duration = Duration::from_secs(1);
/// How recently meta must have answered a live node for the cluster to count as settled: a few
/// heartbeats, well inside the lease after which meta declares a silent node dead.
const IN_CONTACT: Duration = Duration::from_millis(3 * HEARTBEAT_MS);
/// How long the cluster must stay without a topology change once balanced (L3).
pub const QUIET: Duration = Duration::from_secs(10);

/// What the leader lists, in the terms storage uses: per shard (leader, followers, version),
/// and per table (name, shard).
type Served = (Vec<(String, Vec<String>, u64)>, BTreeMap<u64, (String, u32)>);

fn stored(c: &ClusterCatalog) -> Served {
    let name = |id: u32| c.node(NodeId(id)).name.clone();
    let shards = c
        .shards
        .iter()
        .map(|s| {
            let mut followers: Vec<String> = s.followers.iter().map(|&f| name(f)).collect();
            followers.sort();
            (s.leader.map(name).unwrap_or_default(), followers, s.version)
        })
        .collect();
    let tables = c.tables.iter().map(|(id, t)| (id.0, (t.name.to_string(), t.shard))).collect();
    (shards, tables)
}

impl Sim {
    async fn served(&self) -> Option<Served> {
        self.with_meta(|mut m| async move {
            let shards = m
                .list_all(proto::ListShardsRequest { header: header(), ..Default::default() })
                .await
                .ok()?;
            let tables = m
                .list_all(proto::ListTablesRequest { header: header(), ..Default::default() })
                .await
                .ok()?;
            let shards = shards
                .into_iter()
                .map(|s| {
                    let mut followers = s.followers;
                    followers.sort();
                    (s.leader, followers, s.version)
                })
                .collect();
            Some((shards, tables.into_iter().map(|t| (t.id, (t.name, t.shard))).collect()))
        })
        .await
    }

    /// The catalog the auditor read last, if it is fresh: judged on an old read, the cluster
    /// could look settled long after it moved again.
    fn catalog(&self) -> Option<ClusterCatalog> {
        let a = self.audit.lock().expect("audit lock");
        (now_ms() <= a.read_at + FRESH.as_millis() as u64).then(|| a.catalog.clone()).flatten()
    }

    /// Polls `ok` until it holds or `within` passes; panics with `what` then.
    async fn eventually(&self, within: Duration, what: &str, mut ok: impl FnMut(&Sim) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !ok(self) {
            if tokio::time::Instant::now() > deadline {
                let read_at = self.audit.lock().expect("audit lock").read_at;
                panic!("{what} did not happen within {within:?} of the heal (storage last read {} ms ago)", now_ms() - read_at);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every shard's stored leader is a live node that leads it by its own lease, and no one
    /// else does (a split's new shard excepted while its split runs).
    pub fn every_shard_led_once(&self) -> bool {
        let Some(c) = self.catalog() else { return false };
        let mut led: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for n in &self.nodes {
            for s in n.view.leading() {
                led.entry(s.0).or_default().push(&n.view.name);
            }
        }
        // A split's new shard waits for its procedure before anyone may lead it; the quiet
        // check (L3) waits for the procedure to end.
        let waiting = |s: &shardmeta::core::model::ShardRecord| {
            c.lock_of(ShardId(s.id))
                .is_some_and(|p| p.new_shard == s.id && p.kind() == ProcedureKind::Split)
        };
        c.shards.iter().filter(|s| !s.retired && !waiting(s)).all(|s| {
            let leader = s.leader.map(|l| c.node(NodeId(l)).name.as_str());
            leader.is_some()
                && led.get(&s.id).is_some_and(|who| who.len() == 1 && Some(who[0]) == leader)
        })
    }

    /// Live nodes that are not draining: the ones shards may be placed on.
    fn placeable<'a>(&'a self, c: &'a ClusterCatalog) -> impl Iterator<Item = &'a str> + 'a {
        let draining = |name: &str| c.node_by_name.get(name).is_some_and(|&id| c.node(id).draining);
        self.nodes
            .iter()
            .filter(|n| n.is_up())
            .map(|n| n.view.name.as_str())
            .filter(move |name| !draining(name))
    }

    /// Leader counts of live, placeable nodes differ by at most one.
    fn balanced(&self, c: &ClusterCatalog) -> bool {
        let live: Vec<&str> = self.placeable(c).collect();
        shardmeta::check::leaders_balanced(c, |n| live.contains(&n.name.as_str())).is_ok()
    }

    /// Balanced, with no transfer or procedure under way, every draining node emptied, every
    /// shard led and every follower slot filled that placeable nodes can fill, and shards where
    /// the placement rule says: nothing in storage is left for the scheduler to do. Else what
    /// is left.
    fn unsettled(&self, c: &ClusterCatalog) -> Option<String> {
        let placeable = self.placeable(c).count();
        let want = (c.record.followers_per_shard as usize).min(placeable.saturating_sub(1));
        if let Some(n) =
            c.nodes.iter().zip(&c.node_shards).find(|(n, held)| n.draining && !held.is_empty())
        {
            return Some(format!("{} drains", n.0.name));
        }
        // Balancing by load leaves counts uneven; the dry-run plan judges it (`plan_quiet`).
        if !self.spec.load.by_load() && !self.balanced(c) {
            return Some("leader counts uneven".into());
        }
        if !c.procedures.is_empty() {
            return Some(format!("{} procedures under way", c.procedures.len()));
        }
        // A planned restart ends once its node's leaders are back.
        if let Some(n) = c.nodes.iter().find(|n| n.restart.is_some()) {
            return Some(format!("{} is restarting", n.name));
        }
        if let Some(s) = c.shards.iter().find(|s| {
            !s.retired && (s.leader.is_none() || s.transfer.is_some() || s.followers.len() != want)
        }) {
            return Some(format!("shard {} is not placed: {s:?}", s.id));
        }
        // Shards sit where the placement rule says wherever a node that fits could take them,
        // spread over its label (S5's placement checks).
        let live: Vec<&str> = self.placeable(c).collect();
        let placeable = |n: NodeId| live.contains(&c.node(n).name.as_str());
        shardmeta::check::placement_rule(c, placeable)
            .and_then(|()| shardmeta::check::zone_spread(c, placeable))
            .err()
            .map(|v| v.to_string())
    }

    /// L1, L2, S6 and S2 after the heal; L3 too when `balance`.
    pub async fn assert_live(&self, balance: bool) {
        self.heal_network();
        let election = Duration::from_millis(3 * ELECTION_TTL_MS);
        let leader_deadline = tokio::time::Instant::now() + election;
        while self.served().await.is_none() {
            assert!(
                tokio::time::Instant::now() < leader_deadline,
                "L1: no meta leader serves within {election:?} of the heal"
            );
        }
        let failover = Duration::from_millis(3 * (LEASE_MS + CLOCK_DRIFT_MS) + 2 * ELECTION_TTL_MS);
        self.eventually(
            failover,
            "L2: every shard led by exactly one live node",
            Sim::every_shard_led_once,
        )
        .await;
        if balance {
            let quiet = self.quiet().await;
            self.count_load_moves().await;
            if let Err(e) = quiet {
                panic!("{e}");
            }
        }
        self.assert_one_shots_hold_nothing().await;
        self.assert_restart_equivalent().await;
        self.assert_safe();
    }

    /// A one-shot sender ([`crate::faults::Fault::OneShot`]) registered, but it must never
    /// have been given a replica.
    async fn assert_one_shots_hold_nothing(&self) {
        let (Some(c), _) = self.fresh_read().await else { return };
        let one_shot = |name: &str| name.starts_with(crate::faults::ONE_SHOT_PREFIX);
        if let Some((n, held)) = c
            .nodes
            .iter()
            .zip(&c.node_shards)
            .find(|(n, held)| one_shot(&n.name) && !held.is_empty())
        {
            panic!("one-shot sender {} holds shards {held:?}", n.name);
        }
    }

    /// L3: the cluster settles within two minutes of the heal, then holds still for the quiet
    /// window: no topology change, and no scheduler job (a fill, a drain) ending in it. A job
    /// that starts and ends with each swing of a periodic load moves nothing, yet floods the
    /// bounded event log and tells operators a story that is not happening.
    pub async fn quiet(&self) -> Result<(), String> {
        let quiet_from = match self.await_settled(Duration::from_secs(120)).await {
            Ok(at) => at,
            Err(e) => {
                self.print_events().await;
                return Err(format!("{e}; the last events: {:?}", self.last_events().await));
            }
        };
        tokio::time::sleep(QUIET).await;
        let a = self.audit.lock().expect("audit lock").clone();
        if a.last_change > quiet_from {
            self.print_events().await;
            return Err(format!(
                "L3: the topology changed {} ms into the quiet window: {}; the last events: {:?}",
                a.last_change - quiet_from,
                a.last_change_what,
                self.last_events().await
            ));
        }
        let window_ms = now_ms().saturating_sub(quiet_from);
        let events = self.events().await;
        if let Some((again, before)) = job_ended_again(&events, window_ms) {
            return Err(format!(
                "L3: a job ended {} ms into the quiet window, {} ms after the same job of the node ended: {}; the last events: {:?}",
                window_ms - again.age_ms,
                before.age_ms - again.age_ms,
                again.text,
                self.last_events().await
            ));
        }
        Ok(())
    }

    /// With `SIM_DEBUG_EVENTS`, the meta leader's whole event log, for a seed that did not
    /// settle.
    async fn print_events(&self) {
        if std::env::var("SIM_DEBUG_EVENTS").is_ok() {
            for ev in self.events().await {
                println!("EV {} ms ago {}: {}", ev.age_ms, ev.cause, ev.text);
            }
        }
    }

    /// The scheduler's last events, newest first, each with its age.
    async fn last_events(&self) -> Vec<String> {
        let events = self.events().await;
        let last = events.iter().rev().take(12);
        last.map(|e| format!("{} ms ago {}: {}", e.age_ms, e.cause, e.text)).collect()
    }

    /// No follower says it lags: a move only a lagging follower could take (a transfer for
    /// balance, a leader returning after a restart) waits until it catches up.
    async fn followers_in_sync(&self) -> bool {
        let lagging = self
            .with_meta(
                |mut m| async move { Some(scheduler_status(&mut m).await?.followers_lagging) },
            )
            .await;
        lagging == Some(0)
    }

    /// Waits until nothing is left to do (L3): every live node in contact with meta, the meta
    /// leader with no change waiting for storage, and then a storage read, sent after that,
    /// showing the cluster settled. Returns when that read completed: any change seen later was
    /// decided after it. Each condition closes a way to look settled too early: a node still
    /// reconnecting after the heal may yet be declared dead, and a decision whose write is
    /// slow (or retried after an unknown outcome) lands after the read.
    async fn await_settled(&self, within: Duration) -> Result<Ms, String> {
        let deadline = tokio::time::Instant::now() + within;
        // Balancing by load, nothing is left to do only if the dry run plans nothing for a
        // while: the long-run view of load (about 8 windows) takes a few of them to settle after
        // the faults moved shards, and under a periodic load one instant may be a node's trough.
        let cycle = match self.spec.load {
            SimLoad::Periodic | SimLoad::Skewed => {
                Duration::from_millis(3 * PERIOD_WINDOWS * LOAD_WINDOW_MS)
            }
            SimLoad::Flat => Duration::ZERO,
        };
        let mut quiet_since = None;
        loop {
            let in_contact =
                self.nodes.iter().filter(|n| n.is_up()).all(|n| n.view.in_contact(IN_CONTACT));
            // The dry-run plan is asked before the read: a move the scheduler decides between
            // the two then shows in the read as a transfer under way, not settled.
            let planned_quiet = async || !self.spec.load.by_load() || self.plan_quiet().await;
            let quiet = in_contact
                && self.changes_pending().await == Some(0)
                && self.all_admitted().await
                && self.followers_in_sync().await
                && planned_quiet().await;
            let now = tokio::time::Instant::now();
            quiet_since = if quiet { quiet_since.or(Some(now)) } else { None };
            if quiet_since.is_some_and(|since| now >= since + cycle) {
                let (catalog, read_at) = self.fresh_read().await;
                match catalog.map(|c| self.unsettled(&c)) {
                    Some(None) => return Ok(read_at),
                    Some(Some(left)) => *self.last_unquiet.lock().expect("lock") = left,
                    None => {}
                }
            }
            if tokio::time::Instant::now() > deadline {
                let why = self.last_unquiet.lock().expect("lock").clone();
                return Err(format!("L3: leader counts within one of each other with nothing left to move did not happen within {within:?} of the heal (last: {why})"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Balancing by load is done: the meta leader judges every node (their loads are trusted
    /// and no move touched them lately, so it is not merely waiting), no shard's split or merge
    /// clock is running (a hot shard splits only after several windows above the line, which
    /// may close well after everything else looks settled: seed 7084), and its dry run plans
    /// no move for balance and no split or merge (a shard it names as unsplittable stays).
    async fn plan_quiet(&self) -> bool {
        let periodic = self.spec.load == SimLoad::Periodic;
        let unquiet = self
            .with_meta(move |mut m| async move {
                let status = scheduler_status(&mut m).await?;
                let plan = m
                    .call(|mut c| async move {
                        c.plan_scheduler(proto::PlanSchedulerRequest { header: header() }).await
                    })
                    .await
                    .ok()?;
                let judged = status.nodes.iter().all(|n| n.judged);
                // A scale-out split may come once the loads a new leader has not heard are known
                // (seed 1870: six of them started 2.4 s into the window).
                // A node standing over the line may shed once it has stood there long enough;
                // under a periodic load nodes stand and leave each cycle, and the cycles judge it.
                let no_clock = status.shards_heating == 0
                    && status.shards_cooling == 0
                    && status.shards_short == 0
                    && (periodic || status.nodes_standing == 0);
                let resizes = |mv: &proto::PlannedMove| {
                    matches!(mv.cause.as_str(), "split" | "merge")
                        && !mv.text.starts_with("no split")
                };
                let planned = plan
                    .moves
                    .iter()
                    .find(|mv| mv.cause == "load" || mv.cause == "leader-count" || resizes(mv));
                Some(match (judged, no_clock, planned) {
                    (true, true, None) => None,
                    (false, ..) => Some(format!("not every node judged: {:?}", status.nodes)),
                    (_, false, _) => Some(format!(
                        "clocks running: {} shards heating, {} cooling, {} short; {} nodes \
                         standing",
                        status.shards_heating,
                        status.shards_cooling,
                        status.shards_short,
                        status.nodes_standing
                    )),
                    (.., Some(mv)) => Some(format!("the dry run plans {mv:?}")),
                })
            })
            .await;
        match unquiet {
            Some(None) => true,
            Some(Some(why)) => {
                *self.last_unquiet.lock().expect("lock") = why;
                false
            }
            None => false,
        }
    }

    /// Counts the load-driven moves in the meta leader's event log, for the coverage report.
    async fn count_load_moves(&self) {
        let events = self.events().await;
        let load = events.iter().filter(|e| e.cause == "load");
        let mut counts = crate::LoadMoves::default();
        for e in load {
            match e.text.ends_with("by reopen") {
                true => counts.reopens += 1,
                false => counts.transfers += 1,
            }
        }
        *self.load_moves.lock().expect("load moves lock") = counts;
    }

    /// The meta leader's event log (the newest 10,000 events); empty if no leader answers.
    pub async fn events(&self) -> Vec<proto::Event> {
        self.with_meta(|mut m| async move {
            let req = proto::ListEventsRequest { header: header(), after: 0, limit: 10_000 };
            m.call(|mut c| {
                let req = req.clone();
                async move { c.list_events(req).await }
            })
            .await
            .ok()
        })
        .await
        .map_or(Vec::new(), |r| r.events)
    }

    /// Changes the meta leader has decided for the default cluster that storage has not yet
    /// acknowledged; None if no leader answers.
    /// Every node that is up is admitted by the meta leader (its incarnation has settled), so
    /// no scheduler move waits for one of them.
    async fn all_admitted(&self) -> bool {
        let up: Vec<String> =
            self.nodes.iter().filter(|n| n.is_up()).map(|n| n.view.name.clone()).collect();
        self.with_meta(|mut m| async move {
            let listed = m
                .call(|mut c| async move {
                    c.list_nodes(proto::ListNodesRequest { header: header(), ..Default::default() })
                        .await
                })
                .await
                .ok()?;
            Some(up.iter().all(|name| listed.nodes.iter().any(|n| &n.name == name && n.admitted)))
        })
        .await
        .unwrap_or(false)
    }

    async fn changes_pending(&self) -> Option<u32> {
        self.with_meta(|mut m| async move {
            let view = m
                .call(|mut c| async move {
                    c.cluster_view(proto::ClusterViewRequest { header: header() }).await
                })
                .await
                .ok()?;
            Some(view.changes_pending)
        })
        .await
    }

    /// The catalog from a storage read sent after now, and when that read completed.
    async fn fresh_read(&self) -> (Option<ClusterCatalog>, Ms) {
        let asked = now_ms();
        // A lossy link makes madsim retransmit with a backoff of up to 10 s.
        for _ in 0..600 {
            tokio::time::sleep(crate::auditor::AUDIT_EVERY).await;
            let a = self.audit.lock().expect("audit lock").clone();
            if a.read_from >= asked {
                return (a.catalog, a.read_at);
            }
        }
        panic!("the storage auditor has not read etcd for {} ms", now_ms() - asked);
    }

    async fn fresh_catalog(&self) -> Option<ClusterCatalog> {
        self.fresh_read().await.0
    }

    /// S6 through the API: the leader serves exactly what storage holds (compared when nothing
    /// is moving: two equal fresh storage reads around the listing).
    async fn assert_restart_equivalent(&self) {
        let mut last = None;
        for _ in 0..20 {
            let before = self.fresh_catalog().await.map(|c| stored(&c));
            let served = self.served().await;
            let after = self.fresh_catalog().await.map(|c| stored(&c));
            if before.is_some() && before == after {
                if served == before {
                    return;
                }
                last = Some((served, before));
            }
            tokio::time::sleep(POLL).await;
        }
        let (served, stored) = last.expect("S6: storage never held still long enough to compare");
        let a = self.audit.lock().expect("audit lock").clone();
        panic!("S6 RestartEquivalence violated: the leader serves {served:?} but storage holds {stored:?} (storage read {} times, last {} ms ago)", a.reads, now_ms() - a.read_at);
    }
}

/// How soon after one end of a node's job (a fill, a drain) another end of the same job, in
/// the quiet window, counts as the job flapping: a job that starts and ends with each swing of
/// a load. A single end, late after the moves (a fill's node reaching its share in the long
/// run), is bookkeeping, not flapping.
const JOB_FLAP_MS: u64 = 60_000;

/// A scheduler event of a job ending less than `window_ms` ago, with an earlier end of the
/// same node's same job within [`JOB_FLAP_MS`] before it.
fn job_ended_again(
    events: &[proto::Event],
    window_ms: u64,
) -> Option<(&proto::Event, &proto::Event)> {
    let job = |e: &proto::Event| e.text.split_once(" ended: ").map(|(job, _)| job.to_string());
    events.iter().filter(|e| e.age_ms < window_ms).find_map(|again| {
        let key = job(again)?;
        let before = events
            .iter()
            .filter(|e| e.age_ms > again.age_ms && e.age_ms <= again.age_ms + JOB_FLAP_MS)
            .filter(|e| job(e).as_ref() == Some(&key))
            .min_by_key(|e| e.age_ms)?;
        Some((again, before))
    })
}

/// The meta leader's `scheduler status`, if it answers.
async fn scheduler_status(
    m: &mut shardmeta::client::MetaClient,
) -> Option<proto::SchedulerStatusResponse> {
    let status = m.call(|mut c| async move {
        c.scheduler_status(proto::SchedulerStatusRequest { header: header() }).await
    });
    status.await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_ends_twice_within_a_minute_is_found_and_one_that_ends_once_is_not() {
        let event = |age_ms: u64, text: &str| proto::Event {
            age_ms,
            text: text.into(),
            ..Default::default()
        };
        let long_ago = event(90_000, "n3 fill ended: 4 moves onto it in 20 s");
        let other = event(8_000, "n2 fill ended: 2 moves onto it in 30 s");
        let moved = event(3_000, "n1 load 1.20× mean; shard 4 carries 9% of it");
        let late = event(2_000, "n3 fill ended: 1 moves onto it in 40 s");
        let single = [long_ago.clone(), other.clone(), moved.clone(), late];
        assert!(job_ended_again(&single, 10_000).is_none(), "one end each is no flapping");
        let first = event(8_000, "n3 fill ended: 1 moves onto it in 3 s");
        let again = event(2_000, "n3 fill ended: 1 moves onto it in 4 s");
        let flapping = [long_ago, other, first, moved, again];
        let found = job_ended_again(&flapping, 10_000).map(|(a, b)| (a.age_ms, b.age_ms));
        assert_eq!(found, Some((2_000, 8_000)));
    }
}
