//! The scheduler's and the procedures' API messages.
//!
//! Settings travel in the shape they are stored in: `proto::SchedulerSettings` and the core's
//! `SchedulerRecord` carry the same fields under the same tags, so one converts to the other
//! through their encoding (a test below holds the two together).

use prost::Message;
use tonic::Status;

use crate::core::model::{Constraint, PlacementRecord, SchedulerRecord};
use crate::core::settings::SchedulerSettings;
use crate::core::{
    EventInfo, PlacementInfo, PlannedMove, ProcedureInfo, SchedulerStatus, WhatIfReport,
};
use crate::proto;

pub fn settings_to_proto(s: &SchedulerSettings) -> proto::SchedulerSettings {
    proto::SchedulerSettings::decode(SchedulerRecord::from(s).encode_to_vec().as_slice())
        .expect("one wire shape")
}

pub fn settings_from_proto(
    s: Option<proto::SchedulerSettings>,
) -> Result<SchedulerSettings, Status> {
    let s = s.ok_or_else(|| Status::invalid_argument("settings are missing"))?;
    let record = SchedulerRecord::decode(s.encode_to_vec().as_slice()).expect("one wire shape");
    Ok(SchedulerSettings::from(&record))
}

pub fn scheduler_status(s: &SchedulerStatus) -> proto::SchedulerStatusResponse {
    let nodes = s
        .nodes
        .iter()
        .map(|n| proto::NodeLoad {
            name: n.name.clone(),
            load: n.load,
            capacity: n.capacity,
            judged: n.judged,
            overfull: n.overfull,
            stats_frozen: n.stats_frozen,
            stats_contradicted: n.stats_contradicted,
            wobble: n.wobble,
        })
        .collect();
    proto::SchedulerStatusResponse {
        settings: Some(settings_to_proto(&s.settings)),
        mean_utilization: s.mean_utilization,
        nodes,
        moves_in_flight: s.moves_in_flight,
        last_event: s.last_event,
        shards_heating: s.shards_heating,
        shards_cooling: s.shards_cooling,
        shards_short: s.shards_short,
        followers_lagging: s.followers_lagging,
        placement_unsatisfied: s.placement_unsatisfied,
        nodes_standing: s.nodes_standing,
        load_measure: s.load_measure.clone(),
        jobs: s
            .jobs
            .iter()
            .map(|j| proto::NodeJob {
                node: j.node.clone(),
                job: j.job.into(),
                done: j.done,
                remaining: j.remaining,
                elapsed_ms: j.elapsed_ms,
                eta_ms: j.eta_ms,
            })
            .collect(),
    }
}

pub fn planned_move(m: &PlannedMove) -> proto::PlannedMove {
    proto::PlannedMove { shard: m.shard.0, cause: m.cause.name().into(), text: m.text.clone() }
}

pub fn procedure(p: &ProcedureInfo) -> proto::Procedure {
    proto::Procedure {
        id: p.id,
        kind: p.kind.name().into(),
        step: p.step.name().into(),
        shard: p.shard.0,
        new_shard: p.new_shard.0,
        tables: p.tables,
        why: p.why.clone(),
        step_age_ms: p.step_age_ms,
    }
}

pub fn event(e: &EventInfo) -> proto::Event {
    proto::Event {
        seq: e.seq,
        age_ms: e.age_ms,
        cause: e.cause.name().into(),
        shard: e.shard.map(|s| s.0),
        text: e.text.clone(),
    }
}

/// A placement rule as the API carries it.
pub fn rule_to_proto(r: &PlacementRecord) -> proto::PlacementRule {
    let list = |l: &[Constraint]| {
        l.iter()
            .map(|c| proto::PlacementConstraint {
                kind: c.kind as i32,
                key: c.key.clone(),
                values: c.values.clone(),
            })
            .collect()
    };
    proto::PlacementRule {
        version: r.version,
        replicas: list(&r.replicas),
        leader: list(&r.leader),
        spread: r.spread.clone(),
    }
}

/// A placement rule from the API: kinds are checked by the core (an unknown one is refused).
pub fn rule_from_proto(r: proto::PlacementRule) -> PlacementRecord {
    let list = |l: Vec<proto::PlacementConstraint>| {
        l.into_iter()
            .map(|c| Constraint { kind: c.kind as u32, key: c.key, values: c.values })
            .collect()
    };
    PlacementRecord {
        version: r.version,
        replicas: list(r.replicas),
        leader: list(r.leader),
        spread: r.spread,
    }
}

pub fn what_if(r: &WhatIfReport) -> proto::WhatIfResponse {
    proto::WhatIfResponse {
        change: r.change.clone(),
        refused: r.refused.clone().unwrap_or_default(),
        leader_moves: r.leader_moves,
        replicas_copied: r.replicas_copied,
        took_ms: r.took_ms,
        settled: r.settled,
        under_replicated: r.under_replicated,
        leaderless: r.leaderless,
        rule_violating: r.rule_violating,
        nodes: r
            .nodes
            .iter()
            .map(|n| proto::NodeAfter {
                name: n.name.clone(),
                leaders_before: n.leaders.0,
                leaders_after: n.leaders.1,
                replicas_before: n.replicas.0,
                replicas_after: n.replicas.1,
                live: n.live,
            })
            .collect(),
        moves: r.moves.clone(),
    }
}

pub fn placement(p: &PlacementInfo) -> proto::PlacementResponse {
    proto::PlacementResponse {
        rule: Some(rule_to_proto(&p.rule)),
        unsatisfied: p.unsatisfied,
        example: p.example.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_every_field_through_the_api_shape() {
        // The defaults are all non-zero, so a field lost on the way would show.
        let s = SchedulerSettings {
            paused: true,
            load_floor_units: 12.5,
            shard_cooldown_ms: 99,
            ..Default::default()
        };
        assert_eq!(settings_from_proto(Some(settings_to_proto(&s))).unwrap(), s);
        assert!(settings_from_proto(None).is_err());
    }

    #[test]
    fn rules_keep_every_field_and_kinds_their_names_through_the_api_shape() {
        use crate::core::model::ConstraintKind;
        for k in ConstraintKind::ALL {
            let named = proto::ConstraintKind::try_from(k.code() as i32).unwrap();
            assert_eq!(named.as_str_name().to_lowercase(), k.name());
        }
        let rule = PlacementRecord {
            version: 3,
            replicas: vec![Constraint::new(ConstraintKind::Avoid, "disk", &["hdd", "sata"])],
            leader: vec![Constraint::new(ConstraintKind::Prefer, "zone", &["a"])],
            spread: "rack".into(),
        };
        assert_eq!(rule_from_proto(rule_to_proto(&rule)), rule);
    }
}
