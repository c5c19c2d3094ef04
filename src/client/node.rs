//! A data node's connection to meta: one heartbeat stream to the leader, rebuilt with backoff
//! when it breaks, following redirects. What the node hosts lives in a [`ShardHost`]; commands
//! meta accepts for it are also handed to a [`ShardExecutor`], the node's storage engine.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::meta_client::{connect, MetaClient};
use super::shard_host::ShardHost;
use crate::core::{Instant, ShardCommand, ShardId};
use crate::proto;
use crate::convert;

/// Heartbeats without any answer before the stream is given up and the leader looked up again.
const UNANSWERED_MAX: u32 = 3;

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

/// Who this node is and how it reports.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    pub cluster: String,
    pub name: String,
    pub endpoint: String,
    pub zone: String,
    pub incarnation: u64,
}

/// The node's monotonic clock, in the core's units.
#[derive(Clone, Copy)]
pub struct NodeClock {
    start: std::time::Instant,
    start_wall_ms: u64,
}

impl NodeClock {
    pub fn start() -> NodeClock {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
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

/// Called after every change to the host, with the time: the node-agent logs leadership here.
pub type Observer = Box<dyn FnMut(&ShardHost, Instant) + Send>;

/// Runs the heartbeat loop for ever.
pub async fn run(
    mut meta: MetaClient,
    identity: NodeIdentity,
    host: Arc<Mutex<ShardHost>>,
    clock: NodeClock,
    load: impl Fn(ShardId) -> f64 + Send + 'static,
    mut executor: impl ShardExecutor,
    mut observe: Observer,
) {
    let mut interval = Duration::from_millis(1_000);
    let mut failures = 0u32;
    let mut redirect: Option<String> = None;
    loop {
        let client = match redirect.take() {
            Some(endpoint) => connect(&endpoint, Duration::from_secs(5)).await,
            None => meta.leader().await.map(|(_, c)| c),
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
                failures += 1;
                tracing::warn!(error = %e.message(), "no heartbeat stream to the meta leader");
                meta.reset();
                tokio::time::sleep(Duration::from_millis(200 * failures.min(10) as u64)).await;
                continue;
            }
        };
        let mut ticker = tokio::time::interval(interval);
        let mut unanswered = 0u32;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if unanswered >= UNANSWERED_MAX {
                        tracing::warn!("meta stopped answering heartbeats; reconnecting");
                        break;
                    }
                    let now = clock.now();
                    let request = {
                        let mut h = host.lock().expect("host lock");
                        h.expire_leases(now);
                        observe(&h, now);
                        let (seq, reports) = h.heartbeat(now, &load);
                        heartbeat_request(&identity, seq, &reports)
                    };
                    unanswered += 1;
                    if tx.send(request).await.is_err() {
                        break;
                    }
                }
                message = inbound.message() => {
                    let response = match message {
                        Ok(Some(r)) => r,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::info!(error = %e.message(), "heartbeat stream ended");
                            break;
                        }
                    };
                    if !response.redirect.is_empty() {
                        tracing::info!(leader = %response.redirect, "redirected to the meta leader");
                        redirect = Some(response.redirect);
                        break;
                    }
                    let message = match convert::from_node_message(&response) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::error!(error = %e.message(), "malformed message from meta");
                            continue;
                        }
                    };
                    unanswered = 0;
                    failures = 0;
                    if message.heartbeat_interval_ms > 0 && message.heartbeat_interval_ms != interval.as_millis() as u64 {
                        interval = Duration::from_millis(message.heartbeat_interval_ms);
                        ticker = tokio::time::interval(interval);
                    }
                    let now = clock.now();
                    let mut h = host.lock().expect("host lock");
                    for accepted in h.on_message(&message) {
                        executor.execute(&accepted);
                    }
                    observe(&h, now);
                }
            }
        }
        meta.reset();
    }
}

/// The heartbeat a node sends for `reports` (from [`ShardHost::heartbeat`]).
pub fn heartbeat_request(identity: &NodeIdentity, seq: u64, reports: &[crate::core::ShardReport]) -> proto::HeartbeatRequest {
    proto::HeartbeatRequest {
        header: Some(proto::RequestHeader { cluster: identity.cluster.clone() }),
        node_name: identity.name.clone(),
        endpoint: identity.endpoint.clone(),
        zone: identity.zone.clone(),
        incarnation: identity.incarnation,
        seq,
        stats: Some(proto::NodeStats { shard_count: reports.len() as u32, ..Default::default() }),
        shards: reports
            .iter()
            .map(|r| proto::ShardReport {
                id: r.id.0,
                role: match r.role {
                    crate::core::Role::Leader => proto::ShardRole::Leader as i32,
                    crate::core::Role::Follower => proto::ShardRole::Follower as i32,
                },
                version: r.version.0,
                status: proto::ShardStatus::Ready as i32,
                load: r.load,
            })
            .collect(),
    }
}
