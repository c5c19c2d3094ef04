//! Requests: queries are answered from the catalog at once; changes are validated against the
//! intent (so that two creates of one name cannot both pass), queued, and answered when their
//! write lands.

use std::collections::BTreeMap;

use super::clusters::{cluster_named, node_named};
use super::paging::paginate;
use super::views::{self, schema_id};
use super::writes::{Change, Notice};
use super::{Ctx, Leader};
use crate::core::config::{CoreConfig, PlantedBug};
use crate::core::error::quoted;
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::input::{ClusterSpec, CreateTable, Request};
use crate::core::live::awaiting::Awaiting;
use crate::core::live::LiveCluster;
use crate::core::model::Mutation;
use crate::core::model::*;
use crate::core::output::{ClusterInfo, NodeInfo, Response, TableInfo};
use crate::core::time::Instant;
use crate::core::validate;

/// How a request was handled. It lives for one call, on the stack: boxing the reply to shrink
/// it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(super) enum Handled {
    Reply(Response),
    /// A change was queued; its landing answers the request.
    Queued,
    /// The request waits on someone else's change.
    Waiting,
}

impl Leader {
    /// A client's or an operator's request: answered at once, queued behind its write, or
    /// refused.
    pub fn on_request(&mut self, ctx: &mut Ctx, id: RequestId, req: &Request) {
        let result = self.ready(ctx.now).and_then(|()| self.route_request(ctx, id, req));
        match result {
            Ok(Handled::Reply(r)) => ctx.out.reply(id, Ok(r)),
            Ok(Handled::Queued | Handled::Waiting) => {}
            Err(e) => ctx.out.reply(id, Err(e)),
        }
    }

    fn route_request(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        req: &Request,
    ) -> MetaResult<Handled> {
        let reply = |r| Ok(Handled::Reply(r));
        match req {
            Request::CreateCluster(spec) => self.create_cluster(ctx, id, spec),
            Request::ListClusters { page } => {
                let after =
                    page.after.map_or(0, |a| a.saturating_add(1)).min(u32::MAX as u64) as u32;
                let rows = self
                    .catalog
                    .clusters
                    .range(ClusterId(after)..)
                    .map(|(id, c)| (id.0 as u64, Some(views::cluster_info(c))));
                reply(Response::Clusters(paginate(page, ctx.config, rows)))
            }
            Request::ClusterView { cluster } => {
                let (c, live) = self.cluster(cluster, ctx.config)?;
                let pending = self.writes.pending(c.id());
                let at = (ctx.now, ctx.config);
                reply(Response::View(views::view(c, live, self.term, pending, at)))
            }
            Request::DropCluster { cluster, force } => self.drop_cluster(ctx, id, cluster, *force),
            Request::CreateSchema { cluster, name, if_not_exists } => {
                self.create_schema(ctx, id, cluster, name, *if_not_exists)
            }
            Request::DropSchema { cluster, name, cascade } => {
                self.drop_schema(ctx, id, cluster, name, *cascade)
            }
            Request::CreateTable(ct) => self.create_table(ctx, id, ct),
            Request::DropTable { cluster, schema, name } => {
                self.drop_table(ctx, id, cluster, schema, name)
            }
            Request::AlterTable(alter) => self.alter_table(ctx, id, alter),
            Request::RouteTables { cluster, schema, tables } => {
                reply(views::routes(self.cluster(cluster, ctx.config)?.0, schema, tables)?)
            }
            Request::GetTables { cluster, schema, tables } => reply(views::table_details(
                self.cluster(cluster, ctx.config)?.0,
                schema,
                tables,
                ctx.config,
            )?),
            Request::ListNodes { cluster, page } => {
                let (c, live) = self.cluster(cluster, ctx.config)?;
                reply(Response::Nodes(views::nodes(c, live, page, ctx.config)))
            }
            Request::DrainNode { cluster, node, cancel } => {
                self.mark_node(ctx, id, (cluster, node), NodeMark::Drain, !*cancel)
            }
            Request::MarkNodeSlow { cluster, node, slow } => {
                self.mark_node(ctx, id, (cluster, node), NodeMark::Slow, *slow)
            }
            Request::RestartNode { cluster, node, end, window_ms } => {
                self.restart_node(ctx, id, (cluster, node), *end, *window_ms)
            }
            Request::RemoveNode { cluster, node } => self.remove_node(ctx, id, cluster, node),
            Request::ListShards { cluster, page } => {
                let (c, live) = self.cluster(cluster, ctx.config)?;
                reply(Response::Shards(views::shards(c, live, page, ctx.config)))
            }
            Request::ListTables { cluster, schema, page } => {
                reply(Response::Tables(views::tables(
                    self.cluster(cluster, ctx.config)?.0,
                    schema.as_deref(),
                    page,
                    ctx.config,
                )?))
            }
            Request::SchedulerStatus { cluster } => self.scheduler_status(ctx, cluster),
            Request::SetScheduler { cluster, settings } => {
                self.set_scheduler(ctx, id, cluster, settings)
            }
            Request::PlanScheduler { cluster } => self.plan_scheduler(ctx, cluster),
            Request::GetPlacement { cluster } => self.get_placement(ctx, cluster),
            Request::WhatIf { cluster, change } => self.what_if(ctx, cluster, change),
            Request::SetPlacement { cluster, rule, expected_version } => {
                self.set_placement(ctx, id, cluster, rule, *expected_version)
            }
            Request::ListEvents { cluster, after, limit } => {
                self.list_events(ctx, cluster, *after, *limit)
            }
            Request::MoveShard { cluster, shard, node, reopen } => {
                self.move_shard(ctx, id, cluster, *shard, node, *reopen)
            }
            Request::SplitShard { cluster, shard, tables } => {
                self.split_shard(ctx, id, cluster, *shard, tables)
            }
            Request::ListProcedures { cluster } => self.list_procedures(ctx, cluster),
            Request::MergeShards { cluster, shards: [a, b] } => {
                self.merge_shards(ctx, id, cluster, *a, *b)
            }
            Request::CancelProcedure { cluster, id: procedure } => {
                self.cancel_procedure(ctx, id, cluster, *procedure)
            }
        }
    }

    fn cluster(
        &self,
        name: &str,
        config: &CoreConfig,
    ) -> MetaResult<(&ClusterCatalog, &LiveCluster)> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, name, config)?;
        Ok((c, &self.clusters[&c.id()]))
    }

    /// Refuses a change when the write queue is full.
    pub(super) fn check_backlog(&self, ctx: &Ctx) -> MetaResult<()> {
        if self.writes.backlog() >= ctx.config.changes_queued_max {
            return Err(MetaError::ResourceExhausted(format!(
                "{} changes are waiting to be written; retry later",
                self.writes.backlog()
            )));
        }
        Ok(())
    }

    /// Queues a change whose landing answers `id` (or answers at once under a planted bug).
    pub(super) fn queue_reply(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        mut change: Change,
        response: Response,
    ) -> MetaResult<Handled> {
        if ctx.config.has_bug(PlantedBug::ReplyBeforePersist) {
            ctx.out.reply(id, Ok(response));
        } else {
            change.reply = Some((id, response));
        }
        self.writes.queue(change);
        Ok(Handled::Queued)
    }

    fn create_cluster(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        spec: &ClusterSpec,
    ) -> MetaResult<Handled> {
        let (change, info) = self.plan_cluster(ctx, spec)?;
        self.queue_reply(ctx, id, change, Response::Cluster(info))
    }

    /// A leader without the configured default cluster creates it, on every tick until it
    /// exists: a create whose write fails (and the reload after it) is simply tried again, and
    /// nodes of the default cluster are refused until then. Nothing answers this create.
    pub(super) fn ensure_default_cluster(&mut self, ctx: &mut Ctx) {
        let config = ctx.config;
        let Some(spec) = &config.default_cluster else { return };
        if self.catalog.cluster_by_name.contains_key(&spec.name)
            || self.pending_clusters.creating.contains_key(&spec.name)
        {
            return;
        }
        // Refused only while the write queue is full: the next tick tries again.
        if let Ok((change, _)) = self.plan_cluster(ctx, spec) {
            self.writes.queue(change);
        }
    }

    /// The change that creates a cluster, and what its creator is told once it lands.
    fn plan_cluster(
        &mut self,
        ctx: &mut Ctx,
        spec: &ClusterSpec,
    ) -> MetaResult<(Change, ClusterInfo)> {
        let cfg = ctx.config;
        cfg.check_cluster_spec(spec)?;
        if self.catalog.cluster_by_name.contains_key(&spec.name) {
            return Err(MetaError::AlreadyExists(format!("cluster {}", quoted(&spec.name))));
        }
        if self.pending_clusters.creating.contains_key(&spec.name) {
            return Err(MetaError::Unavailable(format!(
                "cluster {} is being created; retry",
                quoted(&spec.name)
            )));
        }
        if self.catalog.clusters.len() + self.pending_clusters.creating.len() >= cfg.clusters_max {
            return Err(MetaError::ResourceExhausted(format!(
                "{} clusters, the most this service keeps",
                cfg.clusters_max
            )));
        }
        if self.catalog.clusters.len()
            + self.pending_clusters.creating.len()
            + self.catalog.dropped_clusters.len()
            >= cfg.cluster_ids_max
        {
            return Err(MetaError::ResourceExhausted(format!(
                "{} cluster ids given, the most this service gives (cluster_ids_max); a dropped cluster's id is never given again",
                cfg.cluster_ids_max
            )));
        }
        self.check_backlog(ctx)?;
        // A dropped cluster's id is never given again.
        let last = self
            .catalog
            .clusters
            .keys()
            .chain(self.pending_clusters.creating.values())
            .chain(&self.catalog.dropped_clusters)
            .max()
            .map_or(0, |c| c.0);
        let cid = ClusterId(last + 1);
        let record = ClusterRecord {
            id: cid.0,
            name: spec.name.clone(),
            shard_count: spec.shard_count,
            followers_per_shard: spec.followers_per_shard,
            topology: ClusterRecord::topology_code(spec.topology),
            min_nodes: spec.min_nodes,
            dropped: false,
        };
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutCluster(record));
        // Id 0 is the `public` schema; the allocator starts above it.
        change.mutations.push(Mutation::PutIdCeiling(cid, cfg.id_block));
        change.mutations.push(Mutation::PutSchema(
            cid,
            SchemaRecord { id: 0, name: "public".into(), dropping: false },
        ));
        self.pending_clusters.creating.insert(spec.name.clone(), cid);
        let info = ClusterInfo {
            id: cid,
            name: spec.name.clone(),
            shard_count: spec.shard_count,
            followers_per_shard: spec.followers_per_shard,
            topology: spec.topology,
            min_nodes: spec.min_nodes,
            epoch: Epoch(0),
        };
        Ok((change, info))
    }

    fn create_schema(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        name: &str,
        if_not_exists: bool,
    ) -> MetaResult<Handled> {
        validate::name("schema name", name, ctx.config.name_len_max)?;
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        if let Some(&sid) = c.schema_by_name.get(name) {
            if c.schemas[&sid].dropping {
                return Err(MetaError::Unavailable(format!(
                    "schema {name} is being dropped; retry once it is gone",
                    name = quoted(name)
                )));
            }
            if if_not_exists {
                return Ok(Handled::Reply(Response::SchemaCreated { id: sid, created: false }));
            }
            return Err(MetaError::AlreadyExists(format!(
                "schema {name} in cluster {cluster}",
                name = quoted(name),
                cluster = quoted(cluster)
            )));
        }
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let key = Awaiting::SchemaRecord(name.to_owned());
        if live.in_flight().contains(&key) {
            return Err(MetaError::Unavailable(format!(
                "schema {name} is being created; retry",
                name = quoted(name)
            )));
        }
        if c.schemas.len() + live.in_flight().schemas() >= ctx.config.schemas_per_cluster_max {
            return Err(MetaError::ResourceExhausted(format!(
                "cluster {cluster} has the most schemas it takes",
                cluster = quoted(cluster)
            )));
        }
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let mut change = Change::new(cid);
        let sid = live.alloc_id(cid, ctx.config.id_block, &mut change.mutations);
        change.mutations.push(Mutation::PutSchema(
            cid,
            SchemaRecord { id: sid, name: name.to_owned(), dropping: false },
        ));
        live.begin_write(key);
        self.queue_reply(
            ctx,
            id,
            change,
            Response::SchemaCreated { id: SchemaId(sid), created: true },
        )
    }

    fn create_table(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        ct: &CreateTable,
    ) -> MetaResult<Handled> {
        check_table_request(ctx, ct)?;
        let c = cluster_named(&self.catalog, &self.pending_clusters, &ct.cluster, ctx.config)?;
        let cid = c.id();
        let sid = schema_id(c, &ct.schema)?;
        if let Some((tid, t)) = c.table_by_name(sid, &ct.name) {
            if ct.if_not_exists {
                return Ok(Handled::Reply(Response::TableCreated {
                    table: views::table_info(c, tid, t),
                    created: false,
                }));
            }
            return Err(MetaError::AlreadyExists(format!(
                "table {} in schema {}",
                quoted(&ct.name),
                quoted(&ct.schema)
            )));
        }
        let key = Awaiting::TableRecords(sid, ct.name.clone());
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        if live.in_flight().contains(&Awaiting::SchemaDrop(sid)) {
            return Err(MetaError::Unavailable(format!(
                "schema {} is being dropped",
                quoted(&ct.schema)
            )));
        }
        if live.in_flight().contains(&key) {
            if ct.if_not_exists && live.wait_for(&key, id) {
                return Ok(Handled::Waiting);
            }
            return Err(MetaError::Unavailable(format!(
                "table {} is being created; retry",
                quoted(&ct.name)
            )));
        }
        let partitions = ct.partition.as_ref().map_or(0, |p| p.partition_count);
        if live.intent().tables() + 1 + partitions as usize > ctx.config.tables_per_cluster_max {
            return Err(MetaError::ResourceExhausted(format!(
                "cluster {} has the most tables it takes",
                quoted(&ct.cluster)
            )));
        }
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let mut change = Change::new(cid);
        let parent_id = live.alloc_id(cid, ctx.config.id_block, &mut change.mutations);
        let mut tables = vec![TableRecord {
            id: parent_id,
            schema: sid.0,
            name: ct.name.clone(),
            shard: 0,
            encoded_schema: ct.encoded_schema.clone(),
            options: ct.options.clone(),
            parent: None,
            partition: None,
            version: 1,
        }];
        if let Some(p) = &ct.partition {
            let subs: Vec<u64> = (0..p.partition_count)
                .map(|_| live.alloc_id(cid, ctx.config.id_block, &mut change.mutations))
                .collect();
            for (i, &sub) in subs.iter().enumerate() {
                // Sub-tables share the parent's schema and options; storing them once keeps the
                // whole create inside one transaction's size.
                tables.push(TableRecord {
                    id: sub,
                    schema: sid.0,
                    name: format!("__{}_{i}", ct.name),
                    parent: Some(parent_id),
                    version: 1,
                    ..Default::default()
                });
            }
            tables[0].partition =
                Some(PartitionRecord { encoded: p.encoded.clone(), sub_tables: subs });
        }
        for t in &mut tables {
            let shard = live.place_table(c);
            t.shard = shard.0;
            change.notify(shard, Notice::Created(TableId(t.id)));
        }
        stage_version_bumps(live, c, &mut change, ctx.now, ctx.config);
        live.begin_write(key);
        let mut info = TableInfo {
            id: TableId(parent_id),
            schema: ct.schema.clone(),
            name: ct.name.clone(),
            shard: ShardId(tables[0].shard),
            sub_tables: Vec::new(),
        };
        info.sub_tables = tables[1..].iter().map(|t| TableId(t.id)).collect();
        change.mutations.extend(tables.into_iter().map(|t| Mutation::PutTable(cid, t)));
        self.queue_reply(ctx, id, change, Response::TableCreated { table: info, created: true })
    }

    fn drop_table(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        schema: &str,
        name: &str,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let (tid, t) = whole_table(c, schema, name, "drop")?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        if live.in_flight().contains(&Awaiting::TableDeletion(tid)) {
            return Err(MetaError::Unavailable(format!(
                "table {name} is being dropped; retry",
                name = quoted(name)
            )));
        }
        if live.in_flight().contains(&Awaiting::TableAlter(tid)) {
            return Err(MetaError::Unavailable(format!(
                "table {name} is being altered; retry",
                name = quoted(name)
            )));
        }
        let subs = t.partition().map(|p| p.sub_tables.clone()).unwrap_or_default();
        if let Some(p) =
            std::iter::once(tid).chain(subs.iter().map(|&s| TableId(s))).find_map(|t| c.moving(t))
        {
            return Err(MetaError::Unavailable(format!(
                "table {name} is moving between shards ({} procedure {}); retry",
                p.kind().name(),
                p.id,
                name = quoted(name)
            )));
        }
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let mut change = Change::new(cid);
        stage_drop(live, c, &mut change, tid);
        stage_version_bumps(live, c, &mut change, ctx.now, ctx.config);
        self.queue_reply(ctx, id, change, Response::TableDropped { id: tid })
    }

    /// Marks a node draining or slow (`on`), or takes the mark off. The mark joins the intent
    /// at once, so placement avoids the node before the record lands; the planner then moves
    /// its replicas (a drain) or its leaders (slow).
    fn mark_node(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        (cluster, node): (&str, &str),
        mark: NodeMark,
        on: bool,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        if on && mark == NodeMark::Drain {
            drain_allowed(c, cluster, None)?;
        }
        let nid = node_named(c, cluster, node)?;
        let live = &self.clusters[&cid];
        node_unwritten(live, nid, node)?;
        let mut record = c.node(nid).clone();
        let flag = match mark {
            NodeMark::Drain => &mut record.draining,
            NodeMark::Slow => &mut record.slow_marked,
        };
        if *flag == on {
            return Ok(Handled::Reply(Response::Node(views::node_info(c, live, nid))));
        }
        *flag = on;
        if on && mark == NodeMark::Drain {
            drain_allowed(c, cluster, Some((live, nid)))?;
        }
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        live.begin_write(Awaiting::NodeRecord(nid));
        match mark {
            NodeMark::Drain => live.set_draining(nid, on),
            NodeMark::Slow => live.set_slow_mark(nid, on),
        }
        let info = NodeInfo {
            draining: record.draining,
            slow_marked: record.slow_marked,
            ..views::node_info(c, live, nid)
        };
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutNode(cid, record));
        self.queue_reply(ctx, id, change, Response::Node(info))
    }
}

/// Refuses a change to node `nid` (named `node`) while another change of its record (its
/// removal too) is being written: the client retries.
pub(super) fn node_unwritten(live: &LiveCluster, nid: NodeId, node: &str) -> MetaResult<()> {
    match live.in_flight().contains(&Awaiting::NodeRecord(nid)) || live.removing(nid) {
        true => Err(MetaError::Unavailable(format!(
            "node {node} has a change being written; retry",
            node = quoted(node)
        ))),
        false => Ok(()),
    }
}

/// A mark an operator puts on a node, kept in its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeMark {
    /// Take it out of service: every replica leaves.
    Drain,
    /// It is slow: its leaders leave, and it takes nothing new.
    Slow,
}

impl Leader {
    /// Forgets a node for good: it must be offline (silent for a lease, so none of its leases
    /// can still run) and hold no replica in the catalog or the intent (drained, or its shards
    /// failed over). The record becomes a tombstone that keeps the id, which is never given
    /// again; the name is free at once.
    fn remove_node(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        node: &str,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let nid = node_named(c, cluster, node)?;
        let live = &self.clusters[&cid];
        node_unwritten(live, nid, node)?;
        removal_allowed(c, live, nid, ctx.now)?;
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        live.begin_write(Awaiting::NodeRecord(nid));
        live.set_removing(nid, true);
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutNode(
            cid,
            NodeRecord { id: nid.0, removed: true, ..Default::default() },
        ));
        self.queue_reply(ctx, id, change, Response::NodeRemoved { name: node.to_owned() })
    }
}

/// The table `name` of `schema`, which must not be a sub-table: those are dropped and
/// altered with their partitioned parent, as `verb` tells the caller.
pub(super) fn whole_table<'a>(
    c: &'a ClusterCatalog,
    schema: &str,
    name: &str,
    verb: &str,
) -> MetaResult<(TableId, &'a Table)> {
    let sid = schema_id(c, schema)?;
    let (tid, t) = c.table_by_name(sid, name).ok_or_else(|| {
        MetaError::NotFound(format!(
            "table {name} in schema {schema}",
            name = quoted(name),
            schema = quoted(schema)
        ))
    })?;
    if let Some(parent) = t.parent() {
        return Err(MetaError::FailedPrecondition(format!(
            "{name} is a sub-table of {:?}, which holds its schema; {verb} that table instead",
            c.table(TableId(parent)).name,
            name = quoted(name)
        )));
    }
    Ok((tid, t))
}

/// Whether `node` may be removed now: it must be offline (silent for a lease, so none of its
/// leases can still run) and hold no replica in the catalog or the intent.
pub(super) fn removal_allowed(
    c: &ClusterCatalog,
    live: &LiveCluster,
    nid: NodeId,
    now: Instant,
) -> MetaResult<()> {
    let (known, node) = (live.node(nid), quoted(&c.node(nid).name));
    if known.online {
        return Err(MetaError::FailedPrecondition(format!(
            "node {node} is online (heard {} ms ago); stop it first, and drain it beforehand to move its replicas",
            now.saturating_since(known.last_heartbeat).0)));
    }
    let held = c.node_shards[nid.index()].len() as u32;
    if held > 0 || known.replicas > 0 {
        return Err(MetaError::FailedPrecondition(format!(
            "node {node} still holds {} replicas; drain it, or wait for its shards to fail over",
            held.max(known.replicas)
        )));
    }
    Ok(())
}

/// Whether a drain may begin: the cluster is dynamic, and (with the node, once known) the
/// drain leaves enough nodes (see [`check_drain`]).
pub(super) fn drain_allowed(
    c: &ClusterCatalog,
    cluster: &str,
    node: Option<(&LiveCluster, NodeId)>,
) -> MetaResult<()> {
    if c.record.topology() == Topology::Static {
        return Err(MetaError::FailedPrecondition(format!(
            "cluster {cluster} is static: its shards stay on their nodes, so none can be drained",
            cluster = quoted(cluster)
        )));
    }
    node.map_or(Ok(()), |(live, nid)| check_drain(c, live, nid))
}

/// A drain must leave enough nodes to hold each shard's replicas on distinct nodes; otherwise
/// its replicas would have nowhere to go. Only nodes that take replicas now count: an offline
/// node may never come back (a one-shot sender never does), and a drain that waits for it
/// would never end. (`min_nodes` only gates the first assignment.)
fn check_drain(c: &ClusterCatalog, live: &LiveCluster, node: NodeId) -> MetaResult<()> {
    let r = &c.record;
    let remaining = live.nodes().iter().filter(|&(id, n)| id != node && n.placeable()).count();
    let needed = r.followers_per_shard as usize + 1;
    if remaining < needed {
        return Err(MetaError::FailedPrecondition(format!(
            "draining {:?} would leave {remaining} nodes that take replicas (online, settled, not draining); cluster {:?} needs {needed}",
            c.node(node).name,
            r.name
        )));
    }
    Ok(())
}

/// Deletes `table` and its sub-tables in `change`, and tells their shards (whose versions the
/// caller then bumps, once per change).
pub(super) fn stage_drop(
    live: &mut LiveCluster,
    c: &ClusterCatalog,
    change: &mut Change,
    table: TableId,
) {
    let subs = c.table(table).partition().map(|p| p.sub_tables.clone()).unwrap_or_default();
    for t in std::iter::once(table).chain(subs.into_iter().map(TableId)) {
        let shard = ShardId(c.table(t).shard);
        live.unplace_table(c, shard);
        live.begin_write(Awaiting::TableDeletion(t));
        change.notify(shard, Notice::Dropped(vec![t]));
        change.mutations.push(Mutation::DeleteTable(c.id(), t));
    }
}

/// Every shard a change notifies gets one new version: its table set changed.
pub(super) fn stage_version_bumps(
    live: &mut LiveCluster,
    c: &ClusterCatalog,
    change: &mut Change,
    now: Instant,
    config: &CoreConfig,
) {
    for &(shard, _) in &change.notify {
        let mut rec = live.intended(c, shard).clone();
        rec.version += 1;
        live.set_intended(c, rec.clone(), now, config);
        change.mutations.push(Mutation::PutShard(c.id(), rec));
    }
}

fn check_table_request(ctx: &Ctx, ct: &CreateTable) -> MetaResult<()> {
    let cfg = ctx.config;
    validate::table_name(&ct.name, cfg.name_len_max)?;
    check_schema_bytes(cfg, &ct.name, &ct.encoded_schema)?;
    check_options(cfg, &ct.options)?;
    if let Some(p) = &ct.partition {
        if p.partition_count == 0 || p.partition_count > cfg.partitions_max {
            return Err(MetaError::InvalidArgument(format!(
                "partition count {} is outside 1..={}",
                p.partition_count, cfg.partitions_max
            )));
        }
    }
    Ok(())
}

/// An encoded schema, as a create or an alter gives it.
pub(super) fn check_schema_bytes(
    cfg: &CoreConfig,
    table: &str,
    encoded_schema: &[u8],
) -> MetaResult<()> {
    if encoded_schema.len() > cfg.encoded_schema_bytes_max {
        return Err(MetaError::InvalidArgument(format!(
            "encoded schema of table {table} is {} bytes; the limit is {}",
            encoded_schema.len(),
            cfg.encoded_schema_bytes_max,
            table = quoted(table)
        )));
    }
    Ok(())
}

/// Table options, as a create or an alter gives them.
pub(super) fn check_options(
    cfg: &CoreConfig,
    options: &BTreeMap<String, String>,
) -> MetaResult<()> {
    if options.len() > cfg.table_options_max {
        return Err(MetaError::InvalidArgument(format!(
            "{} table options; the limit is {}",
            options.len(),
            cfg.table_options_max
        )));
    }
    if let Some((k, _)) =
        options.iter().find(|(k, v)| k.is_empty() || k.len() + v.len() > cfg.option_bytes_max)
    {
        return Err(MetaError::InvalidArgument(format!(
            "table option {k} is empty or longer than {} bytes",
            cfg.option_bytes_max,
            k = quoted(k)
        )));
    }
    Ok(())
}
