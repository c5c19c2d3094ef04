//! `metactl scheduler …`, `metactl shard transfer|move` and `metactl events`.

use clap::Subcommand;
use serde_json::{json, Value};
use shardmeta::client::MetaClient;
use shardmeta::convert;
use shardmeta::proto;
use tonic::Status;

use super::{header, round2};

#[derive(Subcommand)]
pub enum SchedulerCmd {
    /// The settings, and each node's load as the balancer sees it.
    Status,
    /// Stop automatic moves for balance (failover, repair and drains go on).
    Pause,
    Resume,
    /// A dry run: the moves the scheduler would make now, with the reason for each.
    Plan,
    /// Change settings: `metactl scheduler set overfull_pct=15 load_floor_units=50`.
    Set {
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
}

pub async fn scheduler(cmd: &SchedulerCmd, cluster: &str, meta: &mut MetaClient) -> Result<Value, Status> {
    let r = match cmd {
        SchedulerCmd::Status => status(cluster, meta).await?,
        SchedulerCmd::Plan => {
            let req = proto::PlanSchedulerRequest { header: header(cluster) };
            let r = meta.call(|mut c| { let req = req.clone(); async move { c.plan_scheduler(req).await } }).await?;
            return Ok(Value::Array(r.moves.iter().map(move_json).collect()));
        }
        SchedulerCmd::Pause | SchedulerCmd::Resume | SchedulerCmd::Set { .. } => {
            // A bad pair is refused before meta is asked anything.
            if let SchedulerCmd::Set { settings: pairs } = cmd {
                pairs.iter().try_for_each(|p| apply(&mut proto::SchedulerSettings::default(), p))?;
            }
            // Read, change, write: settings are replaced whole.
            let mut settings = status(cluster, meta).await?.settings.unwrap_or_default();
            match cmd {
                SchedulerCmd::Pause => settings.paused = true,
                SchedulerCmd::Resume => settings.paused = false,
                SchedulerCmd::Set { settings: pairs } => pairs.iter().try_for_each(|p| apply(&mut settings, p))?,
                _ => unreachable!("matched above"),
            }
            let req = proto::SetSchedulerRequest { header: header(cluster), settings: Some(settings) };
            meta.call(|mut c| { let req = req.clone(); async move { c.set_scheduler(req).await } }).await?
        }
    };
    Ok(status_json(&r))
}

async fn status(cluster: &str, meta: &mut MetaClient) -> Result<proto::SchedulerStatusResponse, Status> {
    let req = proto::SchedulerStatusRequest { header: header(cluster) };
    meta.call(|mut c| { let req = req.clone(); async move { c.scheduler_status(req).await } }).await
}

/// Sets one `key=value` setting, refusing unknown keys and bad values by name.
fn apply(s: &mut proto::SchedulerSettings, pair: &str) -> Result<(), Status> {
    let (key, value) = pair.split_once('=').ok_or_else(|| Status::invalid_argument(format!("{pair:?} is not KEY=VALUE")))?;
    let mut settings = convert::settings_from_proto(Some(*s))?;
    settings.set(key, value).map_err(Status::invalid_argument)?;
    *s = convert::settings_to_proto(&settings);
    Ok(())
}

fn status_json(r: &proto::SchedulerStatusResponse) -> Value {
    let s = r.settings.unwrap_or_default();
    let mean = r.mean_utilization;
    let nodes: Vec<Value> = r
        .nodes
        .iter()
        .map(|n| {
            let ratio = if mean > 0.0 { n.load / n.capacity / mean } else { 0.0 };
            json!({"node": n.name, "load": round2(n.load), "capacity": n.capacity, "x_mean": round2(ratio),
                   "judged": n.judged, "overfull": n.overfull})
        })
        .collect();
    json!({"paused": s.paused, "mean_utilization": round2(mean), "moves_in_flight": r.moves_in_flight, "last_event": r.last_event,
           "overfull_pct": s.overfull_pct, "load_floor_units": s.load_floor_units, "moves_per_pass_max": s.moves_per_pass_max,
           "moves_per_node_per_pass_max": s.moves_per_node_per_pass_max, "moves_in_flight_max": s.moves_in_flight_max,
           "shard_cooldown_ms": s.shard_cooldown_ms, "shard_share_min_permille": s.shard_share_min_permille, "nodes": nodes})
}

fn move_json(m: &proto::PlannedMove) -> Value {
    json!({"shard": m.shard, "cause": m.cause, "move": m.text})
}

/// `shard transfer` (`reopen: false`) and `shard move`.
pub async fn move_shard(cluster: &str, shard: u32, node: &str, reopen: bool, meta: &mut MetaClient) -> Result<Value, Status> {
    let req = proto::MoveShardRequest { header: header(cluster), shard, node: node.to_owned(), reopen };
    let r = meta.call(|mut c| { let req = req.clone(); async move { c.move_shard(req).await } }).await?;
    Ok(r.r#move.as_ref().map_or(Value::Null, move_json))
}

pub async fn events(cluster: &str, after: u64, limit: u32, meta: &mut MetaClient) -> Result<Value, Status> {
    let req = proto::ListEventsRequest { header: header(cluster), after, limit };
    let r = meta.call(|mut c| { let req = req.clone(); async move { c.list_events(req).await } }).await?;
    let rows = r.events.iter().map(|e| {
        json!({"seq": e.seq, "age_s": round2(e.age_ms as f64 / 1_000.0), "cause": e.cause, "shard": e.shard, "event": e.text})
    });
    Ok(Value::Array(rows.collect()))
}
