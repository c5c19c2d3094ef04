//! Reading the crate's own sources, for the tests that hold its code to rules
//! (`core_suite/purity.rs`, `core_suite/ladder.rs`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The paths a `use` tree names: `std::{fs, time::Instant}` gives `std::fs` and
/// `std::time::Instant`. Anything else comes back unchanged.
pub fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else { return vec![tree] };
    let (prefix, rest) = (&tree[..open], &tree[open + 1..]);
    let Some(close) = rest.rfind('}') else { return vec![tree.clone()] };
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    let inner = &rest[..close];
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand_use(&format!("{prefix}{p}")))
        .collect()
}

/// Each line's code without comments, with every `use` statement (which may span lines)
/// replaced by the paths it names, on the line where it starts.
pub fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let stmt = match pending.take() {
            Some((at, mut so_far)) => {
                so_far.push_str(code);
                Some((at, so_far))
            }
            None if code.trim_start().starts_with("use ")
                || code.trim_start().starts_with("pub use ") =>
            {
                Some((n, code.to_owned()))
            }
            None => {
                out.push((n, code.to_owned()));
                None
            }
        };
        if let Some((at, stmt)) = stmt {
            match stmt.find(';') {
                Some(end) => {
                    let tree = stmt[..end]
                        .trim_start()
                        .trim_start_matches("pub ")
                        .trim_start_matches("use ");
                    out.push((at, expand_use(tree).join(" ")));
                }
                None => pending = Some((at, stmt)),
            }
        }
    }
    out
}

pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

pub fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// What `scan` finds in a directory holding only `file`, written with `text`.
pub fn scan_planted(file: &str, text: &str, scan: fn(&Path) -> Vec<String>) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("shardmeta-purity-{}-{file}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
    let found = scan(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    found
}
