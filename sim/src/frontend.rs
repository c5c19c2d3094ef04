//! Frontend nodes: the workload a database's query layer would put on meta. Each one creates
//! and drops tables and sends routed writes to the shard leaders its route cache names,
//! recording every acknowledgement in the history. A call that neither answers nor fails
//! within its bound is a hang (L4).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::rand::{thread_rng, Rng};
use shardmeta::client::{MetaClient, RouteCache};
use shardmeta::core::TableId;
use shardmeta::proto::{self, node_client::NodeClient, RequestHeader};
use tonic::transport::Channel;
use tonic::Code;

use crate::cluster::{meta_endpoints, CLUSTER};
use crate::history::History;

/// Per attempt, as a real frontend would set it.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// No call may take longer than this, retries included: past it, the call hung (L4).
pub const CALL_BOUND: Duration = Duration::from_secs(60);
/// Tables a frontend keeps alive at most; beyond it, it drops before it creates.
const LIVE_TABLES_MAX: usize = 64;

pub fn header() -> Option<RequestHeader> {
    Some(RequestHeader { cluster: CLUSTER.into() })
}

#[derive(Clone, Copy, Debug, Default)]
pub struct FrontendStats {
    pub creates: u64,
    pub drops: u64,
    pub writes_accepted: u64,
    pub writes_refused: u64,
    pub hangs: u64,
}

/// What a frontend does each round; the scenario picks the mix.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub creates: bool,
    pub drops: bool,
    pub writes: bool,
    pub pause: Duration,
}

impl Workload {
    pub const FULL: Workload =
        Workload { creates: true, drops: true, writes: true, pause: Duration::from_millis(50) };
}

struct Frontend {
    id: usize,
    meta: MetaClient,
    routes: RouteCache,
    nodes: BTreeMap<String, NodeClient<Channel>>,
    live: Vec<(TableId, String)>,
    next: u64,
    history: History,
    stats: Arc<Mutex<FrontendStats>>,
}

pub async fn run(
    id: usize,
    metas: usize,
    workload: Workload,
    history: History,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<FrontendStats>>,
) {
    let mut f = Frontend {
        id,
        meta: MetaClient::new(meta_endpoints(metas), CALL_TIMEOUT).expect("endpoints"),
        routes: RouteCache::new(CLUSTER, 256),
        nodes: BTreeMap::new(),
        live: Vec::new(),
        next: 0,
        history,
        stats,
    };
    while !stop.load(Ordering::SeqCst) {
        let roll = thread_rng().gen_range(0..10);
        let step = async {
            if workload.creates && (roll < 3 || f.live.is_empty()) && f.live.len() < LIVE_TABLES_MAX
            {
                f.create().await;
            } else if workload.drops && (roll == 3 || f.live.len() >= LIVE_TABLES_MAX) {
                f.drop_one().await;
            } else if workload.writes && !f.live.is_empty() {
                f.write().await;
            }
        };
        if tokio::time::timeout(CALL_BOUND, step).await.is_err() {
            f.stats.lock().expect("stats lock").hangs += 1;
        }
        tokio::time::sleep(workload.pause).await;
    }
}

impl Frontend {
    async fn create(&mut self) {
        self.next += 1;
        let name = format!("f{}_t{}", self.id, self.next);
        let req = proto::CreateTableRequest {
            header: header(),
            name: name.clone(),
            if_not_exists: true,
            ..Default::default()
        };
        let r = self
            .meta
            .call(|mut c| {
                let req = req.clone();
                async move { c.create_table(req).await }
            })
            .await;
        if let Ok(Some(t)) = r.map(|r| r.table) {
            self.history.acked_create(TableId(t.id), &t.name);
            self.live.push((TableId(t.id), t.name));
            self.stats.lock().expect("stats lock").creates += 1;
        }
    }

    async fn drop_one(&mut self) {
        let Some(i) = self.pick() else { return };
        let (id, name) = self.live.swap_remove(i);
        self.routes.invalidate("", &name);
        // Until acknowledged, the drop may land or not: the table is in doubt for good.
        self.history.dropping(id);
        let req = proto::DropTableRequest { header: header(), schema: String::new(), name };
        let r = self
            .meta
            .call(|mut c| {
                let req = req.clone();
                async move { c.drop_table(req).await }
            })
            .await;
        if let Ok(r) = r {
            assert_eq!(r.id, id.0, "a drop acknowledged for another table than the one created");
            self.history.acked_drop(id);
            self.stats.lock().expect("stats lock").drops += 1;
        }
    }

    async fn write(&mut self) {
        let Some(i) = self.pick() else { return };
        let (id, name) = self.live[i].clone();
        let Ok(route) = self.routes.resolve(&mut self.meta, "", &name).await else { return };
        let Some(leader) = route.leader.clone() else { return };
        let node = match self.nodes.get(&leader.endpoint) {
            Some(c) => c.clone(),
            None => {
                match NodeClient::connect(shardmeta::client::meta_client::uri(&leader.endpoint))
                    .await
                {
                    Ok(c) => {
                        self.nodes.insert(leader.endpoint.clone(), c.clone());
                        c
                    }
                    Err(_) => return,
                }
            }
        };
        let req = proto::WriteRequest {
            shard: route.shard,
            version: route.version,
            table_id: id.0,
            payload: Vec::new(),
        };
        let mut node = node;
        match tokio::time::timeout(CALL_TIMEOUT, node.write(req)).await {
            Ok(Ok(_)) => self.stats.lock().expect("stats lock").writes_accepted += 1,
            Ok(Err(e)) if e.code() == Code::FailedPrecondition => {
                self.routes.invalidate("", &name);
                self.stats.lock().expect("stats lock").writes_refused += 1;
            }
            _ => {
                // Unreachable or slow: the node may be gone; look the route up again.
                self.routes.invalidate("", &name);
                self.nodes.remove(&leader.endpoint);
            }
        }
    }

    fn pick(&self) -> Option<usize> {
        (!self.live.is_empty()).then(|| thread_rng().gen_range(0..self.live.len()))
    }
}
