//! The docs against the code. Every test file is listed in `docs/testing.md`. The `metactl`
//! commands the README and `docs/` show are each run as written against an address where
//! nothing listens: every one must get past argument parsing (exit 1, "cannot reach"),
//! never a usage error (exit 2). A doc that names a subcommand or a flag metactl does not have
//! fails here, not in an operator's terminal. Commands built from a shell substitution are
//! left out: the demo (`process_suite/demo`) runs what the README's walk-through does.

use std::path::Path;
use std::process::Command;

/// Nothing listens here: a command that parses fails to connect at once.
const NOWHERE: &str = "127.0.0.1:1";

/// Every command line in the indented code blocks of `text`, continuation lines joined, split
/// at `;`, `|`, `&&` and `&`, that runs `binary`: its arguments, as a shell would split them.
/// The binary must be the segment's command (after any `VAR=value` and a loop's `do`), so that
/// a picture naming it is no command; a synopsis (`[--flag VALUE]`) and a command built from a
/// shell substitution are left out; a loop's `$i` is 1.
fn commands_of(text: &str, binary: &str) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in text.lines().filter(|l| l.starts_with("    ")) {
        let line = line.trim();
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => lines.push(std::mem::take(&mut pending) + line),
        }
    }
    let suffix = format!("/{binary}");
    let mut commands = Vec::new();
    for line in lines {
        let code = line.split(" #").next().unwrap_or("");
        for segment in code.split(['|', ';', '&']) {
            if segment.contains("$(") || segment.contains('[') {
                continue;
            }
            // A loop's index (`for i in 1 2 3`) takes its first value.
            let words: Vec<String> =
                shell_words(segment).into_iter().map(|w| w.replace("$i", "1")).collect();
            let mut command = words.iter().skip_while(|w| w.contains('=') || *w == "do");
            if command.next().is_some_and(|w| *w == binary || w.ends_with(&suffix)) {
                commands.push(command.cloned().collect());
            }
        }
    }
    commands
}

/// The metactl commands of `text` (see [`commands_of`]).
fn metactl_commands(text: &str) -> Vec<Vec<String>> {
    commands_of(text, "metactl")
}

/// Words as a shell splits them: on spaces, with single and double quotes kept together.
fn shell_words(segment: &str) -> Vec<String> {
    let (mut words, mut word, mut quote) = (Vec::new(), String::new(), None);
    for c in segment.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `args` with the endpoints pointed at [`NOWHERE`].
fn aimed_nowhere(args: &[String]) -> Vec<String> {
    let mut out = vec!["--endpoints".to_owned(), NOWHERE.to_owned()];
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == "--endpoints" {
            skip = true;
        } else if !a.starts_with("--endpoints=") {
            out.push(a.clone());
        }
    }
    out
}

/// The README and every file of `docs/`, in name order.
fn doc_files() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    docs.extend(std::fs::read_dir(root.join("docs")).unwrap().map(|e| e.unwrap().path()));
    docs.sort();
    docs
}

#[test]
fn every_metactl_command_in_the_docs_parses() {
    let docs = doc_files();
    let commands: Vec<(String, Vec<String>)> = docs
        .iter()
        .flat_map(|doc| {
            let text = std::fs::read_to_string(doc).unwrap();
            metactl_commands(&text)
                .into_iter()
                .map(|args| (doc.display().to_string(), args))
                .collect::<Vec<_>>()
        })
        .collect();
    // At once: the client retries an address that refuses for a few seconds before it gives up.
    let refused: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = commands
            .iter()
            .map(|(doc, args)| {
                scope.spawn(move || {
                    let out = Command::new(env!("CARGO_BIN_EXE_metactl"))
                        .args(aimed_nowhere(args))
                        .env_remove("METACTL_TOKEN")
                        .output()
                        .unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                    let usage = out.status.code() == Some(2) || stderr.contains("Usage:");
                    usage.then(|| format!("{doc}: metactl {}\n{stderr}", args.join(" ")))
                })
            })
            .collect();
        runs.into_iter().filter_map(|r| r.join().unwrap()).collect()
    });
    let run = commands.len();
    assert!(
        refused.is_empty(),
        "commands in the docs that metactl does not take:\n{}",
        refused.join("\n")
    );
    assert!(run >= 19, "only {run} metactl commands found in the docs");
}

/// `meta-server` and `node-agent` start servers: their commands are run as written with
/// `--help` added, which clap answers only once every flag before it is one it knows.
#[test]
fn every_server_command_in_the_docs_parses() {
    let docs = doc_files();
    let binaries = [
        ("meta-server", env!("CARGO_BIN_EXE_meta-server")),
        ("node-agent", env!("CARGO_BIN_EXE_node-agent")),
    ];
    let mut run = 0;
    let mut refused = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for (name, exe) in binaries {
            for args in commands_of(&text, name) {
                let out = Command::new(exe).args(&args).arg("--help").output().unwrap();
                run += 1;
                if !out.status.success() {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    refused.push(format!("{}: {name} {}\n{stderr}", doc.display(), args.join(" ")));
                }
            }
        }
    }
    assert!(
        refused.is_empty(),
        "server commands in the docs the binaries do not take:\n{}",
        refused.join("\n")
    );
    assert!(run >= 4, "only {run} meta-server and node-agent commands found in the docs");
}

#[test]
fn commands_are_found_in_code_blocks_only() {
    let text = "Run `metactl bogus` inline.\n\n    B=x; $B/metactl shard list | grep n1  # why\n    metactl --endpoints a:1 \\\n      cluster status\n    $B/metactl shard merge $(metactl route a b)\n    a picture of metactl --bogus\n    metactl [--flag VALUE]\n";
    let found = metactl_commands(text);
    assert_eq!(found, [vec!["shard", "list"], vec!["--endpoints", "a:1", "cluster", "status"]]);
    assert_eq!(aimed_nowhere(&found[1]), ["--endpoints", NOWHERE, "cluster", "status"]);
}

#[test]
fn the_testing_guide_lists_every_test_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/testing.md")).unwrap();
    // The files at the top of `tests`, each a test binary, and those of the two suites, each a
    // binary of many files.
    let files = |dir: &str| {
        std::fs::read_dir(root.join("tests").join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".rs"))
            .map(|name| if dir.is_empty() { name } else { format!("{dir}/{name}") })
            .collect::<Vec<_>>()
    };
    let mut missing: Vec<String> = ["", "core_suite", "process_suite"]
        .into_iter()
        .flat_map(files)
        .filter(|name| !guide.contains(&format!("`tests/{name}`")))
        .collect();
    missing.sort();
    assert!(missing.is_empty(), "docs/testing.md does not list {missing:?}");
}
