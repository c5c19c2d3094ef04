//! What this meta node can do now, as the standard gRPC health service reports it: a client
//! sent here is served only by a leader whose core is ready, or by a follower that knows the
//! leader to forward to. A node that is loading, leaderless or stopping says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::LeaderView;

/// The service name clients ask the health service about.
pub const META_SERVICE: &str = "shardmeta.v1.Meta";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Leads, with its catalog loaded and storage answering.
    Leading,
    /// Won the election; the catalog is loading, or a reload after a failed write is under way.
    Loading,
    /// Another meta node leads; calls are forwarded there.
    Following(String),
    /// No leader is known: calls fail as unavailable.
    Leaderless,
    /// Shutting down.
    Stopping,
}

impl Role {
    pub fn serves(&self) -> bool {
        matches!(self, Role::Leading | Role::Following(_))
    }
}

#[derive(Clone)]
pub struct Health {
    leader: LeaderView,
    stopping: Arc<AtomicBool>,
}

impl Health {
    pub fn new(leader: LeaderView) -> Health {
        Health { leader, stopping: Arc::default() }
    }

    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub fn role(&self) -> Role {
        if self.stopping.load(Ordering::Relaxed) {
            return Role::Stopping;
        }
        if self.leader.serving_here() {
            return Role::Leading;
        }
        match (self.leader.other_leader(), self.leader.get()) {
            (Some((leader, _)), _) => Role::Following(leader),
            (None, Some(_)) => Role::Loading,
            (None, None) => Role::Leaderless,
        }
    }
}

/// The standard gRPC health service (`grpc.health.v1.Health`), answered from [`Health::role`]
/// at the moment each call is answered, never from a status cached by a poller: a meta node
/// resumed from a pause says NOT_SERVING at its first answer if its leadership ran out.
#[cfg(not(madsim))]
mod service {
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;
    use tonic::{Request, Response, Status};
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

    use super::{Health, Role, META_SERVICE};
    use crate::core::error::quoted;

    /// How often a `Watch` looks at the role for a change to send.
    const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(100);

    impl Health {
        fn status(&self, service: &str) -> Result<ServingStatus, Status> {
            if !service.is_empty() && service != META_SERVICE {
                return Err(Status::not_found(format!("unknown service {}", quoted(service))));
            }
            Ok(if self.role().serves() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            })
        }
    }

    #[tonic::async_trait]
    impl tonic_health::pb::health_server::Health for Health {
        async fn check(
            &self,
            request: Request<HealthCheckRequest>,
        ) -> Result<Response<HealthCheckResponse>, Status> {
            let status = self.status(&request.into_inner().service)?;
            Ok(Response::new(HealthCheckResponse { status: status.into() }))
        }

        type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;

        /// Sends the status now and at every change, until the caller goes or this node stops.
        async fn watch(
            &self,
            request: Request<HealthCheckRequest>,
        ) -> Result<Response<Self::WatchStream>, Status> {
            let service = request.into_inner().service;
            let mut sent = self.status(&service)?;
            let (tx, rx) = mpsc::channel(4);
            let health = self.clone();
            tokio::task::spawn(async move {
                if tx.send(Ok(HealthCheckResponse { status: sent.into() })).await.is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        biased; // a fixed order: see `client::node`
                        _ = tx.closed() => return,
                        _ = tokio::time::sleep(WATCH_POLL) => {}
                    }
                    let status = health.status(&service).unwrap_or(ServingStatus::ServiceUnknown);
                    if status != sent {
                        sent = status;
                        if tx.send(Ok(HealthCheckResponse { status: status.into() })).await.is_err()
                            || health.role() == Role::Stopping
                        {
                            return;
                        }
                    }
                }
            });
            Ok(Response::new(ReceiverStream::new(rx)))
        }
    }
}
