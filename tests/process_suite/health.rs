//! Real processes on loopback: the standard gRPC health service tells the truth (SERVING only
//! on a leader or on a follower that knows the leader, NOT_SERVING while etcd is gone; the
//! admin port's `/ready` agrees), and
//! reflection lists the services, as `grpcurl list` asks.

use std::time::Duration;

use crate::process::metas::{start_metas, wait_leader};
use crate::process::node_kill::wait_for;
use crate::process::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

async fn channel(endpoint: &str) -> Option<tonic::transport::Channel> {
    tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
        .ok()?
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()
}

async fn status(endpoint: &str) -> Option<ServingStatus> {
    let mut health = HealthClient::new(channel(endpoint).await?);
    let r = health.check(HealthCheckRequest { service: "shardmeta.v1.Meta".into() }).await.ok()?;
    Some(r.into_inner().status())
}

async fn all_are(endpoints: &[String], want: ServingStatus) -> bool {
    for e in endpoints {
        if status(e).await != Some(want) {
            return false;
        }
    }
    true
}

/// What `grpcurl list` prints: the services reflection names.
async fn services(endpoint: &str) -> Vec<String> {
    let mut reflection = ServerReflectionClient::new(channel(endpoint).await.expect("reachable"));
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers =
        reflection.server_reflection_info(tokio_stream::iter([ask])).await.unwrap().into_inner();
    match answers.message().await.unwrap().and_then(|r| r.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("reflection answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_meta_is_serving_and_lists_its_services() {
    let _turn = serial().await;
    let dir = TempDir::new("health-embedded");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let _meta = meta_server(dir.path(), "meta-0", port, &[]);
    let endpoints = [endpoint.clone()];
    wait_for("SERVING", Duration::from_secs(10), async || {
        all_are(&endpoints, ServingStatus::Serving).await
    })
    .await;
    let listed = services(&endpoint).await;
    for service in
        ["shardmeta.v1.Meta", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]
    {
        assert!(listed.iter().any(|s| s == service), "{service} is not in {listed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metas_on_etcd_are_serving_until_etcd_is_gone_and_again_once_it_is_back() {
    let _turn = serial().await;
    let dir = TempDir::new("health-etcd");
    let etcd = Etcd::start(dir.path(), 1);
    let metas = start_metas(dir.path(), &etcd.endpoints(), 3);
    wait_leader(&metas.endpoints, Duration::from_secs(20), None).await;
    // The followers learn the leader by polling etcd (a third of the 3 s election TTL).
    wait_for("leader and followers SERVING", Duration::from_secs(5), async || {
        all_are(&metas.endpoints, ServingStatus::Serving).await
    })
    .await;

    // The admin port's /ready agrees: 200, naming the role.
    let ready = |admin: &str| http("GET", admin, "/ready").unwrap_or_default();
    let roles: Vec<(u16, String)> = metas.procs.values().map(|p| ready(&p.admin)).collect();
    assert!(roles.iter().all(|(code, _)| *code == 200), "{roles:?}");
    assert_eq!(
        roles.iter().filter(|(_, body)| body.contains(r#""role":"follower""#)).count(),
        2,
        "{roles:?}"
    );

    // Followers answer the cluster API from the leader.
    for p in metas.procs.values() {
        let (code, body) = http("GET", &p.admin, "/api/v1/clusters").unwrap();
        assert!(code == 200 && body.contains(r#""name":"default""#), "{}: {code} {body}", p.name);
    }

    etcd.members[0].signal("STOP");
    let took =
        wait_for("every meta NOT_SERVING with etcd paused", Duration::from_secs(10), async || {
            all_are(&metas.endpoints, ServingStatus::NotServing).await
        })
        .await;
    println!("with etcd paused, every meta node reported NOT_SERVING after {took:?}");
    for p in metas.procs.values() {
        let (code, body) = ready(&p.admin);
        assert_eq!(code, 503, "{}: {body}", p.name);
    }
    etcd.members[0].signal("CONT");
    let took = wait_for("every meta SERVING again", Duration::from_secs(15), async || {
        all_are(&metas.endpoints, ServingStatus::Serving).await
    })
    .await;
    println!("with etcd back, every meta node reported SERVING after {took:?}");
}
