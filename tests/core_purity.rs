//! The sans-IO core must stay pure (DESIGN.md section 2): this scans `src/core` and fails with
//! file:line on any name that would bring in a clock, IO, threads, OS randomness, async or an
//! iteration-order-dependent container.

use std::path::{Path, PathBuf};

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
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/core is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

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
    rust_files(root, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source is UTF-8");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in FORBIDDEN {
                if contains_name(code, name) {
                    found.push(format!("{}:{}: `{name}` in the sans-IO core: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn core_names_no_clock_io_threads_randomness_or_hashmap() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let found = violations(&root);
    assert!(found.is_empty(), "the core must stay pure:\n{}", found.join("\n"));
}

#[test]
fn scan_catches_a_planted_forbidden_name() {
    let dir = std::env::temp_dir().join(format!("shardmeta-purity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.rs"), "// HashMap in a comment is fine\nuse std::collections::HashMap;\nlet t = std::time::Instant::now();\n").unwrap();
    let found = violations(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 3, "{found:?}"); // HashMap, std::time, Instant::now
    assert!(found[0].contains("bad.rs:2"), "{found:?}");
}

#[test]
fn names_match_on_identifier_boundaries_only() {
    assert!(contains_name("let x: HashMap<u8, u8>;", "HashMap"));
    assert!(!contains_name("asynchronous", "async"));
    assert!(!contains_name("my_tokio_like", "tokio"));
}
