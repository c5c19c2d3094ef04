//! The client's route cache: `table → shard` and `shard → leader, followers, version`, each
//! bounded. It is kept fresh one of two ways:
//! - lazily (the default): a route is fetched when first asked for and kept until a data node
//!   answers "invalid route" for it or the cluster epoch moves (the topology changed, so any
//!   route may be stale);
//! - by a route watch (opt-in, [`follow`]): meta streams every route change as it lands and the
//!   cache applies it, so a failover's new leader is known within a heartbeat, with no failed
//!   write to learn it from.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Status;

use super::MetaClient;
use crate::proto::{self, route_change::Kind, NodeEndpoint, RequestHeader, TableRoute};

#[derive(Clone, Debug, PartialEq)]
struct ShardRoute {
    version: u64,
    leader: Option<NodeEndpoint>,
    followers: Vec<NodeEndpoint>,
}

pub struct RouteCache {
    cluster: String,
    epoch: u64,
    /// (schema, table) → (table id, shard).
    tables: BTreeMap<(String, String), (u64, u32)>,
    shards: BTreeMap<u32, ShardRoute>,
    /// Tables kept at most, and shards kept at most; beyond it the lowest-keyed entry goes.
    capacity: usize,
    /// The last watch revision applied; `Some` once a watch feeds the cache, which then no longer
    /// empties itself on a new epoch (the watch says what changed).
    revision: Option<u64>,
}

impl RouteCache {
    pub fn new(cluster: &str, capacity: usize) -> RouteCache {
        assert!(capacity > 0, "a route cache holds at least one route");
        RouteCache {
            cluster: cluster.to_owned(),
            epoch: 0,
            tables: BTreeMap::new(),
            shards: BTreeMap::new(),
            capacity,
            revision: None,
        }
    }

    pub fn get(&self, schema: &str, table: &str) -> Option<TableRoute> {
        let &(table_id, shard) = self.tables.get(&(schema.to_owned(), table.to_owned()))?;
        let s = self.shards.get(&shard)?;
        Some(TableRoute {
            table: table.to_owned(),
            table_id,
            shard,
            version: s.version,
            leader: s.leader.clone(),
            followers: s.followers.clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The last watch revision applied, if a watch feeds the cache.
    pub fn revision(&self) -> Option<u64> {
        self.revision
    }

    /// A newer epoch empties a lazily kept cache: the topology changed since the routes were
    /// fetched.
    pub fn observe_epoch(&mut self, epoch: u64) {
        if epoch > self.epoch {
            self.epoch = epoch;
            if self.revision.is_none() {
                self.clear();
            }
        }
    }

    fn clear(&mut self) {
        self.tables.clear();
        self.shards.clear();
    }

    pub fn insert(&mut self, epoch: u64, schema: &str, route: TableRoute) {
        self.observe_epoch(epoch);
        if epoch < self.epoch && self.revision.is_none() {
            return; // fetched before a change this cache already saw
        }
        if self.tables.len() >= self.capacity {
            self.tables.pop_first();
        }
        self.tables.insert((schema.to_owned(), route.table.clone()), (route.table_id, route.shard));
        self.put_shard(
            route.shard,
            ShardRoute { version: route.version, leader: route.leader, followers: route.followers },
        );
    }

    /// A shard's route, unless the cache holds a newer version of it.
    fn put_shard(&mut self, shard: u32, route: ShardRoute) {
        if self.shards.get(&shard).is_some_and(|held| held.version > route.version) {
            return;
        }
        if self.shards.len() >= self.capacity && !self.shards.contains_key(&shard) {
            self.shards.pop_first();
        }
        self.shards.insert(shard, route);
    }

    /// A data node said the route is stale.
    pub fn invalidate(&mut self, schema: &str, table: &str) {
        self.tables.remove(&(schema.to_owned(), table.to_owned()));
    }

    /// Applies one message of a route watch. Table changes update tables the cache holds (it
    /// fills lazily, as before); shard changes are kept whatever the cache holds, newest version
    /// first.
    pub fn apply(&mut self, update: &proto::WatchRoutesResponse) {
        if update.resync {
            self.clear();
        }
        for change in &update.changes {
            match &change.kind {
                Some(Kind::Table(t)) => {
                    if let Some(entry) = self.tables.get_mut(&(t.schema.clone(), t.name.clone())) {
                        *entry = (t.id, t.shard);
                    }
                }
                Some(Kind::Dropped(t)) => {
                    let key = (t.schema.clone(), t.name.clone());
                    if self.tables.get(&key).is_some_and(|&(id, _)| id == t.id) {
                        self.tables.remove(&key);
                    }
                }
                Some(Kind::Shard(s)) => self.put_shard(
                    s.shard,
                    ShardRoute {
                        version: s.version,
                        leader: s.leader.clone(),
                        followers: s.followers.clone(),
                    },
                ),
                None => {}
            }
        }
        self.revision = Some(update.revision);
    }

    /// The cached route, or a fresh one from meta.
    pub async fn resolve(
        &mut self,
        meta: &mut MetaClient,
        schema: &str,
        table: &str,
    ) -> Result<TableRoute, Status> {
        if let Some(r) = self.get(schema, table) {
            return Ok(r);
        }
        let req = proto::RouteTablesRequest {
            header: Some(RequestHeader { cluster: self.cluster.clone() }),
            schema: schema.to_owned(),
            tables: vec![table.to_owned()],
        };
        let r = meta
            .call(|mut c| {
                let req = req.clone();
                async move { c.route_tables(req).await }
            })
            .await?;
        let route =
            r.routes.into_iter().next().ok_or_else(|| {
                Status::internal("meta answered a route request without the route")
            })?;
        self.insert(r.epoch, schema, route.clone());
        Ok(route)
    }
}

/// The pause before watching again after a watch ended.
const REWATCH_PAUSE: Duration = Duration::from_millis(200);

/// Keeps `cache` fed by a route watch of its cluster until the returned task is aborted: it
/// watches the leader (found through `meta`), resumes from the last revision applied after any
/// end (a leader change, a cut-off), and resyncs when meta says so.
pub fn follow(mut meta: MetaClient, cache: Arc<Mutex<RouteCache>>) -> tokio::task::JoinHandle<()> {
    let cluster = cache.lock().expect("route cache lock").cluster.clone();
    tokio::task::spawn(async move {
        loop {
            if let Err(status) = watch_once(&mut meta, &cluster, &cache).await {
                tracing::debug!(%status, "route watch ended; watching again");
            }
            meta.reset();
            tokio::time::sleep(REWATCH_PAUSE).await;
        }
    })
}

async fn watch_once(
    meta: &mut MetaClient,
    cluster: &str,
    cache: &Mutex<RouteCache>,
) -> Result<(), Status> {
    let (_, mut client) = meta.leader().await?;
    let from_revision = cache.lock().expect("route cache lock").revision.unwrap_or(0);
    let req = proto::WatchRoutesRequest {
        header: Some(RequestHeader { cluster: cluster.to_owned() }),
        schema: String::new(),
        from_revision,
    };
    let mut stream = client.watch_routes(req).await?.into_inner();
    while let Some(update) = stream.message().await? {
        cache.lock().expect("route cache lock").apply(&update);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(table: &str, version: u64) -> TableRoute {
        TableRoute { table: table.into(), version, ..Default::default() }
    }

    fn endpoint(name: &str) -> Option<NodeEndpoint> {
        Some(NodeEndpoint { name: name.into(), endpoint: format!("{name}:1") })
    }

    #[test]
    fn a_newer_epoch_drops_every_route() {
        let mut c = RouteCache::new("c", 10);
        c.insert(3, "s", route("a", 1));
        c.insert(3, "s", route("b", 1));
        c.observe_epoch(3);
        assert_eq!(c.len(), 2);
        c.observe_epoch(4);
        assert!(c.is_empty());
    }

    #[test]
    fn routes_fetched_before_a_seen_change_are_not_kept() {
        let mut c = RouteCache::new("c", 10);
        c.observe_epoch(5);
        c.insert(4, "s", route("a", 1));
        assert!(c.get("s", "a").is_none());
    }

    #[test]
    fn invalid_route_forgets_one_table_and_size_is_bounded() {
        let mut c = RouteCache::new("c", 2);
        for t in ["a", "b", "c"] {
            c.insert(1, "s", route(t, 1));
        }
        assert_eq!(c.len(), 2);
        c.invalidate("s", "c");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_watched_cache_follows_changes_and_never_goes_back_a_version() {
        let mut c = RouteCache::new("c", 10);
        c.insert(
            1,
            "s",
            TableRoute {
                table: "a".into(),
                table_id: 7,
                shard: 0,
                version: 2,
                leader: endpoint("n1"),
                followers: vec![],
            },
        );
        let shard = |version, leader| proto::RouteChange {
            kind: Some(Kind::Shard(proto::ShardRouteChange {
                shard: 0,
                version,
                leader: endpoint(leader),
                followers: vec![],
            })),
        };
        c.apply(&proto::WatchRoutesResponse {
            revision: 10,
            resync: false,
            changes: vec![shard(3, "n2")],
        });
        assert_eq!(c.get("s", "a").and_then(|r| r.leader).map(|l| l.name).as_deref(), Some("n2"));
        c.apply(&proto::WatchRoutesResponse {
            revision: 11,
            resync: false,
            changes: vec![shard(2, "n1")],
        });
        assert_eq!(c.get("s", "a").map(|r| r.version), Some(3), "an older version is not taken");
        // Watched, a new epoch no longer empties it.
        c.observe_epoch(9);
        assert_eq!(c.len(), 1);
        let dropped = proto::RouteChange {
            kind: Some(Kind::Dropped(proto::TableDroppedChange {
                schema: "s".into(),
                name: "a".into(),
                id: 7,
            })),
        };
        c.apply(&proto::WatchRoutesResponse {
            revision: 12,
            resync: false,
            changes: vec![dropped],
        });
        assert!(c.get("s", "a").is_none());
        c.insert(1, "s", route("b", 4));
        c.apply(&proto::WatchRoutesResponse { revision: 13, resync: true, changes: vec![] });
        assert!(c.is_empty() && c.revision() == Some(13), "a resync empties it");
    }
}
