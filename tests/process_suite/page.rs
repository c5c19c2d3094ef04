//! The cluster page, as a person sees it: a real meta-server with node-agents, one of them
//! drained, and the page at `/` on the admin port loaded in headless Chromium (Debian's
//! `chromium`, which `.ci/setup` installs). What the browser rendered must show every node,
//! each with the leader-shard count the API reports, and the drained node marked draining.
//!
//! `CLUSTER_PAGE_SCREENSHOT=PATH` also saves a screenshot there (docs/operating.md's comes from it).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::node_kill::wait_for;
use crate::process::*;

/// The page after its scripts ran, as Chromium serialises it.
fn rendered(url: &str, profile: &Path, screenshot: Option<&Path>) -> String {
    let mut cmd = Command::new("chromium");
    // As the machine's notes say: no sandbox as root, and nothing that reaches for the network.
    cmd.args([
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
        "--window-size=1280,1000",
        "--virtual-time-budget=8000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some(png) => cmd.arg(format!("--screenshot={}", png.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd.arg(url).output().unwrap_or_else(|e| {
        panic!("chromium does not run ({e}): run ./.ci/setup (Debian package chromium)")
    });
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `<tr>` of one node in the rendered nodes table.
fn row<'a>(dom: &'a str, node: &str) -> Option<&'a str> {
    let start = dom.find(&format!("data-node=\"{node}\""))?;
    let end = dom[start..].find("</tr>")? + start;
    Some(&dom[start..end])
}

/// The number in a row's cell `data-col="{col}"`.
fn cell(row: &str, col: &str) -> Option<u32> {
    let at = row.find(&format!("data-col=\"{col}\">"))? + col.len() + 12;
    row[at..].split('<').next()?.trim().parse().ok()
}

/// Each node's leader-shard count, drain mark and state, from the JSON API.
fn nodes(admin: &str) -> Vec<(String, u32, bool, String)> {
    let node = |n: &serde_json::Value| {
        (
            n["name"].as_str().unwrap().to_owned(),
            n["shards"].as_u64().unwrap() as u32,
            n["draining"].as_bool().unwrap(),
            n["state"].as_str().unwrap().to_owned(),
        )
    };
    api_nodes(admin).iter().map(node).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_nodes_their_shards_and_the_drained_one() {
    let _turn = serial().await;
    let dir = TempDir::new("page");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let meta = meta_server(
        dir.path(),
        "meta-0",
        port,
        &[
            ("SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT", "12"),
            ("SHARDMETA_DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD", "1"),
        ],
    );
    let names = ["n0", "n1", "n2"];
    let _nodes: Vec<Proc> =
        names.iter().map(|n| node_agent(dir.path(), n, free_port(), &endpoint)).collect();
    let admin = meta.admin.clone();
    // Nodes are admitted one by one, and the first may take every shard: drain the busiest.
    wait_for("three nodes online", Duration::from_secs(20), async || {
        nodes(&admin).iter().filter(|n| n.3 == "online").count() == 3
    })
    .await;
    let (busiest, _) = busiest_node(&admin);
    metactl(&endpoint, &["node", "drain", &busiest]);
    wait_for("the busiest node drained", Duration::from_secs(20), async || {
        nodes(&admin)
            .iter()
            .any(|(n, shards, draining, _)| *n == busiest && *draining && *shards == 0)
    })
    .await;
    let screenshot = std::env::var("CLUSTER_PAGE_SCREENSHOT").ok();
    if screenshot.is_some() {
        // For the picture, a cluster at rest: leaders balanced on the nodes that stay.
        wait_for("leaders balanced", Duration::from_secs(30), async || {
            let staying: Vec<u32> = nodes(&admin).iter().filter(|n| !n.2).map(|n| n.1).collect();
            staying.iter().max().zip(staying.iter().min()).is_some_and(|(hi, lo)| hi - lo <= 1)
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let url = format!("http://{admin}/?cluster=default");
    // The counts must match the API as it was around the render: a balancing move in between
    // changes them, so a few tries are allowed.
    let mut last = String::new();
    for _ in 0..5 {
        let before = nodes(&admin);
        let dom = rendered(&url, &dir.path().join("chromium"), None);
        let after = nodes(&admin);
        if before != after {
            continue;
        }
        assert!(dom.contains("data-loaded=\"true\""), "the page's script did not finish: {dom}");
        let mut seen = Vec::new();
        for (name, _, draining, _) in &after {
            let r = row(&dom, name)
                .unwrap_or_else(|| panic!("node {name} is not in the rendered table: {dom}"));
            seen.push((name.clone(), cell(r, "shards"), r.contains(">draining<")));
            assert_eq!(r.contains(">draining<"), *draining, "{name}'s drain mark: {r}");
        }
        if seen.iter().zip(&after).all(|((_, shown, _), (_, shards, ..))| *shown == Some(*shards)) {
            assert!(dom.contains("cluster default"), "the cluster is named");
            assert!(dom.contains("meta-0: leader"), "the meta node and its role are shown");
            assert!(
                dom.contains("data-shard") || dom.contains("every shard is ready and led"),
                "the unhealthy shards are listed"
            );
            if let Some(png) = screenshot {
                rendered(&url, &dir.path().join("chromium"), Some(Path::new(&png)));
                assert!(
                    std::fs::metadata(&png).is_ok_and(|m| m.len() > 10_000),
                    "the screenshot was written"
                );
            }
            return;
        }
        last = format!("shown {seen:?}, API {after:?}");
    }
    panic!("the page never showed the API's shard counts: {last}");
}
