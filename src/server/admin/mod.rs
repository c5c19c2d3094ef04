//! The admin HTTP port, for operators and their tools: `/metrics` (OpenMetrics text),
//! `/health` (the process is live), `/ready` (it can serve: a leader with its catalog loaded,
//! or a follower that knows the leader), `/api/v1/status`, the cluster API under `/api/v1`
//! ([`api`]), and at `/` a page that shows the cluster at a glance from that API (`page.html`:
//! plain HTML and a little JS, built into the binary). Real tokio only: madsim has no HTTP
//! server to run it on.

pub mod api;

use std::future::Future;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::driver::DriverHandle;
use super::health::{Health, Role};
use super::metrics::metrics;
use crate::core::{self, PageRequest};

/// The cluster page.
const PAGE: &str = include_str!("page.html");

/// The cluster gauges are read from at most this many clusters per scrape.
const CLUSTERS_PER_SCRAPE_MAX: usize = 4_096;

#[derive(Clone)]
pub struct Admin {
    pub driver: DriverHandle,
    pub health: Health,
    pub name: String,
    pub api: api::Api,
}

pub fn router(admin: Admin) -> Router {
    Router::new()
        .route("/", get(|| async { ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE)) }))
        .route("/metrics", get(scrape))
        .route("/health", get(|| async { Json(json!({"status": "live"})) }))
        .route("/ready", get(ready))
        .route("/api/v1/status", get(status))
        .merge(api::routes().with_state(admin.api.clone()))
        .with_state(admin)
}

/// Serves until `stop` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    admin: Admin,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(admin)).with_graceful_shutdown(stop).await {
        tracing::error!(error = %e, "the admin HTTP server failed");
    }
}

async fn scrape(State(admin): State<Admin>) -> Response {
    metrics().set_clusters(&admin.cluster_views().await);
    ([(header::CONTENT_TYPE, crate::client::metrics::CONTENT_TYPE)], metrics().encode())
        .into_response()
}

fn role_json(role: &Role) -> serde_json::Value {
    match role {
        Role::Leading => json!({"role": "leader"}),
        Role::Loading => json!({"role": "loading"}),
        Role::Following(leader) => json!({"role": "follower", "leader": leader}),
        Role::Leaderless => json!({"role": "leaderless"}),
        Role::Stopping => json!({"role": "stopping"}),
    }
}

/// 200 when this node can serve a client now, 503 (with why) when it cannot.
async fn ready(State(admin): State<Admin>) -> Response {
    let role = admin.health.role();
    let code = if role.serves() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(role_json(&role))).into_response()
}

async fn status(State(admin): State<Admin>) -> Json<serde_json::Value> {
    let mut status = role_json(&admin.health.role());
    status["name"] = json!(admin.name);
    Json(status)
}

impl Admin {
    /// Every cluster's view, from this node's core: empty on a follower (the leader exports
    /// the cluster gauges, as it alone knows them).
    async fn cluster_views(&self) -> Vec<core::ClusterView> {
        let mut names = Vec::new();
        let mut page = PageRequest::default();
        loop {
            let Ok(core::Response::Clusters(clusters)) =
                self.driver.inspect(core::Request::ListClusters { page }).await
            else {
                return Vec::new();
            };
            names.extend(clusters.items.into_iter().map(|c| c.name));
            match clusters.next {
                Some(after) if names.len() < CLUSTERS_PER_SCRAPE_MAX => page.after = Some(after),
                _ => break,
            }
        }
        let mut views = Vec::with_capacity(names.len());
        for cluster in names {
            if let Ok(core::Response::View(view)) =
                self.driver.inspect(core::Request::ClusterView { cluster }).await
            {
                views.push(view);
            }
        }
        views
    }
}
