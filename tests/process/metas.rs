//! A cluster of meta servers on one etcd, and finding its serving leader.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use shardmeta::client::MetaClient;
use shardmeta::proto;

/// Meta servers on one etcd (cluster), with clients able to reach any of them.
pub struct Metas {
    pub procs: BTreeMap<String, Proc>,
    pub endpoints: Vec<String>,
}

pub fn start_metas(dir: &std::path::Path, etcd: &str, n: usize) -> Metas {
    start_metas_with(dir, etcd, n, &[("SHARDMETA_ELECTION_TTL_MS", "3000")])
}

/// [`start_metas`] with these settings (variables) instead of a 3 s election TTL.
pub fn start_metas_with(
    dir: &std::path::Path,
    etcd: &str,
    n: usize,
    env: &[(&str, &str)],
) -> Metas {
    let mut procs = BTreeMap::new();
    let mut endpoints = Vec::new();
    for i in 0..n {
        let port = free_port();
        let ep = format!("127.0.0.1:{port}");
        let env: Vec<(&str, &str)> =
            [("SHARDMETA_ETCD_ENDPOINTS", etcd)].into_iter().chain(env.iter().copied()).collect();
        procs.insert(ep.clone(), meta_server(dir, &format!("m{i}"), port, &env));
        endpoints.push(ep);
    }
    Metas { procs, endpoints }
}

pub async fn leader_of(endpoints: &[String]) -> Option<String> {
    let mut meta = MetaClient::new(endpoints.to_vec(), Duration::from_secs(2)).ok()?;
    let (leader, mut client) = meta.leader().await.ok()?;
    // Only a serving leader counts: it answers a request that needs leadership.
    client.list_clusters(proto::ListClustersRequest::default()).await.ok()?;
    Some(leader)
}

pub async fn wait_leader(
    endpoints: &[String],
    limit: Duration,
    not: Option<&str>,
) -> (String, Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(l) = leader_of(endpoints).await.filter(|l| Some(l.as_str()) != not) {
            return (l, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no meta leader within {limit:?}");
}
