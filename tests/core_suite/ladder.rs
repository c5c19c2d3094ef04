//! The core's rooms form a ladder: no file of `src/core` names, through the paths it writes
//! (`use` statements and paths inline), a file that names it back, directly or around a circle.
//! The vocabulary (ids, time, errors, causes, settings) sits at the bottom, then the model and
//! the storage protocol, the inputs and outputs, the leader's state, the scheduler, and the
//! leader that applies decisions; a circle would mean two rooms can only be read together.
//!
//! Files are nodes; a path is followed through `pub use` re-exports (globs too) to the file that
//! defines what it names, so a facade `mod.rs` is not mistaken for a dependency. Test modules
//! (`#[cfg(test)]`) are left out: a test may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::source::{expand_use, is_ident, rust_files};

/// A module, as its path below the scanned root (`["leader", "runtime"]`); the root is `[]`.
type Module = Vec<String>;

/// One file's code without comments or test modules.
struct File {
    code: String,
    /// What its `pub use` statements re-export: a name (or `*`) and the path it comes from.
    reexports: Vec<(String, Vec<String>)>,
    /// Every path it names, as written.
    paths: Vec<Vec<String>>,
}

/// The files under `root`, as modules of a crate whose `crate::core` is `root`.
fn read_modules(root: &Path) -> BTreeMap<Module, File> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut modules = BTreeMap::new();
    let mut test_only = BTreeSet::new();
    for file in files {
        let mut module: Module = file
            .strip_prefix(root)
            .expect("under the root")
            .with_extension("")
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        let text = std::fs::read_to_string(&file).expect("source is UTF-8");
        let code: String =
            text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        let (code, tests) = without_test_modules(&code);
        test_only.extend(tests.into_iter().map(|t| [module.clone(), vec![t]].concat()));
        let (code, uses) = take_uses(&code);
        let mut reexports = Vec::new();
        let mut paths = Vec::new();
        for (public, tree) in uses {
            for path in expand_use(&tree) {
                let path: Vec<String> = path
                    .split("::")
                    .map(|s| s.split(" as ").next().unwrap_or(s).trim().to_owned())
                    .filter(|s| !s.is_empty() && s != "self")
                    .collect();
                if public {
                    reexports.push((path.last().cloned().unwrap_or_default(), path.clone()));
                }
                paths.push(path);
            }
        }
        paths.extend(inline_paths(&code));
        modules.insert(module, File { code, reexports, paths });
    }
    modules.retain(|m, _| !test_only.contains(m));
    modules
}

/// The code with each `#[cfg(test)] mod name { … }` removed, and the names of the test modules
/// kept in files of their own (`#[cfg(test)] mod name;`).
fn without_test_modules(code: &str) -> (String, Vec<String>) {
    let (mut out, mut rest, mut files) = (String::new(), code, Vec::new());
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        let after = after.strip_prefix("pub ").unwrap_or(after).trim_start();
        let Some(decl) = after.strip_prefix("mod ") else {
            rest = &rest[at + 1..];
            out.push('#');
            continue;
        };
        let name: String = decl.trim_start().chars().take_while(|&c| is_ident(c)).collect();
        let tail = decl.trim_start()[name.len()..].trim_start();
        if let Some(tail) = tail.strip_prefix(';') {
            files.push(name);
            rest = tail;
        } else if let Some(body) = tail.strip_prefix('{') {
            let mut depth = 1;
            let end = body.char_indices().find(|&(_, c)| {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                depth == 0
            });
            rest = end.map_or("", |(i, _)| &body[i + 1..]);
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    (out, files)
}

/// The code with its `use` statements taken out, and each statement's tree with whether it
/// re-exports (`pub use`, `pub(crate) use`, …).
fn take_uses(code: &str) -> (String, Vec<(bool, String)>) {
    let (mut out, mut uses, mut rest) = (String::new(), Vec::new(), code);
    while let Some(at) = find_word(rest, "use") {
        let Some(end) = rest[at..].find(';') else { break };
        let before = rest[..at].trim_end();
        let public = before.ends_with("pub")
            || (before.ends_with(')')
                && before.rfind("pub(").is_some_and(|p| !before[p..].contains('\n')));
        out.push_str(&rest[..at]);
        uses.push((public, rest[at + 3..at + end].to_owned()));
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    (out, uses)
}

/// Where `word` starts in `text` as a whole word, if it does.
fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        !text[..i].chars().next_back().is_some_and(is_ident)
            && !text[i + word.len()..].chars().next().is_some_and(is_ident)
    })
}

/// Paths written inline that start at `crate::core`, `super` or `self`.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for start in ["crate::core::", "super::", "self::"] {
        for (i, _) in code.match_indices(start) {
            if code[..i].chars().next_back().is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let path: String = code[i..].chars().take_while(|&c| is_ident(c) || c == ':').collect();
            found.push(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect());
        }
    }
    found
}

/// The module a path written in `from` starts at, with the rest of the path; `None` for paths
/// outside the core (`std`, other crates, `crate::client`).
fn anchor(from: &Module, path: &[String], modules: &BTreeMap<Module, File>) -> Option<Vec<String>> {
    let mut base = from.clone();
    let mut i = 0;
    match path.first().map(String::as_str) {
        Some("crate") if path.get(1).is_some_and(|p| p == "core") => {
            return Some(path[2..].to_vec())
        }
        Some("crate") | None => return None,
        Some("super" | "self") => {
            while let Some(step) = path.get(i).filter(|p| *p == "super" || *p == "self") {
                if step == "super" {
                    base.pop();
                }
                i += 1;
            }
        }
        // A child module named without `self::`, as `use child::Item` in a `mod.rs`.
        Some(first) if modules.contains_key(&[from.clone(), vec![first.to_owned()]].concat()) => {}
        Some(_) => return None,
    }
    Some([base, path[i..].to_vec()].concat())
}

/// The file that defines what `path` (from the root) names, following re-exports.
fn resolve(path: &[String], modules: &BTreeMap<Module, File>, depth: usize) -> Option<Module> {
    let at = (0..=path.len()).rev().find(|&k| modules.contains_key(&path[..k]))?;
    let (module, rest) = (path[..at].to_vec(), &path[at..]);
    let Some(item) = rest.first().filter(|_| depth < 16) else { return Some(module) };
    let file = &modules[&module];
    for (name, source) in &file.reexports {
        let Some(source) = anchor(&module, source, modules) else { continue };
        if name == item {
            return resolve(&[source, rest[1..].to_vec()].concat(), modules, depth + 1);
        }
        if name == "*" {
            let glob: Vec<String> = source[..source.len() - 1].to_vec();
            let defines = modules.get(&glob).is_some_and(|g| {
                defines(&g.code, item) || g.reexports.iter().any(|(n, _)| n == item)
            });
            if defines {
                return resolve(&[glob, rest.to_vec()].concat(), modules, depth + 1);
            }
        }
    }
    Some(module)
}

/// Whether `code` defines an item called `name`.
fn defines(code: &str, name: &str) -> bool {
    ["struct", "enum", "fn", "type", "const", "static", "trait", "mod", "union"].iter().any(|kw| {
        code.match_indices(&format!("{kw} {name}")).any(|(i, m)| {
            !code[..i].chars().next_back().is_some_and(is_ident)
                && !code[i + m.len()..].chars().next().is_some_and(is_ident)
        })
    })
}

/// Which files each file names.
fn imports(modules: &BTreeMap<Module, File>) -> BTreeMap<Module, BTreeSet<Module>> {
    modules
        .iter()
        .map(|(module, file)| {
            let targets = file
                .paths
                .iter()
                .filter_map(|p| anchor(module, p, modules))
                .filter_map(|p| resolve(&p, modules, 0))
                .filter(|t| t != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

/// The import circles: sets of two or more files each of which reaches all the others
/// (strongly connected components, by Tarjan's algorithm).
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, (usize, usize)>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a Module) -> usize {
            let n = self.index.len();
            self.index.insert(v, (n, n));
            self.stack.push(v);
            let mut low = n;
            for w in self.edges.get(v).into_iter().flatten() {
                low = match self.index.get(w) {
                    None => low.min(self.visit(w)),
                    Some(&(i, _)) if self.stack.contains(&w) => low.min(i),
                    Some(_) => low,
                };
            }
            self.index.insert(v, (n, low));
            if low == n {
                let at = self.stack.iter().position(|m| *m == v).expect("on the stack");
                let members: Vec<Module> = self.stack.drain(at..).cloned().collect();
                if members.len() > 1 {
                    self.found.push(members);
                }
            }
            low
        }
    }
    let mut walk = Walk { edges, index: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

/// Each circle under `root`, as its files and who names whom.
fn circles_under(root: &Path) -> Vec<String> {
    let modules = read_modules(root);
    let edges = imports(&modules);
    let name = |m: &Module| if m.is_empty() { "mod.rs".to_owned() } else { m.join("/") };
    circles(&edges)
        .into_iter()
        .map(|members| {
            let set: BTreeSet<&Module> = members.iter().collect();
            let arrows: Vec<String> = members
                .iter()
                .flat_map(|m| {
                    edges[m]
                        .iter()
                        .filter(|t| set.contains(t))
                        .map(move |t| format!("{} -> {}", name(m), name(t)))
                })
                .collect();
            format!("{} files: {}", members.len(), arrows.join(", "))
        })
        .collect()
}

#[test]
fn no_import_circle_in_the_core() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let found = circles_under(&core);
    assert!(
        found.is_empty(),
        "import circles in src/core (break each by moving what both sides need below them):\n{}",
        found.join("\n")
    );
    assert!(read_modules(&core).len() > 50, "the scan reads the core's files");
}

/// A core of `files` (name, text) in a directory of its own, scanned for circles.
fn planted(files: &[(&str, &str)]) -> Vec<String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "shardmeta-ladder-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let found = circles_under(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    found
}

#[test]
fn the_circle_check_catches_a_planted_circle() {
    let clean = planted(&[
        ("mod.rs", "pub mod a;\npub mod b;\npub use a::A;\n"),
        ("a.rs", "use super::b::B;\npub struct A(B);\n"),
        ("b.rs", "pub struct B;\n"),
    ]);
    assert!(clean.is_empty(), "{clean:?}");
    // b names A through the root's re-export, a names b: a circle, seen through the facade.
    let found = planted(&[
        ("mod.rs", "pub mod a;\npub mod b;\npub use a::A;\n"),
        ("a.rs", "use super::b::B;\npub struct A(B);\n"),
        ("b.rs", "pub struct B;\nfn f(_: crate::core::A) {}\n"),
    ]);
    assert_eq!(found, ["2 files: a -> b, b -> a"], "{found:?}");
    // The same through a glob re-export and a grouped import.
    let found = planted(&[
        ("mod.rs", "pub mod a;\npub mod b;\npub use a::*;\n"),
        ("a.rs", "use super::{b::B};\npub struct A(B);\n"),
        ("b.rs", "use crate::core::{A};\npub struct B;\n"),
    ]);
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn tests_and_comments_make_no_circle() {
    let found = planted(&[
        ("mod.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use super::b::B;\npub struct A(B);\n"),
        ("b.rs", "// use super::a::A;\npub struct B;\n#[cfg(test)]\nmod tests {\n    use super::super::a::A;\n    fn f() { let _ = A(super::B); }\n}\n"),
    ]);
    assert!(found.is_empty(), "{found:?}");
}
