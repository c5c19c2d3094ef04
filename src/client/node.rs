//! A data node's connection to meta: one heartbeat stream to the leader, rebuilt with backoff
//! when it breaks, following redirects. What the node hosts lives in a [`ShardHost`]; commands
//! meta accepts for it are also handed to a [`ShardExecutor`], the node's storage engine.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::meta_client::MetaClient;
use super::metrics::{self, StreamEnd};
pub use super::session::NodeIdentity;
use super::session::{Beat, NodeSession};
use super::shard_host::{Reports, ShardHost};
use super::LoadSource;
use crate::convert;
use crate::core::{Instant, ShardCommand, Term};
use crate::proto;

/// The node's storage engine, told about every command the node accepted (after the term and
/// version checks of [`ShardHost`]).
pub trait ShardExecutor: Send + 'static {
    fn execute(&mut self, command: &ShardCommand);
}

/// An executor that only logs: the reference node-agent keeps shards in memory.
pub struct LogExecutor;

impl ShardExecutor for LogExecutor {
    fn execute(&mut self, command: &ShardCommand) {
        tracing::info!(shard = command.shard.0, version = command.version.0, kind = ?command.kind, "command");
    }
}

/// The node's monotonic clock, in the core's units.
#[derive(Clone, Copy)]
pub struct NodeClock {
    start: std::time::Instant,
    start_wall_ms: u64,
}

impl NodeClock {
    pub fn start() -> NodeClock {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        NodeClock { start: std::time::Instant::now(), start_wall_ms: wall }
    }

    pub fn now(&self) -> Instant {
        Instant(self.start.elapsed().as_millis() as u64)
    }

    /// Wall-clock milliseconds of a local instant, for logs compared across processes.
    pub fn wall_ms(&self, at: Instant) -> u64 {
        self.start_wall_ms + at.0
    }
}

/// Heartbeats whose send time is kept for the round trip: meta answers each before the next
/// few are sent, so a handful is plenty.
const RTT_TRACKED: usize = 16;

/// Called after every change to the host, with the time: the node-agent logs leadership here.
pub type Observer = Box<dyn FnMut(&ShardHost, Instant) + Send>;

/// Runs the heartbeat loop for ever. What to send and when to give a stream up is decided by
/// the sans-IO [`NodeSession`]; this loop only carries it over gRPC.
pub async fn run(
    mut meta: MetaClient,
    identity: NodeIdentity,
    host: Arc<Mutex<ShardHost>>,
    clock: NodeClock,
    load: impl LoadSource + Send + 'static,
    mut executor: impl ShardExecutor,
    mut observe: Observer,
) {
    let mut session = NodeSession::new(identity);
    // The host's counters as last counted into the metrics.
    let mut counted = host.lock().expect("host lock").counters;
    loop {
        let client = match session.next_target() {
            Some(endpoint) => meta.connect_to(&endpoint).await,
            None => meta.stream_leader().await.map(|(_, c)| c),
        };
        let (tx, rx) = mpsc::channel::<proto::HeartbeatRequest>(8);
        let opened = match client {
            Ok(mut c) => c.heartbeat(ReceiverStream::new(rx)).await.map(|r| r.into_inner()),
            Err(e) => Err(e),
        };
        let mut inbound = match opened {
            Ok(inbound) => inbound,
            Err(e) => {
                // No leader reachable, or the stream refused: look the leader up again, later.
                tracing::warn!(error = %e.message(), "no heartbeat stream to the meta leader");
                meta.reset();
                tokio::time::sleep(std_duration(session.failed())).await;
                continue;
            }
        };
        session.opened();
        metrics::stream_opened();
        let mut ticker = tokio::time::interval(std_duration(session.interval()));
        // Set when meta ends the stream with an error or a redirect not followed: the next stream
        // waits a back-off, so that a refusal (a restart while the old incarnation's lease
        // lives) or two metas naming each other is not retried in a tight loop.
        let mut pause = crate::core::Duration::ZERO;
        // When recent heartbeats left, by seq, for the round-trip time of the answers.
        let mut sent: VecDeque<(u64, std::time::Instant)> = VecDeque::with_capacity(RTT_TRACKED);
        // A heartbeat asked for ahead of the timer (a leadership handoff waits on it).
        let mut early: Option<crate::core::Instant> = None;
        loop {
            let woke = tokio::select! {
                // A fixed order, beats first: unbiased, tokio picks among ready branches with a
                // thread-local generator no simulation seeds, and runs of one madsim seed differ.
                biased;
                _ = ticker.tick() => None,
                _ = tokio::time::sleep(early.map_or(std::time::Duration::ZERO, |at| std_duration(at.saturating_since(clock.now())))), if early.is_some() => None,
                message = inbound.message() => Some(message),
            };
            let Some(message) = woke else {
                early = None;
                let now = clock.now();
                let beat = {
                    let mut h = host.lock().expect("host lock");
                    let beat = session.beat(&mut h, now, &load);
                    observe(&h, now);
                    metrics::host(&mut counted, &h, now);
                    beat
                };
                let Beat::Send(heartbeat) = beat else {
                    tracing::warn!("meta stopped answering heartbeats; reconnecting");
                    metrics::stream_ended(StreamEnd::Lost);
                    break;
                };
                if sent.len() == RTT_TRACKED {
                    sent.pop_front();
                }
                sent.push_back((heartbeat.seq, std::time::Instant::now()));
                if tx.send(convert::heartbeat_request(&heartbeat)).await.is_err() {
                    metrics::stream_ended(StreamEnd::Lost);
                    break;
                }
                metrics::heartbeat_sent();
                continue;
            };
            let response = match message {
                Ok(Some(r)) => r,
                Ok(None) => {
                    metrics::stream_ended(StreamEnd::Lost);
                    break;
                }
                Err(e) => {
                    tracing::info!(code = ?e.code(), error = %e.message(), "heartbeat stream ended");
                    metrics::stream_ended(StreamEnd::Refused);
                    session.closed();
                    pause = session.failed();
                    break;
                }
            };
            if !response.redirect.is_empty() {
                metrics::stream_ended(StreamEnd::Redirected);
                pause = session.redirected(response.redirect.clone(), Term(response.redirect_term));
                match pause.0 {
                    0 => {
                        tracing::info!(leader = %response.redirect, term = response.redirect_term, "redirected to the meta leader")
                    }
                    ms => {
                        tracing::info!(leader = %response.redirect, term = response.redirect_term, pause_ms = ms, "redirect not followed (stale, or too many in a row); looking the leader up")
                    }
                }
                break;
            }
            if let Some(at) = response
                .lease
                .as_ref()
                .and_then(|l| sent.iter().find(|(seq, _)| *seq == l.seq))
                .map(|(_, at)| *at)
            {
                metrics::answered(at.elapsed());
            }
            let message = match convert::from_node_message(&response) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e.message(), "malformed message from meta");
                    continue;
                }
            };
            let now = clock.now();
            let mut h = host.lock().expect("host lock");
            let applied = session.on_message(&mut h, &message, now);
            for command in &applied.commands {
                executor.execute(command);
            }
            observe(&h, now);
            metrics::host(&mut counted, &h, now);
            if applied.interval_changed {
                ticker = tokio::time::interval(std_duration(session.interval()));
            }
            early = match (early, applied.beat_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        meta.reset();
        if pause > crate::core::Duration::ZERO {
            tokio::time::sleep(std_duration(pause)).await;
        }
    }
}

/// Sends the leaving heartbeat of [`NodeSession::leave`] (the leases are given up already, and
/// the heartbeat loop is stopped) on a stream of its own, so that meta hands the node's shards
/// to others at once instead of after its leases run out. Waits at most `within` for meta to
/// answer; `false` if it did not (meta then waits the leases out, which is as safe).
pub async fn send_leaving(
    meta: &mut MetaClient,
    leaving: &crate::core::Heartbeat,
    within: std::time::Duration,
) -> bool {
    let request = convert::heartbeat_request(leaving);
    let told = async {
        let mut target: Option<String> = None;
        // The leader, or the one a follower names.
        for _ in 0..2 {
            let mut client = match target.take() {
                Some(endpoint) => meta.connect_to(&endpoint).await.ok()?,
                None => meta.leader().await.ok()?.1,
            };
            let (tx, rx) = mpsc::channel(1);
            tx.send(request.clone()).await.ok()?;
            let mut inbound = client.heartbeat(ReceiverStream::new(rx)).await.ok()?.into_inner();
            let answer = inbound.message().await.ok()??;
            if answer.redirect.is_empty() {
                return Some(());
            }
            target = Some(answer.redirect);
        }
        None
    };
    matches!(tokio::time::timeout(within, told).await, Ok(Some(())))
}

fn std_duration(d: crate::core::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(d.0)
}

/// The gRPC heartbeat a node sends for `reports` (from [`ShardHost::heartbeat`]).
pub fn heartbeat_request(identity: &NodeIdentity, reports: Reports) -> proto::HeartbeatRequest {
    convert::heartbeat_request(&identity.heartbeat(reports))
}
