//! A frontend that keeps its route cache by a route watch (`client::routes::follow`), and the
//! measure of how far behind meta its cache is when a failover lands.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shardmeta::client::{routes, MetaClient, RouteCache};
use shardmeta::proto;

use super::node_kill::header;

pub struct WatchingFrontend {
    cache: Arc<Mutex<RouteCache>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchingFrontend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WatchingFrontend {
    /// Watches cluster `default`, then fills the cache with the routes of `tables`.
    pub async fn start(meta_endpoints: &[String], tables: &[String]) -> WatchingFrontend {
        let cache = Arc::new(Mutex::new(RouteCache::new("default", 1_024)));
        let task = routes::follow(
            MetaClient::new(meta_endpoints.to_vec(), Duration::from_secs(5)).unwrap(),
            cache.clone(),
        );
        let start = Instant::now();
        // The watch's first answer (a resync) empties the cache: fill it after that.
        while cache.lock().unwrap().revision().is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "the route watch never answered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut meta = MetaClient::new(meta_endpoints.to_vec(), Duration::from_secs(5)).unwrap();
        let req = proto::RouteTablesRequest {
            header: header(),
            schema: "public".into(),
            tables: tables.to_vec(),
        };
        let r = meta
            .call(|mut c| {
                let req = req.clone();
                async move { c.route_tables(req).await }
            })
            .await
            .unwrap();
        for route in r.routes {
            cache.lock().unwrap().insert(r.epoch, "public", route);
        }
        WatchingFrontend { cache, task }
    }

    /// The leader the cache routes `table` to.
    pub fn leader_of(&self, table: &str) -> Option<String> {
        self.cache.lock().unwrap().get("public", table).and_then(|r| r.leader).map(|l| l.name)
    }

    /// Polls meta and the cache until both route `table` away from `victim`: how long the cache
    /// took after meta answered so (zero when the cache was first).
    pub async fn lag_behind_meta(
        &self,
        meta: &mut MetaClient,
        table: &str,
        victim: &str,
    ) -> Duration {
        let req = proto::RouteTablesRequest {
            header: header(),
            schema: "public".into(),
            tables: vec![table.to_owned()],
        };
        let (mut meta_at, mut cache_at) = (None, None);
        let start = Instant::now();
        while meta_at.is_none() || cache_at.is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{table} was not routed away from {victim} (meta {meta_at:?}, cache {cache_at:?})"
            );
            if cache_at.is_none() && self.leader_of(table).is_some_and(|l| l != victim) {
                cache_at = Some(Instant::now());
            }
            if meta_at.is_none() {
                let r = meta
                    .call(|mut c| {
                        let req = req.clone();
                        async move { c.route_tables(req).await }
                    })
                    .await;
                let leader = r
                    .ok()
                    .and_then(|r| r.routes.into_iter().next())
                    .and_then(|r| r.leader)
                    .map(|l| l.name);
                if leader.is_some_and(|l| l != victim) {
                    meta_at = Some(Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cache_at.unwrap().saturating_duration_since(meta_at.unwrap())
    }
}
