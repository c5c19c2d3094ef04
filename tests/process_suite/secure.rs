//! Real processes on loopback with the certificates and tokens `config/secure/make-certs.sh`
//! makes: mutual TLS on the gRPC port, an admin and a node token. Calls without a certificate,
//! without a token or with the wrong one are refused, with the code a client can act on; a node
//! with the wrong token is never registered, so it never gets a replica. With three meta nodes
//! on a TLS etcd that checks client certificates, a follower forwards DDL to the leader over
//! TLS, with the caller's token, and redirects data nodes there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::node_kill::{header, wait_for};
use crate::process::*;
use shardmeta::client::{ClientTls, Credentials, MetaClient};
use shardmeta::proto;
use tonic::Code;

struct Certs {
    dir: PathBuf,
    admin: String,
    node: String,
}

/// Runs the repository's own script, as an operator would.
fn make_certs(dir: &Path) -> Certs {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/secure/make-certs.sh");
    let out = Command::new(script).arg(dir).output().expect("make-certs.sh runs");
    assert!(out.status.success(), "make-certs.sh: {}", String::from_utf8_lossy(&out.stderr));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap().trim().to_owned();
    Certs { dir: dir.to_owned(), admin: read("admin.token"), node: read("node.token") }
}

impl Certs {
    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// A meta server's variables: TLS with client certificates, and both tokens.
    fn meta_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SHARDMETA_TLS_CERT", self.path("server.pem")),
            ("SHARDMETA_TLS_KEY", self.path("server.key")),
            ("SHARDMETA_TLS_CA", self.path("ca.pem")),
            ("SHARDMETA_TLS_CLIENT_AUTH", "true".into()),
            ("SHARDMETA_AUTH_ADMIN_TOKEN_FILE", self.path("admin.token")),
            ("SHARDMETA_AUTH_NODE_TOKEN_FILE", self.path("node.token")),
        ]
    }

    fn tls(&self, with_cert: bool) -> ClientTls {
        let (cert, key) = if with_cert {
            (Some(self.dir.join("client.pem")), Some(self.dir.join("client.key")))
        } else {
            (None, None)
        };
        ClientTls { ca: Some(self.dir.join("ca.pem")), cert, key, domain: None }
    }

    fn client(&self, endpoints: &[String], token: Option<&str>) -> MetaClient {
        let credentials = Credentials::from_settings(&self.tls(true), token).unwrap();
        MetaClient::new(endpoints.to_vec(), Duration::from_secs(3))
            .unwrap()
            .with_credentials(credentials)
    }

    /// A node-agent's variables: the client certificate, and `token`.
    fn node_env(&self, token: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SHARDMETA_NODE_TLS_CA", self.path("ca.pem")),
            ("SHARDMETA_NODE_TLS_CERT", self.path("client.pem")),
            ("SHARDMETA_NODE_TLS_KEY", self.path("client.key")),
            ("SHARDMETA_NODE_TOKEN", token.to_owned()),
        ]
    }

    /// metactl's TLS flags.
    fn metactl_tls(&self) -> Vec<String> {
        [
            "--tls-ca",
            &self.path("ca.pem"),
            "--tls-cert",
            &self.path("client.pem"),
            "--tls-key",
            &self.path("client.key"),
        ]
        .map(String::from)
        .to_vec()
    }
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn list_clusters(
    meta: &mut MetaClient,
) -> Result<proto::ListClustersResponse, tonic::Status> {
    meta.call(|mut c| async move { c.list_clusters(proto::ListClustersRequest::default()).await })
        .await
}

async fn create_table(
    meta: &mut MetaClient,
    name: &str,
) -> Result<proto::CreateTableResponse, tonic::Status> {
    let req = proto::CreateTableRequest {
        header: header(),
        schema: "public".into(),
        name: name.into(),
        ..Default::default()
    };
    meta.call(|mut c| {
        let req = req.clone();
        async move { c.create_table(req).await }
    })
    .await
}

fn code<T>(r: Result<T, tonic::Status>) -> Code {
    r.map(|_| ()).unwrap_err().code()
}

async fn nodes(meta: &mut MetaClient) -> Vec<proto::NodeInfo> {
    meta.call(|mut c| async move {
        c.list_nodes(proto::ListNodesRequest { header: header(), ..Default::default() }).await
    })
    .await
    .map(|r| r.nodes)
    .unwrap_or_default()
}

fn metactl_as(
    endpoint: &str,
    certs: &Certs,
    token: Option<&str>,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metactl"));
    cmd.arg("--endpoints")
        .arg(endpoint)
        .args(certs.metactl_tls())
        .args(args)
        .env_remove("METACTL_TOKEN");
    if let Some(t) = token {
        cmd.env("METACTL_TOKEN", t);
    }
    cmd.output().expect("metactl runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_certificate_or_the_right_token_nothing_gets_in() {
    let _turn = serial().await;
    let dir = TempDir::new("secure-embedded");
    let certs = make_certs(&dir.path().join("certs"));
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let endpoints = vec![endpoint.clone()];
    let meta_env = certs.meta_env();
    let meta = meta_server(dir.path(), "meta-0", port, &refs(&meta_env));
    let mut admin = certs.client(&endpoints, Some(&certs.admin));
    wait_for("the secure meta serving", Duration::from_secs(10), async || {
        list_clusters(&mut admin).await.is_ok()
    })
    .await;

    // No TLS, or TLS without the client certificate: the connection itself is refused.
    let mut plain = MetaClient::new(endpoints.clone(), Duration::from_secs(2)).unwrap();
    assert!(list_clusters(&mut plain).await.is_err(), "a plain client got in");
    let no_cert = Credentials::from_settings(&certs.tls(false), Some(&certs.admin)).unwrap();
    let mut no_cert = MetaClient::new(endpoints.clone(), Duration::from_secs(2))
        .unwrap()
        .with_credentials(no_cert);
    assert!(list_clusters(&mut no_cert).await.is_err(), "a client without a certificate got in");

    // With the certificate: no token, a wrong one, the node token for DDL.
    assert_eq!(
        code(list_clusters(&mut certs.client(&endpoints, None)).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(list_clusters(&mut certs.client(&endpoints, Some("wrong-token-0123456789"))).await),
        Code::Unauthenticated
    );
    let mut node = certs.client(&endpoints, Some(&certs.node));
    assert_eq!(code(create_table(&mut node, "t_by_node").await), Code::PermissionDenied);
    assert!(list_clusters(&mut node).await.is_ok(), "the node token reads");
    assert!(create_table(&mut admin, "t_by_admin").await.unwrap().created);

    // metactl: refused without the token (exit 1, the code named), accepted with it.
    let refused = metactl_as(&endpoint, &certs, None, &["table", "create", "t_cli"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let accepted = metactl_as(&endpoint, &certs, Some(&certs.admin), &["table", "create", "t_cli"]);
    assert!(accepted.status.success(), "{}", String::from_utf8_lossy(&accepted.stderr));

    // The admin port's API takes the same tokens.
    let bearer = |t: &str| format!("Authorization: Bearer {t}\r\n");
    assert_eq!(http("GET", &meta.admin, "/api/v1/clusters").unwrap().0, 401);
    assert_eq!(
        http_with("GET", &meta.admin, "/api/v1/clusters", &bearer(&certs.node)).unwrap().0,
        200
    );
    assert_eq!(
        http_with(
            "POST",
            &meta.admin,
            "/api/v1/clusters/default/scheduler/pause",
            &bearer(&certs.node)
        )
        .unwrap()
        .0,
        403
    );
    assert_eq!(
        http_with(
            "POST",
            &meta.admin,
            "/api/v1/clusters/default/scheduler/pause",
            &bearer(&certs.admin)
        )
        .unwrap()
        .0,
        200
    );
    assert_eq!(http("GET", &meta.admin, "/metrics").unwrap().0, 200, "scrapes need no token");

    // A node with the wrong token is never registered; one with the node token gets replicas.
    let (bad_env, good_env) =
        (certs.node_env("wrong-token-0123456789"), certs.node_env(&certs.node));
    let _bad = node_agent_env(dir.path(), "bad", free_port(), &endpoint, &[], &refs(&bad_env));
    let _admin_as_node = node_agent_env(
        dir.path(),
        "admin-as-node",
        free_port(),
        &endpoint,
        &[],
        &refs(&certs.node_env(&certs.admin)),
    );
    let _good = node_agent_env(dir.path(), "good", free_port(), &endpoint, &[], &refs(&good_env));
    wait_for("the good node leading shards", Duration::from_secs(15), async || {
        nodes(&mut admin).await.iter().any(|n| n.name == "good" && n.shards > 0)
    })
    .await;
    // The refused nodes kept trying all along; give them a few more heartbeats' time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let names: Vec<String> = nodes(&mut admin).await.into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["good"], "only the node with the node token is registered");
    let bad_log = std::fs::read_to_string(dir.path().join("bad.log")).unwrap();
    assert!(
        bad_log.contains("the token is not valid here"),
        "the refused node says why: {bad_log}"
    );
    let admin_log = std::fs::read_to_string(dir.path().join("admin-as-node.log")).unwrap();
    assert!(admin_log.contains("cannot join as a data node"), "{admin_log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_metas_on_a_tls_etcd_forward_over_tls_with_the_callers_token() {
    let _turn = serial().await;
    let dir = TempDir::new("secure-etcd");
    let certs = make_certs(&dir.path().join("certs"));
    let etcd = Etcd::start_with(dir.path(), 1, Some(&certs.dir));
    let mut env = certs.meta_env();
    env.extend([
        ("SHARDMETA_ETCD_ENDPOINTS", etcd.endpoints()),
        ("SHARDMETA_ELECTION_TTL_MS", "3000".into()),
        ("SHARDMETA_ETCD_TLS_CA", certs.path("ca.pem")),
        ("SHARDMETA_ETCD_TLS_CERT", certs.path("server.pem")),
        ("SHARDMETA_ETCD_TLS_KEY", certs.path("server.key")),
    ]);
    let mut metas = Vec::new();
    let mut endpoints = Vec::new();
    for i in 0..3 {
        let port = free_port();
        metas.push(meta_server(dir.path(), &format!("m{i}"), port, &refs(&env)));
        endpoints.push(format!("127.0.0.1:{port}"));
    }
    let mut admin = certs.client(&endpoints, Some(&certs.admin));
    wait_for("a secure meta leader", Duration::from_secs(20), async || {
        list_clusters(&mut admin).await.is_ok()
    })
    .await;
    let (leader, _) = admin.leader().await.unwrap();
    let follower = endpoints.iter().find(|e| **e != leader).unwrap().clone();

    // A follower, asked directly, forwards DDL to the leader over TLS with the caller's token;
    // the node token is refused (at the follower, before anything is forwarded).
    let mut at_follower = certs
        .client(std::slice::from_ref(&follower), Some(&certs.admin))
        .connect_to(&follower)
        .await
        .unwrap();
    // A follower learns the leader from etcd within a poll or two.
    wait_for("the follower knowing the leader", Duration::from_secs(10), async || {
        at_follower.list_clusters(proto::ListClustersRequest::default()).await.is_ok()
    })
    .await;
    let req = proto::CreateTableRequest {
        header: header(),
        schema: "public".into(),
        name: "forwarded".into(),
        ..Default::default()
    };
    assert!(at_follower.create_table(req.clone()).await.unwrap().into_inner().created);
    let mut node_at_follower = certs
        .client(std::slice::from_ref(&follower), Some(&certs.node))
        .connect_to(&follower)
        .await
        .unwrap();
    assert_eq!(
        node_at_follower.create_table(req).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // A data node pointed at the follower is sent to the leader, and gets replicas.
    let node_env = certs.node_env(&certs.node);
    let _node = node_agent_env(dir.path(), "n0", free_port(), &follower, &[], &refs(&node_env));
    wait_for("the node leading shards", Duration::from_secs(20), async || {
        nodes(&mut admin).await.iter().any(|n| n.name == "n0" && n.shards > 0)
    })
    .await;
    drop(etcd);
}
