//! `metactl scheduler …`, `metactl shard transfer|move` and `metactl events`.

use clap::Subcommand;
use serde_json::Value;
use shardmeta::client::MetaClient;
use shardmeta::convert::{self, json as to_json};
use shardmeta::proto;
use tonic::Status;

use super::header;

#[derive(Subcommand)]
pub(crate) enum SchedulerCmd {
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

pub(crate) async fn scheduler(
    cmd: &SchedulerCmd,
    cluster: &str,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let r = match cmd {
        SchedulerCmd::Status => status(cluster, meta).await?,
        SchedulerCmd::Plan => {
            let req = proto::PlanSchedulerRequest { header: header(cluster) };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.plan_scheduler(req).await }
                })
                .await?;
            return Ok(Value::Array(r.moves.iter().map(to_json::planned_move).collect()));
        }
        SchedulerCmd::Pause | SchedulerCmd::Resume | SchedulerCmd::Set { .. } => {
            // A bad pair is refused before meta is asked anything.
            if let SchedulerCmd::Set { settings: pairs } = cmd {
                pairs
                    .iter()
                    .try_for_each(|p| apply(&mut proto::SchedulerSettings::default(), p))?;
            }
            // Read, change, write: settings are replaced whole.
            let mut settings = status(cluster, meta).await?.settings.unwrap_or_default();
            match cmd {
                SchedulerCmd::Pause => settings.paused = true,
                SchedulerCmd::Resume => settings.paused = false,
                SchedulerCmd::Set { settings: pairs } => {
                    pairs.iter().try_for_each(|p| apply(&mut settings, p))?
                }
                _ => unreachable!("matched above"),
            }
            let req =
                proto::SetSchedulerRequest { header: header(cluster), settings: Some(settings) };
            meta.call(|mut c| {
                let req = req.clone();
                async move { c.set_scheduler(req).await }
            })
            .await?
        }
    };
    Ok(to_json::scheduler_status(&r))
}

async fn status(
    cluster: &str,
    meta: &mut MetaClient,
) -> Result<proto::SchedulerStatusResponse, Status> {
    let req = proto::SchedulerStatusRequest { header: header(cluster) };
    meta.call(|mut c| {
        let req = req.clone();
        async move { c.scheduler_status(req).await }
    })
    .await
}

/// Sets one `key=value` setting, refusing unknown keys and bad values by name.
fn apply(s: &mut proto::SchedulerSettings, pair: &str) -> Result<(), Status> {
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| Status::invalid_argument(format!("{pair:?} is not KEY=VALUE")))?;
    let mut settings = convert::settings_from_proto(Some(*s))?;
    settings.set(key, value).map_err(Status::invalid_argument)?;
    *s = convert::settings_to_proto(&settings);
    Ok(())
}

/// `shard transfer` (`reopen: false`) and `shard move`.
pub(crate) async fn move_shard(
    cluster: &str,
    shard: u32,
    node: &str,
    reopen: bool,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let req =
        proto::MoveShardRequest { header: header(cluster), shard, node: node.to_owned(), reopen };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.move_shard(req).await }
        })
        .await?;
    Ok(r.r#move.as_ref().map_or(Value::Null, to_json::planned_move))
}

pub(crate) async fn events(
    cluster: &str,
    after: u64,
    limit: u32,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let req = proto::ListEventsRequest { header: header(cluster), after, limit };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.list_events(req).await }
        })
        .await?;
    Ok(Value::Array(r.events.iter().map(to_json::event).collect()))
}
