//! The API's messages as JSON, one shape for every tool: `metactl --output json` prints these,
//! and the admin port's `/api/v1` answers with them.

use serde_json::{json, Value};

use crate::proto;

/// Rates shown to two decimals: enough to compare, short enough to read.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn shard_status(s: i32) -> &'static str {
    match proto::ShardStatus::try_from(s).unwrap_or(proto::ShardStatus::Unspecified) {
        proto::ShardStatus::Unassigned => "unassigned",
        proto::ShardStatus::Opening => "opening",
        proto::ShardStatus::Ready => "ready",
        proto::ShardStatus::Transferring => "transferring",
        proto::ShardStatus::Offline => "offline",
        proto::ShardStatus::Retired => "retired",
        proto::ShardStatus::Unspecified => "unknown",
    }
}

pub fn node(n: &proto::NodeInfo) -> Value {
    let state = match (n.state == proto::NodeState::Online as i32, n.admitted) {
        (false, _) => "offline",
        (true, false) => "settling",
        (true, true) => "online",
    };
    json!({"name": n.name, "endpoint": n.endpoint, "zone": n.zone, "labels": n.labels, "state": state,
           "shards": n.shards, "replicas": n.replicas, "draining": n.draining,
           "slow": n.slow, "slow_marked": n.slow_marked,
           "heartbeat_rtt_ms": n.stats.as_ref().map_or(0.0, |s| round2(s.heartbeat_rtt_us as f64 / 1e3)),
           "request_latency_ms": n.stats.as_ref().map_or(0.0, |s| round2(s.request_latency_us as f64 / 1e3)),
           "disk_used_pct": n.stats.as_ref().filter(|s| s.disk_capacity_bytes > 0).map(|s| round2(100.0 * s.disk_used_bytes as f64 / s.disk_capacity_bytes as f64)),
           "capacity": n.stats.as_ref().map_or(0.0, |s| s.capacity), "load_rejections": n.load_rejections,
           "restart": n.restart.as_ref().map(|r| json!({"phase": r.phase, "window_s": r.window_ms / 1_000, "leaders": r.leaders, "led_again": r.led_again}))})
}

pub fn cluster(c: &proto::ClusterInfo) -> Value {
    let mode = if c.mode == proto::TopologyMode::Static as i32 { "static" } else { "dynamic" };
    json!({"id": c.id, "name": c.name, "shard_count": c.shard_count, "followers_per_shard": c.followers_per_shard,
           "mode": mode, "min_nodes": c.min_nodes, "epoch": c.epoch})
}

pub fn shard(s: &proto::ShardInfo) -> Value {
    let leader = (!s.leader.is_empty()).then(|| s.leader.clone());
    let busiest: Vec<Value> = s
        .busiest_tables
        .iter()
        .map(|t| json!({"table_id": t.table_id, "read_units": round2(t.read_units_per_sec), "write_units": round2(t.write_units_per_sec)}))
        .collect();
    json!({"id": s.id, "version": s.version, "leader": leader, "followers": s.followers, "status": shard_status(s.status),
           "tables": s.tables, "read_units": round2(s.read_units_per_sec), "write_units": round2(s.write_units_per_sec),
           "cpu_ms": round2(s.cpu_ms_per_sec), "load_windows": s.load_windows, "busiest_tables": busiest,
           "lagging": s.lagging})
}

pub fn table(t: &proto::TableInfo) -> Value {
    json!({"id": t.id, "schema": t.schema, "name": t.name, "shard": t.shard})
}

pub fn procedure(p: &proto::Procedure) -> Value {
    json!({"id": p.id, "kind": p.kind, "step": p.step, "shard": p.shard, "new_shard": p.new_shard, "tables": p.tables,
           "step_age_s": round2(p.step_age_ms as f64 / 1_000.0), "why": p.why})
}

pub fn event(e: &proto::Event) -> Value {
    json!({"seq": e.seq, "age_s": round2(e.age_ms as f64 / 1_000.0), "cause": e.cause, "shard": e.shard, "event": e.text})
}

pub fn planned_move(m: &proto::PlannedMove) -> Value {
    json!({"shard": m.shard, "cause": m.cause, "move": m.text})
}

pub fn scheduler_status(r: &proto::SchedulerStatusResponse) -> Value {
    let s = r.settings.unwrap_or_default();
    let mean = r.mean_utilization;
    let nodes: Vec<Value> = r
        .nodes
        .iter()
        .map(|n| {
            let ratio = if mean > 0.0 { n.load / n.capacity / mean } else { 0.0 };
            json!({"node": n.name, "load": round2(n.load), "capacity": n.capacity, "x_mean": round2(ratio),
                   "judged": n.judged, "overfull": n.overfull,
                   "stats_frozen": n.stats_frozen, "stats_contradicted": n.stats_contradicted,
                   "wobble_pct": round2(100.0 * n.wobble)})
        })
        .collect();
    let jobs: Vec<Value> = r
        .jobs
        .iter()
        .map(|j| {
            let pct = 100 * j.done as u64 / (j.done + j.remaining).max(1) as u64;
            json!({"node": j.node, "job": j.job, "done": j.done, "remaining": j.remaining, "progress_pct": pct,
                   "elapsed_s": j.elapsed_ms / 1_000, "eta_s": j.eta_ms.map(|ms| ms.div_ceil(1_000))})
        })
        .collect();
    json!({"paused": s.paused, "mean_utilization": round2(mean), "jobs": jobs, "moves_in_flight": r.moves_in_flight, "last_event": r.last_event,
           "shards_heating": r.shards_heating, "shards_cooling": r.shards_cooling, "shards_short": r.shards_short, "followers_lagging": r.followers_lagging, "placement_unsatisfied": r.placement_unsatisfied,
           "nodes_standing": r.nodes_standing, "load_measure": r.load_measure,
           "overfull_pct": s.overfull_pct, "load_floor_units": s.load_floor_units, "moves_per_pass_max": s.moves_per_pass_max,
           "moves_per_node_per_pass_max": s.moves_per_node_per_pass_max, "moves_in_flight_max": s.moves_in_flight_max,
           "shard_cooldown_ms": s.shard_cooldown_ms, "pair_cooldown_ms": s.pair_cooldown_ms, "overfull_windows": s.overfull_windows, "shard_share_min_permille": s.shard_share_min_permille,
           "moves_in_per_node_per_min": s.moves_in_per_node_per_min, "moves_out_per_node_per_min": s.moves_out_per_node_per_min,
           "slow_ratio_pct": s.slow_ratio_pct, "slow_windows": s.slow_windows, "disk_high_water_pct": s.disk_high_water_pct,
           "cpu_weight_pct": s.cpu_weight_pct, "nodes": nodes})
}

/// A placement rule with how it stands: each constraint as `"disk=ssd,nvme"` under its kind.
pub fn placement(r: &proto::PlacementResponse) -> Value {
    let rule = r.rule.clone().unwrap_or_default();
    let side = |list: &[proto::PlacementConstraint]| {
        let mut out = serde_json::Map::new();
        for kind in ["require", "prefer", "avoid"] {
            let of_kind: Vec<String> = list
                .iter()
                .filter(|c| constraint_kind(c.kind) == kind)
                .map(|c| format!("{}={}", c.key, c.values.join(",")))
                .collect();
            if !of_kind.is_empty() {
                out.insert(kind.into(), json!(of_kind));
            }
        }
        Value::Object(out)
    };
    let spread = if rule.spread.is_empty() { "zone" } else { rule.spread.as_str() };
    json!({"version": rule.version, "replicas": side(&rule.replicas), "leader": side(&rule.leader),
           "spread": spread, "unsatisfied": r.unsatisfied, "example": r.example})
}

fn constraint_kind(kind: i32) -> &'static str {
    match proto::ConstraintKind::try_from(kind) {
        Ok(proto::ConstraintKind::Require) => "require",
        Ok(proto::ConstraintKind::Prefer) => "prefer",
        Ok(proto::ConstraintKind::Avoid) => "avoid",
        Err(_) => "unknown",
    }
}

/// A what-if's answer: the change, what would refuse it, the moves and what they leave.
pub fn what_if(r: &proto::WhatIfResponse) -> Value {
    let nodes: Vec<Value> = r
        .nodes
        .iter()
        .map(|n| {
            json!({"node": n.name, "leaders": [n.leaders_before, n.leaders_after],
                   "replicas": [n.replicas_before, n.replicas_after], "live": n.live})
        })
        .collect();
    let refused = (!r.refused.is_empty()).then_some(&r.refused);
    json!({"change": r.change, "refused": refused, "leader_moves": r.leader_moves,
           "replicas_copied": r.replicas_copied, "took_s": r.took_ms.div_ceil(1_000), "settled": r.settled,
           "under_replicated": r.under_replicated, "leaderless": r.leaderless,
           "rule_violating": r.rule_violating, "nodes": nodes, "moves": r.moves})
}
