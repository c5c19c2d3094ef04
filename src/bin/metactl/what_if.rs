//! `metactl what-if …` and the `--dry-run` of node and placement commands: a change rehearsed
//! on a copy of the cluster (the `WhatIf` RPC).

use clap::Subcommand;
use serde_json::Value;
use shardmeta::client::MetaClient;
use shardmeta::convert::json as to_json;
use shardmeta::proto;
use tonic::Status;

use super::header;

#[derive(Subcommand)]
pub(crate) enum WhatIfCmd {
    /// Every node of a zone offline at once: the failovers and repairs it would take, and what
    /// it would leave under-replicated or leaderless.
    LoseZone { zone: String },
}

pub(crate) async fn what_if(
    cmd: &WhatIfCmd,
    cluster: &str,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    match cmd {
        WhatIfCmd::LoseZone { zone } => {
            ask(cluster, proto::what_if_request::Change::LoseZone(zone.clone()), meta).await
        }
    }
}

/// Rehearses `change` and answers the report.
pub(crate) async fn ask(
    cluster: &str,
    change: proto::what_if_request::Change,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let req = proto::WhatIfRequest { header: header(cluster), change: Some(change) };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.what_if(req).await }
        })
        .await?;
    Ok(to_json::what_if(&r))
}
