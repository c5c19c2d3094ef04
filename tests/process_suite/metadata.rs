//! The metadata API through the real binaries, as an operator uses it: `metactl` against a
//! meta-server on its embedded store alters a table (and loses a stale compare-and-set), drops
//! a schema with cascade, drops a cluster, and a restarted server holds exactly that.

use std::time::Duration;

use crate::process::node_kill::wait_for;
use crate::process::*;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn clusters(endpoint: &str) -> Vec<String> {
    let listed = json(&metactl(endpoint, &["--output", "json", "cluster", "list"]));
    listed.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_alters_drops_and_finds_it_all_after_a_restart() {
    let _turn = serial().await;
    let dir = TempDir::new("metadata");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut meta = meta_server(dir.path(), "meta-0", port, &[]);
    wait_for("the default cluster", Duration::from_secs(15), async || {
        metactl_result(&endpoint, &["cluster", "list"]).is_ok_and(|out| out.contains("default"))
    })
    .await;

    let tmp = ["--cluster", "tmp", "--output", "json"];
    let created = json(&metactl(
        &endpoint,
        &[&tmp[..], &["cluster", "create", "tmp", "--shards", "4"]].concat(),
    ));
    let first_id = created["id"].as_u64().unwrap();
    metactl(&endpoint, &[&tmp[..], &["table", "create", "a", "b"]].concat());
    metactl(&endpoint, &[&tmp[..], &["schema", "create", "s"]].concat());
    let names: Vec<String> = (0..300).map(|i| format!("x{i}")).collect();
    let mut create = vec!["--cluster", "tmp", "table", "create", "--schema", "s"];
    create.extend(names.iter().map(String::as_str));
    metactl(&endpoint, &create);

    // Alter: a compare-and-set on the version `table get` shows.
    let got = json(&metactl(&endpoint, &[&tmp[..], &["table", "get", "a"]].concat()));
    assert_eq!(got[0]["version"], 1);
    let altered = json(&metactl(
        &endpoint,
        &[&tmp[..], &["table", "alter", "a", "--version", "1", "--option", "ttl=1d"]].concat(),
    ));
    assert_eq!(
        (altered["version"].as_u64(), altered["options"]["ttl"].as_str()),
        (Some(2), Some("1d"))
    );
    let stale = metactl_result(
        &endpoint,
        &[&tmp[..], &["table", "alter", "a", "--version", "1", "--clear-options"]].concat(),
    )
    .unwrap_err();
    assert!(stale.contains("Aborted") && stale.contains("at version 2"), "{stale}");

    // A schema with tables goes only with cascade, which hides it at once.
    let refused =
        metactl_result(&endpoint, &["--cluster", "tmp", "schema", "drop", "s"]).unwrap_err();
    assert!(
        refused.contains("FailedPrecondition") && refused.contains("holds 300 tables"),
        "{refused}"
    );
    let dropped =
        json(&metactl(&endpoint, &[&tmp[..], &["schema", "drop", "s", "--cascade"]].concat()));
    assert_eq!(dropped["tables_to_delete"], 300);
    let hidden =
        metactl_result(&endpoint, &["--cluster", "tmp", "table", "get", "--schema", "s", "x1"])
            .unwrap_err();
    assert!(hidden.contains("NotFound"), "{hidden}");
    wait_for("the schema's tables deleted", Duration::from_secs(10), async || {
        metactl_result(&endpoint, &["--cluster", "tmp", "schema", "create", "s"]).is_ok()
    })
    .await;

    // The cluster goes in one write; its name is free, its id never given again.
    let gone = json(&metactl(&endpoint, &[&tmp[..], &["cluster", "drop"]].concat()));
    assert_eq!(gone["tables"], 2);
    assert_eq!(clusters(&endpoint), ["default"]);
    meta.kill9();
    let _meta = meta_server(dir.path(), "meta-0", port, &[]);
    wait_for("the restarted server", Duration::from_secs(15), async || {
        metactl_result(&endpoint, &["cluster", "list"]).is_ok()
    })
    .await;
    assert_eq!(clusters(&endpoint), ["default"], "the drop is stored");
    let again = json(&metactl(&endpoint, &[&tmp[..], &["cluster", "create", "tmp"]].concat()));
    assert!(again["id"].as_u64().unwrap() > first_id, "{again}");
    let fresh = json(&metactl(&endpoint, &[&tmp[..], &["table", "list"]].concat()));
    assert_eq!(
        fresh.as_array().map(Vec::len),
        Some(0),
        "the new cluster of that name starts empty"
    );
}
