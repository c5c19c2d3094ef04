//! Real processes on loopback: the admin HTTP port of an embedded meta-server with node-agents
//! attached. `/metrics` shows what happened (heartbeats, commands, requests, storage, the
//! catalog load) and what is (leadership, nodes, shards, tables); `/health` and `/ready` answer;
//! its log is JSON lines when asked; the Grafana dashboard names only exported series.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::process::node_kill::{header, wait_for};
use crate::process::*;
use shardmeta::client::MetaClient;
use shardmeta::proto;

/// The samples of an OpenMetrics text: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_shows_metrics_health_and_readiness() {
    let _turn = serial().await;
    let dir = TempDir::new("admin");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let meta = meta_server(dir.path(), "meta-0", port, &[("SHARDMETA_LOG_FORMAT", "json")]);
    let mut nodes: Vec<Proc> =
        (0..2).map(|i| node_agent(dir.path(), &format!("n{i}"), free_port(), &endpoint)).collect();
    let mut client = MetaClient::new(vec![endpoint.clone()], Duration::from_secs(5)).unwrap();
    wait_for("ready", Duration::from_secs(10), async || {
        http("GET", &meta.admin, "/ready").is_ok_and(|(code, _)| code == 200)
    })
    .await;
    let (code, body) = http("GET", &meta.admin, "/health").unwrap();
    assert_eq!((code, body.as_str()), (200, r#"{"status":"live"}"#));
    let (code, body) = http("GET", &meta.admin, "/ready").unwrap();
    assert_eq!((code, body.as_str()), (200, r#"{"role":"leader"}"#));
    // Both nodes heartbeat and every shard is open before the tables are created, so that
    // each create is a command of its own.
    let mut m = BTreeMap::new();
    wait_for("both nodes online and every shard ready", Duration::from_secs(15), async || {
        m = samples(&http("GET", &meta.admin, "/metrics").unwrap().1);
        m.get(r#"shardmeta_nodes{cluster="default",state="online"}"#) == Some(&2.0)
            && m.get(r#"shardmeta_shards{cluster="default",status="ready"}"#) == Some(&8.0)
    })
    .await;
    for name in ["orders", "users"] {
        let req =
            proto::CreateTableRequest { header: header(), name: name.into(), ..Default::default() };
        client
            .call(|mut c| {
                let req = req.clone();
                async move { c.create_table(req).await }
            })
            .await
            .unwrap();
    }
    let dup =
        proto::CreateTableRequest { header: header(), name: "orders".into(), ..Default::default() };
    let refused = client
        .call(|mut c| {
            let req = dup.clone();
            async move { c.create_table(req).await }
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists);

    wait_for("the creates reach the nodes", Duration::from_secs(5), async || {
        m = samples(&http("GET", &meta.admin, "/metrics").unwrap().1);
        m.get(r#"shardmeta_commands_sent_total{kind="create_table"}"#) >= Some(&2.0)
    })
    .await;
    let at_least = |key: &str, min: f64| {
        let v = m.get(key).copied().unwrap_or_else(|| panic!("{key} is not exported"));
        assert!(v >= min, "{key} is {v}, expected at least {min}");
    };
    at_least("shardmeta_heartbeats_total", 2.0);
    at_least("shardmeta_heartbeat_handle_seconds_count", 2.0);
    at_least(r#"shardmeta_commands_sent_total{kind="open"}"#, 8.0);
    at_least(r#"shardmeta_commands_sent_total{kind="create_table"}"#, 2.0);
    at_least("shardmeta_leases_granted_total", 1.0);
    at_least(r#"shardmeta_requests_total{kind="create_table",result="ok"}"#, 2.0);
    at_least(r#"shardmeta_requests_total{kind="create_table",result="AlreadyExists"}"#, 1.0);
    at_least(r#"shardmeta_request_seconds_count{kind="create_table"}"#, 3.0);
    at_least(r#"shardmeta_storage_transactions_total{result="ok"}"#, 3.0);
    at_least("shardmeta_storage_transaction_seconds_count", 3.0);
    at_least(r#"shardmeta_snapshot_loads_total{result="ok"}"#, 1.0);
    assert_eq!(m.get("shardmeta_leader"), Some(&1.0));
    assert_eq!(m.get(r#"shardmeta_tables{cluster="default"}"#), Some(&2.0));
    assert_eq!(m.get("shardmeta_heartbeat_streams"), Some(&2.0));
    assert!(
        !m.keys().any(|k| k.contains("list_clusters")),
        "the scrape's own reads are not counted as requests"
    );
    let by_status: f64 = ["unassigned", "opening", "ready", "transferring", "offline", "retired"]
        .iter()
        .map(|status| {
            m.get(&format!(r#"shardmeta_shards{{cluster="default",status="{status}"}}"#))
                .unwrap_or_else(|| panic!("no {status} gauge"))
        })
        .sum();
    assert_eq!(by_status, 8.0, "every shard has one status");
    assert_eq!(m.get(r#"shardmeta_procedures{cluster="default",kind="split"}"#), Some(&0.0));
    assert_eq!(m.get(r#"shardmeta_failover_seconds_count{cluster="default"}"#), Some(&0.0));
    println!("{} samples exported", m.len());

    // A node that leads shards dies: once its lease is over (3 s here, plus 200 ms of drift),
    // its shards fail over, and each failover is timed.
    let (busiest, led) = busiest_node(&meta.admin);
    nodes.retain_mut(|n| n.name != busiest);
    wait_for("the failovers timed", Duration::from_secs(20), async || {
        m = samples(&http("GET", &meta.admin, "/metrics").unwrap().1);
        m.get(r#"shardmeta_failover_seconds_count{cluster="default"}"#) >= Some(&(led as f64))
    })
    .await;
    let mean = m[r#"shardmeta_failover_seconds_sum{cluster="default"}"#]
        / m[r#"shardmeta_failover_seconds_count{cluster="default"}"#];
    println!("{led} shards failed over from {busiest}, in {mean:.2} s on average");
    assert!(
        (3.2..10.0).contains(&mean),
        "a failover takes the lease and the drift, and not much more: {mean} s"
    );

    // The Grafana dashboard in config/ graphs only what is exported.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/grafana/shardmeta.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let exported: std::collections::BTreeSet<&str> =
        m.keys().map(|k| k.split('{').next().unwrap()).collect();
    let mut graphed = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for at in expr.match_indices("shardmeta_").map(|(i, _)| i) {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exported.contains(name.as_str()),
                    "panel {:?} graphs {name}, which is not exported",
                    panel["title"]
                );
                graphed.insert(name);
            }
        }
    }
    println!("the dashboard graphs {} series, all exported", graphed.len());
    assert!(graphed.len() >= 20, "the dashboard covers the metrics: {graphed:?}");

    // log_format = "json": every line is an object a log shipper can read.
    let log = std::fs::read_to_string(dir.path().join("meta-0.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "serving" && l["level"] == "INFO"),
        "{log}"
    );
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_api_lists_pages_and_acts_and_refuses_with_http_statuses() {
    let _turn = serial().await;
    let dir = TempDir::new("admin-api");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let meta = meta_server(dir.path(), "meta-0", port, &[]);
    let _nodes: Vec<Proc> =
        (0..3).map(|i| node_agent(dir.path(), &format!("n{i}"), free_port(), &endpoint)).collect();
    let get = |path: &str| http("GET", &meta.admin, path).unwrap();
    let post = |path: &str| http("POST", &meta.admin, path).unwrap();
    wait_for("three nodes online", Duration::from_secs(15), async || {
        let Ok((code, body)) = http("GET", &meta.admin, "/api/v1/clusters/default/nodes") else {
            return false;
        };
        code == 200
            && json(&body)["items"]
                .as_array()
                .is_some_and(|n| n.len() == 3 && n.iter().all(|n| n["state"] == "online"))
    })
    .await;

    let (code, body) = get("/api/v1/clusters");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["items"][0]["name"], "default");
    let (code, body) = get("/api/v1/clusters/default");
    assert_eq!((code, json(&body)["nodes_online"].as_u64()), (200, Some(3)), "{body}");

    // Shards, three a page: every one of the 8, each once, then an empty token.
    let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (code, body) =
            get(&format!("/api/v1/clusters/default/shards?page_size=3&page_token={token}"));
        assert_eq!(code, 200, "{body}");
        let page = json(&body);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|s| s["id"].as_u64().unwrap()));
        pages += 1;
        token = page["next_page_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!((seen, pages), ((0..8).collect::<Vec<u64>>(), 3));

    let (code, body) = post("/api/v1/clusters/default/scheduler/pause");
    assert_eq!((code, json(&body)["paused"].as_bool()), (200, Some(true)), "{body}");
    let (_, body) = get("/api/v1/clusters/default/scheduler");
    assert_eq!(json(&body)["paused"], true, "pausing is stored: {body}");
    let (code, body) = post("/api/v1/clusters/default/scheduler/resume");
    assert_eq!((code, json(&body)["paused"].as_bool()), (200, Some(false)), "{body}");

    let (code, body) = post("/api/v1/clusters/default/nodes/n0/drain");
    assert_eq!((code, json(&body)["draining"].as_bool()), (200, Some(true)), "{body}");
    wait_for("n0 drained", Duration::from_secs(15), async || {
        let nodes = json(&get("/api/v1/clusters/default/nodes").1);
        nodes["items"].as_array().unwrap().iter().any(|n| n["name"] == "n0" && n["replicas"] == 0)
    })
    .await;
    let (_, body) = get("/api/v1/clusters/default/events");
    assert!(
        json(&body)["items"].as_array().is_some_and(|e| !e.is_empty()),
        "the drain's moves are events: {body}"
    );
    // Every event listed is counted, by its cause.
    let mut listed: BTreeMap<String, f64> = BTreeMap::new();
    for e in json(&body)["items"].as_array().unwrap() {
        *listed.entry(e["cause"].as_str().unwrap().to_owned()).or_default() += 1.0;
    }
    let m = samples(&get("/metrics").1);
    for (cause, n) in &listed {
        let key =
            format!(r#"shardmeta_scheduling_events_total{{cluster="default",cause="{cause}"}}"#);
        assert!(
            m.get(&key).is_some_and(|c| c >= n),
            "{n} {cause} events listed, counted {:?}",
            m.get(&key)
        );
    }

    // Refusals: the gRPC code as an HTTP status, with the message.
    let (code, body) = post("/api/v1/clusters/default/nodes/n1/remove");
    assert_eq!(
        (code, json(&body)["code"].as_str()),
        (412, Some("FailedPrecondition")),
        "an online node is not removed: {body}"
    );
    let (code, body) = get("/api/v1/clusters/nowhere/shards");
    assert_eq!((code, json(&body)["code"].as_str()), (404, Some("NotFound")), "{body}");
    let (code, body) = get("/api/v1/clusters/default/shards?page_size=many");
    assert_eq!(code, 400, "{body}");
    let (code, body) = get("/api/v1/clusters/default/shards?page_token=garbage");
    assert_eq!((code, json(&body)["code"].as_str()), (400, Some("InvalidArgument")), "{body}");
}

/// A data node's own metrics (`node-agent --metrics-addr`): heartbeats and their round trip,
/// and, across a meta restart longer than the lease, the stream ended, the self-fences and the
/// reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_exports_its_heartbeats_reconnects_and_self_fences() {
    let _turn = serial().await;
    let dir = TempDir::new("admin-client");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut meta = meta_server(dir.path(), "meta-0", port, &[]);
    let node_metrics = format!("127.0.0.1:{}", free_port());
    let _node = node_agent_with(
        dir.path(),
        "n0",
        free_port(),
        &endpoint,
        &["--metrics-addr", &node_metrics],
    );
    let scrape = || {
        http("GET", &node_metrics, "/metrics").map(|(_, body)| samples(&body)).unwrap_or_default()
    };
    let get = |m: &BTreeMap<String, f64>, key: &str| m.get(key).copied().unwrap_or(0.0);
    wait_for("the node leads under leases", Duration::from_secs(15), async || {
        let m = scrape();
        get(&m, "shardmeta_client_heartbeat_rtt_seconds_count") >= 3.0
            && get(&m, "shardmeta_client_leases_held") == 8.0
    })
    .await;
    let before = scrape();
    assert_eq!(get(&before, "shardmeta_client_streams_opened_total"), 1.0);
    assert_eq!(get(&before, "shardmeta_client_self_fences_total"), 0.0);
    let rtt = get(&before, "shardmeta_client_heartbeat_rtt_seconds_sum")
        / get(&before, "shardmeta_client_heartbeat_rtt_seconds_count");
    println!("heartbeat round trip on loopback: {:.2} ms mean", rtt * 1e3);

    // Meta away for longer than the 3 s lease: the node's leases run out (self-fences).
    meta.signal("TERM");
    meta.wait_exit(Duration::from_secs(6)).expect("meta exits");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _meta = meta_server(dir.path(), "meta-0", port, &[]);
    wait_for("the node reconnects", Duration::from_secs(20), async || {
        get(&scrape(), "shardmeta_client_streams_opened_total") >= 2.0
    })
    .await;
    let after = scrape();
    assert!(
        get(&after, r#"shardmeta_client_streams_ended_total{how="refused"}"#) >= 1.0,
        "the shutdown's status: {after:?}"
    );
    // The host counts a lease that ran out on its next beat.
    wait_for(
        "leases that ran out while meta was away counted",
        Duration::from_secs(3),
        async || get(&scrape(), "shardmeta_client_self_fences_total") >= 1.0,
    )
    .await;
}

/// A node's labels, from `node-agent --label` to `metactl node list` and `/api/v1`, with the
/// zone among them; a bad label stops the agent at start with a message, before any heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_labels_are_listed_with_its_zone() {
    let _turn = serial().await;
    let dir = TempDir::new("admin-labels");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let meta = meta_server(dir.path(), "meta-0", port, &[]);
    let flags = ["--zone", "a", "--label", "rack=r1", "--label", "disk=ssd"];
    let _node = node_agent_with(dir.path(), "n0", free_port(), &endpoint, &flags);
    let expected = serde_json::json!({"disk": "ssd", "rack": "r1", "zone": "a"});
    wait_for("the node is listed with its labels", Duration::from_secs(15), async || {
        let listed: serde_json::Value =
            serde_json::from_str(&metactl(&endpoint, &["--output", "json", "node", "list"]))
                .unwrap();
        listed.as_array().and_then(|rows| rows.first()).is_some_and(|n| n["labels"] == expected)
    })
    .await;
    assert_eq!(api_nodes(&meta.admin)[0]["labels"], expected);
    let table = metactl(&endpoint, &["node", "list"]);
    assert!(table.contains("disk=ssd,rack=r1,zone=a"), "{table}");

    let mut bad = node_agent_with(dir.path(), "n1", free_port(), &endpoint, &["--label", "zone=b"]);
    let status = bad.wait_exit(Duration::from_secs(10)).expect("the agent exits");
    assert_eq!(status.code(), Some(2));
    let log = std::fs::read_to_string(dir.path().join("n1.log")).unwrap_or_default();
    assert!(log.contains("label key \"zone\" is reserved"), "{log}");
}

/// A planned restart through `metactl`: the node's leaders leave, it is killed and started
/// again, and its leaders return with every replica where it was; a window over the maximum
/// is refused with the reason and a non-zero exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_restart_through_metactl_brings_the_leaders_back() {
    let _turn = serial().await;
    let dir = TempDir::new("admin-restart");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let env = [
        ("SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT", "12"),
        ("SHARDMETA_DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD", "1"),
        ("SHARDMETA_DEFAULT_CLUSTER_MIN_NODES", "3"),
    ];
    let _meta = meta_server(dir.path(), "meta-0", port, &env);
    let agent_port = free_port();
    let mut n0 = node_agent(dir.path(), "n0", agent_port, &endpoint);
    let _others = [
        node_agent(dir.path(), "n1", free_port(), &endpoint),
        node_agent(dir.path(), "n2", free_port(), &endpoint),
    ];
    let json = |args: &[&str]| -> serde_json::Value {
        let args: Vec<&str> = ["--output", "json"].iter().chain(args).copied().collect();
        serde_json::from_str(&metactl(&endpoint, &args)).unwrap()
    };
    let n0_row = |json: &dyn Fn(&[&str]) -> serde_json::Value| -> serde_json::Value {
        let rows = json(&["node", "list"]);
        rows.as_array()
            .into_iter()
            .flatten()
            .find(|n| n["name"] == "n0")
            .cloned()
            .unwrap_or_default()
    };
    // Each shard's replicas, as a set: what a follower move changes.
    let replicas = |json: &dyn Fn(&[&str]) -> serde_json::Value| -> Vec<Vec<String>> {
        let shards = json(&["shard", "list"]);
        let mut sets: Vec<Vec<String>> = shards
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let mut set: Vec<String> = s["followers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain([&s["leader"]])
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
                set.sort();
                set
            })
            .collect();
        sets.sort();
        sets
    };
    wait_for("every shard led and followed", Duration::from_secs(20), async || {
        let shards = json(&["shard", "list"]);
        let rows = shards.as_array().cloned().unwrap_or_default();
        rows.len() == 12
            && rows.iter().all(|s| {
                s["status"] == "ready" && s["followers"].as_array().is_some_and(|f| f.len() == 1)
            })
            && n0_row(&json)["shards"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    let led = n0_row(&json)["shards"].as_u64().unwrap();
    let placed = replicas(&json);

    let refused = metactl_result(&endpoint, &["node", "restart-begin", "n0", "--window", "7200"]);
    let refused = refused.expect_err("a window over the maximum is refused");
    assert!(
        refused.contains("a restart window of 7200000 ms is over the maximum of 3600000 ms"),
        "{refused}"
    );
    let begun = json(&["node", "restart-begin", "n0", "--window", "120"]);
    assert_eq!(
        (begun["restart"]["phase"].as_str(), begun["restart"]["window_s"].as_u64()),
        (Some("leaving"), Some(120)),
        "{begun}"
    );
    assert_eq!(begun["restart"]["leaders"].as_u64(), Some(led), "{begun}");
    wait_for("n0 leads nothing", Duration::from_secs(20), async || n0_row(&json)["shards"] == 0)
        .await;
    n0.kill9();
    wait_for("n0 is down", Duration::from_secs(20), async || {
        n0_row(&json)["restart"]["phase"] == "down"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(replicas(&json), placed, "no replica moved while n0 was down");

    let _n0 = node_agent(dir.path(), "n0", agent_port, &endpoint);
    wait_for("n0 leads its shards again", Duration::from_secs(30), async || {
        let row = n0_row(&json);
        row["restart"].is_null() && row["shards"].as_u64() == Some(led)
    })
    .await;
    assert_eq!(replicas(&json), placed, "not one replica moved, start to end");
    let events = metactl(&endpoint, &["events"]);
    assert!(
        events.contains(&format!(
            "n0 is back from its restart and leads {led} of its {led} shards again"
        )),
        "{events}"
    );
    let ended = json(&["node", "restart-end", "n0"]);
    assert!(ended["restart"].is_null(), "ending no restart is answered: {ended}");
}

/// A placement rule through `metactl`: the node it avoids is emptied of replicas, a stale
/// version and a malformed constraint are refused with the reason and a non-zero exit, and a
/// rule no node present can meet is reported (by `placement show`, the API and the metric)
/// while every shard keeps its replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placement_rule_through_metactl_moves_replicas_and_reports_what_it_cannot() {
    let _turn = serial().await;
    let dir = TempDir::new("admin-placement");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let env = [
        ("SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT", "8"),
        ("SHARDMETA_DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD", "1"),
        ("SHARDMETA_DEFAULT_CLUSTER_MIN_NODES", "4"),
    ];
    let meta = meta_server(dir.path(), "meta-0", port, &env);
    let _nodes: Vec<Proc> = (0..4)
        .map(|i| {
            let disk = if i == 3 { "disk=hdd" } else { "disk=ssd" };
            let name = format!("n{i}");
            node_agent_with(dir.path(), &name, free_port(), &endpoint, &["--label", disk])
        })
        .collect();
    let ctl = |args: &[&str]| -> serde_json::Value {
        let args: Vec<&str> = ["--output", "json"].iter().chain(args).copied().collect();
        serde_json::from_str(&metactl(&endpoint, &args)).unwrap()
    };
    let replicas_on = |node: &str| -> u64 {
        let rows = ctl(&["node", "list"]);
        let row = rows.as_array().into_iter().flatten().find(|n| n["name"] == node).cloned();
        row.and_then(|n| n["replicas"].as_u64()).unwrap_or(0)
    };
    wait_for("every shard led and followed, n3 among them", Duration::from_secs(20), async || {
        let shards = ctl(&["shard", "list"]);
        let rows = shards.as_array().cloned().unwrap_or_default();
        rows.len() == 8
            && rows.iter().all(|s| {
                s["status"] == "ready" && s["followers"].as_array().is_some_and(|f| f.len() == 1)
            })
            && replicas_on("n3") > 0
    })
    .await;

    // Rehearsed first: nothing changes, and the answer says what the rule would move.
    let rehearsed = ctl(&["placement", "set", "--avoid", "disk=hdd", "--dry-run"]);
    let on_n3 = replicas_on("n3");
    assert_eq!(rehearsed["replicas_copied"].as_u64(), Some(on_n3), "{rehearsed}");
    assert_eq!(rehearsed["rule_violating"], 0, "{rehearsed}");
    assert_eq!(ctl(&["placement", "show"])["version"], 0, "a dry run sets nothing");
    let drain = ctl(&["node", "drain", "n0", "--dry-run"]);
    assert_eq!((drain["change"].as_str(), drain["refused"].is_null()), (Some("drain n0"), true));
    let remove = ctl(&["node", "remove", "n0", "--dry-run"]);
    assert!(remove["refused"].as_str().is_some_and(|r| r.contains("is online")), "{remove}");
    let set = ctl(&["placement", "set", "--avoid", "disk=hdd", "--expect-version", "0"]);
    assert_eq!(set["version"], 1, "{set}");
    assert_eq!(set["replicas"]["avoid"][0], "disk=hdd", "{set}");
    let stale = metactl_result(&endpoint, &["placement", "set", "--expect-version", "0"]);
    let stale = stale.expect_err("a stale version is refused");
    assert!(stale.contains("the placement rule is at version 1, not 0"), "{stale}");
    let malformed = metactl_result(&endpoint, &["placement", "set", "--require", "disk"]);
    let malformed = malformed.expect_err("a constraint without values is refused");
    assert!(malformed.contains("\"disk\" is not KEY=V1[,V2...]"), "{malformed}");
    wait_for("n3 holds no replica", Duration::from_secs(30), async || replicas_on("n3") == 0).await;
    assert_eq!(ctl(&["placement", "show"])["unsatisfied"], 0);

    // Only nvme nodes may hold replicas, and there are none: every shard is reported, and
    // keeps its replicas.
    ctl(&["placement", "set", "--require", "disk=nvme"]);
    wait_for("every shard reported unsatisfied", Duration::from_secs(20), async || {
        ctl(&["placement", "show"])["unsatisfied"] == 8
    })
    .await;
    let shown = ctl(&["placement", "show"]);
    assert!(shown["example"].as_str().is_some_and(|e| e.contains("may not")), "{shown}");
    let (code, body) = http("GET", &meta.admin, "/api/v1/clusters/default/placement").unwrap();
    assert_eq!((code, json(&body)["unsatisfied"].as_u64()), (200, Some(8)), "{body}");
    let (_, metrics) = http("GET", &meta.admin, "/metrics").unwrap();
    assert!(
        metrics.contains("shardmeta_placement_unsatisfied_shards{cluster=\"default\"} 8"),
        "{metrics}"
    );
    let shards = ctl(&["shard", "list"]);
    let rows = shards.as_array().cloned().unwrap_or_default();
    assert!(rows.iter().all(|s| s["followers"].as_array().is_some_and(|f| f.len() == 1)));
}
