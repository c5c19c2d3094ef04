//! `metactl placement show|set|clear`: the cluster's placement rule.

use clap::{Args, Subcommand};
use serde_json::Value;
use shardmeta::client::MetaClient;
use shardmeta::convert::json as to_json;
use shardmeta::proto;
use tonic::Status;

use super::header;

#[derive(Subcommand)]
pub(crate) enum PlacementCmd {
    /// The rule in force, and the shards it cannot be met for now.
    Show,
    /// Replace the rule: `metactl placement set --require disk=ssd --leader-prefer zone=a
    /// --spread rack`. Each constraint is KEY=V1[,V2...]; `zone` is the node's zone.
    Set(RuleArgs),
    /// Back to the default: any node fits, replicas spread over zones.
    Clear {
        /// Refuse unless the rule in force is at this version.
        #[arg(long)]
        expect_version: Option<u64>,
    },
}

#[derive(Args)]
pub(crate) struct RuleArgs {
    /// Every replica's node has one of these values.
    #[arg(long, value_name = "KEY=V1,V2")]
    require: Vec<String>,
    /// Nodes with one of these values take replicas first.
    #[arg(long, value_name = "KEY=V1,V2")]
    prefer: Vec<String>,
    /// No replica's node has any of these values.
    #[arg(long, value_name = "KEY=V1,V2")]
    avoid: Vec<String>,
    /// The leader's node has one of these values.
    #[arg(long, value_name = "KEY=V1,V2")]
    leader_require: Vec<String>,
    /// Nodes with one of these values lead first.
    #[arg(long, value_name = "KEY=V1,V2")]
    leader_prefer: Vec<String>,
    /// The leader's node has none of these values.
    #[arg(long, value_name = "KEY=V1,V2")]
    leader_avoid: Vec<String>,
    /// The label replicas spread over, one per value where they can (default: zone).
    #[arg(long, value_name = "KEY")]
    spread: Option<String>,
    /// Refuse unless the rule in force is at this version (0: none was ever set).
    #[arg(long)]
    expect_version: Option<u64>,
    /// Change nothing: rehearse the rule and say the moves it takes and what it cannot meet.
    #[arg(long)]
    dry_run: bool,
}

pub(crate) async fn placement(
    cmd: &PlacementCmd,
    cluster: &str,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let r = match cmd {
        PlacementCmd::Show => {
            let req = proto::GetPlacementRequest { header: header(cluster) };
            meta.call(|mut c| {
                let req = req.clone();
                async move { c.get_placement(req).await }
            })
            .await?
        }
        PlacementCmd::Set(args) if args.dry_run => {
            let change = proto::what_if_request::Change::Placement(rule(args)?);
            return super::what_if::ask(cluster, change, meta).await;
        }
        PlacementCmd::Set(args) => set(cluster, rule(args)?, args.expect_version, meta).await?,
        PlacementCmd::Clear { expect_version } => {
            set(cluster, proto::PlacementRule::default(), *expect_version, meta).await?
        }
    };
    Ok(to_json::placement(&r))
}

async fn set(
    cluster: &str,
    rule: proto::PlacementRule,
    expected_version: Option<u64>,
    meta: &mut MetaClient,
) -> Result<proto::PlacementResponse, Status> {
    let req =
        proto::SetPlacementRequest { header: header(cluster), rule: Some(rule), expected_version };
    meta.call(|mut c| {
        let req = req.clone();
        async move { c.set_placement(req).await }
    })
    .await
}

/// The rule the flags describe; a flag that is not KEY=V1[,V2...] is refused here, the rest
/// (names, counts, contradictions) by meta.
fn rule(a: &RuleArgs) -> Result<proto::PlacementRule, Status> {
    use proto::ConstraintKind::*;
    let side = |lists: [(&Vec<String>, proto::ConstraintKind); 3]| {
        let mut out = Vec::new();
        for (flags, kind) in lists {
            for flag in flags {
                let (key, values) = flag.split_once('=').ok_or_else(|| {
                    Status::invalid_argument(format!("{flag:?} is not KEY=V1[,V2...]"))
                })?;
                let values = values.split(',').map(str::to_owned).collect();
                out.push(proto::PlacementConstraint { kind: kind as i32, key: key.into(), values });
            }
        }
        Ok::<_, Status>(out)
    };
    Ok(proto::PlacementRule {
        version: 0,
        replicas: side([(&a.require, Require), (&a.prefer, Prefer), (&a.avoid, Avoid)])?,
        leader: side([
            (&a.leader_require, Require),
            (&a.leader_prefer, Prefer),
            (&a.leader_avoid, Avoid),
        ])?,
        spread: a.spread.clone().unwrap_or_default(),
    })
}
