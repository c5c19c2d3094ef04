//! The invariant checks a run makes: the safety invariants and L2 (under faults) after every
//! event, the liveness bounds L1–L3 at the end.

use super::*;
use shardmeta::core::model::{ProcedureKind, ProcedureStep};

impl World {
    pub(super) fn check_safety(&mut self) -> Result<(), Violation> {
        let now = self.now;
        // S1: by each node's own clock and lease.
        let leading: Vec<(ClusterId, ShardId, &str)> = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .flat_map(|n| {
                let local = n.local(now);
                n.host
                    .shards()
                    .keys()
                    .filter(move |&&s| n.host.is_leading(s, local))
                    .map(move |&s| (CLUSTER_ID, s, n.name()))
            })
            .collect();
        check::single_writer(leading)?;
        // S1 per table, across splits and merges: no table in two shards led at once.
        let tables = self.nodes.iter().filter(|n| n.alive).flat_map(|n| {
            let local = n.local(now);
            let led = n.host.shards().iter().filter(move |(&s, _)| n.host.is_leading(s, local));
            led.flat_map(move |(_, s)| s.tables.iter().map(move |&t| (CLUSTER_ID, t, n.name())))
        });
        check::single_table_writer(tables)?;
        // S3: what each node accepted, against what it had before.
        for n in self.nodes.iter_mut().filter(|n| n.alive) {
            let view = n.host.view();
            if view != n.view {
                check::monotonic(n.name(), &n.view, &view)?;
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
        let acks = (
            self.client.acks.created.len(),
            self.client.acks.dropped.len(),
            self.client.acks.altered.values().map(|&v| v as usize).sum::<usize>(),
        );
        if self.store.revision != self.durable_revision || acks != self.acks_checked {
            if self.store.revision != self.durable_revision {
                // The loader refuses what would break S5 (two replicas on a node, say).
                let durable =
                    Catalog::load(self.store.kvs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                        .map_err(|e| Violation {
                        invariant: check::Invariant::Integrity,
                        detail: format!("storage holds what no leader can load: {e}"),
                    })?;
                self.count_moves(&durable);
                self.check_steady(&durable)?;
                self.check_fresh_failover(&durable)?;
                self.durable = durable;
                self.durable_revision = self.store.revision;
            }
            self.acks_checked = acks;
            check::durability(&self.client.acks, &self.durable)?;
            check::integrity(&self.durable)?;
            // S6 for the warm standby that followed every landed write.
            match &self.store.standby {
                Ok(standby) => check::matches_rebuilt(&standby.catalog, &self.durable)?,
                Err(e) => {
                    return Err(Violation {
                        invariant: check::Invariant::RestartEquivalence,
                        detail: format!("the standby could not follow: {e}"),
                    })
                }
            }
        }
        // S6: a leader whose writes have all landed holds exactly what storage holds.
        for (i, m) in self.metas.iter().enumerate() {
            let Some(core) = m.core.as_ref() else { continue };
            if core.term() == Some(self.store.term)
                && core.writes_idle()
                && self.equivalence_checked.insert((i, self.store.revision))
            {
                check::restart_equivalence(
                    core.catalog().expect("a leader has a catalog"),
                    &self.store.snapshot(),
                )?;
            }
        }
        // L4: every request a running core received is answered by its deadline.
        for (i, m) in self.metas.iter().enumerate() {
            // A paused meta owes nothing until it has run again.
            if m.core.is_some() && m.paused_until.is_none() {
                check::no_hang(
                    &format!("meta {i}"),
                    m.dispatch.waiting().map(|(id, &(_, deadline))| (id, deadline)),
                    now,
                )?;
            }
        }
        let leader = self.store.current_holder(now).map(|m| (m, self.store.term));
        if leader.is_some() && leader != self.last_leader {
            self.coverage.leader_changes += 1;
            self.last_leader = leader;
            // Splits and merges: a resumed transfer is common, and would hide their absence.
            let resizes = |c: &shardmeta::core::model::ClusterCatalog| {
                c.procedures
                    .values()
                    .filter(|p| p.kind() != ProcedureKind::Transfer)
                    .map(|p| (p.id, p.step))
                    .collect()
            };
            let stored = self.durable.clusters.get(&CLUSTER_ID).map(resizes);
            self.inherited_procedures = stored.unwrap_or_default();
        }
        Ok(())
    }

    /// L2 while faults run, in seeds where every live node can always reach meta (only nodes
    /// crash): once a shard's leader's node has died, and a live follower or (dynamic clusters)
    /// any live placeable node could lead it, the shard must have a live leader within a lease,
    /// the drift allowance and five heartbeats.
    pub(super) fn check_prompt_failover(&mut self) -> Result<(), Violation> {
        let now = self.now;
        let Some(c) = self.durable.clusters.get(&CLUSTER_ID) else { return Ok(()) };
        self.all_led_once |= self.all_shards_led();
        if !self.all_led_once {
            return Ok(());
        }
        let alive = |name: &str| self.nodes.iter().any(|n| n.alive && n.name() == name);
        let dynamic = c.record.topology() == Topology::Dynamic;
        let placeable = c.nodes.iter().any(|n| !n.draining && alive(&n.name));
        for s in &c.shards {
            let id = ShardId(s.id);
            let led = self.nodes.iter().any(|n| n.alive && n.host.is_leading(id, n.local(now)));
            let leader_dead = s.leader.is_some_and(|l| !alive(&c.node(NodeId(l)).name));
            let replaceable = s.followers.iter().any(|&f| alive(&c.node(NodeId(f)).name))
                || (dynamic && placeable);
            if led || !leader_dead || !replaceable {
                self.unled_since.remove(&id);
            } else {
                // The clock restarts when meta names another leader: a failover onto a node
                // that died moments before (meta cannot know yet) is a second failure.
                let entry = self.unled_since.entry(id).or_insert((now, s.leader));
                if entry.1 != s.leader {
                    *entry = (now, s.leader);
                }
            }
        }
        let bound = Duration(
            self.config.lease_ms
                + self.config.clock_drift_ms
                + 5 * self.config.heartbeat_interval_ms,
        );
        check::prompt_failover(
            self.unled_since.iter().map(|(&s, &(since, _))| (CLUSTER_ID, s, since)),
            now,
            bound,
        )
    }

    /// B1 over the moves for balance that started between two durable states.
    fn check_steady(&mut self, next: &Catalog) -> Result<(), Violation> {
        let (Some(old), Some(new)) =
            (self.durable.clusters.get(&CLUSTER_ID), next.clusters.get(&CLUSTER_ID))
        else {
            return Ok(());
        };
        let settings = new.scheduler.as_ref().map_or(self.config.scheduler, |r| r.into());
        if self.steady.0 != self.store.term {
            self.steady = (self.store.term, check::Steady::new(settings.pair_cooldown_ms));
        }
        for m in check::load_moves_started(old, new) {
            self.steady.1.observe(self.now.as_millis(), m)?;
        }
        Ok(())
    }

    /// F1's record of the follower reports meta `i` hears while it leads, from a node's current
    /// stream. A heartbeat under the node's name from anywhere else (an impostor, an old
    /// stream) makes the record forget the node: meta may have taken it, and what it holds of
    /// the node is then unknown. So does a refused heartbeat (see `close_stream`).
    pub(super) fn note_lags(&mut self, i: usize, session: SessionId, hb: &Heartbeat) {
        let Some(term) = self.metas[i].core.as_ref().and_then(|c| c.term()) else { return };
        let current = self.sessions.get(&session).is_some_and(|&n| {
            let node = &self.nodes[n];
            node.alive && node.session == session && node.name() == hb.node
        });
        let told = &mut self.told[i];
        if told.0 != term {
            *told = (term, check::Freshness::new(FRESH_SETTLED_MS));
        }
        if hb.leaving || !current {
            told.1.forget(&hb.node);
        } else {
            let follows = hb.shards.iter().filter(|r| r.role == Role::Follower);
            told.1.heard(&hb.node, self.now.0, follows.map(|r| (r.id, r.lag)));
        }
    }

    /// F1 over the failovers between two durable states, judged by what the leader that wrote
    /// them had heard.
    fn check_fresh_failover(&mut self, next: &Catalog) -> Result<(), Violation> {
        let (Some(old), Some(new)) =
            (self.durable.clusters.get(&CLUSTER_ID), next.clusters.get(&CLUSTER_ID))
        else {
            return Ok(());
        };
        let term = Some(self.store.term);
        let Some(i) =
            self.metas.iter().position(|m| m.core.as_ref().and_then(|c| c.term()) == term)
        else {
            return Ok(()); // the leader that wrote it is gone
        };
        let (term_heard, told) = &self.told[i];
        if Some(*term_heard) != term {
            return Ok(());
        }
        for choice in told.failovers(old, new, self.now.0)? {
            self.coverage.laggards_passed_over += u64::from(choice.passed_over_laggard);
            self.coverage.laggards_promoted += u64::from(choice.promoted_laggard);
        }
        Ok(())
    }

    /// Counts, for coverage, how shards changed between two durable states.
    pub(super) fn count_moves(&mut self, next: &Catalog) {
        let (Some(old), Some(new)) =
            (self.durable.clusters.get(&CLUSTER_ID), next.clusters.get(&CLUSTER_ID))
        else {
            return;
        };
        if old.epoch != new.epoch {
            self.last_topology_change = self.now;
        }
        self.coverage.moves.add(&LeaderMoves::between(old, new));
        let p = &mut self.coverage.procedures;
        p.split_shards += new.shards.len().saturating_sub(old.shards.len()) as u64;
        p.retired_shards += new
            .shards
            .iter()
            .filter(|s| s.retired && !old.shards.get(s.id as usize).is_some_and(|o| o.retired))
            .count() as u64;
        let rolling = |c: &shardmeta::core::model::ClusterCatalog, id: u64| {
            c.procedures.get(&id).is_some_and(|p| p.step() == ProcedureStep::RollingBack)
        };
        p.rollbacks +=
            new.procedures.keys().filter(|&&id| rolling(new, id) && !rolling(old, id)).count()
                as u64;
        let restarting = |c: &shardmeta::core::model::ClusterCatalog, n: usize| {
            c.nodes.get(n).is_some_and(|n| n.restart.is_some())
        };
        let ended = (0..old.nodes.len()).filter(|&n| restarting(old, n) && !restarting(new, n));
        self.coverage.restarts_ended += ended.count() as u64;
        let transfers_for = |why: shardmeta::core::cause::Cause| {
            let started = new.shards.iter().filter(|s| {
                let Some(t) = s.transfer else { return false };
                let cause = new.procedures.get(&t.procedure).and_then(|p| p.cause());
                cause == Some(why)
                    && old.shards.get(s.id as usize).is_none_or(|o| o.transfer.is_none())
            });
            started.count() as u64
        };
        self.coverage.restart_transfers += transfers_for(shardmeta::core::cause::Cause::Restart);
        self.coverage.rule_transfers += transfers_for(shardmeta::core::cause::Cause::Rule);
        let version =
            |c: &shardmeta::core::model::ClusterCatalog| c.placement.as_ref().map(|p| p.version);
        self.coverage.rules_set += u64::from(version(new) != version(old));
        let before = self.inherited_procedures.len();
        self.inherited_procedures
            .retain(|id, step| new.procedures.get(id).is_some_and(|p| p.step == *step));
        p.resumed += (before - self.inherited_procedures.len()) as u64;
    }

    pub(super) fn all_shards_led(&self) -> bool {
        let Some(c) = self.durable.clusters.get(&CLUSTER_ID) else { return false };
        // A split's new shard waits for its procedure before anyone may lead it.
        let waiting = |s: &&shardmeta::core::model::ShardRecord| {
            c.lock_of(ShardId(s.id))
                .is_some_and(|p| p.new_shard == s.id && p.kind() == ProcedureKind::Split)
        };
        c.shards.iter().filter(|s| !s.retired && !waiting(s)).all(|s| {
            s.leader.is_some_and(|l| {
                let name = &c.node(NodeId(l)).name;
                self.nodes.iter().any(|n| {
                    n.alive
                        && n.name() == name.as_str()
                        && n.host.is_leading(ShardId(s.id), n.local(self.now))
                })
            })
        })
    }

    pub(super) fn observe_liveness(&mut self) {
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

    pub(super) fn check_liveness(&mut self) -> Result<(), Failure> {
        let heal = HEAL_AT_MS;
        // L1: a meta leader within the election timeout (one TTL for the old lease, a campaign round).
        let l1_deadline = heal + 2 * ELECTION_TTL_MS + CAMPAIGN_EVERY_MS;
        match self.first_leader_after_heal {
            Some(t) if t.0 <= l1_deadline => {}
            other => {
                return Err(self.fail(
                    format!("L1: no meta leader by {l1_deadline} ms (first at {other:?})"),
                    None,
                ))
            }
        }
        if !self.client.cluster_ready {
            return Err(self.fail("the cluster was never created".into(), None));
        }
        // L2: every shard led within election + lease + drift + a few heartbeats, and at the end.
        let l2_deadline = l1_deadline
            + self.config.lease_ms
            + self.config.clock_drift_ms
            + 5 * self.config.heartbeat_interval_ms;
        match self.first_all_led_after_heal {
            Some(t) if t.0 <= l2_deadline => {}
            other => return Err(self.fail(format!("L2: not every shard had a live leader by {l2_deadline} ms (first at {other:?})"), None)),
        }
        if !self.all_shards_led() {
            if std::env::var("SIM_DEBUG").is_ok() {
                let c = &self.durable.clusters[&CLUSTER_ID];
                for s in &c.shards {
                    eprintln!("END {s:?}");
                }
                for n in &c.nodes {
                    eprintln!("END node {} {:?} draining {}", n.name, n.restart, n.draining);
                }
                for n in &self.nodes {
                    eprintln!(
                        "END sim {} alive {} shards {:?}",
                        n.name(),
                        n.alive,
                        n.host.shards().iter().map(|(s, h)| (s.0, h.role)).collect::<Vec<_>>()
                    );
                }
            }
            return Err(self.fail("L2: not every shard has a live leader at the end".into(), None));
        }
        // L3: draining nodes drained, the others balanced within one leader shard, then quiet.
        let c = &self.durable.clusters[&CLUSTER_ID];
        if let Some((n, held)) =
            c.nodes.iter().zip(&c.node_shards).find(|(n, held)| n.draining && !held.is_empty())
        {
            return Err(self
                .fail(format!("L3: draining node {} still holds shards {held:?}", n.name), None));
        }
        // A one-shot sender is registered, but it must never have been given a replica.
        let one_shot = |name: &str| name.starts_with(super::fault_events::ONE_SHOT_PREFIX);
        if let Some((n, held)) = c
            .nodes
            .iter()
            .zip(&c.node_shards)
            .find(|(n, held)| one_shot(&n.name) && !held.is_empty())
        {
            return Err(
                self.fail(format!("one-shot sender {} holds shards {held:?}", n.name), None)
            );
        }
        if self.mix.topology == Topology::Dynamic {
            // Every node runs again after the heal: the placeable ones are those not draining
            // (and not one-shot senders, long gone).
            // A node whose planned restart was begun while the process that runs now was up
            // (the request can land after a crash and restart) waits for a restart that never
            // comes, its leaders gone until the operator ends it: not a node to balance onto.
            let awaiting_restart = |n: &shardmeta::core::model::NodeRecord| {
                n.restart.as_ref().is_some_and(|r| {
                    self.nodes
                        .iter()
                        .any(|d| d.name() == n.name && d.incarnation() == r.incarnation)
                })
            };
            let takes = |n: &shardmeta::core::model::NodeRecord| {
                !n.draining && !one_shot(&n.name) && !awaiting_restart(n)
            };
            // S5's zone spread once every node is back: replicas crowded into the zones that
            // stayed during an outage have been spread again; and the placement rule.
            let placed = check::leaders_balanced(c, takes).and_then(|()| {
                let placeable = |n: NodeId| takes(c.node(n));
                check::zone_spread(c, placeable)
                    .and_then(|()| check::placement_rule(c, placeable))
                    .map_err(|v| v.to_string())
            });
            if let Err(e) = placed {
                if std::env::var("SIM_DEBUG").is_ok() {
                    self.dump_placement();
                }
                return Err(self.fail(e, None));
            }
            // The scheduler's own passes come to rest after losing a zone or draining a node:
            // a rehearsal that does not settle is moves undoing each other.
            for change in [WhatIf::LoseZone("a".into()), WhatIf::Drain("node-0".into())] {
                let Some(r) = self.rehearse(change) else { continue };
                self.coverage.rehearsals += 1;
                if !r.settled {
                    return Err(self.fail(
                        format!("L3: the rehearsal of {} did not settle: {:?}", r.change, r.moves),
                        None,
                    ));
                }
            }
        }
        if END_MS - self.last_topology_change.0 < QUIET_WINDOW_MS {
            return Err(self.fail(
                format!("L3: topology still changing at {} ms", self.last_topology_change.0),
                None,
            ));
        }
        Ok(())
    }
}

impl World {
    /// For `SIM_DEBUG`: where every replica is, and the meta leader's event log.
    fn dump_placement(&mut self) {
        let c = &self.durable.clusters[&CLUSTER_ID];
        for (n, held) in c.nodes.iter().zip(&c.node_shards) {
            println!("node {} zone {:?} draining {} holds {held:?}", n.name, n.zone, n.draining);
        }
        for s in &c.shards {
            println!("shard {} leader {:?} followers {:?}", s.id, s.leader, s.followers);
        }
        let (now, cluster) = (self.now, self.spec.name.clone());
        for core in
            self.metas.iter_mut().filter_map(|m| m.core.as_mut()).filter(|c| c.is_leader(now))
        {
            let request = Request::ListEvents { cluster: cluster.clone(), after: 0, limit: 10_000 };
            core.handle(now, Input::Request { id: RequestId(u64::MAX), request: &request });
            while let Some(out) = core.poll_output() {
                if let Output::Reply { result: Ok(Response::Events { events, .. }), .. } = out {
                    for e in events {
                        println!(
                            "event {} ago {} ms {:?} shard {:?}: {}",
                            e.seq, e.age_ms, e.cause, e.shard, e.text
                        );
                    }
                }
            }
        }
    }
}

impl World {
    /// A what-if asked of the meta leader, if one leads and knows the node or zone.
    fn rehearse(&mut self, change: WhatIf) -> Option<WhatIfReport> {
        let (now, cluster) = (self.now, self.spec.name.clone());
        let core =
            self.metas.iter_mut().filter_map(|m| m.core.as_mut()).find(|c| c.is_leader(now))?;
        let request = Request::WhatIf { cluster, change };
        core.handle(now, Input::Request { id: RequestId(u64::MAX - 1), request: &request });
        let mut report = None;
        while let Some(out) = core.poll_output() {
            if let Output::Reply { result: Ok(Response::WhatIf(r)), .. } = out {
                report = Some(r);
            }
        }
        report
    }
}
