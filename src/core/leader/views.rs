//! Read-only answers built from the catalog (never from the intent: nothing unacknowledged is
//! ever visible) plus liveness as heard.

use super::paging::{ids_after, paginate};
use crate::core::config::CoreConfig;
use crate::core::error::quoted;
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::input::PageRequest;
use crate::core::live::{LiveCluster, LiveNode};
use crate::core::model::{ClusterCatalog, ProcedureKind, RestartRecord, ShardRecord, Table};
use crate::core::output::*;
use crate::core::time::Instant;

pub(super) fn cluster_info(c: &ClusterCatalog) -> ClusterInfo {
    let r = &c.record;
    ClusterInfo {
        id: ClusterId(r.id),
        name: r.name.clone(),
        shard_count: r.shard_count,
        followers_per_shard: r.followers_per_shard,
        topology: r.topology(),
        min_nodes: r.min_nodes,
        epoch: c.epoch,
    }
}

pub(super) fn table_info(c: &ClusterCatalog, id: TableId, t: &Table) -> TableInfo {
    TableInfo {
        id,
        schema: c.schemas[&t.schema].name.clone(),
        name: t.name.to_string(),
        shard: ShardId(t.shard),
        sub_tables: t
            .partition()
            .map(|p| p.sub_tables.iter().map(|&id| TableId(id)).collect())
            .unwrap_or_default(),
    }
}

/// The schema named `schema`; one being dropped is gone already.
pub(super) fn schema_id(c: &ClusterCatalog, schema: &str) -> MetaResult<SchemaId> {
    match c.schema_by_name.get(schema) {
        Some(&sid) if !c.schemas[&sid].dropping => Ok(sid),
        Some(_) => Err(MetaError::NotFound(format!(
            "schema {schema} in cluster {:?} is being dropped",
            c.record.name,
            schema = quoted(schema)
        ))),
        None => Err(MetaError::NotFound(format!(
            "schema {schema} in cluster {:?}",
            c.record.name,
            schema = quoted(schema)
        ))),
    }
}

pub(super) fn endpoint(c: &ClusterCatalog, node: u32) -> Endpoint {
    let n = c.node(NodeId(node));
    Endpoint { name: n.name.clone(), endpoint: n.endpoint.clone() }
}

/// The named tables of `schema`, in order; `NotFound` names the first that is missing.
fn named<'a>(
    c: &'a ClusterCatalog,
    schema: &str,
    tables: &'a [String],
) -> MetaResult<Vec<(TableId, &'a Table)>> {
    let sid = schema_id(c, schema)?;
    let find = |name: &String| {
        c.table_by_name(sid, name).ok_or_else(|| {
            MetaError::NotFound(format!(
                "table {name} in schema {schema}",
                name = quoted(name),
                schema = quoted(schema)
            ))
        })
    };
    tables.iter().map(find).collect()
}

/// Routes of the named tables. A partitioned table's route is followed by those of its
/// sub-tables, which hold its rows, so that one answer covers a query over it.
pub(super) fn routes(c: &ClusterCatalog, schema: &str, tables: &[String]) -> MetaResult<Response> {
    let mut routes = Vec::with_capacity(tables.len());
    let route = |id: TableId, t: &Table| {
        let s = c.shard(ShardId(t.shard));
        TableRoute {
            table: t.name.to_string(),
            table_id: id,
            shard: ShardId(s.id),
            version: Version(s.version),
            leader: s.leader.map(|l| endpoint(c, l)),
            followers: s.followers.iter().map(|&f| endpoint(c, f)).collect(),
        }
    };
    for (id, t) in named(c, schema, tables)? {
        routes.push(route(id, t));
        let subs = t.partition().map_or(&[][..], |p| &p.sub_tables[..]);
        routes.extend(subs.iter().map(|&sub| route(TableId(sub), c.table(TableId(sub)))));
    }
    Ok(Response::Routes { epoch: c.epoch, routes })
}

/// Everything stored about the named tables. A sub-table is answered with its parent's
/// encoded schema and options, which it shares.
pub(super) fn table_details(
    c: &ClusterCatalog,
    schema: &str,
    tables: &[String],
    cfg: &CoreConfig,
) -> MetaResult<Response> {
    let mut details = Vec::with_capacity(tables.len());
    let mut bytes = 0usize;
    for (id, t) in named(c, schema, tables)? {
        let owner = t.parent().map_or(t, |p| c.table(TableId(p)));
        bytes = bytes.saturating_add(owner.encoded_schema.len());
        if bytes > cfg.table_details_bytes_max {
            return Err(MetaError::ResourceExhausted(format!(
                "the encoded schemas of these {} tables pass {} bytes, the most one answer carries; ask for fewer",
                tables.len(),
                cfg.table_details_bytes_max
            )));
        }
        details.push(TableDetail {
            info: table_info(c, id, t),
            version: owner.version,
            encoded_schema: owner.encoded_schema.to_vec(),
            options: owner.extra.as_ref().map(|e| e.options.clone()).unwrap_or_default(),
            partition_rule: t.partition().map(|p| p.encoded.clone()),
            parent: t.parent().map(TableId),
        });
    }
    Ok(Response::TableDetails { epoch: c.epoch, tables: details })
}

pub(super) fn nodes(
    c: &ClusterCatalog,
    live: &LiveCluster,
    page: &PageRequest,
    cfg: &CoreConfig,
) -> Page<NodeInfo> {
    // A removed node's tombstone is not listed.
    let rows = ids_after(page.after, c.nodes.len())
        .map(|i| (i as u64, (!c.nodes[i].removed).then(|| node_info(c, live, NodeId(i as u32)))));
    paginate(page, cfg, rows)
}

pub(super) fn node_info(c: &ClusterCatalog, live: &LiveCluster, id: NodeId) -> NodeInfo {
    let (n, known, held) = (c.node(id), live.node(id), &c.node_shards[id.index()]);
    NodeInfo {
        name: n.name.clone(),
        endpoint: n.endpoint.clone(),
        zone: n.zone.clone(),
        labels: n.labels_with_zone(),
        state: if known.online { NodeState::Online } else { NodeState::Offline },
        draining: n.draining,
        shards: held.iter().filter(|s| c.shard(**s).leader == Some(id.0)).count() as u32,
        replicas: held.len() as u32,
        stats: known.stats,
        load_rejections: known.load_rejections,
        admitted: known.online && known.admitted,
        slow: known.slowness.slow(),
        slow_marked: n.slow_marked,
        restart: n.restart.as_ref().map(|r| restart_info(c, known, id, r)),
    }
}

/// How node `id`'s planned restart `r` stands.
pub(super) fn restart_info(
    c: &ClusterCatalog,
    known: &LiveNode,
    id: NodeId,
    r: &RestartRecord,
) -> RestartInfo {
    let phase = if known.leaving_for_restart() {
        "leaving"
    } else if known.back_from_restart() {
        "back"
    } else {
        "down"
    };
    let led = r.leaders.iter().filter(|&&s| c.shard(ShardId(s)).leader == Some(id.0));
    RestartInfo {
        phase,
        window_ms: r.window_ms,
        leaders: r.leaders.len() as u32,
        led_again: led.count() as u32,
    }
}

pub(super) fn shard_status(c: &ClusterCatalog, live: &LiveCluster, id: ShardId) -> ShardStatus {
    let s = c.shard(id);
    match s.leader {
        None if s.retired => ShardStatus::Retired,
        None => ShardStatus::Unassigned,
        Some(_) if s.transfer.is_some() => ShardStatus::Transferring,
        Some(l) if !live.node(NodeId(l)).online => ShardStatus::Offline,
        Some(_) if live.leases().leader_ready(id) => ShardStatus::Ready,
        Some(_) => ShardStatus::Opening,
    }
}

pub(super) fn shards(
    c: &ClusterCatalog,
    live: &LiveCluster,
    page: &PageRequest,
    cfg: &CoreConfig,
) -> Page<ShardInfo> {
    let name = |n: u32| c.node(NodeId(n)).name.clone();
    let info = |s: &ShardRecord| {
        let (load, load_windows) = live.loads().smoothed(ShardId(s.id));
        ShardInfo {
            id: ShardId(s.id),
            version: Version(s.version),
            leader: s.leader.map(name),
            followers: s.followers.iter().map(|&f| name(f)).collect(),
            status: shard_status(c, live, ShardId(s.id)),
            tables: c.shard_tables[s.id as usize].len() as u32,
            load,
            load_windows,
            busiest: live
                .loads()
                .busiest(ShardId(s.id))
                .filter(|t| c.shard_tables[s.id as usize].contains(&t.table))
                .collect(),
            lagging: s
                .followers
                .iter()
                .filter_map(|&f| Some((name(f), live.laggards().lag(ShardId(s.id), NodeId(f))?)))
                .collect(),
        }
    };
    let rows = c.shards[ids_after(page.after, c.shards.len())]
        .iter()
        .map(|s| (s.id as u64, Some(info(s))));
    paginate(page, cfg, rows)
}

/// Tables in id order; with a schema filter a page may come back short (see [`paginate`]).
pub(super) fn tables(
    c: &ClusterCatalog,
    schema: Option<&str>,
    page: &PageRequest,
    cfg: &CoreConfig,
) -> MetaResult<Page<TableInfo>> {
    let filter = schema.map(|s| schema_id(c, s)).transpose()?;
    let rows = c.tables.iter_after(page.after.map(TableId)).map(|(id, t)| {
        let item = filter.is_none_or(|sid| sid == t.schema).then(|| table_info(c, id, t));
        (id.0, item)
    });
    Ok(paginate(page, cfg, rows))
}

pub(super) fn view(
    c: &ClusterCatalog,
    live: &LiveCluster,
    term: Term,
    changes_pending: usize,
    (now, config): (Instant, &CoreConfig),
) -> ClusterView {
    let online = live.nodes().iter().filter(|(_, n)| n.online).count() as u32;
    let counted = |judge: &dyn Fn(&LiveNode) -> bool| {
        live.nodes().iter().filter(|(_, n)| n.online && judge(n)).count() as u32
    };
    // One pass over the shards and one over the procedures, counted by position in `ALL`.
    let mut by_status = [0u32; ShardStatus::ALL.len()];
    for i in 0..c.record.shard_count {
        by_status[shard_status(c, live, ShardId(i)) as usize] += 1;
    }
    let mut by_kind = [0u32; ProcedureKind::ALL.len()];
    for p in c.procedures.values() {
        by_kind[ProcedureKind::ALL
            .iter()
            .position(|&k| k == p.kind())
            .expect("every kind is in ALL")] += 1;
    }
    ClusterView {
        cluster: cluster_info(c),
        term,
        nodes_online: online,
        nodes_offline: live.nodes().len() as u32 - online,
        nodes_slow: counted(&|n| n.slowness.slow()),
        nodes_stats_frozen: counted(&|n| n.stats_frozen(now, config)),
        nodes_stats_contradicted: live
            .nodes()
            .iter()
            .filter(|(id, n)| n.online && live.contrasts().contradicted(*id))
            .count() as u32,
        jobs: live
            .jobs()
            .iter()
            .map(|(n, p)| (c.node(n).name.clone(), p.job.name(), p.remaining))
            .collect(),
        shards_ready: by_status[ShardStatus::Ready as usize],
        shards_unassigned: by_status[ShardStatus::Unassigned as usize],
        tables: c.tables.len() as u32,
        changes_pending: changes_pending as u32,
        placement_unsatisfied: live.unsatisfied().shards,
        events_by_cause: live.events().counts().collect(),
        shards_by_status: ShardStatus::ALL
            .iter()
            .zip(by_status)
            .map(|(s, n)| (s.name(), n))
            .collect(),
        procedures_by_kind: ProcedureKind::ALL
            .iter()
            .zip(by_kind)
            .map(|(k, n)| (k.name(), n))
            .collect(),
        failovers: live.leases().failovers().clone(),
    }
}
