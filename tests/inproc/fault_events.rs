//! The faults a seed plans, and what each does to the world when it fires.

use super::*;

#[derive(Clone, Debug)]
pub(super) enum Fault {
    CrashMeta(usize),
    RestartMeta(usize),
    PauseMeta(usize, u64),
    CrashNode(usize),
    /// The node is asked to stop: it gives up its leases and says it is leaving, then is gone.
    StopNode(usize),
    RestartNode(usize),
    Cut(Addr, Addr, bool),
    Mend(Addr, Addr),
    AddNode,
    /// The operator drains a node (or cancels its drain).
    Drain(usize, bool),
    /// The operator begins a planned restart of a node, with a window in ms (0: the default),
    /// or (`true`) ends it.
    PlannedRestart(usize, u64, bool),
    /// The operator splits a shard, or merges two.
    Split(u32),
    Merge(u32, u32),
    /// The operator cancels every procedure the durable catalog holds.
    CancelProcedures,
    /// Another process heartbeats once under node `i`'s name, claiming to lead every shard.
    Impostor(usize),
    /// A process heartbeats once as node `ghost{k}`, then vanishes.
    OneShot(u32),
    /// The operator sets placement rule `faults::rule(k)`.
    SetRule(usize),
    Heal,
}

impl World {
    /// The seed's faults, all inside the safety phase, each undone within it.
    pub(super) fn plan_faults(&mut self) {
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
            let fault = if self.rng.next_u64().is_multiple_of(3) {
                Fault::StopNode(i)
            } else {
                Fault::CrashNode(i)
            };
            // A third of the time the operator announced it: a planned restart, begun up to 8 s
            // before, with the default window or one short enough to pass while the node is
            // down; now and then ended by hand later.
            if self.rng.next_u64().is_multiple_of(3) {
                let early = Duration(self.rand(8_000).min(at.0));
                let window = [0, 5_000, 15_000][self.rand(3) as usize];
                self.schedule_at(at - early, Event::Fault(Fault::PlannedRestart(i, window, false)));
                if self.rng.next_u64().is_multiple_of(4) {
                    let d = 5_000 + self.rand(30_000);
                    self.schedule_at(
                        at + Duration(d),
                        Event::Fault(Fault::PlannedRestart(i, 0, true)),
                    );
                }
            }
            self.schedule_at(at, Event::Fault(fault));
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
        if self.mix.resizes && self.mix.topology == Topology::Dynamic {
            self.plan_resizes();
        }
        if self.mix.impostors {
            for k in 0..3 {
                let (i, at) =
                    ((self.rng.next_u64() % nodes as u64) as usize, window(&mut self.rng));
                self.schedule_at(at, Event::Fault(Fault::Impostor(i)));
                let at = window(&mut self.rng);
                self.schedule_at(at, Event::Fault(Fault::OneShot(k)));
            }
        }
        // Each rule in turn, the later ones later: a rule set early shapes assignment, one set
        // later migrates shards, and a second replaces the first.
        let mut at = Instant(0);
        for k in self.mix.rules.clone() {
            at = Instant(at.0.max(window(&mut self.rng).0));
            self.schedule_at(at, Event::Fault(Fault::SetRule(k)));
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

    /// A split and a merge at random times, and sometimes a cancel soon after one.
    fn plan_resizes(&mut self) {
        let window = |rng: &mut ChaCha8Rng| Instant(5_000 + rng.next_u64() % (HEAL_AT_MS - 20_000));
        let shards = self.mix.shards as u64;
        let (split, at) = (self.rand(shards) as u32, window(&mut self.rng));
        self.schedule_at(at, Event::Fault(Fault::Split(split)));
        let (a, b, at) =
            (self.rand(shards) as u32, self.rand(shards) as u32, window(&mut self.rng));
        self.schedule_at(at, Event::Fault(Fault::Merge(a, b)));
        if self.rng.next_u64().is_multiple_of(2) {
            let d = 50 + self.rand(2_000);
            self.schedule_at(at + Duration(d), Event::Fault(Fault::CancelProcedures));
        }
    }

    pub(super) fn fault(&mut self, f: Fault) {
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
            Fault::StopNode(i) => self.stop_node(i),
            Fault::RestartNode(i) => self.restart_node(i),
            Fault::Cut(a, b, one_way) => self.net.cut(a, b, one_way),
            Fault::Mend(a, b) => {
                self.net.blocked.remove(&(a, b));
                self.net.blocked.remove(&(b, a));
            }
            Fault::AddNode => self.add_node(),
            Fault::Drain(i, cancel) => {
                let node = self.nodes[i].name().to_owned();
                self.client.operate(Request::DrainNode { cluster: CLUSTER.into(), node, cancel });
            }
            Fault::SetRule(k) => {
                let rule = super::faults::rule(k);
                let req =
                    Request::SetPlacement { cluster: CLUSTER.into(), rule, expected_version: None };
                self.client.operate(req);
            }
            Fault::PlannedRestart(i, window_ms, end) => {
                let node = self.nodes[i].name().to_owned();
                let req = Request::RestartNode { cluster: CLUSTER.into(), node, end, window_ms };
                self.client.operate(req);
            }
            Fault::Split(shard) => self.client.operate(Request::SplitShard {
                cluster: CLUSTER.into(),
                shard: ShardId(shard),
                tables: vec![],
            }),
            Fault::Merge(a, b) => self.client.operate(Request::MergeShards {
                cluster: CLUSTER.into(),
                shards: [ShardId(a), ShardId(b)],
            }),
            Fault::CancelProcedures => {
                let ids: Vec<u64> = self
                    .durable
                    .clusters
                    .get(&CLUSTER_ID)
                    .map_or(Vec::new(), |c| c.procedures.keys().copied().collect());
                for id in ids {
                    self.client.operate(Request::CancelProcedure { cluster: CLUSTER.into(), id });
                }
            }
            Fault::Impostor(i) => {
                let name = self.nodes[i].name().to_owned();
                let incarnation = 1 << 40 | self.rng.next_u64() >> 24;
                self.rogue_heartbeat(name, format!("impostor{i}:1"), incarnation);
            }
            Fault::OneShot(k) => {
                self.rogue_heartbeat(format!("{ONE_SHOT_PREFIX}{k}"), format!("ghost{k}:1"), 1)
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

    pub(super) fn restart_node(&mut self, i: usize) {
        if self.nodes[i].alive {
            return;
        }
        let session = self.new_session(i);
        self.nodes[i].restart(session);
        let inc = self.nodes[i].incarnation();
        let d = self.rand(1_000);
        self.schedule(Duration(d), Event::NodeHeartbeat(i, inc));
    }
}

/// One-shot senders' node names: such a node must never hold a replica.
pub(super) const ONE_SHOT_PREFIX: &str = "ghost";

impl World {
    /// One heartbeat, to every meta, from a process that is not one of the seed's data nodes:
    /// it claims to lead every shard the cluster started with. Its sessions are rogue: meta's
    /// answers go nowhere, and a refusal is expected.
    fn rogue_heartbeat(&mut self, node: String, endpoint: String, incarnation: u64) {
        let leader = |id| ShardReport {
            id: ShardId(id),
            role: Role::Leader,
            version: Version(1),
            status: ReplicaStatus::Ready,
            load: ShardLoad::default(),
            lag: None,
        };
        let shards = (0..self.mix.shards).map(leader).collect();
        let stats = NodeStats::default();
        let hb = Heartbeat {
            cluster: CLUSTER.into(),
            node,
            endpoint,
            zone: String::new(),
            labels: Vec::new(),
            incarnation,
            seq: 1,
            stats,
            shards,
            tables: vec![],
            load_rejections: 0,
            leaving: false,
        };
        for meta in 0..METAS {
            self.next_session += 1;
            let session = SessionId(self.next_session);
            self.rogues.insert(session);
            self.send(Addr::Client, Addr::Meta(meta), Msg::Heartbeat { session, hb: hb.clone() });
        }
    }
}
