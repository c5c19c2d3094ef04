//! The driver: one task owns the `MetaCore` and feeds it, in order, everything that happens:
//! requests and heartbeats from gRPC, leadership from the election, results from storage, and
//! timeouts. It reads the clock in exactly one place ([`Clock::now`]) and does only what the
//! core's outputs say.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::core::storage::{Snapshot, WriteBatch, WriteResult};
use crate::core::*;
use crate::proto;
use crate::server::storage::load::{LoadBackoff, LoadCause, LoadError};
use crate::server::storage::Storage;

/// Inputs queued for the driver beyond this wait (back-pressure on gRPC handlers).
pub const INPUTS_QUEUED_MAX: usize = 4_096;
/// Messages queued for one heartbeat stream; beyond it messages are dropped, which is safe:
/// commands are re-sent on the node's next heartbeat.
pub const STREAM_QUEUED_MAX: usize = 64;
/// Inputs handled per wake-up before outputs are drained.
const INPUTS_PER_PASS: usize = 256;
/// Pause before creating the default cluster again after a failed attempt.
const DEFAULT_CLUSTER_RETRY: Duration = Duration(1_000);

/// Milliseconds since the driver started, from a monotonic clock.
#[derive(Clone, Copy)]
pub struct Clock(std::time::Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(std::time::Instant::now())
    }

    /// The only clock read of the runtime.
    pub fn now(&self) -> Instant {
        Instant(self.0.elapsed().as_millis() as u64 + 1)
    }

    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.0 + std::time::Duration::from_millis(at.0.saturating_sub(1))
    }
}

pub type StreamSender = mpsc::Sender<Result<proto::HeartbeatResponse, tonic::Status>>;

/// What the driver is told.
pub enum Input {
    Request { request: Request, reply: oneshot::Sender<Result<Response, MetaError>> },
    StreamOpened { session: SessionId, tx: StreamSender },
    Heartbeat { session: SessionId, heartbeat: Heartbeat },
    StreamClosed { session: SessionId },
    Leadership(Leadership),
    WriteDone { id: WriteId, result: WriteResult },
    Snapshot { term: Term, result: Result<Snapshot, LoadError> },
    /// Asks for the catalog's view of leadership, for `GetLeader` and status.
    IsLeader { reply: oneshot::Sender<Option<Term>> },
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
    pub tx: mpsc::Sender<Input>,
    pub clock: Clock,
}

impl DriverHandle {
    /// Sends a request and waits for its reply (the core always answers by its deadline).
    pub async fn request(&self, request: Request) -> Result<Response, MetaError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Input::Request { request, reply }).await.map_err(|_| MetaError::Unavailable("meta server is shutting down".into()))?;
        rx.await.map_err(|_| MetaError::Unavailable("meta server is shutting down".into()))?
    }
}

pub struct Driver {
    core: MetaCore,
    clock: Clock,
    storage: Arc<Storage>,
    rx: mpsc::Receiver<Input>,
    tx: mpsc::Sender<Input>,
    election: mpsc::UnboundedSender<ElectionCommand>,
    replies: BTreeMap<RequestId, oneshot::Sender<Result<Response, MetaError>>>,
    streams: BTreeMap<SessionId, StreamSender>,
    next_request: u64,
    /// Created by the leader when missing; see [`Driver::ensure_default_cluster`].
    default_cluster: ClusterSpec,
    /// The outstanding request that creates the default cluster, and when to try again after
    /// one failed.
    default_request: Option<RequestId>,
    default_retry_at: Instant,
    /// Spaces out reloads that fail (after a write whose outcome was unknown).
    reload_backoff: LoadBackoff,
    leader: crate::server::LeaderView,
}

impl Driver {
    pub fn new(
        config: CoreConfig,
        seed: u64,
        storage: Arc<Storage>,
        election: mpsc::UnboundedSender<ElectionCommand>,
        default_cluster: ClusterSpec,
        leader: crate::server::LeaderView,
    ) -> (Driver, DriverHandle) {
        let (tx, rx) = mpsc::channel(INPUTS_QUEUED_MAX);
        let clock = Clock::start();
        let driver = Driver {
            core: MetaCore::new(config, seed),
            clock,
            storage,
            rx,
            tx: tx.clone(),
            election,
            replies: BTreeMap::new(),
            streams: BTreeMap::new(),
            next_request: 0,
            default_cluster,
            default_request: None,
            default_retry_at: Instant::ZERO,
            reload_backoff: LoadBackoff::default(),
            leader,
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
        loop {
            let next = self.core.poll_timeout().map(|(at, _)| at);
            if next != armed {
                armed = next;
                // Real tokio has its own Instant; under madsim it is std's, so `into` is a no-op.
                #[allow(clippy::useless_conversion)]
                timer.as_mut().reset(next.map_or_else(far, |at| self.clock.to_std(at).into()));
            }
            tokio::select! {
                input = self.rx.recv() => {
                    let Some(input) = input else { return };
                    self.handle(input);
                    for _ in 0..INPUTS_PER_PASS {
                        match self.rx.try_recv() {
                            Ok(input) => self.handle(input),
                            Err(_) => break,
                        }
                    }
                }
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    let now = self.clock.now();
                    self.core.handle_timeout(now);
                }
            }
            self.ensure_default_cluster();
            self.drain();
        }
    }

    fn handle(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Request { request, reply } => {
                self.next_request += 1;
                let id = RequestId(self.next_request);
                self.replies.insert(id, reply);
                self.core.handle_request(now, id, &request);
            }
            Input::StreamOpened { session, tx } => {
                self.streams.insert(session, tx);
            }
            Input::Heartbeat { session, heartbeat } => {
                if let Err(e) = self.core.handle_heartbeat(now, session, &heartbeat) {
                    // The stream ends with the refusal; a follower names the leader to go to.
                    if let Some(tx) = self.streams.remove(&session) {
                        let redirect = matches!(e, MetaError::NotLeader).then(|| self.leader.other_leader()).flatten();
                        let message = match redirect {
                            Some(redirect) => Ok(proto::HeartbeatResponse { redirect, ..Default::default() }),
                            None => Err(crate::server::convert::status(e)),
                        };
                        let _ = tx.try_send(message);
                    }
                }
            }
            Input::StreamClosed { session } => {
                self.streams.remove(&session);
            }
            Input::Leadership(event) => {
                let gained = matches!(event, Leadership::Gained { .. });
                self.core.handle_leadership(now, event);
                if gained && self.core.is_leader(now) {
                    tracing::info!(term = ?self.core.term(), "leading");
                }
            }
            Input::WriteDone { id, result } => self.core.handle_write_result(now, id, result),
            Input::Snapshot { term, result } => match result {
                Ok(snapshot) => {
                    self.reload_backoff.succeeded();
                    self.core.handle_snapshot(now, term, snapshot);
                }
                Err(e) if e.cause == LoadCause::Corrupt => {
                    tracing::error!(error = %e, "stored metadata cannot be loaded; resigning");
                    let _ = self.election.send(ElectionCommand::Resign(term));
                }
                Err(e) => {
                    let pause = self.reload_backoff.failed("reloading metadata failed; retrying", &e);
                    self.load_snapshot_after(term, pause);
                }
            },
            Input::IsLeader { reply } => {
                let _ = reply.send(self.core.is_leader(now).then(|| self.core.term()).flatten());
            }
        }
    }

    /// A leader without the configured default cluster creates it (and its `public` schema).
    /// A create can fail (an etcd timeout leaves its outcome unknown, a reload is under way), so
    /// this runs after every pass and tries again a while after a failure: nodes of the default
    /// cluster are refused until it exists.
    fn ensure_default_cluster(&mut self) {
        let now = self.clock.now();
        if self.default_request.is_some() || now < self.default_retry_at || !self.core.is_leader(now) {
            return;
        }
        if self.core.catalog().is_some_and(|c| c.cluster_by_name(&self.default_cluster.name).is_some()) {
            return;
        }
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.default_request = Some(id);
        self.core.handle_request(now, id, &Request::CreateCluster(self.default_cluster.clone()));
    }

    fn drain(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Persist(batch) => self.persist(batch),
                Output::ToNode { session, message } => {
                    if let Some(tx) = self.streams.get(&session) {
                        if tx.try_send(Ok(crate::server::convert::node_message(&message))).is_err() {
                            tracing::debug!(?session, "heartbeat stream full or closed; message dropped");
                        }
                    }
                }
                Output::Reply { request, result } if self.default_request == Some(request) => {
                    self.default_request = None;
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "creating the default cluster failed; retrying");
                        self.default_retry_at = self.clock.now() + DEFAULT_CLUSTER_RETRY;
                    }
                }
                Output::Reply { request, result } => {
                    if let Some(reply) = self.replies.remove(&request) {
                        let _ = reply.send(result);
                    }
                }
                Output::LoadSnapshot { term } => self.load_snapshot_after(term, std::time::Duration::ZERO),
                Output::Resign { term } => {
                    tracing::warn!(?term, "storage fenced this leader out; resigning");
                    let _ = self.election.send(ElectionCommand::Resign(term));
                }
            }
        }
    }

    fn persist(&self, batch: WriteBatch) {
        let (storage, tx) = (self.storage.clone(), self.tx.clone());
        tokio::task::spawn(async move {
            let result = storage.write(&batch).await;
            let _ = tx.send(Input::WriteDone { id: batch.id, result }).await;
        });
    }

    fn load_snapshot_after(&self, term: Term, delay: std::time::Duration) {
        let (storage, tx) = (self.storage.clone(), self.tx.clone());
        tokio::task::spawn(async move {
            tokio::time::sleep(delay).await;
            let result = storage.snapshot().await;
            let _ = tx.send(Input::Snapshot { term, result }).await;
        });
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
        let spec = ClusterSpec { name: "default".into(), shard_count: 2, followers_per_shard: 0, topology: Topology::Dynamic, min_nodes: 1 };
        let (driver, handle) = Driver::new(CoreConfig::default(), 1, storage, election, spec, crate::server::LeaderView::new("m".into()));
        tokio::spawn(driver.run());
        let gained = Leadership::Gained { term: Term(1), valid_until: Instant(u64::MAX / 2), snapshot: Snapshot::default() };
        handle.tx.send(Input::Leadership(gained)).await.unwrap();
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let (reply, answer) = oneshot::channel();
            handle.tx.send(Input::Request { request: Request::ListClusters { page: PageRequest::default() }, reply }).await.unwrap();
            if matches!(answer.await.unwrap(), Ok(Response::Clusters(cs)) if cs.items.iter().any(|c| c.name == "default")) {
                return;
            }
        }
        panic!("the default cluster was never created");
    }
}
