//! `metactl shard split|merge` and `metactl procedure list|cancel`.

use serde_json::{json, Value};
use shardmeta::client::MetaClient;
use shardmeta::proto;
use tonic::Status;

use super::{header, round2, ProcedureCmd};

pub async fn split(cluster: &str, shard: u32, tables: &[u64], meta: &mut MetaClient) -> Result<Value, Status> {
    let req = proto::SplitShardRequest { header: header(cluster), shard, tables: tables.to_vec() };
    let r = meta.call(|mut c| { let req = req.clone(); async move { c.split_shard(req).await } }).await?;
    Ok(r.procedure.as_ref().map_or(Value::Null, procedure_json))
}

pub async fn merge(cluster: &str, shard: u32, other: u32, meta: &mut MetaClient) -> Result<Value, Status> {
    let req = proto::MergeShardsRequest { header: header(cluster), shard, other };
    let r = meta.call(|mut c| { let req = req.clone(); async move { c.merge_shards(req).await } }).await?;
    Ok(r.procedure.as_ref().map_or(Value::Null, procedure_json))
}

pub async fn procedure(cmd: &ProcedureCmd, cluster: &str, meta: &mut MetaClient) -> Result<Value, Status> {
    Ok(match cmd {
        ProcedureCmd::List => {
            let req = proto::ListProceduresRequest { header: header(cluster) };
            let r = meta.call(|mut c| { let req = req.clone(); async move { c.list_procedures(req).await } }).await?;
            Value::Array(r.procedures.iter().map(procedure_json).collect())
        }
        ProcedureCmd::Cancel { id } => {
            let req = proto::CancelProcedureRequest { header: header(cluster), id: *id };
            let r = meta.call(|mut c| { let req = req.clone(); async move { c.cancel_procedure(req).await } }).await?;
            r.procedure.as_ref().map_or(Value::Null, procedure_json)
        }
    })
}

fn procedure_json(p: &proto::Procedure) -> Value {
    json!({"id": p.id, "kind": p.kind, "step": p.step, "shard": p.shard, "new_shard": p.new_shard, "tables": p.tables,
           "step_age_s": round2(p.step_age_ms as f64 / 1_000.0), "why": p.why})
}
