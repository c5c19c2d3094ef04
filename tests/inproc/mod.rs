//! The in-process simulator: several meta cores, a fake linearizable store with an election,
//! simulated data nodes running the real `ShardHost`, a faulty network and a workload, all
//! driven by one seeded event queue. Every seed is reproducible: the same seed gives the same
//! event trace (and trace hash).
//!
//! A run has a safety phase with the seed's faults, then heals everything and checks liveness.
//! S1–S6 are checked after every event.



mod data_node;
pub mod faults;
mod meta_node;
mod net;
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

use data_node::DataNode;
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
    pub leader_changes: u64,
    /// Nodes drained empty by the end of a run.
    pub nodes_drained: u64,
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
        self.leader_changes += o.leader_changes;
        self.nodes_drained += o.nodes_drained;
    }
}

pub struct Report {
    pub trace_hash: u64,
    pub events: u64,
    pub coverage: Coverage,
}

/// A failed run: what broke, when, and how to replay it.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub at: Instant,
    pub what: String,
    pub violation: Option<Violation>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} failed at {} ms: {}", self.seed, self.at.0, self.what)?;
        write!(f, "replay: SIM_SEED={} cargo test --test sim seeds_hold_every_invariant -- --nocapture", self.seed)
    }
}

#[derive(Clone, Debug)]
enum Fault {
    CrashMeta(usize),
    RestartMeta(usize),
    PauseMeta(usize, u64),
    CrashNode(usize),
    RestartNode(usize),
    Cut(Addr, Addr, bool),
    Mend(Addr, Addr),
    AddNode,
    /// The operator drains a node (or cancels its drain).
    Drain(usize, bool),
    Heal,
}

#[derive(Clone, Debug)]
enum Event {
    Deliver { from: Addr, to: Addr, msg: Msg },
    MetaWake(usize, u64),
    MetaCampaign(usize, u64),
    MetaWriteTimeout(usize, u64, WriteId),
    /// A snapshot page of (meta, incarnation, load) asked for at this many pages read.
    MetaPageTimeout(usize, u64, u64, u64),
    NodeHeartbeat(usize, u64),
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
    trace: u64,
    events: u64,
    coverage: Coverage,
    healed: bool,
    // Checker bookkeeping.
    landed_checked: usize,
    durable: Catalog,
    durable_revision: u64,
    acks_checked: (usize, usize),
    equivalence_checked: BTreeSet<(usize, u64)>,
    last_leader: Option<(usize, Term)>,
    first_leader_after_heal: Option<Instant>,
    first_all_led_after_heal: Option<Instant>,
    /// L2 under faults: shards whose dead leader a live replica could replace, and since when.
    unled_since: BTreeMap<ShardId, Instant>,
    /// Every shard has had a live leader at some point (the L2 check under faults starts then).
    all_led_once: bool,
    last_topology_change: Instant,
}

impl World {
    pub fn new(seed: u64, opts: &Options) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mix = opts.mix.clone().unwrap_or_else(|| FaultMix::draw(&mut rng));
        let config = CoreConfig { planted_bug: opts.planted, ..CoreConfig::default() };
        let metas = (0..METAS).map(|_| MetaNode::new(MetaCore::new(config.clone(), rng.next_u64()))).collect();
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
            trace: 0xcbf2_9ce4_8422_2325,
            events: 0,
            coverage: Coverage::default(),
            healed: false,
            landed_checked: 0,
            durable: Catalog::default(),
            durable_revision: 0,
            acks_checked: (0, 0),
            equivalence_checked: BTreeSet::new(),
            last_leader: None,
            first_leader_after_heal: None,
            first_all_led_after_heal: None,
            unled_since: BTreeMap::new(),
            all_led_once: false,
            last_topology_change: Instant::ZERO,
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

    /// The seed's faults, all inside the safety phase, each undone within it.
    fn plan_faults(&mut self) {
        let window = |rng: &mut ChaCha8Rng| Instant(5_000 + rng.next_u64() % (HEAL_AT_MS - 20_000));
        let nodes = self.mix.initial_nodes;
        for _ in 0..if self.mix.meta_crashes { 3 } else { 0 } {
            let (i, at) = ((self.rng.next_u64() % METAS as u64) as usize, window(&mut self.rng));
            self.schedule_at(at, Event::Fault(Fault::CrashMeta(i)));
            let d = 1_000 + self.rand(8_000);
            self.schedule_at(at + Duration(d), Event::Fault(Fault::RestartMeta(i)));
        }
        for _ in 0..if self.mix.meta_pauses { 2 } else { 0 } {
            let (i, at) = ((self.rng.next_u64() % METAS as u64) as usize, window(&mut self.rng));
            let pause = 2_000 + self.rng.next_u64() % 12_000; // sometimes longer than a lease
            self.schedule_at(at, Event::Fault(Fault::PauseMeta(i, pause)));
        }
        for _ in 0..if self.mix.node_crashes { 3 } else { 0 } {
            let (i, at) = ((self.rng.next_u64() % nodes as u64) as usize, window(&mut self.rng));
            self.schedule_at(at, Event::Fault(Fault::CrashNode(i)));
            let d = 2_000 + self.rand(20_000);
            self.schedule_at(at + Duration(d), Event::Fault(Fault::RestartNode(i)));
        }
        for _ in 0..if self.mix.partitions { 4 } else { 0 } {
            let at = window(&mut self.rng);
            let meta = Addr::Meta((self.rng.next_u64() % METAS as u64) as usize);
            let other = match self.rng.next_u64() % 3 {
                0 => Addr::Store,
                1 => Addr::Node((self.rng.next_u64() % nodes as u64) as usize),
                _ => Addr::Client,
            };
            let one_way = self.rng.next_u64().is_multiple_of(3);
            self.schedule_at(at, Event::Fault(Fault::Cut(meta, other, one_way)));
            let d = 1_000 + self.rand(15_000);
            self.schedule_at(at + Duration(d), Event::Fault(Fault::Mend(meta, other)));
        }
        if self.mix.drains {
            let (i, at) = ((self.rng.next_u64() % nodes as u64) as usize, window(&mut self.rng));
            self.schedule_at(at, Event::Fault(Fault::Drain(i, false)));
            if self.rng.next_u64().is_multiple_of(2) {
                let d = 2_000 + self.rand(10_000);
                self.schedule_at(at + Duration(d), Event::Fault(Fault::Drain(i, true)));
            }
        }
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
        coverage.nodes_drained = self.durable.clusters.get(&CLUSTER_ID).map_or(0, |c| c.nodes.iter().filter(|n| n.draining).count() as u64);
        Ok(Report { trace_hash: self.trace, events: self.events, coverage })
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Deliver { from, to, msg } => self.deliver(from, to, msg),
            Event::MetaWake(i, inc) => self.with_running_meta(i, inc, Event::MetaWake(i, inc), |w| {
                let now = w.now;
                w.metas[i].wakes.remove(&now);
                w.core(i).handle(now, Input::Timeout);
                w.drain_meta(i);
            }),
            Event::MetaCampaign(i, inc) => {
                if self.metas[i].incarnation != inc || self.metas[i].core.is_none() {
                    return;
                }
                if self.metas[i].running(self.now) && self.now >= self.metas[i].campaign_after {
                    let now = self.now;
                    let leading = self.core(i).term();
                    self.send(Addr::Meta(i), Addr::Store, Msg::Campaign { incarnation: inc, sent: now, leading });
                }
                self.schedule(Duration(CAMPAIGN_EVERY_MS), Event::MetaCampaign(i, inc));
            }
            Event::MetaWriteTimeout(i, inc, id) => self.with_running_meta(i, inc, Event::MetaWriteTimeout(i, inc, id), |w| {
                if w.metas[i].in_flight == Some(id) {
                    w.metas[i].in_flight = None;
                    let now = w.now;
                    w.core(i).handle(now, Input::WriteResult { id, result: storage::WriteResult::Error });
                    w.drain_meta(i);
                }
            }),
            Event::MetaPageTimeout(i, inc, load, pages) => self.with_running_meta(i, inc, Event::MetaPageTimeout(i, inc, load, pages), |w| {
                w.page_timed_out(i, load, pages);
                w.drain_meta(i);
            }),
            Event::NodeHeartbeat(i, inc) => self.heartbeat(i, inc),
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

    fn meta_receive(&mut self, i: usize, msg: Msg) {
        let now = self.now;
        if std::env::var("SIM_DEBUG").is_ok() && !matches!(msg, Msg::Heartbeat { .. } | Msg::Request { .. }) {
            eprintln!("{} meta{i} <- {:?}", now.0, match &msg { Msg::Won { term, .. } => format!("Won {term}"), Msg::Page { load, next, .. } => format!("Page of load {load}, next {next:?}"), m => format!("{m:?}").chars().take(150).collect() });
        }
        let inc = self.metas[i].incarnation;
        let ttl = Duration(ELECTION_TTL_MS);
        match msg {
            Msg::Heartbeat { session, hb } => self.core(i).handle(now, Input::Heartbeat { session, heartbeat: &hb }),
            Msg::Request { id, req } => {
                let deadline = now + Duration(self.config.request_timeout_ms);
                self.metas[i].request(now, (id, deadline), &req);
            }
            Msg::WriteDone { incarnation, id, result } if incarnation == inc
                && self.metas[i].in_flight == Some(id) => {
                    self.metas[i].in_flight = None;
                    if result == storage::WriteResult::Error {
                        self.coverage.store_errors += 1;
                    }
                    self.core(i).handle(now, Input::WriteResult { id, result });
                }
            Msg::Won { incarnation, sent, term } if incarnation == inc => {
                let held = self.core(i).term() == Some(term);
                match self.metas[i].loading.as_mut().map(|l| &mut l.purpose) {
                    // A repeated notice of the term held: it only extends the lease.
                    _ if held => self.core(i).handle(now, Input::Leadership(Leadership::Renewed { term, valid_until: sent + ttl })),
                    Some(LoadPurpose::Lead { term: t, sent: s }) if *t == term => *s = (*s).max(sent),
                    _ => self.start_load(i, LoadPurpose::Lead { term, sent }),
                }
            }
            Msg::Renewed { incarnation, sent, term } if incarnation == inc => {
                self.core(i).handle(now, Input::Leadership(Leadership::Renewed { term, valid_until: sent + ttl }));
            }
            Msg::LostElection { incarnation } if incarnation == inc => {
                if matches!(self.metas[i].loading, Some(ref l) if matches!(l.purpose, LoadPurpose::Lead { .. })) {
                    self.metas[i].loading = None; // another node leads: the load is moot
                }
                if self.core(i).term().is_some() {
                    self.core(i).handle(now, Input::Leadership(Leadership::Lost));
                }
            }
            Msg::Page { incarnation, load, page, pairs, next } if incarnation == inc => self.on_page(i, load, page, pairs, next),
            Msg::PageFailed { incarnation, load, page, moved_on } if incarnation == inc => self.page_failed(i, load, page, moved_on),
            _ => {} // addressed to an earlier incarnation
        }
        self.drain_meta(i);
    }

    fn drain_meta(&mut self, i: usize) {
        let inc = self.metas[i].incarnation;
        // The core and its callers step out of the world while the world carries out their
        // outputs, which reach everything else in it.
        let (mut core, mut dispatch) = self.metas[i].take_core();
        let wake = dispatch.drain(&mut core, &mut MetaEffects { world: self, meta: i });
        self.metas[i].put_core(core, dispatch);
        if let Some((at, _)) = wake {
            let at = at.max(self.now);
            if self.metas[i].wakes.insert(at) {
                self.schedule_at(at, Event::MetaWake(i, inc));
            }
        }
    }

    fn store_receive(&mut self, from: Addr, msg: Msg) {
        let Addr::Meta(i) = from else { panic!("only metas talk to the store") };
        let now = self.now;
        let reply = match msg {
            Msg::Campaign { incarnation, sent, leading } => Some(match self.store.campaign(i, incarnation, now) {
                // A holder that does not know it leads (its win was lost) is told again.
                Some(false) if leading == Some(self.store.term) => Msg::Renewed { incarnation, sent, term: self.store.term },
                Some(_) => Msg::Won { incarnation, sent, term: self.store.term },
                None => Msg::LostElection { incarnation },
            }),
            Msg::Write { incarnation, batch } => self
                .store
                .write(&mut self.rng, i, incarnation, &batch, now)
                .map(|result| Msg::WriteDone { incarnation, id: batch.id, result }),
            Msg::ReadPage { incarnation, load, page, at } => Some(match self.store.read_page(&mut self.rng, at.as_ref(), self.mix.snapshot_page_keys) {
                Ok((pairs, next)) => Msg::Page { incarnation, load, page, pairs, next },
                Err(moved_on) => Msg::PageFailed { incarnation, load, page, moved_on },
            }),
            Msg::Resign { incarnation, term } => {
                self.store.resign(i, incarnation, term);
                None
            }
            other => panic!("the store does not take {other:?}"),
        };
        if let Some(reply) = reply {
            self.send(Addr::Store, from, reply);
        }
    }

    fn new_session(&mut self, node: usize) -> SessionId {
        self.next_session += 1;
        let s = SessionId(self.next_session);
        self.sessions.insert(s, node);
        s
    }

    fn add_node(&mut self) {
        let i = self.nodes.len();
        let zone = ["a", "b", "c"][i % 3];
        let drift = match self.mix.clock_drift {
            ClockDrift::Off => 0,
            ClockDrift::Random => (self.rng.next_u64() % 20_001) as i64 - 10_000,
            ClockDrift::AtBound => drift_bound_ppm(self.config.lease_ms, self.config.clock_drift_ms),
        };
        let session = self.new_session(i);
        let mut node = DataNode::new(i, CLUSTER, zone, drift, session);
        node.meta = i % METAS;
        self.nodes.push(node);
        let d = self.rand(1_000);
        self.schedule(Duration(d), Event::NodeHeartbeat(i, 1));
    }

    fn heartbeat(&mut self, i: usize, inc: u64) {
        let node = &self.nodes[i];
        if !node.alive || node.incarnation != inc {
            return;
        }
        let local = node.local(self.now);
        let load = |s: ShardId| (s.0 % 7) as f64;
        let node = &mut self.nodes[i];
        let hb = match node.link.beat(&mut node.host, local, load) {
            Beat::Send(hb) => hb,
            Beat::Reconnect => {
                // No word from this meta for three heartbeats: try the next one on a new stream.
                self.reconnect(i);
                let node = &mut self.nodes[i];
                let Beat::Send(hb) = node.link.beat(&mut node.host, local, load) else { unreachable!("a fresh stream heartbeats") };
                hb
            }
        };
        let (session, meta) = (self.nodes[i].session, self.nodes[i].meta);
        self.send(Addr::Node(i), Addr::Meta(meta), Msg::Heartbeat { session, hb });
        let next = 900 + self.rng.next_u64() % 200;
        self.schedule(Duration(next), Event::NodeHeartbeat(i, inc));
    }

    /// Node `i` opens a new stream, to the next meta: simulated metas have no addresses to
    /// redirect to, so the node tries each in turn.
    fn reconnect(&mut self, i: usize) {
        let session = self.new_session(i);
        let node = &mut self.nodes[i];
        node.link.next_target();
        node.link.opened();
        node.meta = (node.meta + 1) % METAS;
        node.session = session;
    }

    fn node_receive(&mut self, i: usize, from: Addr, msg: Msg) {
        if !self.nodes[i].alive {
            return;
        }
        let local = self.nodes[i].local(self.now);
        match msg {
            Msg::ToNode { session, message } if session == self.nodes[i].session => {
                let node = &mut self.nodes[i];
                node.link.on_message(&mut node.host, &message);
            }
            Msg::HeartbeatRefused { session } if session == self.nodes[i].session => {
                self.nodes[i].link.closed(None);
                self.reconnect(i);
            }
            Msg::RoutedWrite { shard, version } => {
                let host = &self.nodes[i].host;
                let accepted = host.is_leading(shard, local) && host.shards()[&shard].version == version;
                self.send(Addr::Node(i), from, Msg::RoutedWriteDone { accepted });
            }
            _ => {} // a message for an old stream
        }
    }

    fn client_tick(&mut self) {
        let give_up = Duration(self.config.request_timeout_ms + 3_000);
        let spec = self.spec.clone();
        if let Some(send) = self.client.tick(&mut self.rng, self.now, METAS, give_up, &spec) {
            self.client_send(send);
        }
        self.schedule(Duration(CLIENT_EVERY_MS), Event::ClientTick);
    }

    fn client_send(&mut self, send: Send) {
        match send {
            Send::Meta(meta, id, req) => self.send(Addr::Client, Addr::Meta(meta), Msg::Request { id, req }),
            Send::Node(endpoint, shard, version) => {
                if let Some(n) = self.nodes.iter().position(|n| n.endpoint == endpoint) {
                    self.send(Addr::Client, Addr::Node(n), Msg::RoutedWrite { shard, version });
                }
            }
        }
    }

    fn client_receive(&mut self, msg: Msg) {
        match msg {
            Msg::Reply { id, result } => {
                if let Some(send) = self.client.on_reply(id, result, METAS) {
                    self.client_send(send);
                }
            }
            Msg::RoutedWriteDone { accepted: true, .. } => self.client.writes_accepted += 1,
            Msg::RoutedWriteDone { accepted: false, .. } => self.client.writes_rejected += 1,
            other => panic!("the client does not take {other:?}"),
        }
    }

    fn fresh_core(&mut self) -> MetaCore {
        MetaCore::new(self.config.clone(), self.rng.next_u64())
    }

    fn fault(&mut self, f: Fault) {
        if std::env::var("SIM_DEBUG").is_ok() {
            eprintln!("{} fault {f:?}", self.now.0);
        }
        match f {
            Fault::CrashMeta(i) => self.metas[i].crash(),
            Fault::RestartMeta(i) => {
                if self.metas[i].core.is_none() {
                    let core = self.fresh_core();
                    self.metas[i].restart(core);
                    let inc = self.metas[i].incarnation;
                    self.schedule(Duration::ZERO, Event::MetaCampaign(i, inc));
                }
            }
            Fault::PauseMeta(i, ms) => {
                if self.metas[i].core.is_some() {
                    let until = self.now + Duration(ms);
                    self.metas[i].paused_until = Some(until);
                    // A pause can strike between deciding to send and sending: storage calls
                    // still on their way leave only after the pause, the case fencing is for.
                    let held: Vec<_> = self
                        .queue
                        .iter()
                        .filter(|(_, ev)| matches!(ev, Event::Deliver { from: Addr::Meta(m), to: Addr::Store, .. } if *m == i))
                        .map(|(k, _)| *k)
                        .collect();
                    for key in held {
                        let ev = self.queue.remove(&key).expect("just found");
                        self.schedule_at(until + (key.0.saturating_since(self.now)), ev);
                    }
                    // The process resumes by looking at its timers.
                    let inc = self.metas[i].incarnation;
                    self.metas[i].wakes.insert(until);
                    self.schedule_at(until, Event::MetaWake(i, inc));
                }
            }
            Fault::CrashNode(i) => self.nodes[i].alive = false,
            Fault::RestartNode(i) => self.restart_node(i),
            Fault::Cut(a, b, one_way) => self.net.cut(a, b, one_way),
            Fault::Mend(a, b) => {
                self.net.blocked.remove(&(a, b));
                self.net.blocked.remove(&(b, a));
            }
            Fault::AddNode => self.add_node(),
            Fault::Drain(i, cancel) => {
                let node = self.nodes[i].name.clone();
                self.client.operate(Request::DrainNode { cluster: CLUSTER.into(), node, cancel });
            }
            Fault::Heal => {
                self.net.heal();
                self.store.error_per_mille = 0;
                self.store.timeout_per_mille = 0;
                for i in 0..METAS {
                    self.metas[i].paused_until = None;
                    self.fault(Fault::RestartMeta(i));
                }
                for i in 0..self.nodes.len() {
                    if !self.nodes[i].alive {
                        self.restart_node(i);
                    }
                }
                self.healed = true;
            }
        }
    }

    fn restart_node(&mut self, i: usize) {
        if self.nodes[i].alive {
            return;
        }
        let session = self.new_session(i);
        self.nodes[i].restart(session);
        let inc = self.nodes[i].incarnation;
        let d = self.rand(1_000);
        self.schedule(Duration(d), Event::NodeHeartbeat(i, inc));
    }

    // ---- checks ----

    fn check_safety(&mut self) -> Result<(), Violation> {
        let now = self.now;
        // S1: by each node's own clock and lease.
        let leading: Vec<(ClusterId, ShardId, &str)> = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .flat_map(|n| {
                let local = n.local(now);
                n.host.shards().keys().filter(move |&&s| n.host.is_leading(s, local)).map(move |&s| (CLUSTER_ID, s, n.name.as_str()))
            })
            .collect();
        check::single_writer(leading)?;
        // S3: what each node accepted, against what it had before.
        for n in self.nodes.iter_mut().filter(|n| n.alive) {
            let view = n.host.view();
            if view != n.view {
                check::monotonic(&n.name, &n.view, &view)?;
                n.view = view;
            }
        }
        if self.mix.nodes_always_reachable() {
            self.check_prompt_failover()?;
        }
        // S4.
        check::fencing(&self.store.landed[self.landed_checked..])?;
        self.landed_checked = self.store.landed.len();
        // S2 and S5 against durable state, whenever storage or the acknowledgements moved.
        let acks = (self.client.acks.created.len(), self.client.acks.dropped.len());
        if self.store.revision != self.durable_revision || acks != self.acks_checked {
            if self.store.revision != self.durable_revision {
                // The loader refuses what would break S5 (two replicas on a node, say).
                let durable = Catalog::load(self.store.kvs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .map_err(|e| Violation { invariant: check::Invariant::Integrity, detail: format!("storage holds what no leader can load: {e}") })?;
                self.count_moves(&durable);
                self.durable = durable;
                self.durable_revision = self.store.revision;
            }
            self.acks_checked = acks;
            check::durability(&self.client.acks, &self.durable)?;
            check::integrity(&self.durable)?;
            // S6 for the warm standby that followed every landed write.
            match &self.store.standby {
                Ok(standby) => check::matches_rebuilt(&standby.catalog, &self.durable)?,
                Err(e) => return Err(Violation { invariant: check::Invariant::RestartEquivalence, detail: format!("the standby could not follow: {e}") }),
            }
        }
        // S6: a leader whose writes have all landed holds exactly what storage holds.
        for (i, m) in self.metas.iter().enumerate() {
            let Some(core) = m.core.as_ref() else { continue };
            if core.term() == Some(self.store.term) && core.writes_idle() && self.equivalence_checked.insert((i, self.store.revision)) {
                check::restart_equivalence(core.catalog().expect("a leader has a catalog"), &self.store.snapshot())?;
            }
        }
        // L4: every request a running core received is answered by its deadline.
        for (i, m) in self.metas.iter().enumerate() {
            // A paused meta owes nothing until it has run again.
            if m.core.is_some() && m.paused_until.is_none() {
                check::no_hang(&format!("meta {i}"), m.dispatch.waiting().map(|(id, &(_, deadline))| (id, deadline)), now)?;
            }
        }
        let leader = self.store.current_holder(now).map(|m| (m, self.store.term));
        if leader.is_some() && leader != self.last_leader {
            self.coverage.leader_changes += 1;
            self.last_leader = leader;
        }
        Ok(())
    }

    /// L2 while faults run, in seeds where every live node can always reach meta (only nodes
    /// crash): once a shard's leader's node has died, and a live follower or (dynamic clusters)
    /// any live placeable node could lead it, the shard must have a live leader within a lease,
    /// the drift allowance and five heartbeats.
    fn check_prompt_failover(&mut self) -> Result<(), Violation> {
        let now = self.now;
        let Some(c) = self.durable.clusters.get(&CLUSTER_ID) else { return Ok(()) };
        self.all_led_once |= self.all_shards_led();
        if !self.all_led_once {
            return Ok(());
        }
        let alive = |name: &str| self.nodes.iter().any(|n| n.alive && n.name == name);
        let dynamic = c.record.topology() == Topology::Dynamic;
        let placeable = c.nodes.iter().any(|n| !n.draining && alive(&n.name));
        for s in &c.shards {
            let id = ShardId(s.id);
            let led = self.nodes.iter().any(|n| n.alive && n.host.is_leading(id, n.local(now)));
            let leader_dead = s.leader.is_some_and(|l| !alive(&c.node(NodeId(l)).name));
            let replaceable = s.followers.iter().any(|&f| alive(&c.node(NodeId(f)).name)) || (dynamic && placeable);
            if led || !leader_dead || !replaceable {
                self.unled_since.remove(&id);
            } else {
                self.unled_since.entry(id).or_insert(now);
            }
        }
        let bound = Duration(self.config.lease_ms + self.config.clock_drift_ms + 5 * self.config.heartbeat_interval_ms);
        check::prompt_failover(self.unled_since.iter().map(|(&s, &since)| (CLUSTER_ID, s, since)), now, bound)
    }

    /// Counts, for coverage, how shards changed between two durable states.
    fn count_moves(&mut self, next: &Catalog) {
        let (Some(old), Some(new)) = (self.durable.clusters.get(&CLUSTER_ID), next.clusters.get(&CLUSTER_ID)) else { return };
        if old.epoch != new.epoch {
            self.last_topology_change = self.now;
        }
        self.coverage.moves.add(&LeaderMoves::between(old, new));
    }

    fn all_shards_led(&self) -> bool {
        let Some(c) = self.durable.clusters.get(&CLUSTER_ID) else { return false };
        c.shards.iter().all(|s| {
            s.leader.is_some_and(|l| {
                let name = &c.node(NodeId(l)).name;
                self.nodes.iter().any(|n| n.alive && n.name == *name && n.host.is_leading(ShardId(s.id), n.local(self.now)))
            })
        })
    }

    fn observe_liveness(&mut self) {
        let now = self.now;
        let leader_serving = self
            .store
            .current_holder(now)
            .is_some_and(|m| self.metas[m].core.as_ref().is_some_and(|c| c.is_leader(now)));
        if leader_serving && self.first_leader_after_heal.is_none() {
            self.first_leader_after_heal = Some(now);
        }
        if self.first_all_led_after_heal.is_none() && self.all_shards_led() {
            self.first_all_led_after_heal = Some(now);
        }
    }

    fn check_liveness(&self) -> Result<(), Failure> {
        let heal = HEAL_AT_MS;
        // L1: a meta leader within the election timeout (one TTL for the old lease, a campaign round).
        let l1_deadline = heal + 2 * ELECTION_TTL_MS + CAMPAIGN_EVERY_MS;
        match self.first_leader_after_heal {
            Some(t) if t.0 <= l1_deadline => {}
            other => return Err(self.fail(format!("L1: no meta leader by {l1_deadline} ms (first at {other:?})"), None)),
        }
        if !self.client.cluster_ready {
            return Err(self.fail("the cluster was never created".into(), None));
        }
        // L2: every shard led within election + lease + drift + a few heartbeats, and at the end.
        let l2_deadline = l1_deadline + self.config.lease_ms + self.config.clock_drift_ms + 5 * self.config.heartbeat_interval_ms;
        match self.first_all_led_after_heal {
            Some(t) if t.0 <= l2_deadline => {}
            other => return Err(self.fail(format!("L2: not every shard had a live leader by {l2_deadline} ms (first at {other:?})"), None)),
        }
        if !self.all_shards_led() {
            return Err(self.fail("L2: not every shard has a live leader at the end".into(), None));
        }
        // L3: draining nodes drained, the others balanced within one leader shard, then quiet.
        let c = &self.durable.clusters[&CLUSTER_ID];
        if let Some((n, held)) = c.nodes.iter().zip(&c.node_shards).find(|(n, held)| n.draining && !held.is_empty()) {
            return Err(self.fail(format!("L3: draining node {} still holds shards {held:?}", n.name), None));
        }
        if self.mix.topology == Topology::Dynamic {
            let mut counts = vec![0u32; c.nodes.len()];
            for s in &c.shards {
                counts[s.leader.expect("all led") as usize] += 1;
            }
            let counts: Vec<u32> = counts.into_iter().zip(&c.nodes).filter(|(_, n)| !n.draining).map(|(k, _)| k).collect();
            let (lo, hi) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
            if hi > lo + 1 {
                return Err(self.fail(format!("L3: leader shards per node {counts:?} are not within one of each other"), None));
            }
        }
        if END_MS - self.last_topology_change.0 < QUIET_WINDOW_MS {
            return Err(self.fail(format!("L3: topology still changing at {} ms", self.last_topology_change.0), None));
        }
        Ok(())
    }
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
        Event::ClientTick => (25, 0),
        Event::Fault(f) => (26, format!("{f:?}").len() as u64),
    }
}

/// Runs one seed.
pub fn run_seed(seed: u64, opts: &Options) -> Result<Report, Failure> {
    World::new(seed, opts).run()
}

/// What meta `meta`'s outputs do in the simulated world: messages to the store, nodes and the
/// client, and loads.
struct MetaEffects<'a> {
    world: &'a mut World,
    meta: usize,
}

impl Effects for MetaEffects<'_> {
    /// The client's number for the request, and its deadline (for L4).
    type Caller = (RequestId, Instant);

    fn persist(&mut self, batch: storage::WriteBatch) {
        let (w, i) = (&mut *self.world, self.meta);
        let inc = w.metas[i].incarnation;
        if std::env::var("SIM_DEBUG").is_ok() {
            eprintln!("{} meta{i} -> persist {:?} term {} keys {:?}", w.now.0, batch.id, batch.term, batch.ops.iter().map(|o| o.key().rsplit('/').take(2).collect::<Vec<_>>()).collect::<Vec<_>>());
        }
        w.metas[i].in_flight = Some(batch.id);
        w.schedule(Duration(WRITE_TIMEOUT_MS), Event::MetaWriteTimeout(i, inc, batch.id));
        w.send(Addr::Meta(i), Addr::Store, Msg::Write { incarnation: inc, batch });
    }

    fn to_node(&mut self, session: SessionId, message: NodeMessage) {
        if let Some(&n) = self.world.sessions.get(&session) {
            self.world.send(Addr::Meta(self.meta), Addr::Node(n), Msg::ToNode { session, message });
        }
    }

    fn close_stream(&mut self, session: SessionId, _: Option<String>, error: MetaError) {
        assert!(matches!(error, MetaError::NotLeader | MetaError::NotFound(_)), "a well-behaved node's heartbeat was refused: {error}");
        if let Some(&n) = self.world.sessions.get(&session) {
            self.world.send(Addr::Meta(self.meta), Addr::Node(n), Msg::HeartbeatRefused { session });
        }
    }

    fn reply(&mut self, _: RequestId, (id, _): (RequestId, Instant), result: Result<Response, MetaError>) {
        self.world.send(Addr::Meta(self.meta), Addr::Client, Msg::Reply { id, result });
    }

    fn load_snapshot(&mut self, term: Term) {
        self.world.start_load(self.meta, LoadPurpose::Reload(term));
    }

    fn resign(&mut self, term: Term, _: ResignReason) {
        let (w, i) = (&mut *self.world, self.meta);
        w.coverage.resigns += 1;
        let incarnation = w.metas[i].incarnation;
        w.send(Addr::Meta(i), Addr::Store, Msg::Resign { incarnation, term });
    }
}
