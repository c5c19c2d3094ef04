//! The Grafana dashboard against a real Prometheus (Debian's `prometheus`, which `.ci/setup`
//! installs): a meta-server with node-agents does some work (tables created, a node drained,
//! a node killed and its shards failed over) while Prometheus scrapes its admin port, and then
//! every query of every panel in `config/grafana/shardmeta.json` must be valid PromQL, and all
//! but a few must return data.
//!
//! `DASHBOARD_SCREENSHOT=PATH` also draws the panels with `config/grafana/preview.html` in
//! headless Chromium and saves the picture there (docs/operating.md's comes from it).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::node_kill::wait_for;
use crate::process::*;

fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An instant query's answer (null while Prometheus is not up, or starting: it answers 503
/// "Service Unavailable" before it is ready, which a CI run met).
fn query(prom: &str, expr: &str) -> serde_json::Value {
    let Ok((code, body)) =
        http("GET", prom, &format!("/api/v1/query?query={}", percent_encoded(expr)))
    else {
        return serde_json::Value::Null;
    };
    if code == 503 {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn start_prometheus(dir: &Path, target: &str) -> (Proc, String) {
    assert!(
        Command::new("prometheus").arg("--version").output().is_ok_and(|o| o.status.success()),
        "prometheus is not installed: run ./.ci/setup (Debian package prometheus)"
    );
    let config = dir.join("prometheus.yml");
    let scrape = format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: shardmeta\n    static_configs:\n      - targets: ['{target}']\n");
    std::fs::write(&config, scrape).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address={addr}"));
    (Proc::spawn("prometheus", cmd, &dir.join("prometheus.log")), addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_is_valid_promql_with_data_from_a_running_meta() {
    let _turn = serial().await;
    let dir = TempDir::new("dashboard");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let meta = meta_server(
        dir.path(),
        "meta-0",
        port,
        &[("SHARDMETA_DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD", "1")],
    );
    let (_prometheus, prom) = start_prometheus(dir.path(), &meta.admin);
    let mut nodes: Vec<Proc> =
        (0..3).map(|i| node_agent(dir.path(), &format!("n{i}"), free_port(), &endpoint)).collect();
    wait_for("prometheus scraping meta", Duration::from_secs(20), async || {
        query(&prom, r#"shardmeta_nodes{state="online"}"#)["data"]["result"]
            .as_array()
            .is_some_and(|r| r.iter().any(|s| s["value"][1] == "3"))
    })
    .await;
    metactl(&endpoint, &["table", "create", "orders", "users", "events"]);
    let screenshot = std::env::var("DASHBOARD_SCREENSHOT").ok();
    if screenshot.is_some() {
        // For the picture: a minute of DDL, so that the rates have something to show.
        for i in 0..30 {
            metactl(&endpoint, &["table", "create", &format!("t{i}")]);
            if i % 3 == 0 {
                metactl(&endpoint, &["table", "drop", &format!("t{i}")]);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let (drained, _) = busiest_node(&meta.admin);
    metactl(&endpoint, &["node", "drain", &drained]);
    wait_for("the drain done", Duration::from_secs(20), async || {
        api_nodes(&meta.admin).iter().any(|n| n["name"] == drained.as_str() && n["replicas"] == 0)
    })
    .await;
    let (killed, _) = busiest_node(&meta.admin);
    nodes.retain_mut(|n| n.name != killed);
    wait_for("a failover seen by prometheus", Duration::from_secs(30), async || {
        query(&prom, "sum(shardmeta_failover_seconds_count)")["data"]["result"][0]["value"][1]
            .as_str()
            .is_some_and(|v| v != "0")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/grafana/shardmeta.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut empty = Vec::new();
    let panels = dashboard["panels"].as_array().unwrap();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        let mut series = 0;
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let answer = query(&prom, expr);
            assert_eq!(answer["status"], "success", "panel {title:?}: {expr} is refused: {answer}");
            series += answer["data"]["result"].as_array().map_or(0, Vec::len);
        }
        if series == 0 {
            empty.push(title);
        }
    }
    println!("{} panels, every query valid; without data: {empty:?}", panels.len());
    // The counters exist from zero, so that increase() sees the first failovers of a term.
    let failovers =
        query(&prom, r#"sum(increase(shardmeta_scheduling_events_total{cause="failover"}[5m]))"#);
    let failovers: f64 =
        failovers["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(failovers > 0.0, "the failover of {killed}'s shards is not in increase(): {failovers}");
    assert!(empty.len() <= 2, "panels without data after a drain and a failover: {empty:?}");

    if let Some(png) = screenshot {
        tokio::time::sleep(Duration::from_secs(20)).await;
        let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/preview.html");
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
            ])
            .args([
                "--disable-component-update",
                "--disable-sync",
                "--allow-file-access-from-files",
                "--window-size=1400,2250",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", dir.path().join("chromium").display()))
            .arg(format!("--screenshot={png}"))
            .arg(format!("file://{}?prom=http://{prom}&minutes=3", page.display()))
            .output()
            .expect("chromium runs");
        assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    }
}
