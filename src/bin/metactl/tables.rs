//! `metactl table get|alter`: reading back what meta stores about tables, and changing it;
//! `metactl watch-routes`: following where they live.

use serde_json::{json, Value};
use shardmeta::client::MetaClient;
use shardmeta::proto;
use tonic::Status;

use super::header;

pub(crate) async fn get(
    cluster: &str,
    schema: &str,
    names: &[String],
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let req = proto::GetTablesRequest {
        header: header(cluster),
        schema: schema.to_owned(),
        tables: names.to_vec(),
    };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.get_tables(req).await }
        })
        .await?;
    Ok(Value::Array(r.tables.iter().map(detail_json).collect()))
}

/// What `table alter` changes: a new encoded schema, new options, or both.
pub(crate) struct Alter<'a> {
    pub schema: &'a str,
    pub name: &'a str,
    pub version: u32,
    pub encoded_schema_hex: Option<&'a str>,
    pub options: &'a [String],
    pub clear_options: bool,
}

pub(crate) async fn alter(
    cluster: &str,
    a: Alter<'_>,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let encoded_schema = a.encoded_schema_hex.map(unhex).transpose()?;
    let options = match (a.options.is_empty(), a.clear_options) {
        (true, false) => None,
        _ => Some(proto::TableOptions {
            entries: a.options.iter().map(|o| option(o)).collect::<Result<_, _>>()?,
        }),
    };
    let req = proto::AlterTableRequest {
        header: header(cluster),
        schema: a.schema.to_owned(),
        name: a.name.to_owned(),
        expected_version: a.version,
        encoded_schema,
        options,
    };
    let r = meta
        .call(|mut c| {
            let req = req.clone();
            async move { c.alter_table(req).await }
        })
        .await?;
    Ok(r.table.as_ref().map_or(Value::Null, detail_json))
}

/// Prints each update as it comes; returns only when the watch ends (with its status).
pub(crate) async fn watch_routes(
    cluster: &str,
    schema: Option<&str>,
    from_revision: u64,
    meta: &mut MetaClient,
) -> Result<Value, Status> {
    let (_, mut client) = meta.leader().await?;
    let req = proto::WatchRoutesRequest {
        header: header(cluster),
        schema: schema.unwrap_or_default().to_owned(),
        from_revision,
    };
    let mut stream = client.watch_routes(req).await?.into_inner();
    while let Some(u) = stream.message().await? {
        println!(
            "{}",
            json!({"revision": u.revision, "resync": u.resync, "changes": u.changes.iter().map(change_json).collect::<Vec<_>>()})
        );
    }
    Ok(Value::Null)
}

fn change_json(c: &proto::RouteChange) -> Value {
    use proto::route_change::Kind;
    let node = |e: &proto::NodeEndpoint| json!({"name": e.name, "endpoint": e.endpoint});
    match &c.kind {
        Some(Kind::Table(t)) => {
            json!({"table": t.name, "schema": t.schema, "id": t.id, "shard": t.shard})
        }
        Some(Kind::Dropped(t)) => json!({"dropped": t.name, "schema": t.schema, "id": t.id}),
        Some(Kind::Shard(s)) => {
            json!({"shard": s.shard, "version": s.version, "leader": s.leader.as_ref().map(node),
                                      "followers": s.followers.iter().map(node).collect::<Vec<_>>()})
        }
        None => Value::Null,
    }
}

fn detail_json(t: &proto::TableDetail) -> Value {
    let info = t.info.clone().unwrap_or_default();
    json!({"id": info.id, "schema": info.schema, "name": info.name, "shard": info.shard, "version": t.version,
           "encoded_schema_bytes": t.encoded_schema.len(), "encoded_schema_hex": hex(&t.encoded_schema),
           "options": t.options.iter().collect::<std::collections::BTreeMap<_, _>>(),
           "partition_rule_hex": hex(&t.partition_rule), "sub_tables": info.sub_tables,
           "parent": (t.parent != 0).then_some(t.parent)})
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, Status> {
    let bad = || {
        Status::invalid_argument(format!(
            "--encoded-schema-hex {s:?} is not an even number of hex digits"
        ))
    };
    if !s.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()).ok_or_else(bad))
        .collect()
}

fn option(o: &str) -> Result<(String, String), Status> {
    let (k, v) = o
        .split_once('=')
        .ok_or_else(|| Status::invalid_argument(format!("--option {o:?} is not KEY=VALUE")))?;
    Ok((k.to_owned(), v.to_owned()))
}
