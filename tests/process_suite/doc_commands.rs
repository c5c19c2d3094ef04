//! The shell commands of `docs/operating.md` that start servers, run as written: the secure
//! cluster (certificates, a TLS etcd, three meta nodes, a data node, `metactl` with a token),
//! then the admin port's `curl` commands against the first meta node it started. Two things are
//! changed, so that the test takes no well-known port and writes nothing outside its directory:
//! every family of ten loopback ports the docs use (`7560`-`7569`, the `756$i` of a loop) moves
//! to a free family, in the copied config files too, and `/tmp/` becomes the test's directory.
//! A foreground command that fails is run again, as an operator would while the cluster
//! elects a leader.
//!
//! The other commands are run elsewhere: every `metactl`, `meta-server` and `node-agent`
//! command line is parsed by `tests/docs.rs`, the README's walk-through by
//! `process_suite/demo`, and the two set-up commands by CI. The fuzz commands of `docs/testing.md` are not run: they
//! install `cargo-fuzz` from the network and run until stopped.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::TempDir;

const LOOPBACK: &str = "127.0.0.1:";

/// The indented code block of `text` with a line containing `needle`: its command lines,
/// continuation lines joined.
fn block_with(text: &str, needle: &str) -> Vec<String> {
    let mut blocks: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        match line.strip_prefix("    ") {
            Some(code) => blocks.last_mut().unwrap().push(code),
            None if !blocks.last().unwrap().is_empty() => blocks.push(Vec::new()),
            None => {}
        }
    }
    let block = blocks.into_iter().find(|b| b.iter().any(|l| l.contains(needle)));
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in block.unwrap_or_else(|| panic!("no code block with {needle:?}")) {
        match line.trim_end().strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => lines.push(std::mem::take(&mut pending) + line.trim()),
        }
    }
    lines
}

/// Each loopback port family of `text` (a port less its last digit; `756$i` is family `756`),
/// at its position: (start of the family's digits, its end, the family).
fn port_families(text: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(LOOPBACK) {
        let start = at + LOOPBACK.len();
        let digits = text[start..].chars().take_while(char::is_ascii_digit).count();
        let end = start + digits;
        let family_end = if text[end..].starts_with("$i") { end } else { end - 1 };
        if digits >= 2 {
            found.push((start, family_end, text[start..family_end].to_owned()));
        }
    }
    found
}

/// A family of ten ports no one listens on, and not in `taken`.
fn free_family(taken: &[String]) -> String {
    let mut candidate = 2_000 + std::process::id() % 3_000;
    loop {
        candidate = 2_000 + (candidate * 7 + 13) % 4_000;
        let family = candidate.to_string();
        let free = (0..10).all(|d| TcpListener::bind(format!("{LOOPBACK}{family}{d}")).is_ok());
        if free && !taken.contains(&family) {
            return family;
        }
    }
}

/// `text` with every port family moved as `map` says and `/tmp/` moved into `dir`.
fn moved(text: &str, map: &BTreeMap<String, String>, dir: &Path) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (start, end, family) in port_families(text) {
        out.push_str(&text[last..start]);
        out.push_str(&map[&family]);
        last = end;
    }
    out.push_str(&text[last..]);
    out.replace("/tmp/", &format!("{}/", dir.display()))
}

/// A shell script of `lines`: background commands as written, each foreground one run until it
/// succeeds, for up to 30 s.
fn patient_script(lines: &[String]) -> String {
    let mut script = String::from("set -u\n");
    for line in lines {
        let line = line.split(" #").next().unwrap().trim_end();
        if line.ends_with('&') || line.ends_with("& done") {
            script += &format!("{line}\n");
        } else {
            script += &format!(
                "for try in $(seq 60); do if {line}; then break; fi; \
                 [ \"$try\" = 60 ] && exit 1; sleep 0.5; done\n"
            );
        }
    }
    script
}

/// Every process the scripts started, killed with their process group on drop.
struct Group(Vec<Child>);

impl Drop for Group {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // The shell's own kill: procps-ng 4.0.2's reads `kill -KILL -PID` as every process.
            let kill = format!("kill -KILL -- -{} 2>/dev/null", child.id());
            let _ = Command::new("bash").args(["-c", &kill]).status();
            let _ = child.wait();
        }
    }
}

/// Runs `script` in `dir` in a process group of its own, with the built binaries first on the
/// path; its output goes to `log`. Returns whether it exited 0 within `limit`.
fn run(group: &mut Group, dir: &Path, script: &str, log: &Path, limit: Duration) -> bool {
    let bin = Path::new(env!("CARGO_BIN_EXE_meta-server")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    // Output to a file: the servers it starts in the background outlive it, and would hold a
    // pipe open.
    let child = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("METACTL_TOKEN")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .process_group(0)
        .spawn()
        .unwrap();
    group.0.push(child);
    let child = group.0.last_mut().unwrap();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// `config/secure` copied into `dir`, its ports moved as `map` says.
fn copy_secure_config(dir: &Path, map: &BTreeMap<String, String>) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/secure");
    let to = dir.join("config/secure");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        std::fs::copy(&path, &target).unwrap(); // keeps the script's mode
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&target, moved(&text, map, dir)).unwrap();
        }
    }
}

#[test]
fn the_secure_cluster_and_the_admin_port_commands_run_as_written() {
    let _turn = crate::process::serial_blocking();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/operating.md")).unwrap();
    let secure = block_with(&guide, "make-certs.sh");
    let admin = block_with(&guide, "/health");
    let config: String = ["three-meta-etcd.toml", "node.toml"]
        .iter()
        .map(|f| std::fs::read_to_string(root.join("config/secure").join(f)).unwrap())
        .collect();
    let every = format!("{}\n{}\n{config}", secure.join("\n"), admin.join("\n"));
    let mut map = BTreeMap::new();
    for (_, _, family) in port_families(&every) {
        if !map.contains_key(&family) {
            let taken: Vec<String> = map.values().cloned().collect();
            map.insert(family, free_family(&taken));
        }
    }
    assert!(map.len() >= 5, "the docs' port families: {map:?}");

    let dir = TempDir::new("doc-commands");
    copy_secure_config(dir.path(), &map);
    let log = dir.path().join("commands.log");
    let secure: Vec<String> = secure.iter().map(|l| moved(l, &map, dir.path())).collect();
    let mut group = Group(Vec::new());
    let started = Instant::now();
    let ran = run(&mut group, dir.path(), &patient_script(&secure), &log, Duration::from_secs(90));
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ran, "the secure cluster's commands failed:\n{}\n---\n{output}", secure.join("\n"));
    assert!(output.contains("default"), "metactl cluster status names the cluster:\n{output}");
    eprintln!("secure cluster up and answering metactl in {:?}", started.elapsed());

    for line in &admin {
        let line = moved(line, &map, dir.path());
        let out = dir.path().join("curl.log");
        let _ = std::fs::remove_file(&out);
        let ran = run(
            &mut group,
            dir.path(),
            &patient_script(std::slice::from_ref(&line)),
            &out,
            Duration::from_secs(30),
        );
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(ran && !text.trim().is_empty(), "{line}\n{text}");
        if line.contains("/health") {
            assert!(text.contains(r#""status":"live""#), "{line}\n{text}");
        }
        if line.contains("/metrics") {
            assert!(text.contains("shardmeta_"), "{line}: no shardmeta series\n{text}");
        }
    }
}

#[test]
fn port_families_move_whole_and_nothing_else_changes() {
    let map = BTreeMap::from([("756".to_owned(), "4321".to_owned())]);
    let dir = Path::new("/d");
    let text = "a 127.0.0.1:756$i b 127.0.0.1:7561,127.0.0.1:7569 /tmp/x 10.0.0.1:7560";
    assert_eq!(
        moved(text, &map, dir),
        "a 127.0.0.1:4321$i b 127.0.0.1:43211,127.0.0.1:43219 /d/x 10.0.0.1:7560"
    );
    let block = block_with("para\n\n    one \\\n       two\n    three\n\nnext\n", "three");
    assert_eq!(block, ["one two", "three"]);
}
