//! [`MetaCore`]: the front door of the sans-IO core.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::{CoreConfig, PlantedBug};
use super::error::MetaError;
use super::ids::*;
use super::input::{Heartbeat, Input, Leadership, ObservedLeader, Request};
use super::leader::{AfterWrite, Ctx, Leader};
use super::model::Catalog;
use super::outbox::Outbox;
use super::output::{Output, Redirect};
use super::storage::{LoadCause, Snapshot, WriteResult};
use super::time::{Duration, Instant};
use super::validate;

/// Why the core wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// A request reaches its deadline.
    RequestDeadline,
    /// The pause after a failed reload is over: ask for the snapshot again.
    SnapshotRetry,
    /// The scheduler's next pass (failure detection, failover, assignment, balance).
    SchedulerTick,
    /// Leadership lapses unless renewed before then.
    LeadershipExpiry,
}

/// The meta service's state machine. See the [module docs](super) for the contract.
pub struct MetaCore {
    config: CoreConfig,
    rng: ChaCha8Rng,
    leader: Option<Leader>,
    out: Outbox,
    next_tick: Instant,
    /// When the last scheduling pass ran: an early pass waits at least a tenth of a tick
    /// interval after it ([`EARLY_PASS_GAP_DIVISOR`]).
    last_pass: Instant,
    /// The latest `now` passed in: past it, a lapsed leadership is no longer a wake-up reason.
    last_now: Instant,
    /// The last write id handed out, by any leadership of this core.
    last_write: u64,
    /// Where another meta node leads, if one does: refused heartbeats are sent there while the
    /// sighting is trusted.
    other_leader: Option<ObservedLeader>,
    /// Inputs handled since the leader's derived state was last checked (debug builds): a large
    /// catalog is checked every `Leader::consistency_period` inputs.
    inputs_unchecked: u64,
}

/// Early scheduling passes (a leaderless shard waits on one) come at most this many times per
/// tick interval, however many heartbeats ask: a pass walks the whole cluster.
const EARLY_PASS_GAP_DIVISOR: u64 = 10;

/// The longest leader endpoint the core keeps (it comes from the election's record).
const ENDPOINT_LEN_MAX: usize = 1_024;

impl MetaCore {
    /// `seed` is the core's only source of randomness.
    pub fn new(config: CoreConfig, seed: u64) -> MetaCore {
        config.validate().expect("the driver validates the config before building a core");
        MetaCore {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            leader: None,
            out: Outbox::default(),
            next_tick: Instant::ZERO,
            last_pass: Instant::ZERO,
            last_now: Instant::ZERO,
            last_write: 0,
            other_leader: None,
            inputs_unchecked: 0,
        }
    }

    /// The settings the core was built with.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Every input starts here. Any input is a chance to answer overdue requests, even when the
    /// timer is late (a paused process wakes up to a backlog of inputs).
    fn enter(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        if !self.config.has_bug(PlantedBug::IgnoreDeadlines) {
            self.out.expire(now);
        }
    }

    fn ctx(&mut self, now: Instant) -> (Option<&mut Leader>, Ctx<'_>) {
        (self.leader.as_mut(), Ctx { now, config: &self.config, out: &mut self.out })
    }

    /// Sends whatever the leader has queued, after every input.
    fn flush(&mut self, now: Instant) {
        if let (Some(leader), mut ctx) = self.ctx(now) {
            leader.flush(&mut ctx);
        }
    }

    fn step_down(&mut self) {
        if let Some(mut leader) = self.leader.take() {
            self.last_write = leader.writes().last_id();
            self.out.fail_all(&MetaError::NotLeader);
            leader.end_watches(&mut self.out);
        }
    }

    /// The one entry point: does what `input` calls for at `now`. Whatever the driver must do
    /// comes out of [`poll_output`](Self::poll_output).
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        self.enter(now);
        match input {
            Input::Leadership(event) => self.on_leadership(now, event),
            Input::Heartbeat { session, heartbeat } => {
                if let Err(error) = self.on_heartbeat(now, session, heartbeat) {
                    let redirect =
                        matches!(error, MetaError::NotLeader).then(|| self.redirect(now)).flatten();
                    self.out.push(Output::CloseStream { session, redirect, error });
                }
            }
            Input::Request { id, request } => self.on_request(now, id, request),
            Input::Watch { watch, request } => {
                let opened =
                    match (validate::watch_names(request, self.config.name_len_max), self.ctx(now))
                    {
                        (Err(e), _) => Err(e),
                        (Ok(()), (Some(leader), mut ctx)) => leader.watch(&mut ctx, watch, request),
                        (Ok(()), (None, _)) => Err(MetaError::NotLeader),
                    };
                if let Err(error) = opened {
                    self.out.push(Output::EndWatch { watch, error });
                }
            }
            Input::Unwatch { watch } => {
                if let Some(leader) = self.leader.as_mut() {
                    leader.unwatch(watch);
                }
            }
            Input::WriteResult { id, result } => self.on_write_result(now, id, result),
            Input::Snapshot { term, snapshot } => self.on_snapshot(now, term, snapshot),
            Input::SnapshotFailed { term, cause } => self.on_snapshot_failed(now, term, cause),
            Input::Timeout => self.on_timeout(now),
        }
        if self.leader.as_mut().is_some_and(Leader::take_pass_soon) {
            let soon = now.max(
                self.last_pass + Duration(self.config.tick_interval_ms / EARLY_PASS_GAP_DIVISOR),
            );
            self.next_tick = self.next_tick.min(soon);
        }
        self.flush(now);
        if let Some(leader) = self.leader.as_ref().filter(|_| self.config.checks_consistency()) {
            self.inputs_unchecked += 1;
            if self.inputs_unchecked < leader.consistency_period() {
                return;
            }
            self.inputs_unchecked = 0;
            if let Err(e) = leader.check_consistency() {
                panic!("the leader's derived state disagrees with its catalog and intent: {e}");
            }
        }
    }

    fn on_leadership(&mut self, now: Instant, event: Leadership) {
        match event {
            Leadership::Gained { term, valid_until, .. } if self.term() == Some(term) => {
                // A repeated notice of the term already held: its snapshot may predate writes
                // made since, so it only extends the lease.
                self.leader.as_mut().expect("term() is Some").extend(valid_until);
            }
            Leadership::Gained { .. } if self.config.has_bug(PlantedBug::IgnoreWonTerm) => {}
            Leadership::Gained { term, valid_until, snapshot } => {
                self.step_down();
                self.leader = Some(Leader::new(
                    term,
                    valid_until,
                    snapshot,
                    now,
                    &self.config,
                    self.last_write,
                ));
                self.next_tick = now;
            }
            Leadership::Renewed { term, valid_until } => {
                if let Some(l) = self.leader.as_mut().filter(|l| l.term() == term) {
                    l.extend(valid_until);
                }
            }
            Leadership::Lost => self.step_down(),
            Leadership::Observed { leader } => {
                self.other_leader = leader
                    .filter(|l| !l.endpoint.is_empty() && l.endpoint.len() <= ENDPOINT_LEN_MAX)
            }
        }
    }

    /// Where a refused heartbeat stream goes at `now`: the other leader, while trusted.
    fn redirect(&self, now: Instant) -> Option<Redirect> {
        self.other_leader
            .as_ref()
            .filter(|l| now < l.until)
            .map(|l| Redirect { endpoint: l.endpoint.clone(), term: l.term })
    }

    /// An error refuses the heartbeat as a whole; nothing changed.
    fn on_heartbeat(
        &mut self,
        now: Instant,
        session: SessionId,
        hb: &Heartbeat,
    ) -> Result<(), MetaError> {
        match self.ctx(now) {
            (Some(leader), mut ctx) => leader.on_heartbeat(&mut ctx, session, hb),
            (None, _) => Err(MetaError::NotLeader),
        }
    }

    fn on_request(&mut self, now: Instant, id: RequestId, request: &Request) {
        if self.out.pending_requests() >= self.config.requests_pending_max {
            let err = MetaError::ResourceExhausted(format!(
                "{} requests pending",
                self.config.requests_pending_max
            ));
            self.out.push(Output::Reply { request: id, result: Err(err) });
            return;
        }
        assert!(
            self.out.accept(id, now, Duration(self.config.request_timeout_ms)),
            "request id {id} reused while pending"
        );
        if let Err(e) = validate::request_names(
            request,
            self.config.name_len_max,
            self.config.tables_per_route_max,
        ) {
            self.out.reply(id, Err(e));
            return;
        }
        match self.ctx(now) {
            (Some(leader), mut ctx) => leader.on_request(&mut ctx, id, request),
            (None, ctx) => ctx.out.reply(id, Err(MetaError::NotLeader)),
        }
    }

    fn on_write_result(&mut self, now: Instant, id: WriteId, result: WriteResult) {
        let after = match self.ctx(now) {
            (Some(leader), mut ctx) => leader.on_write_result(&mut ctx, id, result),
            (None, _) => AfterWrite::Continue,
        };
        self.after(after);
    }

    fn after(&mut self, after: AfterWrite) {
        if let AfterWrite::StepDown(reason) = after {
            let term = self.leader.as_ref().expect("only a leader steps down").term();
            self.step_down();
            self.out.push(Output::Resign { term, reason });
        }
    }

    fn on_snapshot_failed(&mut self, now: Instant, term: Term, cause: LoadCause) {
        let after = match self.ctx(now) {
            (Some(leader), mut ctx) if leader.term() == term && leader.writes().recovering => {
                leader.on_snapshot_failed(&mut ctx, cause)
            }
            _ => AfterWrite::Continue, // stale: leadership moved on meanwhile
        };
        self.after(after);
    }

    fn on_snapshot(&mut self, now: Instant, term: Term, snapshot: Snapshot) {
        match self.ctx(now) {
            (Some(leader), mut ctx) if leader.term() == term && leader.writes().recovering => {
                leader.on_snapshot(&mut ctx, snapshot)
            }
            _ => {} // stale: leadership moved on meanwhile
        }
    }

    /// Does whatever is due at `now`; safe early or twice.
    fn on_timeout(&mut self, now: Instant) {
        if let (Some(leader), mut ctx) = self.ctx(now) {
            leader.retry_reload(&mut ctx);
        }
        if self.leader.is_some() && now >= self.next_tick {
            // Jitter keeps meta nodes started together from ticking in lockstep.
            let interval = self.config.tick_interval_ms;
            let jitter = self.rng.next_u64() % (interval / 10 + 1);
            self.next_tick = now + Duration(interval - interval / 20 + jitter);
            self.last_pass = now;
            if let (Some(leader), mut ctx) = self.ctx(now) {
                leader.on_tick(&mut ctx);
            }
        }
    }

    /// The next output to carry out, in order; `None` once all are out (see the contract in
    /// the module docs).
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.outputs.pop_front()
    }

    /// When to hand in [`Input::Timeout`] next, and why.
    pub fn poll_timeout(&self) -> Option<(Instant, Timer)> {
        let mut due = self.out.next_deadline().map(|t| (t, Timer::RequestDeadline));
        if let Some(l) = &self.leader {
            let expiry = (l.valid_until() > self.last_now)
                .then_some((l.valid_until(), Timer::LeadershipExpiry));
            let reload = l.reload_due().map(|t| (t, Timer::SnapshotRetry));
            for candidate in
                [Some((self.next_tick, Timer::SchedulerTick)), expiry, reload].into_iter().flatten()
            {
                if due.is_none_or(|(t, _)| candidate.0 < t) {
                    due = Some(candidate);
                }
            }
        }
        due
    }

    // ---- inspection, for drivers, tests and invariant checkers ----

    /// Leader and serving at `now`.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.leader.as_ref().is_some_and(|l| l.serving(now))
    }

    /// The term this core leads in, if it leads.
    pub fn term(&self) -> Option<Term> {
        self.leader.as_ref().map(|l| l.term())
    }

    /// The durable state as this leader knows it.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.leader.as_ref().map(|l| l.catalog())
    }

    /// The leader's live state of a cluster, for benchmarks and tests that drive the scheduler
    /// directly.
    #[doc(hidden)]
    pub fn live_cluster(&self, cluster: ClusterId) -> Option<&super::live::LiveCluster> {
        self.leader.as_ref()?.live_cluster(cluster)
    }

    /// No write is queued or in flight, so the catalog equals storage.
    pub fn writes_idle(&self) -> bool {
        self.leader.as_ref().is_some_and(|l| l.writes().idle() && !l.writes().recovering)
    }

    /// The term whose snapshot the core waits for after a write with unknown outcome.
    pub fn awaiting_snapshot(&self) -> Option<Term> {
        self.leader.as_ref().filter(|l| l.writes().recovering).map(|l| l.term())
    }

    /// Requests waiting for their reply.
    pub fn pending_requests(&self) -> usize {
        self.out.pending_requests()
    }
}
