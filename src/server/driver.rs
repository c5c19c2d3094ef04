//! The driver: one task owns the `MetaCore` and feeds it, in order, everything that happens:
//! requests and heartbeats from gRPC, leadership from the election, results from storage, and
//! timeouts. Every time it hands the core comes from one clock ([`Clock`], which the election
//! and the leader view share, so that a lease deadline and the core's `now` are on one
//! timeline), and it does only what the core's outputs say: they are handed out by [`Dispatch`], the loop every driver shares, to
//! this driver's effects ([`Io`]: storage tasks, the election, heartbeat streams).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::core::storage::{Snapshot, WriteBatch, WriteResult};
use crate::core::*;
use crate::proto;
use crate::server::metrics::metrics;
use crate::server::storage::load::{LoadBackoff, LoadError};
use crate::server::storage::Storage;

/// Inbound messages queued for the driver beyond this wait (back-pressure on gRPC handlers).
pub const INPUTS_QUEUED_MAX: usize = 4_096;
/// Messages queued for one heartbeat stream; beyond it messages are dropped, which is safe:
/// commands are re-sent on the node's next heartbeat.
pub const STREAM_QUEUED_MAX: usize = 64;
/// Route updates queued for one watcher. A watcher that lets this many pile up is cut off with
/// a status (it resumes from the last revision it saw), never buffered without bound.
pub const WATCH_QUEUED_MAX: usize = 256;
/// Inputs handled per wake-up before outputs are drained.
const INPUTS_PER_PASS: usize = 256;

/// Milliseconds since the driver started, from a monotonic clock.
#[derive(Clone, Copy)]
pub struct Clock(std::time::Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(std::time::Instant::now())
    }

    /// Now, on the one timeline of the runtime: every instant handed to the core and every
    /// lease deadline is read here (by the driver, the election and the leader view). Other
    /// reads of `std::time` only measure latencies for metrics.
    pub fn now(&self) -> Instant {
        Instant(self.0.elapsed().as_millis() as u64 + 1)
    }

    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.0 + std::time::Duration::from_millis(at.0.saturating_sub(1))
    }
}

pub type StreamSender = mpsc::Sender<Result<proto::HeartbeatResponse, tonic::Status>>;
pub type WatchSender = mpsc::Sender<Result<proto::WatchRoutesResponse, tonic::Status>>;

/// What reaches the driver, from gRPC, the election and storage; it turns each into the core's
/// [`Input`] (or several, or none).
pub enum Inbound {
    /// `metered: false` keeps the request out of the request metrics (the admin port's own
    /// reads, so that scrapes do not count themselves).
    Request {
        request: Request,
        reply: oneshot::Sender<Result<Response, MetaError>>,
        metered: bool,
    },
    StreamOpened {
        session: SessionId,
        tx: StreamSender,
    },
    Heartbeat {
        session: SessionId,
        heartbeat: Heartbeat,
    },
    StreamClosed {
        session: SessionId,
    },
    WatchOpened {
        watch: WatchId,
        tx: WatchSender,
        request: WatchRoutes,
    },
    WatchClosed {
        watch: WatchId,
    },
    Leadership(Leadership),
    WriteDone {
        id: WriteId,
        result: WriteResult,
    },
    Snapshot {
        term: Term,
        result: Result<Snapshot, LoadError>,
    },
    /// The server is about to resign in order to stop. Heartbeats that reach it once it no
    /// longer leads are held, not refused: [`Inbound::Stop`] follows within the resign bound
    /// and sends their streams to the successor, which a refusal now could not name yet.
    Resigning,
    /// The server is stopping: end every heartbeat stream and route watch, and each one opened
    /// from now on; answered once the open ones are ended.
    Stop {
        done: oneshot::Sender<()>,
    },
}

/// What the driver asks of the election.
pub enum ElectionCommand {
    /// Storage fenced this term out: give it up so a new election can run.
    Resign(Term),
    /// The server is stopping: resign so a follower takes over at once.
    Shutdown,
}

/// Handles for talking to the driver task.
#[derive(Clone)]
pub struct DriverHandle {
    pub tx: mpsc::Sender<Inbound>,
    pub clock: Clock,
}

impl DriverHandle {
    /// Sends a request and waits for its reply (the core always answers by its deadline).
    pub async fn request(&self, request: Request) -> Result<Response, MetaError> {
        self.send(request, true).await
    }

    /// [`request`](Self::request), left out of the request metrics.
    pub async fn inspect(&self, request: Request) -> Result<Response, MetaError> {
        self.send(request, false).await
    }

    async fn send(&self, request: Request, metered: bool) -> Result<Response, MetaError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Inbound::Request { request, reply, metered })
            .await
            .map_err(|_| MetaError::Unavailable("meta server is shutting down".into()))?;
        rx.await.map_err(|_| MetaError::Unavailable("meta server is shutting down".into()))?
    }
}

type ReplySender = oneshot::Sender<Result<Response, MetaError>>;

/// Who waits for a request's answer, and what the request metrics need of it (`None`: not
/// metered).
pub struct Caller {
    reply: ReplySender,
    metered: Option<(&'static str, std::time::Instant)>,
}

pub struct Driver {
    core: MetaCore,
    clock: Clock,
    rx: mpsc::Receiver<Inbound>,
    dispatch: Dispatch<Caller>,
    io: Io,
    /// Logs reloads that fail (after a write whose outcome was unknown) once per cause; the
    /// core times the next attempt.
    reload_backoff: LoadBackoff,
    leader: crate::server::LeaderView,
    /// The other leader the core was last told of, and the leader view's write count then.
    other_leader: Option<ObservedLeader>,
    leader_writes_seen: u64,
    /// Set by [`Inbound::Resigning`]: heartbeats are held once this node no longer leads.
    resigning: bool,
    /// Set by [`Inbound::Stop`]: streams and watches are ended as they open.
    stopping: bool,
}

impl Driver {
    pub fn new(
        config: CoreConfig,
        seed: u64,
        storage: Arc<Storage>,
        election: mpsc::UnboundedSender<ElectionCommand>,
        leader: crate::server::LeaderView,
    ) -> (Driver, DriverHandle) {
        let (tx, rx) = mpsc::channel(INPUTS_QUEUED_MAX);
        let clock = leader.clock();
        let driver = Driver {
            core: MetaCore::new(config, seed),
            clock,
            rx,
            dispatch: Dispatch::default(),
            io: Io {
                storage,
                tx: tx.clone(),
                election,
                streams: BTreeMap::new(),
                watches: BTreeMap::new(),
                ended: Vec::new(),
            },
            reload_backoff: LoadBackoff::default(),
            leader,
            other_leader: None,
            leader_writes_seen: 0,
            resigning: false,
            stopping: false,
        };
        (driver, DriverHandle { tx, clock })
    }

    /// Runs until every handle is dropped. One timer is kept and moved only when the core's
    /// next deadline moves, and each wake-up takes every queued input (up to a batch) before
    /// draining outputs: under load that is one pass over the outputs per batch, not per input.
    pub async fn run(mut self) {
        let far = || tokio::time::Instant::now() + std::time::Duration::from_secs(3_600);
        let timer = tokio::time::sleep_until(far());
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        let mut wake = self.core.poll_timeout();
        loop {
            let next = wake.map(|(at, _)| at);
            if next != armed {
                armed = next;
                // Real tokio has its own Instant; under madsim it is std's, so `into` is a no-op.
                #[allow(clippy::useless_conversion)]
                timer.as_mut().reset(next.map_or_else(far, |at| self.clock.to_std(at).into()));
            }
            tokio::select! {
                // A fixed order (see `client::node`), the timer first: a steady stream of inputs
                // must not hold back the lease checks and scheduling passes it wakes.
                biased;
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    if let Some((_, why)) = wake {
                        tracing::trace!(?why, "timer");
                    }
                    self.core.handle(self.clock.now(), Input::Timeout);
                }
                input = self.rx.recv() => {
                    let Some(input) = input else { return };
                    self.tell_other_leader();
                    self.handle(input);
                    for _ in 0..INPUTS_PER_PASS {
                        match self.rx.try_recv() {
                            Ok(input) => self.handle(input),
                            Err(_) => break,
                        }
                    }
                }
            }
            wake = self.drain();
            let now = self.clock.now();
            let serving = self.core.is_leader(now) && self.core.awaiting_snapshot().is_none();
            self.leader.set_serving_here(serving);
            metrics().set_leadership(
                self.core.term().map(|t| t.0),
                serving,
                self.io.streams.len(),
                self.io.watches.len(),
            );
        }
    }

    /// Hands the core the election's view of who else leads, when it changed.
    fn tell_other_leader(&mut self) {
        let writes = self.leader.writes();
        if writes == self.leader_writes_seen {
            return;
        }
        self.leader_writes_seen = writes;
        let leader = self.leader.other_recorded();
        if leader != self.other_leader {
            self.other_leader = leader.clone();
            self.core.handle(self.clock.now(), Input::Leadership(Leadership::Observed { leader }));
        }
    }

    fn handle(&mut self, input: Inbound) {
        let now = self.clock.now();
        match input {
            Inbound::Request { request, reply, metered } => {
                let caller = Caller {
                    reply,
                    metered: metered.then(|| (request.kind(), std::time::Instant::now())),
                };
                self.dispatch.request(&mut self.core, now, caller, &request);
            }
            Inbound::StreamOpened { session, tx } => {
                self.io.streams.insert(session, tx);
                if self.stopping {
                    let (redirect, error) = self.farewell();
                    self.io.close_stream(session, redirect, error);
                }
            }
            Inbound::Heartbeat { .. } if self.resigning && !self.core.is_leader(now) => {}
            Inbound::Heartbeat { session, heartbeat } => {
                let started = std::time::Instant::now();
                self.core.handle(now, Input::Heartbeat { session, heartbeat: &heartbeat });
                metrics().heartbeat(started.elapsed());
            }
            Inbound::StreamClosed { session } => {
                // What the core has queued for the stream (its refusal, say) goes out first.
                self.drain();
                self.io.streams.remove(&session);
            }
            Inbound::WatchOpened { watch, tx, request } => {
                self.io.watches.insert(watch, tx);
                match self.stopping {
                    true => {
                        let (_, error) = self.farewell();
                        self.io.end_watch(watch, error);
                    }
                    false => self.core.handle(now, Input::Watch { watch, request: &request }),
                }
            }
            Inbound::WatchClosed { watch } => {
                if self.io.watches.remove(&watch).is_some() {
                    self.core.handle(now, Input::Unwatch { watch });
                }
            }
            Inbound::Leadership(event) => {
                let gained = matches!(event, Leadership::Gained { .. });
                self.core.handle(now, Input::Leadership(event));
                if gained && self.core.is_leader(now) {
                    tracing::info!(term = ?self.core.term(), "leading");
                }
            }
            Inbound::WriteDone { id, result } => {
                self.core.handle(now, Input::WriteResult { id, result })
            }
            Inbound::Snapshot { term, result } => match result {
                Ok(snapshot) => {
                    self.reload_backoff.succeeded();
                    self.core.handle(now, Input::Snapshot { term, snapshot });
                }
                Err(e) => {
                    self.reload_backoff.note("reloading metadata failed", &e);
                    self.core.handle(now, Input::SnapshotFailed { term, cause: e.cause });
                }
            },
            Inbound::Resigning => self.resigning = true,
            Inbound::Stop { done } => {
                self.stopping = true;
                // What the core has queued (a command, a reply) goes out before the goodbyes.
                self.drain();
                let (redirect, error) = self.farewell();
                let sessions: Vec<SessionId> = self.io.streams.keys().copied().collect();
                for session in sessions {
                    self.io.close_stream(session, redirect.clone(), error.clone());
                }
                let watches: Vec<WatchId> = self.io.watches.keys().copied().collect();
                for watch in watches {
                    self.io.end_watch(watch, error.clone());
                    self.io.ended.push(watch);
                }
                tracing::info!(redirect = ?redirect, "heartbeat streams and route watches ended");
                let _ = done.send(());
            }
        }
    }

    /// How a stopping server ends a stream: a heartbeat stream is sent to the leader when
    /// another meta node leads, else ended with a status; a watch always ends with the status.
    fn farewell(&self) -> (Option<Redirect>, MetaError) {
        let redirect =
            self.leader.other_leader().map(|(endpoint, term)| Redirect { endpoint, term });
        let error = match &redirect {
            Some(leader) => MetaError::Unavailable(format!(
                "this meta node is shutting down; the leader is {}",
                leader.endpoint
            )),
            None => MetaError::Unavailable(
                "this meta node is shutting down and no other meta leader is known; retry".into(),
            ),
        };
        (redirect, error)
    }

    /// Hands out the core's outputs; watches the driver ended meanwhile are then forgotten by the
    /// core.
    fn drain(&mut self) -> Option<(Instant, Timer)> {
        loop {
            let wake = self.dispatch.drain(&mut self.core, &mut self.io);
            if self.io.ended.is_empty() {
                return wake;
            }
            for watch in std::mem::take(&mut self.io.ended) {
                self.core.handle(self.clock.now(), Input::Unwatch { watch });
            }
        }
    }
}

/// What the driver's outputs reach: storage, the election, and the heartbeat streams.
struct Io {
    storage: Arc<Storage>,
    tx: mpsc::Sender<Inbound>,
    election: mpsc::UnboundedSender<ElectionCommand>,
    streams: BTreeMap<SessionId, StreamSender>,
    watches: BTreeMap<WatchId, WatchSender>,
    /// Watches the driver ended (a slow watcher cut off, or a stopping server), for the core
    /// to forget.
    ended: Vec<WatchId>,
}

impl Effects for Io {
    type Caller = Caller;

    fn persist(&mut self, batch: WriteBatch) {
        let (storage, tx) = (self.storage.clone(), self.tx.clone());
        tokio::task::spawn(async move {
            let started = std::time::Instant::now();
            let result = storage.write(&batch).await;
            metrics().storage_transaction(&result, batch.ops.len(), started.elapsed());
            let _ = tx.send(Inbound::WriteDone { id: batch.id, result }).await;
        });
    }

    fn to_node(&mut self, session: SessionId, message: NodeMessage) {
        metrics().to_node(&message);
        if let Some(tx) = self.streams.get(&session) {
            if tx.try_send(Ok(crate::convert::node_message(&message))).is_err() {
                tracing::debug!(?session, "heartbeat stream full or closed; message dropped");
            }
        }
    }

    fn close_stream(&mut self, session: SessionId, redirect: Option<Redirect>, error: MetaError) {
        if let Some(tx) = self.streams.remove(&session) {
            let message = match redirect {
                Some(r) => Ok(proto::HeartbeatResponse {
                    redirect: r.endpoint,
                    redirect_term: r.term.0,
                    ..Default::default()
                }),
                None => Err(crate::convert::status(error)),
            };
            let _ = tx.try_send(message);
        }
    }

    fn reply(&mut self, _: RequestId, caller: Caller, result: Result<Response, MetaError>) {
        if let Some((kind, since)) = caller.metered {
            metrics().request(kind, result.as_ref().map(|_| ()), since.elapsed());
        }
        let _ = caller.reply.send(result);
    }

    fn load_snapshot(&mut self, term: Term) {
        let (storage, tx) = (self.storage.clone(), self.tx.clone());
        tokio::task::spawn(async move {
            let result = storage.snapshot().await;
            let _ = tx.send(Inbound::Snapshot { term, result }).await;
        });
    }

    fn resign(&mut self, term: Term, reason: ResignReason) {
        tracing::warn!(?term, ?reason, "resigning the meta election");
        let _ = self.election.send(ElectionCommand::Resign(term));
    }

    /// The last free slot of a watcher's queue is kept for the status that cuts it off.
    fn to_watcher(&mut self, watch: WatchId, update: RouteUpdate) {
        let Some(tx) = self.watches.get(&watch) else { return };
        if tx.capacity() > 1 {
            let _ = tx.try_send(Ok(crate::convert::route_update(&update)));
            return;
        }
        tracing::info!(?watch, "a route watcher fell behind and is cut off");
        let text = format!("this watcher left {WATCH_QUEUED_MAX} route updates unread; watch again from the last revision it saw");
        if let Some(tx) = self.watches.remove(&watch) {
            let _ = tx.try_send(Err(tonic::Status::resource_exhausted(text)));
        }
        self.ended.push(watch);
    }

    fn end_watch(&mut self, watch: WatchId, error: MetaError) {
        if let Some(tx) = self.watches.remove(&watch) {
            let _ = tx.try_send(Err(crate::convert::status(error)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Topology;
    use crate::server::storage::memory::MemoryStore;

    /// The leader's first write (creating the default cluster) times out: the leader reloads,
    /// then creates the cluster again instead of serving without it until the next election.
    #[tokio::test]
    async fn a_failed_default_cluster_create_is_retried() {
        let store = MemoryStore::default();
        store.set_term(Term(1));
        store.fail_writes(1);
        let storage = Arc::new(Storage::Memory(store));
        let (election, _commands) = mpsc::unbounded_channel();
        let spec = ClusterSpec {
            name: "default".into(),
            shard_count: 2,
            followers_per_shard: 0,
            topology: Topology::Dynamic,
            min_nodes: 1,
        };
        let config = CoreConfig { default_cluster: Some(spec), ..CoreConfig::default() };
        let (driver, handle) = Driver::new(
            config,
            1,
            storage,
            election,
            crate::server::LeaderView::new(
                "m".into(),
                Clock::start(),
                crate::core::Duration(3_000),
            ),
        );
        tokio::spawn(driver.run());
        let gained = Leadership::Gained {
            term: Term(1),
            valid_until: Instant(u64::MAX / 2),
            snapshot: Snapshot::default(),
        };
        handle.tx.send(Inbound::Leadership(gained)).await.unwrap();
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let (reply, answer) = oneshot::channel();
            handle
                .tx
                .send(Inbound::Request {
                    request: Request::ListClusters { page: PageRequest::default() },
                    reply,
                    metered: true,
                })
                .await
                .unwrap();
            if matches!(answer.await.unwrap(), Ok(Response::Clusters(cs)) if cs.items.iter().any(|c| c.name == "default"))
            {
                return;
            }
        }
        panic!("the default cluster was never created");
    }

    /// A watcher that reads nothing is cut off once its queue is full, with a status that says
    /// why, and the core forgets it: with room for one watch, a new one is taken.
    #[tokio::test]
    async fn a_slow_route_watcher_is_cut_off_and_forgotten() {
        let store = MemoryStore::default();
        store.set_term(Term(1));
        let storage = Arc::new(Storage::Memory(store));
        let (election, _commands) = mpsc::unbounded_channel();
        let spec = ClusterSpec {
            name: "c".into(),
            shard_count: 2,
            followers_per_shard: 0,
            topology: Topology::Dynamic,
            min_nodes: 1,
        };
        let config =
            CoreConfig { default_cluster: Some(spec), watchers_max: 1, ..CoreConfig::default() };
        let (driver, handle) = Driver::new(
            config,
            1,
            storage,
            election,
            crate::server::LeaderView::new(
                "m".into(),
                Clock::start(),
                crate::core::Duration(3_000),
            ),
        );
        tokio::spawn(driver.run());
        let gained = Leadership::Gained {
            term: Term(1),
            valid_until: Instant(u64::MAX / 2),
            snapshot: Snapshot::default(),
        };
        handle.tx.send(Inbound::Leadership(gained)).await.unwrap();
        let watch = |id: u64| {
            let (tx, rx) = mpsc::channel(WATCH_QUEUED_MAX);
            (
                Inbound::WatchOpened {
                    watch: WatchId(id),
                    tx,
                    request: WatchRoutes { cluster: "c".into(), schema: None, from_revision: 0 },
                },
                rx,
            )
        };
        let (open, mut slow) = watch(1);
        loop {
            let (open, mut rx) = watch(0);
            handle.tx.send(open).await.unwrap();
            if rx.recv().await.is_some_and(|m| m.is_ok()) {
                handle.tx.send(Inbound::WatchClosed { watch: WatchId(0) }).await.unwrap();
                break; // the default cluster exists
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        handle.tx.send(open).await.unwrap();
        for i in 0..WATCH_QUEUED_MAX + 10 {
            let t = CreateTable {
                cluster: "c".into(),
                schema: "public".into(),
                name: format!("t{i}"),
                encoded_schema: vec![],
                options: Default::default(),
                if_not_exists: false,
                partition: None,
            };
            handle.request(Request::CreateTable(t)).await.unwrap();
        }
        let mut received = Vec::new();
        while let Ok(m) = slow.try_recv() {
            received.push(m);
        }
        assert_eq!(
            received.len(),
            WATCH_QUEUED_MAX,
            "the queue filled, then took the cut-off status"
        );
        let last = received.pop().unwrap().expect_err("cut off");
        assert_eq!(last.code(), tonic::Code::ResourceExhausted, "{last:?}");
        assert!(received.iter().all(Result::is_ok));
        let (open, mut next) = watch(2);
        handle.tx.send(open).await.unwrap();
        assert!(
            next.recv().await.is_some_and(|m| m.is_ok()),
            "the cut-off watch no longer holds the only place"
        );
    }
}
