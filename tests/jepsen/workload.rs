//! The client side of a run: DDL workers recording a history (`history`), and a data writer
//! that routes through meta and writes to shard leaders, so that the nodes' leadership logs
//! show which writes each lease accepted.
//!
//! A DDL worker sends each request once, to the leader it knows, and records how it ended:
//! retrying inside the client would turn "applied, but the answer was lost" into a refusal
//! (an ALREADY_EXISTS for its own create), which the checker would take as definite.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardmeta::client::{MetaClient, RouteCache};
use shardmeta::proto::{self, node_client::NodeClient};
use tonic::{Code, Status};

use super::history::{Kind, Micros, Op, Outcome};
use super::process::node_kill::header;

/// How long a worker waits on one request before it calls the outcome unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// A worker's pause between requests: a few dozen requests a second from each.
const PAUSE: Duration = Duration::from_millis(25);

/// The names the workers share: few enough that they collide (concurrent creates, drops and
/// compare-and-sets on one table), a bounded catalog whatever the run's length.
pub fn table_names() -> Vec<String> {
    (0..24).map(|i| format!("j{i}")).collect()
}

/// The history all workers append to, on one clock.
#[derive(Clone)]
pub struct History {
    pub start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl History {
    pub fn new(start: Instant) -> History {
        History { start, ops: Arc::default() }
    }

    pub fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    fn push(&self, op: Op) {
        self.ops.lock().unwrap().push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap().clone()
    }
}

/// What a refusal says of the request: the server decided (and NOT_FOUND says the name was
/// absent), or it may have applied.
fn outcome_of(status: &Status) -> Outcome {
    match status.code() {
        Code::NotFound => Outcome::Absent,
        Code::AlreadyExists
        | Code::Aborted
        | Code::FailedPrecondition
        | Code::InvalidArgument
        | Code::ResourceExhausted => Outcome::Refused,
        // UNAVAILABLE too: a follower forwarding to a leader that fell over, or storage whose
        // write was cut off, cannot say whether it landed.
        _ => Outcome::Unknown,
    }
}

/// The tag the last alter wrote into a table's options (0: none yet).
pub fn tag_of(detail: &proto::TableDetail) -> u64 {
    detail.options.get("tag").and_then(|t| t.parse().ok()).unwrap_or(0)
}

fn detail_outcome(detail: Option<proto::TableDetail>) -> Outcome {
    match detail {
        Some(d) => Outcome::Ok {
            id: d.info.as_ref().map_or(0, |i| i.id),
            version: d.version,
            tag: tag_of(&d),
        },
        None => Outcome::Unknown,
    }
}

struct Worker {
    meta: MetaClient,
    history: History,
    rng: ChaCha8Rng,
    id: u64,
    tags: u64,
}

impl Worker {
    /// Sends one request to the leader and records it; `None` when no leader could be found
    /// (nothing was sent, nothing is recorded).
    async fn once<T, Fut>(
        &mut self,
        name: &str,
        kind: Kind,
        send: impl FnOnce(shardmeta::client::meta_client::Grpc) -> Fut,
        read: impl FnOnce(T) -> Outcome,
    ) -> Option<Outcome>
    where
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let Ok((_, client)) = self.meta.leader().await else {
            self.meta.reset();
            return None;
        };
        let invoked = self.history.now();
        let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, send(client)).await {
            Ok(Ok(r)) => read(r.into_inner()),
            Ok(Err(status)) => outcome_of(&status),
            Err(_) => Outcome::Unknown,
        };
        if matches!(outcome, Outcome::Unknown) {
            self.meta.reset(); // a leader that is paused, cut off or gone: look again
        }
        self.history.push(Op {
            name: name.into(),
            kind,
            invoked,
            completed: self.history.now(),
            outcome,
        });
        Some(outcome)
    }

    async fn read(&mut self, name: &str) -> Option<Outcome> {
        let req = proto::GetTableRequest {
            header: header(),
            schema: "public".into(),
            table: name.into(),
        };
        self.once(
            name,
            Kind::Read,
            |mut c| async move { c.get_table(req).await },
            |r: proto::GetTableResponse| detail_outcome(r.table),
        )
        .await
    }

    async fn create(&mut self, name: &str) {
        let req = proto::CreateTableRequest {
            header: header(),
            schema: "public".into(),
            name: name.into(),
            ..Default::default()
        };
        let read = |r: proto::CreateTableResponse| match (r.created, r.table) {
            (true, Some(t)) => Outcome::Ok { id: t.id, version: 1, tag: 0 },
            _ => Outcome::Unknown,
        };
        self.once(name, Kind::Create, |mut c| async move { c.create_table(req).await }, read).await;
    }

    async fn drop_table(&mut self, name: &str) {
        let req = proto::DropTableRequest {
            header: header(),
            schema: "public".into(),
            name: name.into(),
        };
        self.once(
            name,
            Kind::Drop,
            |mut c| async move { c.drop_table(req).await },
            |r: proto::DropTableResponse| Outcome::Ok { id: r.id, version: 0, tag: 0 },
        )
        .await;
    }

    /// Reads the table, then sets a fresh tag at the version read.
    async fn alter(&mut self, name: &str) {
        let Some(Outcome::Ok { version, .. }) = self.read(name).await else { return };
        self.tags += 1;
        let tag = self.id << 32 | self.tags;
        let options = proto::TableOptions { entries: [("tag".to_owned(), tag.to_string())].into() };
        let req = proto::AlterTableRequest {
            header: header(),
            schema: "public".into(),
            name: name.into(),
            expected_version: version,
            encoded_schema: None,
            options: Some(options),
        };
        let kind = Kind::Alter { expected: version, tag };
        self.once(
            name,
            kind,
            |mut c| async move { c.alter_table(req).await },
            |r: proto::AlterTableResponse| detail_outcome(r.table),
        )
        .await;
    }
}

/// Runs DDL on `names` until `stop`: reads 30%, compare-and-set alters 35%, creates 20%,
/// drops 15%.
pub fn ddl_worker(
    id: u64,
    seed: u64,
    endpoints: Vec<String>,
    names: Vec<String>,
    history: History,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let meta = MetaClient::new(endpoints, REQUEST_TIMEOUT).unwrap();
        let mut w = Worker {
            meta,
            history,
            rng: ChaCha8Rng::seed_from_u64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            id: id + 1,
            tags: 0,
        };
        while !stop.load(Ordering::Relaxed) {
            let name = names[w.rng.next_u32() as usize % names.len()].clone();
            match w.rng.next_u32() % 100 {
                0..30 => {
                    w.read(&name).await;
                }
                30..65 => w.alter(&name).await,
                65..85 => w.create(&name).await,
                _ => w.drop_table(&name).await,
            }
            tokio::time::sleep(PAUSE).await;
        }
    })
}

/// Writes to the leaders of `names` as meta routes them, until `stop`; counts accepted writes.
pub fn data_writer(
    endpoints: Vec<String>,
    names: Vec<String>,
    accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut meta = MetaClient::new(endpoints, REQUEST_TIMEOUT).unwrap();
        let mut routes = RouteCache::new("default", 64);
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let table = &names[i % names.len()];
            let Ok(route) =
                tokio::time::timeout(REQUEST_TIMEOUT, routes.resolve(&mut meta, "public", table))
                    .await
                    .unwrap_or(Err(Status::deadline_exceeded("")))
            else {
                continue;
            };
            let Some(leader) = &route.leader else {
                routes.invalidate("public", table);
                continue;
            };
            let write = async {
                let mut node = NodeClient::connect(format!("http://{}", leader.endpoint))
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                node.write(proto::WriteRequest {
                    shard: route.shard,
                    version: route.version,
                    table_id: route.table_id,
                    payload: vec![1],
                })
                .await
            };
            match tokio::time::timeout(Duration::from_secs(2), write).await {
                Ok(Ok(_)) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                _ => routes.invalidate("public", table),
            }
        }
    })
}
