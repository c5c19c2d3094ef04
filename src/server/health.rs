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
            (Some(leader), _) => Role::Following(leader),
            (None, Some(_)) => Role::Loading,
            (None, None) => Role::Leaderless,
        }
    }
}

/// Keeps the standard health service's answer for [`META_SERVICE`] (and for the server as a
/// whole, the empty name) in step with [`Health::role`]. Polled: leadership is learnt from etcd
/// by polling too, so this adds no staleness that matters.
#[cfg(not(madsim))]
pub async fn report(health: Health, reporter: tonic_health::server::HealthReporter) {
    use tonic_health::ServingStatus;
    let mut reported = None;
    loop {
        let role = health.role();
        let status = if role.serves() { ServingStatus::Serving } else { ServingStatus::NotServing };
        if reported != Some(status) {
            tracing::debug!(?role, ?status, "gRPC health");
            reporter.set_service_status(META_SERVICE, status).await;
            reporter.set_service_status("", status).await;
            reported = Some(status);
        }
        if role == Role::Stopping {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
