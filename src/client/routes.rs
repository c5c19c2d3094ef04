//! The client's route cache: `table → shard → leader`, kept until a data node answers "invalid
//! route" for it or the cluster epoch moves (the topology changed, so any route may be stale).

use std::collections::BTreeMap;

use tonic::Status;

use super::MetaClient;
use crate::proto::{self, RequestHeader, TableRoute};

pub struct RouteCache {
    cluster: String,
    epoch: u64,
    routes: BTreeMap<(String, String), TableRoute>,
    /// Routes kept at most; beyond it the oldest-keyed entry goes.
    capacity: usize,
}

impl RouteCache {
    pub fn new(cluster: &str, capacity: usize) -> RouteCache {
        assert!(capacity > 0, "a route cache holds at least one route");
        RouteCache { cluster: cluster.to_owned(), epoch: 0, routes: BTreeMap::new(), capacity }
    }

    pub fn get(&self, schema: &str, table: &str) -> Option<&TableRoute> {
        self.routes.get(&(schema.to_owned(), table.to_owned()))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// A newer epoch empties the cache: the topology changed since the routes were fetched.
    pub fn observe_epoch(&mut self, epoch: u64) {
        if epoch > self.epoch {
            self.epoch = epoch;
            self.routes.clear();
        }
    }

    pub fn insert(&mut self, epoch: u64, schema: &str, route: TableRoute) {
        self.observe_epoch(epoch);
        if epoch < self.epoch {
            return; // fetched before a change this cache already saw
        }
        if self.routes.len() >= self.capacity {
            self.routes.pop_first();
        }
        self.routes.insert((schema.to_owned(), route.table.clone()), route);
    }

    /// A data node said the route is stale.
    pub fn invalidate(&mut self, schema: &str, table: &str) {
        self.routes.remove(&(schema.to_owned(), table.to_owned()));
    }

    /// The cached route, or a fresh one from meta.
    pub async fn resolve(&mut self, meta: &mut MetaClient, schema: &str, table: &str) -> Result<TableRoute, Status> {
        if let Some(r) = self.get(schema, table) {
            return Ok(r.clone());
        }
        let req = proto::RouteTablesRequest {
            header: Some(RequestHeader { cluster: self.cluster.clone() }),
            schema: schema.to_owned(),
            tables: vec![table.to_owned()],
        };
        let r = meta.call(|mut c| { let req = req.clone(); async move { c.route_tables(req).await } }).await?;
        let route = r.routes.into_iter().next().ok_or_else(|| Status::internal("meta answered a route request without the route"))?;
        self.insert(r.epoch, schema, route.clone());
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(table: &str, version: u64) -> TableRoute {
        TableRoute { table: table.into(), version, ..Default::default() }
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
}
