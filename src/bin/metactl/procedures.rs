//! `metactl shard split|merge` and `metactl procedure list|cancel`.

use serde_json::Value;
use shardmeta::client::MetaClient;
use shardmeta::convert::json as to_json;
use shardmeta::proto;
use tonic::Status;

use super::{header, ProcedureCmd};

pub(crate) async fn split(
    cluster: &str,
    shard: u32,
    tables: &[u64],
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let req = proto::SplitShardRequest { header: header(cluster), shard, tables: tables.to_vec() };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.split_shard(req).await }
        })
        .await?;
    Ok(r.procedure.as_ref().map_or(Value::Null, to_json::procedure))
}

pub(crate) async fn merge(
    cluster: &str,
    shard: u32,
    other: u32,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let req = proto::MergeShardsRequest { header: header(cluster), shard, other };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.merge_shards(req).await }
        })
        .await?;
    Ok(r.procedure.as_ref().map_or(Value::Null, to_json::procedure))
}

pub(crate) async fn procedure(
    cmd: &ProcedureCmd,
    cluster: &str,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    Ok(match cmd {
        ProcedureCmd::List => {
            let req = proto::ListProceduresRequest { header: header(cluster) };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.list_procedures(req).await }
                })
                .await?;
            Value::Array(r.procedures.iter().map(to_json::procedure).collect())
        }
        ProcedureCmd::Cancel { id } => {
            let req = proto::CancelProcedureRequest { header: header(cluster), id: *id };
            let r = meta
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.cancel_procedure(req).await }
                })
                .await?;
            r.procedure.as_ref().map_or(Value::Null, to_json::procedure)
        }
    })
}
