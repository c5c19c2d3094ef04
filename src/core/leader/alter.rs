//! AlterTable: a new encoded schema or new options for a table, as a compare-and-set on the
//! table's version. The new record lands with a version bump of every shard that holds the
//! table or one of its sub-tables (which share its schema), and those shards' replicas get an
//! `AlterTable` command at that shard version.

use super::clusters::cluster_named;
use super::requests::{
    check_options, check_schema_bytes, stage_version_bumps, whole_table, Handled,
};
use super::views;
use super::writes::{Change, Notice};
use super::{Ctx, Leader};
use crate::core::error::quoted;
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::input::AlterTable;
use crate::core::live::awaiting::Awaiting;
use crate::core::model::Mutation;
use crate::core::output::{Response, TableDetail};

impl Leader {
    pub(super) fn alter_table(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        alter: &AlterTable,
    ) -> MetaResult<Handled> {
        let cfg = ctx.config;
        let AlterTable { cluster, schema, name, expected_version, encoded_schema, options } = alter;
        if encoded_schema.is_none() && options.is_none() {
            return Err(MetaError::InvalidArgument(format!(
                "the alter of {name} changes nothing: give an encoded schema, options, or both",
                name = quoted(name)
            )));
        }
        if let Some(bytes) = encoded_schema {
            check_schema_bytes(cfg, name, bytes)?;
        }
        if let Some(options) = options {
            check_options(cfg, options)?;
        }
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, cfg)?;
        let cid = c.id();
        let (tid, t) = whole_table(c, schema, name, "alter")?;
        let live = &self.clusters[&cid];
        if live.table_written(tid) {
            return Err(MetaError::Unavailable(format!(
                "table {name} is being altered or dropped; retry",
                name = quoted(name)
            )));
        }
        if t.version != *expected_version {
            return Err(MetaError::Aborted(format!(
                "table {name} is at version {}, not the expected {expected_version}; read it again (GetTable) and decide again",
                t.version, name = quoted(name))));
        }
        let subs: Vec<TableId> = t
            .partition()
            .map(|p| p.sub_tables.iter().map(|&s| TableId(s)).collect())
            .unwrap_or_default();
        if let Some(p) = std::iter::once(tid).chain(subs.iter().copied()).find_map(|t| c.moving(t))
        {
            return Err(MetaError::Unavailable(format!(
                "table {name} is moving between shards ({} procedure {}); retry",
                p.kind().name(),
                p.id,
                name = quoted(name)
            )));
        }
        self.check_backlog(ctx)?;
        let mut record = t.to_record(tid);
        record.version = t.version.checked_add(1).ok_or_else(|| {
            MetaError::FailedPrecondition(format!(
                "table {name} has run out of versions",
                name = quoted(name)
            ))
        })?;
        if let Some(bytes) = encoded_schema {
            record.encoded_schema = bytes.clone();
        }
        if let Some(options) = options {
            record.options = options.clone();
        }
        let mut change = Change::new(cid);
        for table in std::iter::once(tid).chain(subs) {
            change.notify(ShardId(c.table(table).shard), Notice::Altered(table, record.version));
        }
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        stage_version_bumps(live, c, &mut change, ctx.now, cfg);
        live.begin_write(Awaiting::TableAlter(tid));
        let detail = TableDetail {
            info: views::table_info(c, tid, t),
            version: record.version,
            encoded_schema: record.encoded_schema.clone(),
            options: record.options.clone(),
            partition_rule: record.partition.as_ref().map(|p| p.encoded.clone()),
            parent: None,
        };
        change.mutations.push(Mutation::PutTable(cid, record));
        self.queue_reply(ctx, id, change, Response::TableAltered(detail))
    }
}
