//! Planned restarts, the leader's part: the operator's request that begins or ends one, and
//! the tick's bookkeeping that ends one when its node's leaders are back, when the node stays
//! down past its window, or when it stays back that long with leaders that cannot return. The
//! scheduler moves the leaders (`scheduler::restart`).

use super::clusters::{cluster_named, node_named};
use super::requests::{node_unwritten, Handled};
use super::writes::Change;
use super::{views, Ctx, Leader};
use crate::core::cause::Cause;
use crate::core::error::{quoted, MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::live::awaiting::Awaiting;
use crate::core::live::LiveCluster;
use crate::core::model::{ClusterCatalog, Mutation, NodeRecord, RestartRecord, Topology};
use crate::core::output::{NodeInfo, Response};
use crate::core::time::Duration;

/// The most shards a planned restart remembers to give back, so that the node record stays
/// small (at 5 bytes a shard id, 320 KiB); leaders past them are left to the balancer.
const RESTART_LEADERS_MAX: usize = 65_536;

/// Whether a planned restart of `nid` may begin: the cluster is dynamic, and the node runs
/// and is not draining.
pub(super) fn restart_allowed(
    c: &ClusterCatalog,
    live: &LiveCluster,
    nid: NodeId,
    cluster: &str,
) -> MetaResult<()> {
    let refuse = |why: String| Err(MetaError::FailedPrecondition(why));
    let (record, known, node) = (c.node(nid), live.node(nid), quoted(&c.node(nid).name));
    if c.record.topology() == Topology::Static {
        return refuse(format!("cluster {} is static: its leaders stay on their nodes, so a restart is only a failure to wait out", quoted(cluster)));
    }
    if record.draining {
        return refuse(format!("node {node} is draining: it will not come back"));
    }
    if !(known.online && known.heard) {
        return refuse(format!("node {node} is not running: a planned restart begins while the process that is to restart runs"));
    }
    Ok(())
}

impl Leader {
    /// Begins a planned restart of `node`, or (`end`) ends one now.
    pub(super) fn restart_node(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        (cluster, node): (&str, &str),
        end: bool,
        window_ms: u64,
    ) -> MetaResult<Handled> {
        let window_ms = match window_ms {
            0 => ctx.config.restart_window_default_ms,
            w if w > ctx.config.restart_window_max_ms => {
                return Err(MetaError::InvalidArgument(format!(
                    "a restart window of {w} ms is over the maximum of {} ms",
                    ctx.config.restart_window_max_ms
                )))
            }
            w => w,
        };
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let cid = c.id();
        let nid = node_named(c, cluster, node)?;
        let live = &self.clusters[&cid];
        let (record, known) = (c.node(nid), live.node(nid));
        node_unwritten(live, nid, node)?;
        let restart = if end {
            if record.restart.is_none() {
                return Ok(Handled::Reply(Response::Node(views::node_info(c, live, nid))));
            }
            None
        } else {
            restart_allowed(c, live, nid, cluster)?;
            match record.restart.as_ref().filter(|r| r.incarnation == known.incarnation) {
                Some(r) if r.window_ms == window_ms => {
                    return Ok(Handled::Reply(Response::Node(views::node_info(c, live, nid))));
                }
                // Begun again for the same process: a new window; the leaders to give back
                // are still those it led when the restart began, not the few it leads now.
                Some(r) => Some(RestartRecord { window_ms, ..r.clone() }),
                None => {
                    let leaders: Vec<u32> = c.node_shards[nid.index()]
                        .iter()
                        .filter(|&&s| live.intended(c, s).leader == Some(nid.0))
                        .take(RESTART_LEADERS_MAX)
                        .map(|s| s.0)
                        .collect();
                    Some(RestartRecord { incarnation: known.incarnation, window_ms, leaders })
                }
            }
        };
        self.check_backlog(ctx)?;
        let text = match &restart {
            Some(r) if record.restart.as_ref().is_some_and(|o| o.incarnation == r.incarnation) => {
                format!(
                    "an operator set the restart window of {} to {} s",
                    record.name,
                    r.window_ms / 1_000
                )
            }
            Some(r) => format!(
                "an operator began a restart of {}: its {} leaders leave, its followers stay for up to {} s down",
                record.name,
                r.leaders.len(),
                r.window_ms / 1_000
            ),
            None => format!("an operator ended the restart of {}", record.name),
        };
        let record = NodeRecord { restart, ..record.clone() };
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        live.log_event(ctx.now, Cause::Restart, None, text, ctx.config);
        let restart = record.restart.clone();
        let change = restart_change(c, live, record);
        let info = NodeInfo {
            restart: restart.map(|r| views::restart_info(c, live.node(nid), nid, &r)),
            ..views::node_info(c, live, nid)
        };
        self.queue_reply(ctx, id, change, Response::Node(info))
    }

    /// Ends the planned restarts that are over: the node's leaders are back (or as many as its
    /// fair share); the node stayed down past its window (its followers are then replaced as
    /// usual); or it has been back for a window with leaders that could not return (the
    /// balancer takes it from there).
    pub(super) fn end_restarts(&mut self, ctx: &mut Ctx) {
        for (&cid, live) in self.clusters.iter_mut() {
            let c = self.catalog.cluster(cid);
            live.refresh_restarts(ctx.now);
            let restarting = c.nodes.iter().filter(|n| n.restart.is_some());
            let mut ended = Vec::new();
            for record in restarting {
                let nid = NodeId(record.id);
                let r = record.restart.as_ref().expect("filtered");
                let known = live.node(nid);
                let window = Duration(r.window_ms);
                // Shards come back only to a node the placement rule lets lead.
                let may_lead = c.placement.as_ref().is_none_or(|p| p.fits_leader(record));
                let kept: Vec<u32> = r
                    .leaders
                    .iter()
                    .copied()
                    .filter(|&s| may_lead && still_held(c, live, s, nid))
                    .collect();
                let led = kept.iter().filter(|&&s| leads(c, live, s, nid)).count();
                let home = led == kept.len() || known.leaders >= live.fair_leader_share();
                let why = match known.restart {
                    _ if live.in_flight().contains(&Awaiting::NodeRecord(nid)) => continue,
                    Some(p) if !known.online && !p.held && !known.returning => format!(
                        "{} stayed down past its restart window of {} s: its followers are replaced",
                        record.name,
                        window.0 / 1_000
                    ),
                    Some(p) if p.back_since.is_some() && home => format!(
                        "{} is back from its restart and leads {led} of its {} shards again",
                        record.name,
                        r.leaders.len()
                    ),
                    Some(p) if p.running_since.is_some_and(|t| ctx.now > t + window) => format!(
                        "{} did not restart within its restart window of {} s: it takes shards again",
                        record.name,
                        window.0 / 1_000
                    ),
                    Some(p) if p.back_since.is_some_and(|t| ctx.now > t + window) => format!(
                        "{} has been back from its restart for {} s: {led} of its {} shards lead there again, the balancer sees to the rest",
                        record.name,
                        window.0 / 1_000,
                        r.leaders.len()
                    ),
                    _ => continue,
                };
                ended.push((NodeRecord { restart: None, ..record.clone() }, why));
            }
            for (record, why) in ended {
                live.log_event(ctx.now, Cause::Restart, None, why, ctx.config);
                self.writes.queue(restart_change(c, live, record));
            }
        }
    }
}

/// Whether `node` still holds a replica of `shard`, which has not been merged away: a shard it
/// can lead again.
fn still_held(c: &ClusterCatalog, live: &LiveCluster, shard: u32, node: NodeId) -> bool {
    shard < c.record.shard_count
        && !c.shard(ShardId(shard)).retired
        && live.intended(c, ShardId(shard)).replicas().any(|r| r == node.0)
}

/// Whether `node` leads `shard` again, in the intent, or is being handed it.
fn leads(c: &ClusterCatalog, live: &LiveCluster, shard: u32, node: NodeId) -> bool {
    let rec = live.intended(c, ShardId(shard));
    rec.leader == Some(node.0) || rec.transfer.is_some_and(|t| t.to == node.0)
}

/// The write of a node record whose planned restart began or ended, joined to the intent at
/// once.
fn restart_change(c: &ClusterCatalog, live: &mut LiveCluster, record: NodeRecord) -> Change {
    let nid = NodeId(record.id);
    live.begin_write(Awaiting::NodeRecord(nid));
    live.set_restart(nid, record.restart.as_ref());
    let mut change = Change::new(c.id());
    change.mutations.push(Mutation::PutNode(c.id(), record));
    change
}
