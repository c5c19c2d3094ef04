//! The in-process simulator: several meta cores, a fake linearizable store with an election,
//! simulated data nodes running the real `ShardHost`, a faulty network and a workload, all
//! driven by one seeded event queue. Every seed is reproducible: the same seed gives the same
//! event trace (and trace hash).
//!
//! A run has a safety phase with the seed's faults, then heals everything and checks liveness.
//! S1–S6 are checked after every event.

mod checks;
mod data_node;
mod fault_events;
pub mod faults;
mod meta_node;
mod meta_side;
mod net;
mod node_side;
mod paged_load;
mod store;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardmeta::check::{self, LeaderMoves, Violation};
use shardmeta::client::{Beat, HostCounters};
use shardmeta::core::model::{Catalog, Topology};
use shardmeta::core::*;

use data_node::{DataNode, NodeLoad};
use fault_events::Fault;
use faults::{drift_bound_ppm, ClockDrift, FaultMix};
use meta_node::{LoadPurpose, MetaNode};
use net::{Addr, Msg, Net};
use store::Store;
use workload::{Client, Send, CLUSTER, CLUSTER_ID};

const METAS: usize = 3;
const ELECTION_TTL_MS: u64 = 3_000;
const CAMPAIGN_EVERY_MS: u64 = 500;
const WRITE_TIMEOUT_MS: u64 = 2_000;
const SCALE_OUT_AT_MS: u64 = 25_000;
const HEAL_AT_MS: u64 = 60_000;
const END_MS: u64 = 130_000;
/// After the heal, the cluster must stay without topology changes for this long at the end.
const QUIET_WINDOW_MS: u64 = 20_000;
const CLIENT_EVERY_MS: u64 = 250;
/// How long a follower's report must stand before F1 holds a meta leader to it: longer than a
/// promotion takes from the leader's choice to landing in the store (a write times out after
/// `WRITE_TIMEOUT_MS`), and well inside the lease after which meta takes a silent node for dead.
const FRESH_SETTLED_MS: u64 = WRITE_TIMEOUT_MS + 1_000;

/// Options beyond the seed: planted bugs and fixed fault mixes for targeted tests.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub planted: Option<PlantedBug>,
    pub unfenced_store: bool,
    /// The store's warm standby misses table deletions (breaks S6).
    pub standby_skips_deletes: bool,
    pub mix: Option<FaultMix>,
}

/// Counts of the paths a run took, summed over seeds to show what the suite exercised.
#[derive(Clone, Copy, Debug, Default)]
pub struct Coverage {
    pub moves: LeaderMoves,
    pub store_errors: u64,
    pub resigns: u64,
    pub snapshot_reloads: u64,
    /// Snapshot pages read, and loads that failed part-way (of which: because the store moved
    /// on, i.e. leadership changed mid-load).
    pub snapshot_pages: u64,
    pub loads_failed: u64,
    pub loads_moved_on: u64,
    pub host: HostCounters,
    pub writes_accepted: u64,
    pub writes_rejected: u64,
    pub tables_acked: u64,
    /// Alters acknowledged (whose new versions the durability check then holds meta to).
    pub alters_acked: u64,
    pub leader_changes: u64,
    /// Nodes drained empty by the end of a run.
    pub nodes_drained: u64,
    /// Impostors' heartbeats refused because the node they named was live.
    pub impostors_refused: u64,
    /// Failovers that passed over a follower known to lag for one in sync, and that promoted a
    /// follower known to lag because none in sync was heard (F1).
    pub laggards_passed_over: u64,
    pub laggards_promoted: u64,
    /// Leader transfers for a planned restart (leaving, or back), and planned restarts that
    /// ended (leaders back, window passed, or by hand).
    pub restart_transfers: u64,
    /// Leader transfers started to meet the placement rule.
    pub rule_transfers: u64,
    /// Placement rules that landed.
    pub rules_set: u64,
    /// What-ifs rehearsed at the end of a seed (each must settle).
    pub rehearsals: u64,
    pub restarts_ended: u64,
    pub procedures: ProcedureCounts,
}

/// Procedures that ran, counted from durable states.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcedureCounts {
    /// Shards created by splits, and retired by merges.
    pub split_shards: u64,
    pub retired_shards: u64,
    /// Procedures stored at `RollingBack`.
    pub rollbacks: u64,
    /// Procedures a meta leader found in storage and then advanced or ended.
    pub resumed: u64,
}

impl ProcedureCounts {
    fn add(&mut self, o: &ProcedureCounts) {
        self.split_shards += o.split_shards;
        self.retired_shards += o.retired_shards;
        self.rollbacks += o.rollbacks;
        self.resumed += o.resumed;
    }
}

impl Coverage {
    pub fn add(&mut self, o: &Coverage) {
        self.moves.add(&o.moves);
        self.store_errors += o.store_errors;
        self.resigns += o.resigns;
        self.snapshot_reloads += o.snapshot_reloads;
        self.snapshot_pages += o.snapshot_pages;
        self.loads_failed += o.loads_failed;
        self.loads_moved_on += o.loads_moved_on;
        self.host.add(&o.host);
        self.writes_accepted += o.writes_accepted;
        self.writes_rejected += o.writes_rejected;
        self.tables_acked += o.tables_acked;
        self.alters_acked += o.alters_acked;
        self.leader_changes += o.leader_changes;
        self.nodes_drained += o.nodes_drained;
        self.impostors_refused += o.impostors_refused;
        self.laggards_passed_over += o.laggards_passed_over;
        self.laggards_promoted += o.laggards_promoted;
        self.restart_transfers += o.restart_transfers;
        self.rule_transfers += o.rule_transfers;
        self.rules_set += o.rules_set;
        self.rehearsals += o.rehearsals;
        self.restarts_ended += o.restarts_ended;
        self.procedures.add(&o.procedures);
    }
}

pub struct Report {
    pub trace_hash: u64,
    pub events: u64,
    pub coverage: Coverage,
}

/// A failed run: what broke and when (the test that ran it prints how to replay it).
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub at: Instant,
    pub what: String,
    pub violation: Option<Violation>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} failed at {} ms: {}", self.seed, self.at.0, self.what)
    }
}

#[derive(Clone, Debug)]
// Events sit in one queue by value; a heartbeat message makes `Deliver` the large variant.
#[allow(clippy::large_enum_variant)]
enum Event {
    Deliver {
        from: Addr,
        to: Addr,
        msg: Msg,
    },
    MetaWake(usize, u64),
    MetaCampaign(usize, u64),
    MetaWriteTimeout(usize, u64, WriteId),
    /// A snapshot page of (meta, incarnation, load) asked for at this many pages read.
    MetaPageTimeout(usize, u64, u64, u64),
    NodeHeartbeat(usize, u64),
    /// A heartbeat a leadership handoff asked for ahead of the timer; sent once.
    NodeEarlyHeartbeat(usize, u64),
    ClientTick,
    Fault(Fault),
}

pub struct World {
    seed: u64,
    rng: ChaCha8Rng,
    now: Instant,
    queue: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    config: CoreConfig,
    mix: FaultMix,
    spec: ClusterSpec,
    metas: Vec<MetaNode>,
    nodes: Vec<DataNode>,
    store: Store,
    net: Net,
    client: Client,
    sessions: BTreeMap<SessionId, usize>,
    next_session: u64,
    /// Sessions of impostors and one-shot senders (`Fault::Impostor`, `Fault::OneShot`).
    rogues: BTreeSet<SessionId>,
    trace: u64,
    events: u64,
    coverage: Coverage,
    healed: bool,
    // Checker bookkeeping.
    landed_checked: usize,
    durable: Catalog,
    durable_revision: u64,
    acks_checked: (usize, usize, usize),
    equivalence_checked: BTreeSet<(usize, u64)>,
    last_leader: Option<(usize, Term)>,
    first_leader_after_heal: Option<Instant>,
    first_all_led_after_heal: Option<Instant>,
    /// L2 under faults: shards whose dead leader a live replica could replace, and since when.
    unled_since: BTreeMap<ShardId, (Instant, Option<u32>)>,
    /// Every shard has had a live leader at some point (the L2 check under faults starts then).
    all_led_once: bool,
    last_topology_change: Instant,
    /// Procedures stored when the current meta leader took over, by id with their step.
    inherited_procedures: BTreeMap<u64, u32>,
    /// B1 over the moves for balance of the meta term it names (the pair memory is a meta
    /// leader's soft state: a new leader starts afresh, after learning the loads again).
    steady: (Term, check::Steady),
    /// F1: per meta node, the follower reports it heard while leading the term named (lag is
    /// a meta leader's soft state, learnt afresh by each).
    told: Vec<(Term, check::Freshness)>,
}

impl World {
    pub fn new(seed: u64, opts: &Options) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mix = opts.mix.clone().unwrap_or_else(|| FaultMix::draw(&mut rng));
        let config = CoreConfig { planted_bug: opts.planted, ..CoreConfig::default() };
        let metas = (0..METAS)
            .map(|_| MetaNode::new(MetaCore::new(config.clone(), rng.next_u64())))
            .collect();
        let mut store = Store::new(Duration(ELECTION_TTL_MS));
        store.error_per_mille = mix.store_error_per_mille;
        store.timeout_per_mille = mix.store_timeout_per_mille;
        store.unfenced = opts.unfenced_store;
        store.standby_skips_deletes = opts.standby_skips_deletes;
        let net = Net {
            drop_per_mille: mix.drop_per_mille,
            dup_per_mille: mix.dup_per_mille,
            delay_ms: mix.delay_ms,
            blocked: BTreeSet::new(),
        };
        let spec = workload::cluster_spec(mix.shards, mix.followers, mix.topology);
        let mut world = World {
            seed,
            rng,
            now: Instant::ZERO,
            queue: BTreeMap::new(),
            seq: 0,
            config,
            mix,
            spec,
            metas,
            nodes: Vec::new(),
            store,
            net,
            client: Client::new(),
            sessions: BTreeMap::new(),
            next_session: 0,
            rogues: BTreeSet::new(),
            trace: 0xcbf2_9ce4_8422_2325,
            events: 0,
            coverage: Coverage::default(),
            healed: false,
            landed_checked: 0,
            durable: Catalog::default(),
            durable_revision: 0,
            acks_checked: (0, 0, 0),
            equivalence_checked: BTreeSet::new(),
            last_leader: None,
            first_leader_after_heal: None,
            first_all_led_after_heal: None,
            unled_since: BTreeMap::new(),
            all_led_once: false,
            last_topology_change: Instant::ZERO,
            inherited_procedures: BTreeMap::new(),
            steady: (Term(0), check::Steady::new(0)),
            told: vec![(Term(0), check::Freshness::new(FRESH_SETTLED_MS)); METAS],
        };
        world.start();
        world
    }

    fn start(&mut self) {
        for i in 0..METAS {
            let d = self.rand(CAMPAIGN_EVERY_MS);
            self.schedule(Duration(d), Event::MetaCampaign(i, 1));
        }
        for _ in 0..self.mix.initial_nodes {
            self.add_node();
        }
        self.schedule(Duration(100), Event::ClientTick);
        for _ in 0..self.mix.added_nodes {
            self.schedule_at(Instant(SCALE_OUT_AT_MS), Event::Fault(Fault::AddNode));
        }
        self.plan_faults();
        self.schedule_at(Instant(HEAL_AT_MS), Event::Fault(Fault::Heal));
    }

    /// A number in `0..n` from the world's seeded generator.
    fn rand(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }

    fn schedule(&mut self, after: Duration, ev: Event) {
        self.schedule_at(self.now + after, ev);
    }

    fn schedule_at(&mut self, at: Instant, ev: Event) {
        self.seq += 1;
        self.queue.insert((at.max(self.now), self.seq), ev);
    }

    fn send(&mut self, from: Addr, to: Addr, msg: Msg) {
        // A unary call is never duplicated by the transport: a retry is a new request, and the
        // workload makes those itself. Streams and storage calls may be.
        let may_duplicate = !matches!(msg, Msg::Request { .. });
        for delay in self.net.route(&mut self.rng, from, to, may_duplicate) {
            self.schedule(Duration(delay), Event::Deliver { from, to, msg: msg.clone() });
        }
    }

    fn mix_trace(&mut self, values: &[u64]) {
        for v in values {
            for b in v.to_le_bytes() {
                self.trace = (self.trace ^ b as u64).wrapping_mul(0x100_0000_01b3);
            }
        }
    }

    fn fail(&self, what: String, violation: Option<Violation>) -> Failure {
        Failure { seed: self.seed, at: self.now, what, violation }
    }

    /// Runs the seed to the end; the first violation ends it.
    pub fn run(mut self) -> Result<Report, Failure> {
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            if at.0 > END_MS {
                break;
            }
            self.now = at;
            self.events += 1;
            let tag = event_tag(&ev);
            self.mix_trace(&[at.0, tag.0, tag.1]);
            self.handle(ev);
            self.check_safety().map_err(|v| self.fail(v.to_string(), Some(v)))?;
            if self.healed {
                self.observe_liveness();
            }
        }
        self.check_liveness()?;
        let mut coverage = self.coverage;
        for n in &self.nodes {
            coverage.host.add(&n.host.counters);
        }
        coverage.writes_accepted = self.client.writes_accepted;
        coverage.writes_rejected = self.client.writes_rejected;
        coverage.tables_acked = self.client.acks.created.len() as u64;
        coverage.alters_acked = self.client.acks.altered.len() as u64;
        coverage.nodes_drained = self
            .durable
            .clusters
            .get(&CLUSTER_ID)
            .map_or(0, |c| c.nodes.iter().filter(|n| n.draining).count() as u64);
        Ok(Report { trace_hash: self.trace, events: self.events, coverage })
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Deliver { from, to, msg } => self.deliver(from, to, msg),
            Event::MetaWake(i, inc) => {
                self.with_running_meta(i, inc, Event::MetaWake(i, inc), |w| {
                    let now = w.now;
                    w.metas[i].wakes.remove(&now);
                    w.core(i).handle(now, Input::Timeout);
                    w.drain_meta(i);
                })
            }
            Event::MetaCampaign(i, inc) => {
                if self.metas[i].incarnation != inc || self.metas[i].core.is_none() {
                    return;
                }
                if self.metas[i].running(self.now) && self.now >= self.metas[i].campaign_after {
                    let now = self.now;
                    let leading = self.core(i).term();
                    self.send(
                        Addr::Meta(i),
                        Addr::Store,
                        Msg::Campaign { incarnation: inc, sent: now, leading },
                    );
                }
                self.schedule(Duration(CAMPAIGN_EVERY_MS), Event::MetaCampaign(i, inc));
            }
            Event::MetaWriteTimeout(i, inc, id) => {
                self.with_running_meta(i, inc, Event::MetaWriteTimeout(i, inc, id), |w| {
                    if w.metas[i].in_flight == Some(id) {
                        w.metas[i].in_flight = None;
                        let now = w.now;
                        w.core(i).handle(
                            now,
                            Input::WriteResult { id, result: storage::WriteResult::Error },
                        );
                        w.drain_meta(i);
                    }
                })
            }
            Event::MetaPageTimeout(i, inc, load, pages) => {
                self.with_running_meta(i, inc, Event::MetaPageTimeout(i, inc, load, pages), |w| {
                    w.page_timed_out(i, load, pages);
                    w.drain_meta(i);
                })
            }
            Event::NodeHeartbeat(i, inc) => self.heartbeat(i, inc),
            Event::NodeEarlyHeartbeat(i, inc) => self.early_heartbeat(i, inc),
            Event::ClientTick => self.client_tick(),
            Event::Fault(f) => self.fault(f),
        }
    }

    fn core(&mut self, i: usize) -> &mut MetaCore {
        self.metas[i].core.as_mut().expect("only running metas are driven")
    }

    /// Runs `f` if meta `i` is this incarnation and running; a paused meta gets the event later.
    fn with_running_meta(&mut self, i: usize, inc: u64, ev: Event, f: impl FnOnce(&mut World)) {
        let m = &self.metas[i];
        if m.incarnation != inc || m.core.is_none() {
            return;
        }
        if let Some(until) = m.paused_until.filter(|&t| self.now < t) {
            self.schedule_at(until, ev);
            return;
        }
        self.metas[i].paused_until = None;
        f(self);
    }

    fn deliver(&mut self, from: Addr, to: Addr, msg: Msg) {
        match to {
            Addr::Meta(i) => {
                let m = &self.metas[i];
                if m.core.is_none() {
                    return;
                }
                if let Some(until) = m.paused_until.filter(|&t| self.now < t) {
                    self.schedule_at(until, Event::Deliver { from, to, msg });
                    return;
                }
                self.metas[i].paused_until = None;
                self.meta_receive(i, msg);
            }
            Addr::Node(i) => self.node_receive(i, from, msg),
            Addr::Store => self.store_receive(from, msg),
            Addr::Client => self.client_receive(msg),
        }
    }

    fn fresh_core(&mut self) -> MetaCore {
        MetaCore::new(self.config.clone(), self.rng.next_u64())
    }

    // ---- checks ----
}

fn event_tag(ev: &Event) -> (u64, u64) {
    let addr = |a: &Addr| match a {
        Addr::Meta(i) => 100 + *i as u64,
        Addr::Node(i) => 200 + *i as u64,
        Addr::Store => 1,
        Addr::Client => 2,
    };
    match ev {
        Event::Deliver { to, msg, .. } => (msg.kind() as u64, addr(to)),
        Event::MetaWake(i, _) => (20, *i as u64),
        Event::MetaCampaign(i, _) => (21, *i as u64),
        Event::MetaWriteTimeout(i, _, _) => (22, *i as u64),
        Event::MetaPageTimeout(i, _, load, _) => (27, (*i as u64) << 32 | *load),
        Event::NodeHeartbeat(i, _) => (24, *i as u64),
        Event::NodeEarlyHeartbeat(i, _) => (28, *i as u64),
        Event::ClientTick => (25, 0),
        Event::Fault(f) => (26, format!("{f:?}").len() as u64),
    }
}

/// Runs one seed.
pub fn run_seed(seed: u64, opts: &Options) -> Result<Report, Failure> {
    World::new(seed, opts).run()
}
