//! DropCluster and DropSchema.
//!
//! A cluster is dropped in one write, whatever it holds: a range delete of everything inside
//! it, and its record turned into a tombstone that keeps its id (never given again). The write
//! shares its transaction with nothing, and once it is decided the cluster takes no more
//! decisions and answers nothing, so no write about it can land after it.
//!
//! An empty schema is deleted in one write. A cascading drop of a schema with
//! tables (a million of them, perhaps) cannot be one transaction: it stores the schema marked
//! `dropping`, which hides it at once (lookups answer NOT_FOUND, creates in it are refused), and
//! the leader then deletes its tables a transaction at a time on every tick, and the schema
//! once none is left. The mark is stored, so a new meta leader carries the drop on.

use super::clusters::cluster_named;
use super::requests::{stage_drop, stage_version_bumps, Handled};
use super::writes::Change;
use super::{Ctx, Leader};
use crate::core::config::CoreConfig;
use crate::core::error::quoted;
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::live::awaiting::Awaiting;
use crate::core::model::Mutation;
use crate::core::model::{ClusterCatalog, ClusterRecord, SchemaRecord};
use crate::core::output::Response;

/// Writes of table deletions one tick queues per schema being dropped, at most.
const DROP_WRITES_PER_TICK: usize = 64;

impl Leader {
    pub(super) fn drop_cluster(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        force: bool,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        if ctx.config.default_cluster.as_ref().is_some_and(|d| d.name == cluster) {
            return Err(MetaError::FailedPrecondition(format!(
                "cluster {cluster} is this service's default cluster, which the leader creates again whenever it is missing; configure another default (or none) to drop it", cluster = quoted(cluster))));
        }
        let live = &self.clusters[&cid];
        let online: Vec<&str> = live
            .nodes()
            .iter()
            .filter(|(_, n)| n.online)
            .map(|(node, _)| c.node(node).name.as_str())
            .collect();
        if !online.is_empty() && !force {
            return Err(MetaError::FailedPrecondition(format!(
                "{} nodes of cluster {cluster} are online ({}); stop them first, or drop it with force (they are then refused, and their leases run out)",
                online.len(),
                online.iter().take(3).copied().collect::<Vec<_>>().join(", "), cluster = quoted(cluster))));
        }
        self.check_backlog(ctx)?;
        let tables = c.tables.len() as u64;
        self.pending_clusters.dropping.insert(cid);
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::DeleteClusterData(cid));
        change.mutations.push(Mutation::PutCluster(ClusterRecord {
            id: cid.0,
            dropped: true,
            ..Default::default()
        }));
        self.queue_reply(ctx, id, change, Response::ClusterDropped { id: cid, tables })
    }

    pub(super) fn drop_schema(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        name: &str,
        cascade: bool,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let sid = *c.schema_by_name.get(name).ok_or_else(|| {
            MetaError::NotFound(format!(
                "schema {name} in cluster {cluster}",
                name = quoted(name),
                cluster = quoted(cluster)
            ))
        })?;
        if sid == SchemaId(0) {
            return Err(MetaError::FailedPrecondition(
                "the public schema is where requests that name no schema go; it cannot be dropped"
                    .into(),
            ));
        }
        let tables = c.tables.in_schema(sid).count() as u64;
        if c.schemas[&sid].dropping {
            return Ok(Handled::Reply(Response::SchemaDropped { id: sid, tables }));
        }
        let live = &self.clusters[&cid];
        if live.in_flight().contains(&Awaiting::SchemaDrop(sid))
            || live.in_flight().creating_in(sid)
        {
            return Err(MetaError::Unavailable(format!(
                "schema {name} has a change being written; retry",
                name = quoted(name)
            )));
        }
        if tables > 0 && !cascade {
            return Err(MetaError::FailedPrecondition(format!(
                "schema {name} holds {tables} tables; drop them first, or drop it with cascade",
                name = quoted(name)
            )));
        }
        self.check_backlog(ctx)?;
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        live.begin_write(Awaiting::SchemaDrop(sid));
        let mut change = Change::new(cid);
        change.mutations.push(match tables {
            0 => Mutation::DeleteSchema(cid, sid.0),
            _ => {
                Mutation::PutSchema(cid, SchemaRecord { dropping: true, ..c.schemas[&sid].clone() })
            }
        });
        self.queue_reply(ctx, id, change, Response::SchemaDropped { id: sid, tables })
    }

    /// On every tick: the next tables of each schema being dropped are deleted, or the schema
    /// once it holds none.
    pub(super) fn advance_schema_drops(&mut self, ctx: &mut Ctx) {
        let dropping = &self.pending_clusters.dropping;
        for (&cid, live) in self.clusters.iter_mut().filter(|(id, _)| !dropping.contains(id)) {
            let c = self.catalog.cluster(cid);
            for sid in c.schemas.iter().filter(|(_, s)| s.dropping).map(|(&id, _)| id) {
                if live.in_flight().contains(&Awaiting::SchemaDrop(sid)) {
                    continue;
                }
                // A create decided before the mark landed lands first, and is deleted after.
                if c.tables.in_schema(sid).next().is_none() && !live.in_flight().creating_in(sid) {
                    live.begin_write(Awaiting::SchemaDrop(sid));
                    let mut change = Change::new(cid);
                    change.mutations.push(Mutation::DeleteSchema(cid, sid.0));
                    self.writes.queue(change);
                    continue;
                }
                for batch in deletion_batches(c, live, sid, ctx.config) {
                    let mut change = Change::new(cid);
                    for table in batch {
                        stage_drop(live, c, &mut change, table);
                    }
                    stage_version_bumps(live, c, &mut change, ctx.now, ctx.config);
                    self.writes.queue(change);
                }
            }
        }
    }
}

/// The schema's tables to delete now, in writes that each fit a transaction: whole tables
/// (a partitioned one with its sub-tables), each deletion beside at most one shard version bump.
/// Tables already being dropped or altered, or moved by a split or merge, wait for a later tick.
fn deletion_batches(
    c: &ClusterCatalog,
    live: &crate::core::live::LiveCluster,
    sid: SchemaId,
    config: &CoreConfig,
) -> Vec<Vec<TableId>> {
    let ops_max = config.txn_ops_max - 1;
    let mut batches: Vec<Vec<TableId>> = Vec::new();
    let mut ops = 0;
    for id in c.tables.in_schema(sid) {
        let t = c.table(id);
        if t.parent().is_some() {
            continue; // goes with its parent
        }
        let group: Vec<TableId> = std::iter::once(id)
            .chain(t.partition().into_iter().flat_map(|p| p.sub_tables.iter().map(|&s| TableId(s))))
            .collect();
        if group.iter().any(|&t| live.table_written(t) || c.moving(t).is_some()) {
            continue;
        }
        let cost = 2 * group.len();
        if batches.is_empty() || ops + cost > ops_max {
            if batches.len() == DROP_WRITES_PER_TICK {
                break;
            }
            batches.push(Vec::new());
            ops = 0;
        }
        ops += cost;
        batches.last_mut().expect("pushed above").push(id);
    }
    batches
}
