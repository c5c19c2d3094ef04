//! S5's placement checks, judged once every node is back and the scheduler had time: replicas
//! spread over the rule's spread label, and shards where the placement rule says wherever a
//! node that fits could take them.

use super::{violation, Invariant, Violation};
use crate::core::ids::NodeId;
use crate::core::model::{ClusterCatalog, PlacementRecord, ShardRecord};

/// The spread: the replicas of each shard on live nodes (those `live` accepts) span as many
/// values of the spread label (the zone, unless the rule names another) as they can, at least
/// min(live replicas, values among live nodes the rule lets hold a replica). Nodes without the
/// label are left out; with none labelled, there is nothing to spread over.
pub fn zone_spread(c: &ClusterCatalog, live: impl Fn(NodeId) -> bool) -> Result<(), Violation> {
    let rule = c.placement.clone().unwrap_or_default();
    let key = rule.spread_key().to_owned();
    let zone = |n: u32| c.node(NodeId(n)).label(&key);
    let mut zones: Vec<&str> = (0..c.nodes.len() as u32)
        .filter(|&n| live(NodeId(n)) && !zone(n).is_empty() && rule.fits_replica(c.node(NodeId(n))))
        .map(zone)
        .collect();
    zones.sort_unstable();
    zones.dedup();
    for s in c.shards.iter().filter(|s| !s.retired) {
        let mut on: Vec<&str> =
            s.replicas().filter(|&r| live(NodeId(r)) && !zone(r).is_empty()).map(zone).collect();
        let replicas = on.len();
        on.sort_unstable();
        on.dedup();
        if on.len() < replicas.min(zones.len()) {
            let names: Vec<String> =
                s.replicas().map(|r| format!("{} ({})", c.node(NodeId(r)).name, zone(r))).collect();
            let detail = format!("shard {}'s {replicas} live replicas {names:?} span {key} values {on:?} of the {} live ones {zones:?}", s.id, zones.len());
            return violation(Invariant::Integrity, detail);
        }
    }
    Ok(())
}

/// The rule: no shard keeps a live follower on a node the rule forbids while a live node that
/// fits, without a replica of it, could take its place (the rule is hard, the spread only a
/// preference: a rule that requires one zone must narrow it); and no
/// shard is led by a node the rule does not let lead while a live follower may lead it, or
/// (none may) while a live node that may could take a follower's slot, or the leader's own
/// when it has no followers.
pub fn placement_rule(c: &ClusterCatalog, live: impl Fn(NodeId) -> bool) -> Result<(), Violation> {
    let Some(rule) = c.placement.as_ref().filter(|r| r.constrains()) else { return Ok(()) };
    let node = |n: u32| c.node(NodeId(n));
    let alive = |n: u32| live(NodeId(n));
    for s in c.shards.iter().filter(|s| !s.retired && s.transfer.is_none()) {
        let Some(leader) = s.leader else { continue };
        if alive(leader) && !rule.fits_leader(node(leader)) {
            if let Some(f) = s.followers.iter().find(|&&f| alive(f) && rule.fits_leader(node(f))) {
                let detail = format!(
                    "shard {} is led by {}, which the rule ({}) does not let lead, while its follower {} may",
                    s.id, node(leader).name, rule.describe(), node(*f).name
                );
                return violation(Invariant::Integrity, detail);
            }
            // None may: a follower should have made room for a live node that may.
            let heir =
                |n: u32| alive(n) && rule.fits_leader(node(n)) && !s.replicas().any(|x| x == n);
            // The slot it takes: a follower's (then it leads by a later transfer), or with no
            // follower, the leader's own (it reopens there).
            let slots: Vec<u32> =
                if s.followers.is_empty() { vec![leader] } else { s.followers.clone() };
            let room = slots.iter().find_map(|&f| {
                let n = (0..c.nodes.len() as u32).find(|&n| {
                    heir(n) && (!rule.fits_replica(node(f)) || keeps_spread(c, rule, s, f, n))
                })?;
                Some((f, n))
            });
            if let (Some((f, n)), false) =
                (room, s.followers.iter().any(|&f| rule.fits_leader(node(f))))
            {
                let detail = format!(
                    "shard {} is led by {}, which the rule ({}) does not let lead, and no follower may, while {} may and could take {}'s slot",
                    s.id,
                    node(leader).name,
                    rule.describe(),
                    node(n).name,
                    node(f).name
                );
                return violation(Invariant::Integrity, detail);
            }
        }
        for &r in s.followers.iter().filter(|&&r| alive(r) && !rule.fits_replica(node(r))) {
            // The rule is hard and the spread a preference: any node that fits will do.
            if let Some(n) = (0..c.nodes.len() as u32)
                .find(|&n| alive(n) && rule.fits_replica(node(n)) && !s.replicas().any(|x| x == n))
            {
                let detail = format!(
                    "shard {} has a replica on {}, which the rule ({}) forbids, while {} fits and holds none",
                    s.id, node(r).name, rule.describe(), node(n).name
                );
                return violation(Invariant::Integrity, detail);
            }
        }
    }
    Ok(())
}

/// Whether `into` in place of `out` leaves `s`'s replicas spanning at least as many values of
/// the spread label.
fn keeps_spread(
    c: &ClusterCatalog,
    rule: &PlacementRecord,
    s: &ShardRecord,
    out: u32,
    into: u32,
) -> bool {
    let key = rule.spread_key();
    let span = |swap: bool| {
        let mut v: Vec<&str> = s
            .replicas()
            .map(|r| if swap && r == out { into } else { r })
            .map(|r| c.node(NodeId(r)).label(key))
            .collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    span(true) >= span(false)
}
