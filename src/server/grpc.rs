//! The tonic service: translation and plumbing only. Unary calls go through the driver; a
//! follower forwards them to the leader once (a forwarded call that meets a follower again fails
//! as unavailable, so forwards never loop). Heartbeat streams become driver sessions. Every call
//! is authenticated first (`auth`); a forwarded call carries its caller's token to the leader,
//! which checks it again.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{permit, Access, Auth};
use super::driver::{DriverHandle, Inbound, STREAM_QUEUED_MAX, WATCH_QUEUED_MAX};
use super::security::Security;
use super::LeaderView;
use crate::client::credentials::{Credentials, Grpc, AUTHORIZATION};
use crate::convert::{self, status, CoreRequest, Listing};
use crate::core::{self, MetaError, SessionId};
use crate::proto;

/// Marks a call forwarded by a follower.
const FORWARDED: &str = "x-shardmeta-forwarded";

pub struct MetaService {
    driver: DriverHandle,
    leader: LeaderView,
    auth: Auth,
    /// How this node dials the leader to forward (TLS; the token is the caller's).
    dial: Credentials,
    next_session: AtomicU64,
    /// How long a call may wait for the driver: the core's request timeout plus a margin.
    call_timeout: std::time::Duration,
    message_bytes_max: usize,
}

type Forward<R> = Pin<Box<dyn Future<Output = Result<Response<R>, Status>> + Send>>;

impl MetaService {
    pub fn new(
        driver: DriverHandle,
        leader: LeaderView,
        security: &Security,
        request_timeout_ms: u64,
        message_bytes_max: usize,
    ) -> MetaService {
        MetaService {
            driver,
            leader,
            auth: security.auth.clone(),
            dial: security.dial.clone(),
            next_session: AtomicU64::new(1),
            call_timeout: std::time::Duration::from_millis(request_timeout_ms + 1_000),
            message_bytes_max,
        }
    }

    async fn call(&self, request: core::Request) -> Result<core::Response, MetaError> {
        match tokio::time::timeout(self.call_timeout, self.driver.request(request)).await {
            Ok(result) => result,
            Err(_) => Err(MetaError::DeadlineExceeded),
        }
    }

    async fn leader_client(&self) -> Result<Grpc, Status> {
        let Some((leader, _)) = self.leader.other_leader() else {
            return Err(Status::unavailable(
                "this meta node is not the leader and no leader is known; retry",
            ));
        };
        let client = self.dial.connect(&leader, self.call_timeout).await.map_err(|e| {
            Status::unavailable(format!("cannot reach the leader: {}", e.message()))
        })?;
        Ok(client.max_decoding_message_size(self.message_bytes_max))
    }

    /// Runs a unary call here, or forwards it to the leader when this node is a follower.
    async fn unary<P, R>(
        &self,
        request: Request<P>,
        from_core: impl FnOnce(core::Response) -> R,
        forward: impl FnOnce(Grpc, Request<P>) -> Forward<R>,
    ) -> Result<Response<R>, Status>
    where
        P: Clone + CoreRequest,
    {
        // Who asks is settled before what they ask is read: a caller without a token learns
        // nothing, not even that its request was malformed.
        let role = self.auth.authenticate(request.metadata())?;
        let (metadata, _, message) = request.into_parts();
        let core_request = message.clone().to_core()?;
        permit(role, if core_request.changes_state() { Access::Change } else { Access::Read })?;
        match self.call(core_request).await {
            Ok(response) => Ok(Response::new(from_core(response))),
            Err(MetaError::NotLeader) if !metadata.contains_key(FORWARDED) => {
                tracing::debug!("forwarding a call to the meta leader");
                let client = self.leader_client().await?;
                let mut request = Request::new(message);
                request.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                // The leader checks the caller's token again.
                if let Some(token) = metadata.get(AUTHORIZATION) {
                    request.metadata_mut().insert(AUTHORIZATION, token.clone());
                }
                forward(client, request).await
            }
            Err(MetaError::NotLeader) => {
                Err(Status::unavailable("leadership moved while forwarding; retry"))
            }
            Err(e) => Err(status(e)),
        }
    }
}

fn procedure_response(r: core::Response) -> proto::ProcedureResponse {
    match r {
        core::Response::Procedure(p) => {
            proto::ProcedureResponse { procedure: Some(convert::procedure(&p)) }
        }
        other => unexpected(other),
    }
}

fn unexpected(r: core::Response) -> ! {
    unreachable!("the core answered with the wrong kind of response: {r:?}")
}

#[tonic::async_trait]
impl proto::meta_server::Meta for MetaService {
    type HeartbeatStream = ReceiverStream<Result<proto::HeartbeatResponse, Status>>;
    type WatchRoutesStream = ReceiverStream<Result<proto::WatchRoutesResponse, Status>>;

    /// A watch is a driver stream like a heartbeat stream; the core refuses it (ending it with
    /// a status) on a follower. The driver is told when the watcher goes away.
    async fn watch_routes(
        &self,
        request: Request<proto::WatchRoutesRequest>,
    ) -> Result<Response<Self::WatchRoutesStream>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let request = convert::watch_routes(request.into_inner())?;
        let watch = core::WatchId(self.next_session.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(WATCH_QUEUED_MAX);
        let driver = self.driver.clone();
        let gone = tx.clone();
        driver
            .tx
            .send(Inbound::WatchOpened { watch, tx, request })
            .await
            .map_err(|_| Status::unavailable("meta server is shutting down"))?;
        tokio::task::spawn(async move {
            gone.closed().await;
            let _ = driver.tx.send(Inbound::WatchClosed { watch }).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn heartbeat(
        &self,
        request: Request<Streaming<proto::HeartbeatRequest>>,
    ) -> Result<Response<Self::HeartbeatStream>, Status> {
        // Refused here, a node with the wrong token never reaches the core: it is never
        // registered, so it is never given a replica.
        self.auth.check(request.metadata(), Access::Join)?;
        let session = SessionId(self.next_session.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(STREAM_QUEUED_MAX);
        // Only the driver holds the stream open: when it closes the stream (a redirect, a
        // refusal, a shutdown), the response ends whatever the node goes on sending.
        let refusals = tx.downgrade();
        let driver = self.driver.clone();
        driver
            .tx
            .send(Inbound::StreamOpened { session, tx })
            .await
            .map_err(|_| Status::unavailable("meta server is shutting down"))?;
        let mut inbound = request.into_inner();
        tokio::task::spawn(async move {
            // Bad load values are clamped, counted against the node and logged once a stream.
            let mut warned = false;
            while let Ok(Some(message)) = inbound.message().await {
                match convert::heartbeat(message) {
                    Ok(heartbeat) => {
                        if heartbeat.load_rejections > 0 && !std::mem::replace(&mut warned, true) {
                            let (node, clamped) = (&heartbeat.node, heartbeat.load_rejections);
                            tracing::warn!(%node, clamped, "heartbeat load values out of range (NaN, negative or over 1e12) were clamped");
                        }
                        if driver.tx.send(Inbound::Heartbeat { session, heartbeat }).await.is_err()
                        {
                            break;
                        }
                    }
                    Err(status) => {
                        if let Some(tx) = refusals.upgrade() {
                            let _ = tx.send(Err(status)).await;
                        }
                        break;
                    }
                }
            }
            let _ = driver.tx.send(Inbound::StreamClosed { session }).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn create_cluster(
        &self,
        request: Request<proto::CreateClusterRequest>,
    ) -> Result<Response<proto::CreateClusterResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Cluster(c) => {
                    proto::CreateClusterResponse { cluster: Some(convert::cluster_info(&c)) }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.create_cluster(r).await }),
        )
        .await
    }

    async fn list_clusters(
        &self,
        request: Request<proto::ListClustersRequest>,
    ) -> Result<Response<proto::ListClustersResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Clusters(p) => proto::ListClustersResponse {
                    clusters: p.items.iter().map(convert::cluster_info).collect(),
                    next_page_token: convert::next_page_token(Listing::Clusters, &p),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.list_clusters(r).await }),
        )
        .await
    }

    async fn cluster_view(
        &self,
        request: Request<proto::ClusterViewRequest>,
    ) -> Result<Response<proto::ClusterViewResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::View(v) => proto::ClusterViewResponse {
                    cluster: Some(convert::cluster_info(&v.cluster)),
                    term: v.term.0,
                    nodes_online: v.nodes_online,
                    nodes_offline: v.nodes_offline,
                    shards_ready: v.shards_ready,
                    shards_unassigned: v.shards_unassigned,
                    tables: v.tables,
                    changes_pending: v.changes_pending,
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.cluster_view(r).await }),
        )
        .await
    }

    async fn drop_cluster(
        &self,
        request: Request<proto::DropClusterRequest>,
    ) -> Result<Response<proto::DropClusterResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::ClusterDropped { id, tables } => {
                    proto::DropClusterResponse { id: id.0, tables }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.drop_cluster(r).await }),
        )
        .await
    }

    async fn create_schema(
        &self,
        request: Request<proto::CreateSchemaRequest>,
    ) -> Result<Response<proto::CreateSchemaResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::SchemaCreated { id, created } => {
                    proto::CreateSchemaResponse { id: id.0, created }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.create_schema(r).await }),
        )
        .await
    }

    async fn drop_schema(
        &self,
        request: Request<proto::DropSchemaRequest>,
    ) -> Result<Response<proto::DropSchemaResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::SchemaDropped { id, tables } => {
                    proto::DropSchemaResponse { id: id.0, tables }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.drop_schema(r).await }),
        )
        .await
    }

    async fn create_table(
        &self,
        request: Request<proto::CreateTableRequest>,
    ) -> Result<Response<proto::CreateTableResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::TableCreated { table, created } => {
                    proto::CreateTableResponse { table: Some(convert::table_info(&table)), created }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.create_table(r).await }),
        )
        .await
    }

    async fn drop_table(
        &self,
        request: Request<proto::DropTableRequest>,
    ) -> Result<Response<proto::DropTableResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::TableDropped { id } => proto::DropTableResponse { id: id.0 },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.drop_table(r).await }),
        )
        .await
    }

    async fn alter_table(
        &self,
        request: Request<proto::AlterTableRequest>,
    ) -> Result<Response<proto::AlterTableResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::TableAltered(t) => {
                    proto::AlterTableResponse { table: Some(convert::table_detail(&t)) }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.alter_table(r).await }),
        )
        .await
    }

    async fn route_tables(
        &self,
        request: Request<proto::RouteTablesRequest>,
    ) -> Result<Response<proto::RouteTablesResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Routes { epoch, routes } => proto::RouteTablesResponse {
                    epoch: epoch.0,
                    routes: routes.iter().map(convert::route).collect(),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.route_tables(r).await }),
        )
        .await
    }

    async fn get_tables(
        &self,
        request: Request<proto::GetTablesRequest>,
    ) -> Result<Response<proto::GetTablesResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::TableDetails { epoch, tables } => proto::GetTablesResponse {
                    epoch: epoch.0,
                    tables: tables.iter().map(convert::table_detail).collect(),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.get_tables(r).await }),
        )
        .await
    }

    async fn get_table(
        &self,
        request: Request<proto::GetTableRequest>,
    ) -> Result<Response<proto::GetTableResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::TableDetails { epoch, tables } => proto::GetTableResponse {
                    epoch: epoch.0,
                    table: tables.first().map(convert::table_detail),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.get_table(r).await }),
        )
        .await
    }

    async fn list_nodes(
        &self,
        request: Request<proto::ListNodesRequest>,
    ) -> Result<Response<proto::ListNodesResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Nodes(p) => proto::ListNodesResponse {
                    nodes: p.items.iter().map(convert::node_info).collect(),
                    next_page_token: convert::next_page_token(Listing::Nodes, &p),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.list_nodes(r).await }),
        )
        .await
    }

    async fn drain_node(
        &self,
        request: Request<proto::DrainNodeRequest>,
    ) -> Result<Response<proto::DrainNodeResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Node(n) => {
                    proto::DrainNodeResponse { node: Some(convert::node_info(&n)) }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.drain_node(r).await }),
        )
        .await
    }

    async fn restart_node(
        &self,
        request: Request<proto::RestartNodeRequest>,
    ) -> Result<Response<proto::RestartNodeResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Node(n) => {
                    proto::RestartNodeResponse { node: Some(convert::node_info(&n)) }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.restart_node(r).await }),
        )
        .await
    }

    async fn mark_node_slow(
        &self,
        request: Request<proto::MarkNodeSlowRequest>,
    ) -> Result<Response<proto::MarkNodeSlowResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Node(n) => {
                    proto::MarkNodeSlowResponse { node: Some(convert::node_info(&n)) }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.mark_node_slow(r).await }),
        )
        .await
    }

    async fn remove_node(
        &self,
        request: Request<proto::RemoveNodeRequest>,
    ) -> Result<Response<proto::RemoveNodeResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::NodeRemoved { name } => proto::RemoveNodeResponse { node: name },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.remove_node(r).await }),
        )
        .await
    }

    async fn scheduler_status(
        &self,
        request: Request<proto::SchedulerStatusRequest>,
    ) -> Result<Response<proto::SchedulerStatusResponse>, Status> {
        self.unary(request, scheduler_reply, |mut c, r| {
            Box::pin(async move { c.scheduler_status(r).await })
        })
        .await
    }

    async fn set_scheduler(
        &self,
        request: Request<proto::SetSchedulerRequest>,
    ) -> Result<Response<proto::SchedulerStatusResponse>, Status> {
        self.unary(request, scheduler_reply, |mut c, r| {
            Box::pin(async move { c.set_scheduler(r).await })
        })
        .await
    }

    async fn get_placement(
        &self,
        request: Request<proto::GetPlacementRequest>,
    ) -> Result<Response<proto::PlacementResponse>, Status> {
        self.unary(request, placement_reply, |mut c, r| {
            Box::pin(async move { c.get_placement(r).await })
        })
        .await
    }

    async fn set_placement(
        &self,
        request: Request<proto::SetPlacementRequest>,
    ) -> Result<Response<proto::PlacementResponse>, Status> {
        self.unary(request, placement_reply, |mut c, r| {
            Box::pin(async move { c.set_placement(r).await })
        })
        .await
    }

    async fn what_if(
        &self,
        request: Request<proto::WhatIfRequest>,
    ) -> Result<Response<proto::WhatIfResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::WhatIf(report) => convert::what_if(&report),
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.what_if(r).await }),
        )
        .await
    }

    async fn plan_scheduler(
        &self,
        request: Request<proto::PlanSchedulerRequest>,
    ) -> Result<Response<proto::PlanSchedulerResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Plan(moves) => proto::PlanSchedulerResponse {
                    moves: moves.iter().map(convert::planned_move).collect(),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.plan_scheduler(r).await }),
        )
        .await
    }

    async fn list_events(
        &self,
        request: Request<proto::ListEventsRequest>,
    ) -> Result<Response<proto::ListEventsResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Events { events, last } => proto::ListEventsResponse {
                    events: events.iter().map(convert::event).collect(),
                    last,
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.list_events(r).await }),
        )
        .await
    }

    async fn move_shard(
        &self,
        request: Request<proto::MoveShardRequest>,
    ) -> Result<Response<proto::MoveShardResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Moved(m) => {
                    proto::MoveShardResponse { r#move: Some(convert::planned_move(&m)) }
                }
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.move_shard(r).await }),
        )
        .await
    }

    async fn split_shard(
        &self,
        request: Request<proto::SplitShardRequest>,
    ) -> Result<Response<proto::ProcedureResponse>, Status> {
        self.unary(request, procedure_response, |mut c, r| {
            Box::pin(async move { c.split_shard(r).await })
        })
        .await
    }

    async fn merge_shards(
        &self,
        request: Request<proto::MergeShardsRequest>,
    ) -> Result<Response<proto::ProcedureResponse>, Status> {
        self.unary(request, procedure_response, |mut c, r| {
            Box::pin(async move { c.merge_shards(r).await })
        })
        .await
    }

    async fn list_procedures(
        &self,
        request: Request<proto::ListProceduresRequest>,
    ) -> Result<Response<proto::ListProceduresResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Procedures(all) => proto::ListProceduresResponse {
                    procedures: all.iter().map(convert::procedure).collect(),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.list_procedures(r).await }),
        )
        .await
    }

    async fn cancel_procedure(
        &self,
        request: Request<proto::CancelProcedureRequest>,
    ) -> Result<Response<proto::ProcedureResponse>, Status> {
        self.unary(request, procedure_response, |mut c, r| {
            Box::pin(async move { c.cancel_procedure(r).await })
        })
        .await
    }

    async fn list_shards(
        &self,
        request: Request<proto::ListShardsRequest>,
    ) -> Result<Response<proto::ListShardsResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Shards(p) => proto::ListShardsResponse {
                    shards: p.items.iter().map(convert::shard_info).collect(),
                    next_page_token: convert::next_page_token(Listing::Shards, &p),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.list_shards(r).await }),
        )
        .await
    }

    async fn list_tables(
        &self,
        request: Request<proto::ListTablesRequest>,
    ) -> Result<Response<proto::ListTablesResponse>, Status> {
        self.unary(
            request,
            |r| match r {
                core::Response::Tables(p) => proto::ListTablesResponse {
                    tables: p.items.iter().map(convert::table_info).collect(),
                    next_page_token: convert::next_page_token(Listing::Tables, &p),
                },
                other => unexpected(other),
            },
            |mut c, r| Box::pin(async move { c.list_tables(r).await }),
        )
        .await
    }

    async fn get_leader(
        &self,
        request: Request<proto::GetLeaderRequest>,
    ) -> Result<Response<proto::GetLeaderResponse>, Status> {
        self.auth.check(request.metadata(), Access::Read)?;
        let (leader, term) = self.leader.get().unwrap_or_default();
        Ok(Response::new(proto::GetLeaderResponse { leader, term: term.0 }))
    }
}

/// Shared so that the leader view can be handed out cheaply.
pub type SharedService = Arc<MetaService>;

fn placement_reply(r: core::Response) -> proto::PlacementResponse {
    match r {
        core::Response::Placement(p) => convert::placement(&p),
        other => unexpected(other),
    }
}

fn scheduler_reply(r: core::Response) -> proto::SchedulerStatusResponse {
    match r {
        core::Response::Scheduler(s) => convert::scheduler_status(&s),
        other => unexpected(other),
    }
}
