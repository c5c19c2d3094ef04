//! The sans-IO core must stay pure: this scans `src/core` and the data node's state machine
//! (`src/client/shard_host.rs`) and fails with file:line on any name that would bring in a
//! clock, IO, threads, OS randomness, async, an iteration-order-dependent container, or the
//! runtime. Grouped imports (`use std::{fs, time}`) are expanded to the paths they name first.
//! It also holds the runtime the simulations drive to one rule: every `select!` is `biased`.

use std::path::Path;

use crate::source::{code_lines, expand_use, is_ident, rust_files, scan_planted};

/// Forbidden paths and identifiers, matched on identifier boundaries outside comments.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "tonic",
    "etcd_client",
    "std::time",
    "SystemTime",
    "Instant::now",
    "std::thread",
    "thread_rng",
    "rand::random",
    "OsRng",
    "getrandom",
    "from_entropy",
    "HashMap",
    "HashSet",
    "async",
    "await",
    "std::fs",
    "std::net",
    "std::process",
    "crate::server",
    "shardmeta::server",
];

/// What the scan covers, relative to the crate root.
const PURE: &[&str] = &["src/core", "src/client/shard_host.rs"];

/// Whether `needle` occurs in `line` with no identifier character right before or after it.
fn contains_name(line: &str, needle: &str) -> bool {
    line.match_indices(needle).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + needle.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    if root.is_dir() {
        rust_files(root, &mut files);
    } else {
        files.push(root.to_path_buf());
    }
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source is UTF-8");
        for (n, code) in code_lines(&text) {
            for name in FORBIDDEN {
                if contains_name(&code, name) {
                    found.push(format!(
                        "{}:{}: `{name}` in the sans-IO core: {}",
                        file.display(),
                        n + 1,
                        code.trim()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn core_names_no_clock_io_threads_randomness_or_hashmap() {
    let crate_root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found: Vec<String> = PURE.iter().flat_map(|p| violations(&crate_root.join(p))).collect();
    assert!(found.is_empty(), "the core must stay pure:\n{}", found.join("\n"));
}

#[test]
fn scan_catches_a_planted_forbidden_name() {
    let found = scan_planted("bad.rs", "// HashMap in a comment is fine\nuse std::collections::HashMap;\nlet t = std::time::Instant::now();\n", violations);
    assert_eq!(found.len(), 3, "{found:?}"); // HashMap, std::time, Instant::now
    assert!(found[0].contains("bad.rs:2"), "{found:?}");
}

/// The scan's old blind spots: a grouped import, one spread over lines, and the runtime.
#[test]
fn scan_sees_through_grouped_imports_and_catches_the_runtime() {
    let text = "use std::{fs, time::Instant};\nuse std::{\n    collections::BTreeMap,\n    net::TcpStream,\n};\nuse crate::server::driver;\nuse std::collections::{BTreeMap, BTreeSet};\n";
    let found = scan_planted("grouped.rs", text, violations);
    let names: Vec<&str> = found.iter().map(|f| f.split('`').nth(1).unwrap()).collect();
    assert_eq!(names, ["std::time", "std::fs", "std::net", "crate::server"], "{found:?}");
    assert!(
        found[2].contains("grouped.rs:2"),
        "a statement is reported where it starts: {found:?}"
    );
}

#[test]
fn use_trees_expand_to_the_paths_they_name() {
    assert_eq!(
        expand_use("std::{fs, time::{Duration, Instant}}"),
        ["std::fs", "std::time::Duration", "std::time::Instant"]
    );
    assert_eq!(expand_use("super::ids::*"), ["super::ids::*"]);
}

#[test]
fn names_match_on_identifier_boundaries_only() {
    assert!(contains_name("let x: HashMap<u8, u8>;", "HashMap"));
    assert!(!contains_name("asynchronous", "async"));
    assert!(!contains_name("my_tokio_like", "tokio"));
}

/// Each `tokio::select!` in the files under `root` whose first code is not `biased;`. Unbiased,
/// tokio picks among ready branches with a thread-local generator that madsim does not seed, so
/// two runs of one simulation seed can take different branches (swarm seed 7 did).
fn unbiased_selects(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source is UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let opens = line.split("//").next().unwrap_or("").contains("select! {");
            let mut code_after = lines[n + 1..]
                .iter()
                .map(|l| l.split("//").next().unwrap_or("").trim())
                .filter(|c| !c.is_empty());
            let biased = code_after.next() == Some("biased;");
            if opens && !biased {
                found.push(format!("{}:{}: a select! that is not biased", file.display(), n + 1));
            }
        }
    }
    found
}

#[test]
fn every_select_the_simulations_run_is_biased() {
    let crate_root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found: Vec<String> =
        ["src", "sim"].iter().flat_map(|p| unbiased_selects(&crate_root.join(p))).collect();
    assert!(
        found.is_empty(),
        "madsim replays a seed only if select! polls in a fixed order:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_select_scan_catches_an_unbiased_one() {
    let text = "// tokio::select! { in a comment\ntokio::select! {\n    // why\n    biased;\n    _ = a => {}\n}\ntokio::select! {\n    _ = b => {}\n}\n";
    let found = scan_planted("loop.rs", text, unbiased_selects);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("loop.rs:7"), "{found:?}");
}
