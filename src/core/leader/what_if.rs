//! `WhatIf`: a drain, a removal, a planned restart, a rule change or the loss of a zone,
//! rehearsed on a copy of the cluster (`scheduler::rehearsal`) and reported with what would
//! block it, the moves it takes and what it leaves. Nothing changes.

use super::clusters::{cluster_named, node_named};
use super::requests::{drain_allowed, removal_allowed, Handled};
use super::restart::restart_allowed;
use super::{Ctx, Leader};
use crate::core::error::{quoted, MetaError, MetaResult};
use crate::core::ids::*;
use crate::core::input::WhatIf;
use crate::core::model::{ClusterCatalog, Mutation, NodeRecord, PlacementRecord, RestartRecord};
use crate::core::output::{NodeAfter, Response, WhatIfReport};
use crate::core::scheduler::rehearsal::{rehearse, Rehearsal};

impl Leader {
    pub(super) fn what_if(&self, ctx: &Ctx, cluster: &str, change: &WhatIf) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let live = &self.clusters[&c.id()];
        let (mut copy, mut copy_live) = (c.clone(), live.clone());
        let cid = c.id();
        let node = |name: &str| node_named(c, cluster, name);
        let put_node = |copy: &mut ClusterCatalog, record: NodeRecord| {
            copy.apply(Mutation::PutNode(cid, record)).expect("a node record of the catalog's own")
        };
        let (text, refused) = match change {
            WhatIf::Drain(name) => {
                let nid = node(name)?;
                let refused = drain_allowed(c, cluster, Some((live, nid))).err();
                put_node(&mut copy, NodeRecord { draining: true, ..c.node(nid).clone() });
                copy_live.set_draining(nid, true);
                (format!("drain {name}"), refused)
            }
            WhatIf::Remove(name) => {
                let nid = node(name)?;
                let refused = removal_allowed(c, live, nid, ctx.now).err();
                copy_live.set_online(nid, false);
                (format!("remove {name} (its replicas failed over and repaired first)"), refused)
            }
            WhatIf::RestartBegin(name) => {
                let nid = node(name)?;
                let refused = restart_allowed(c, live, nid, cluster).err();
                let leaders = c.node_shards[nid.index()]
                    .iter()
                    .filter(|&&s| live.intended(c, s).leader == Some(nid.0))
                    .map(|s| s.0)
                    .collect();
                let restart = RestartRecord {
                    incarnation: live.node(nid).incarnation,
                    window_ms: ctx.config.restart_window_default_ms,
                    leaders,
                };
                put_node(
                    &mut copy,
                    NodeRecord { restart: Some(restart.clone()), ..c.node(nid).clone() },
                );
                copy_live.set_restart(nid, Some(&restart));
                (format!("begin a planned restart of {name}"), refused)
            }
            WhatIf::Placement(rule) => {
                let version = live.placement_written(c).map_or(0, |r| r.version) + 1;
                let rule = PlacementRecord { version, ..rule.clone() };
                let text = format!("set the placement rule: {}", rule.describe());
                copy.apply(Mutation::PutPlacement(cid, rule)).expect("a rule applies");
                copy_live.placement_landed(version);
                copy_live.refit(&copy, ctx.config);
                (text, None)
            }
            WhatIf::LoseZone(zone) => {
                let lost: Vec<NodeId> = (0..c.nodes.len() as u32)
                    .map(NodeId)
                    .filter(|&n| !c.node(n).removed && c.node(n).zone == *zone)
                    .collect();
                if lost.is_empty() {
                    return Err(MetaError::NotFound(format!(
                        "no node of cluster {} is in zone {}",
                        quoted(cluster),
                        quoted(zone)
                    )));
                }
                for &n in &lost {
                    copy_live.set_online(n, false);
                }
                (format!("lose zone {zone} ({} nodes)", lost.len()), None)
            }
        };
        let gone: Vec<bool> = copy_live.nodes().iter().map(|(_, n)| !n.online).collect();
        let rehearsal = rehearse(copy, copy_live, ctx.now, ctx.config);
        let report = report(c, &gone, rehearsal, text, refused.map(|e| e.to_string()));
        Ok(Handled::Reply(Response::WhatIf(report)))
    }
}

/// What the rehearsal left, against the cluster as it is.
fn report(
    c: &ClusterCatalog,
    gone: &[bool],
    r: Rehearsal,
    change: String,
    refused: Option<String>,
) -> WhatIfReport {
    let after = &r.catalog;
    let dead = |n: u32| gone.get(n as usize).copied().unwrap_or(false);
    let want = c.record.followers_per_shard as usize;
    let shards = || after.shards.iter().filter(|s| !s.retired);
    let rule = after.placement.as_ref().filter(|p| p.constrains());
    let misplaced = |s: &crate::core::model::ShardRecord| {
        rule.is_some_and(|p| {
            s.leader.is_some_and(|l| !p.fits_leader(after.node(NodeId(l))))
                || s.followers.iter().any(|&f| !p.fits_replica(after.node(NodeId(f))))
        })
    };
    // Leaders per node, in one pass over each catalog's shards (not one per node).
    let led = |cat: &ClusterCatalog| {
        let mut led = vec![0u32; cat.nodes.len()];
        for l in cat.shards.iter().filter_map(|s| s.leader) {
            led[l as usize] += 1;
        }
        led
    };
    let (led_before, led_after) = (led(c), led(after));
    let nodes = (0..c.nodes.len())
        .filter(|&n| !c.nodes[n].removed)
        .map(|n| {
            let (lb, rb) = (led_before[n], c.node_shards[n].len() as u32);
            let (la, ra) = (led_after[n], after.node_shards[n].len() as u32);
            let live = !dead(n as u32) && !after.nodes[n].draining;
            NodeAfter { name: c.nodes[n].name.clone(), leaders: (lb, la), replicas: (rb, ra), live }
        })
        .filter(|n| n.replicas != (0, 0) || n.live)
        .collect();
    WhatIfReport {
        change,
        refused,
        leader_moves: r.leader_moves,
        replicas_copied: r.replicas_copied,
        took_ms: r.took.0,
        settled: r.settled,
        under_replicated: shards()
            .filter(|s| s.followers.iter().filter(|&&f| !dead(f)).count() < want)
            .count() as u32,
        leaderless: shards().filter(|s| s.leader.is_none_or(dead)).count() as u32,
        rule_violating: shards().filter(|s| misplaced(s)).count() as u32,
        nodes,
        moves: r.described,
    }
}
