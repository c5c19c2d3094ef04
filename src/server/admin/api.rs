//! `/api/v1/clusters/…`: the cluster as JSON for dashboards and scripts, and the operator actions a
//! runbook needs (drain, mark slow, remove a node, pause and resume the scheduler). Every call goes to the
//! meta leader through the gRPC API, as any client's would, so a follower answers with the
//! leader's state and its refusals are the API's (a gRPC code becomes an HTTP status). The
//! caller's `Authorization: Bearer <token>` goes along, so where meta has tokens the API takes
//! the same ones, with the same roles: no token is 401, the node token for a POST is 403.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::client::{Credentials, MetaClient};
use crate::convert::json as to_json;
use crate::proto;

/// Where the API's calls go: this node's own gRPC endpoint (which finds the leader).
#[derive(Clone)]
pub struct Api {
    pub endpoint: String,
    pub timeout: std::time::Duration,
    /// TLS for reaching the gRPC port; the token is the caller's.
    pub dial: Credentials,
    /// One connection to the gRPC port, shared by every call (it reconnects by itself).
    channel: Channel,
}

impl Api {
    pub fn new(
        endpoint: String,
        timeout: std::time::Duration,
        dial: Credentials,
    ) -> Result<Api, String> {
        let channel = dial
            .endpoint(&endpoint, timeout)
            .map_err(|e| format!("admin API: {}", e.message()))?
            .connect_lazy();
        Ok(Api { endpoint, timeout, dial, channel })
    }
}

type Answer = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/clusters", get(clusters))
        .route("/api/v1/clusters/{cluster}", get(cluster))
        .route("/api/v1/clusters/{cluster}/nodes", get(nodes))
        .route("/api/v1/clusters/{cluster}/shards", get(shards))
        .route("/api/v1/clusters/{cluster}/tables", get(tables))
        .route("/api/v1/clusters/{cluster}/events", get(events))
        .route("/api/v1/clusters/{cluster}/procedures", get(procedures))
        .route("/api/v1/clusters/{cluster}/scheduler", get(scheduler))
        .route("/api/v1/clusters/{cluster}/placement", get(placement))
        .route("/api/v1/clusters/{cluster}/scheduler/pause", post(pause))
        .route("/api/v1/clusters/{cluster}/scheduler/resume", post(resume))
        .route("/api/v1/clusters/{cluster}/nodes/{node}/drain", post(drain))
        .route("/api/v1/clusters/{cluster}/nodes/{node}/slow", post(slow))
        .route("/api/v1/clusters/{cluster}/nodes/{node}/remove", post(remove))
        .route("/api/v1/clusters/{cluster}/nodes/{node}/restart", post(restart))
}

/// A refusal: the gRPC code's HTTP status, with `{"code", "message"}`.
pub struct ApiError(Status);

impl From<Status> for ApiError {
    fn from(s: Status) -> ApiError {
        ApiError(s)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let http = match self.0.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (http, Json(json!({"code": format!("{:?}", self.0.code()), "message": self.0.message()})))
            .into_response()
    }
}

/// `?page_size=N&page_token=T` (and `schema=S` for tables): one page, with the token of the
/// next (empty at the end).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    #[serde(default)]
    page_size: u32,
    #[serde(default)]
    page_token: String,
    #[serde(default)]
    schema: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    limit: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainQuery {
    #[serde(default)]
    cancel: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowQuery {
    #[serde(default)]
    unmark: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartQuery {
    #[serde(default)]
    end: bool,
    #[serde(default)]
    window_ms: u64,
}

/// A meta client that presents the HTTP caller's token.
pub struct Meta(MetaClient);

impl FromRequestParts<Api> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Meta, ApiError> {
        let mut credentials = api.dial.clone();
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer "));
            let token = token.ok_or_else(|| {
                Status::unauthenticated("the Authorization header must be Bearer <token>")
            })?;
            credentials = credentials.with_token(token).map_err(Status::unauthenticated)?;
        }
        let meta =
            MetaClient::new(vec![api.endpoint.clone()], api.timeout)?.with_credentials(credentials);
        Ok(Meta(meta.with_connection(api.channel.clone())))
    }
}

fn header(cluster: &str) -> Option<proto::RequestHeader> {
    Some(proto::RequestHeader { cluster: cluster.to_owned() })
}

fn page(items: impl Iterator<Item = Value>, next_page_token: String) -> Json<Value> {
    Json(json!({"items": items.collect::<Vec<_>>(), "next_page_token": next_page_token}))
}

/// Calls the leader with `request`, cloned for each attempt.
macro_rules! leader_call {
    ($meta:expr, $method:ident, $request:expr) => {{
        let request = $request;
        $meta
            .0
            .call(|mut c| {
                let request = request.clone();
                async move { c.$method(request).await }
            })
            .await?
    }};
}

async fn clusters(mut api: Meta, Query(p): Query<Paging>) -> Answer {
    let r = leader_call!(
        api,
        list_clusters,
        proto::ListClustersRequest { page_size: p.page_size, page_token: p.page_token }
    );
    Ok(page(r.clusters.iter().map(to_json::cluster), r.next_page_token))
}

async fn cluster(mut api: Meta, Path(cluster): Path<String>) -> Answer {
    let r = leader_call!(api, cluster_view, proto::ClusterViewRequest { header: header(&cluster) });
    Ok(Json(
        json!({"cluster": to_json::cluster(&r.cluster.unwrap_or_default()), "term": r.term, "nodes_online": r.nodes_online,
                   "nodes_offline": r.nodes_offline, "shards_ready": r.shards_ready, "shards_unassigned": r.shards_unassigned,
                   "tables": r.tables, "changes_pending": r.changes_pending}),
    ))
}

async fn nodes(mut api: Meta, Path(cluster): Path<String>, Query(p): Query<Paging>) -> Answer {
    let r = leader_call!(
        api,
        list_nodes,
        proto::ListNodesRequest {
            header: header(&cluster),
            page_size: p.page_size,
            page_token: p.page_token
        }
    );
    Ok(page(r.nodes.iter().map(to_json::node), r.next_page_token))
}

async fn shards(mut api: Meta, Path(cluster): Path<String>, Query(p): Query<Paging>) -> Answer {
    let r = leader_call!(
        api,
        list_shards,
        proto::ListShardsRequest {
            header: header(&cluster),
            page_size: p.page_size,
            page_token: p.page_token
        }
    );
    Ok(page(r.shards.iter().map(to_json::shard), r.next_page_token))
}

async fn tables(mut api: Meta, Path(cluster): Path<String>, Query(p): Query<Paging>) -> Answer {
    let req = proto::ListTablesRequest {
        header: header(&cluster),
        schema: p.schema,
        page_size: p.page_size,
        page_token: p.page_token,
    };
    let r = leader_call!(api, list_tables, req);
    Ok(page(r.tables.iter().map(to_json::table), r.next_page_token))
}

async fn events(
    mut api: Meta,
    Path(cluster): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Answer {
    let r = leader_call!(
        api,
        list_events,
        proto::ListEventsRequest { header: header(&cluster), after: q.after, limit: q.limit }
    );
    Ok(Json(json!({"items": r.events.iter().map(to_json::event).collect::<Vec<_>>()})))
}

async fn procedures(mut api: Meta, Path(cluster): Path<String>) -> Answer {
    let r = leader_call!(
        api,
        list_procedures,
        proto::ListProceduresRequest { header: header(&cluster) }
    );
    Ok(Json(json!({"items": r.procedures.iter().map(to_json::procedure).collect::<Vec<_>>()})))
}

async fn scheduler(mut api: Meta, Path(cluster): Path<String>) -> Answer {
    let r = leader_call!(
        api,
        scheduler_status,
        proto::SchedulerStatusRequest { header: header(&cluster) }
    );
    Ok(Json(to_json::scheduler_status(&r)))
}

async fn placement(mut api: Meta, Path(cluster): Path<String>) -> Answer {
    let r =
        leader_call!(api, get_placement, proto::GetPlacementRequest { header: header(&cluster) });
    Ok(Json(to_json::placement(&r)))
}

/// Pause or resume: the settings are read, changed and written whole, as `metactl` does.
async fn set_paused(mut api: Meta, cluster: String, paused: bool) -> Answer {
    let status = leader_call!(
        api,
        scheduler_status,
        proto::SchedulerStatusRequest { header: header(&cluster) }
    );
    let settings = proto::SchedulerSettings { paused, ..status.settings.unwrap_or_default() };
    let r = leader_call!(
        api,
        set_scheduler,
        proto::SetSchedulerRequest { header: header(&cluster), settings: Some(settings) }
    );
    Ok(Json(to_json::scheduler_status(&r)))
}

async fn pause(api: Meta, Path(cluster): Path<String>) -> Answer {
    set_paused(api, cluster, true).await
}

async fn resume(api: Meta, Path(cluster): Path<String>) -> Answer {
    set_paused(api, cluster, false).await
}

async fn drain(
    mut api: Meta,
    Path((cluster, node)): Path<(String, String)>,
    Query(q): Query<DrainQuery>,
) -> Answer {
    let r = leader_call!(
        api,
        drain_node,
        proto::DrainNodeRequest { header: header(&cluster), node, cancel: q.cancel }
    );
    Ok(Json(r.node.as_ref().map_or(Value::Null, to_json::node)))
}

async fn slow(
    mut api: Meta,
    Path((cluster, node)): Path<(String, String)>,
    Query(q): Query<SlowQuery>,
) -> Answer {
    let r = leader_call!(
        api,
        mark_node_slow,
        proto::MarkNodeSlowRequest { header: header(&cluster), node, unmark: q.unmark }
    );
    Ok(Json(r.node.as_ref().map_or(Value::Null, to_json::node)))
}

async fn restart(
    mut api: Meta,
    Path((cluster, node)): Path<(String, String)>,
    Query(q): Query<RestartQuery>,
) -> Answer {
    let req = proto::RestartNodeRequest {
        header: header(&cluster),
        node,
        end: q.end,
        window_ms: q.window_ms,
    };
    let r = leader_call!(api, restart_node, req);
    Ok(Json(r.node.as_ref().map_or(Value::Null, to_json::node)))
}

async fn remove(mut api: Meta, Path((cluster, node)): Path<(String, String)>) -> Answer {
    let r =
        leader_call!(api, remove_node, proto::RemoveNodeRequest { header: header(&cluster), node });
    Ok(Json(json!({"removed": r.node})))
}
