//! What reaches a simulated meta node and the store, and what a meta node's outputs do.

use super::*;

impl World {
    pub(super) fn meta_receive(&mut self, i: usize, msg: Msg) {
        let now = self.now;
        if std::env::var("SIM_DEBUG").is_ok()
            && !matches!(msg, Msg::Heartbeat { .. } | Msg::Request { .. })
        {
            eprintln!(
                "{} meta{i} <- {:?}",
                now.0,
                match &msg {
                    Msg::Won { term, .. } => format!("Won {term}"),
                    Msg::Page { load, next, .. } => format!("Page of load {load}, next {next:?}"),
                    m => format!("{m:?}").chars().take(150).collect(),
                }
            );
        }
        let inc = self.metas[i].incarnation;
        let ttl = Duration(ELECTION_TTL_MS);
        match msg {
            Msg::Heartbeat { session, hb } => {
                self.note_lags(i, session, &hb);
                self.core(i).handle(now, Input::Heartbeat { session, heartbeat: &hb })
            }
            Msg::Request { id, req } => {
                let deadline = now + Duration(self.config.request_timeout_ms);
                self.metas[i].request(now, (id, deadline), &req);
            }
            Msg::WriteDone { incarnation, id, result }
                if incarnation == inc && self.metas[i].in_flight == Some(id) =>
            {
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
                    _ if held => self.core(i).handle(
                        now,
                        Input::Leadership(Leadership::Renewed { term, valid_until: sent + ttl }),
                    ),
                    Some(LoadPurpose::Lead { term: t, sent: s }) if *t == term => {
                        *s = (*s).max(sent)
                    }
                    _ => self.start_load(i, LoadPurpose::Lead { term, sent }),
                }
            }
            Msg::Renewed { incarnation, sent, term } if incarnation == inc => {
                self.core(i).handle(
                    now,
                    Input::Leadership(Leadership::Renewed { term, valid_until: sent + ttl }),
                );
            }
            Msg::LostElection { incarnation } if incarnation == inc => {
                if matches!(self.metas[i].loading, Some(ref l) if matches!(l.purpose, LoadPurpose::Lead { .. }))
                {
                    self.metas[i].loading = None; // another node leads: the load is moot
                }
                if self.core(i).term().is_some() {
                    self.core(i).handle(now, Input::Leadership(Leadership::Lost));
                }
            }
            Msg::Page { incarnation, load, page, pairs, next } if incarnation == inc => {
                self.on_page(i, load, page, pairs, next)
            }
            Msg::PageFailed { incarnation, load, page, moved_on } if incarnation == inc => {
                self.page_failed(i, load, page, moved_on)
            }
            _ => {} // addressed to an earlier incarnation
        }
        self.drain_meta(i);
    }

    pub(super) fn drain_meta(&mut self, i: usize) {
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

    pub(super) fn store_receive(&mut self, from: Addr, msg: Msg) {
        let Addr::Meta(i) = from else { panic!("only metas talk to the store") };
        let now = self.now;
        let reply = match msg {
            Msg::Campaign { incarnation, sent, leading } => {
                Some(match self.store.campaign(i, incarnation, now) {
                    // A holder that does not know it leads (its win was lost) is told again.
                    Some(false) if leading == Some(self.store.term) => {
                        Msg::Renewed { incarnation, sent, term: self.store.term }
                    }
                    Some(_) => Msg::Won { incarnation, sent, term: self.store.term },
                    None => Msg::LostElection { incarnation },
                })
            }
            Msg::Write { incarnation, batch } => self
                .store
                .write(&mut self.rng, i, incarnation, &batch, now)
                .map(|result| Msg::WriteDone { incarnation, id: batch.id, result }),
            Msg::ReadPage { incarnation, load, page, at } => Some(
                match self.store.read_page(&mut self.rng, at.as_ref(), self.mix.snapshot_page_keys)
                {
                    Ok((pairs, next)) => Msg::Page { incarnation, load, page, pairs, next },
                    Err(moved_on) => Msg::PageFailed { incarnation, load, page, moved_on },
                },
            ),
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
            eprintln!(
                "{} meta{i} -> persist {:?} term {} keys {:?}",
                w.now.0,
                batch.id,
                batch.term,
                batch
                    .ops
                    .iter()
                    .map(|o| o.key().rsplit('/').take(2).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            );
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

    fn close_stream(&mut self, session: SessionId, _: Option<Redirect>, error: MetaError) {
        if self.world.rogues.contains(&session) {
            if matches!(&error, MetaError::FailedPrecondition(m) if m.contains("is live as incarnation"))
            {
                self.world.coverage.impostors_refused += 1;
            }
            return;
        }
        // A well-behaved node is refused only by a meta that does not lead, before its cluster
        // exists (or while it is being created), or after a restart while its old incarnation's
        // lease lives.
        let restarted = matches!(&error, MetaError::FailedPrecondition(m) if m.contains("is live as incarnation"));
        let expected = restarted
            || matches!(
                error,
                MetaError::NotLeader | MetaError::NotFound(_) | MetaError::Unavailable(_)
            );
        assert!(expected, "a well-behaved node's heartbeat was refused: {error}");
        if let Some(&n) = self.world.sessions.get(&session) {
            let name = self.world.nodes[n].name().to_owned();
            self.world.told[self.meta].1.forget(&name);
            self.world.send(
                Addr::Meta(self.meta),
                Addr::Node(n),
                Msg::HeartbeatRefused { session },
            );
        }
    }

    fn reply(
        &mut self,
        _: RequestId,
        (id, _): (RequestId, Instant),
        result: Result<Response, MetaError>,
    ) {
        self.world.send(Addr::Meta(self.meta), Addr::Client, Msg::Reply { id, result });
    }

    // The simulated client opens no route watch.
    fn to_watcher(&mut self, _: WatchId, _: RouteUpdate) {}
    fn end_watch(&mut self, _: WatchId, _: MetaError) {}

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
