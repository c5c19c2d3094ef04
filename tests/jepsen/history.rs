//! The DDL history a run records, and the checker of what its acknowledgements promise.
//!
//! Each table name is a register: absent, or a table (an id, never reused) whose version grows
//! by one with each alter, and each alter writes a tag of its own into the table's options, so
//! a (table id, version) pair names one value. An operation is invoked, then completes with a
//! definite outcome (it applied, or the server decided it did not) or an unknown one (a timeout,
//! a broken connection, UNAVAILABLE after the request left: it may apply, then or later). The
//! checks hold the service to what it acknowledged, in real time:
//! - an acknowledged create is there at the end, with its id, unless a drop may have come after;
//! - an acknowledged drop is not undone, unless a create may have come after;
//! - a table's version names one value: two acknowledged alters from one version (a lost
//!   compare-and-set), or a read that saw another value at a version, is a second history;
//! - no read is stale: none misses an alter acknowledged before the read began, sees a table
//!   acknowledged dropped before it began, or misses a table acknowledged created before it
//!   began when no drop could have come between;
//! - the table's version at the end is not below any acknowledged alter of it.

use std::collections::BTreeMap;

/// A time in the run: microseconds since it started, on one monotonic clock.
pub type Micros = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Create,
    Drop,
    /// A compare-and-set: the table is to be at `expected`; it writes `tag`.
    Alter {
        expected: u32,
        tag: u64,
    },
    Read,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It applied (create, drop, alter) or read a table: its id, version and tag (0 until an
    /// alter wrote one).
    Ok { id: u64, version: u32, tag: u64 },
    /// NOT_FOUND: the name was absent when the server looked.
    Absent,
    /// The server decided it does not apply: ALREADY_EXISTS, ABORTED, FAILED_PRECONDITION, …
    Refused,
    /// It may apply, at any time from its invocation on.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Op {
    pub name: String,
    pub kind: Kind,
    pub invoked: Micros,
    pub completed: Micros,
    pub outcome: Outcome,
}

impl Op {
    /// Until when this operation may take effect: an unknown outcome, at any time.
    fn may_apply_until(&self) -> Micros {
        match self.outcome {
            Outcome::Unknown => Micros::MAX,
            _ => self.completed,
        }
    }

    /// Whether it may have changed the state: it applied, or may have.
    fn may_have_applied(&self) -> bool {
        matches!(self.outcome, Outcome::Ok { .. } | Outcome::Unknown)
    }

    fn acked(&self) -> Option<(u64, u32, u64)> {
        match self.outcome {
            Outcome::Ok { id, version, tag } => Some((id, version, tag)),
            _ => None,
        }
    }
}

/// A table at the end of the run: its id, version and tag.
pub type Final = BTreeMap<String, (u64, u32, u64)>;

/// What a history broke, one line per violation (empty: nothing).
pub fn check(ops: &[Op], end: &Final) -> Vec<String> {
    let mut by_name: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_name.entry(op.name.as_str()).or_default().push(op);
    }
    let mut violations = Vec::new();
    for (name, ops) in &by_name {
        survivals(name, ops, end.get(*name), &mut violations);
    }
    registers(ops, &mut violations);
    stale_reads(&by_name, ops, &mut violations);
    final_versions(ops, end, &mut violations);
    violations
}

/// Whether an operation of `kind` on this name may take effect after `after` (a drop after a
/// create, a create after a drop).
fn may_follow(ops: &[&Op], kind: Kind, after: Micros) -> bool {
    ops.iter().any(|o| o.kind == kind && o.may_have_applied() && o.may_apply_until() > after)
}

fn survivals(name: &str, ops: &[&Op], end: Option<&(u64, u32, u64)>, violations: &mut Vec<String>) {
    for op in ops {
        let Some((id, _, _)) = op.acked() else { continue };
        match op.kind {
            Kind::Create if !may_follow(ops, Kind::Drop, op.invoked) => match end {
                Some(&(found, _, _)) if found == id => {}
                other => violations.push(format!("lost create: {name} (id {id}) acknowledged at {} µs, nothing could drop it, but the end has {other:?}", op.completed)),
            },
            Kind::Drop if !may_follow(ops, Kind::Create, op.invoked) => {
                if let Some(found) = end {
                    violations.push(format!("undone drop: {name} (id {id}) acknowledged dropped at {} µs, nothing could create it, but the end has {found:?}", op.completed));
                }
            }
            _ => {}
        }
    }
}

/// One value per (table id, version).
fn registers(ops: &[Op], violations: &mut Vec<String>) {
    let mut values: BTreeMap<(u64, u32), (u64, &Op)> = BTreeMap::new();
    for op in ops {
        let Some((id, version, tag)) = op.acked() else { continue };
        if matches!(op.kind, Kind::Drop) {
            continue;
        }
        if let Kind::Alter { expected, tag: mine } = op.kind {
            if version != expected + 1 || tag != mine {
                violations.push(format!("alter of {} (id {id}) from version {expected} acknowledged as version {version} tag {tag}, not {} tag {mine}", op.name, expected + 1));
            }
        }
        match values.get(&(id, version)) {
            Some(&(seen, first)) if seen != tag => violations.push(format!(
                "two values of {} (id {id}) at version {version}: tag {seen} ({:?} at {} µs) and tag {tag} ({:?} at {} µs)",
                op.name, first.kind, first.completed, op.kind, op.completed
            )),
            Some(_) => {}
            None => {
                values.insert((id, version), (tag, op));
            }
        }
    }
}

fn stale_reads(by_name: &BTreeMap<&str, Vec<&Op>>, ops: &[Op], violations: &mut Vec<String>) {
    // The newest version acknowledged of each table id, by completion time.
    let mut alters: BTreeMap<u64, Vec<(Micros, u32)>> = BTreeMap::new();
    let mut dropped: BTreeMap<u64, Micros> = BTreeMap::new();
    for op in ops {
        match (op.kind, op.acked()) {
            (Kind::Alter { .. }, Some((id, version, _))) => {
                alters.entry(id).or_default().push((op.completed, version))
            }
            (Kind::Drop, Some((id, _, _))) => {
                dropped
                    .entry(id)
                    .and_modify(|t| *t = (*t).min(op.completed))
                    .or_insert(op.completed);
            }
            _ => {}
        }
    }
    for (name, ops) in by_name {
        for read in ops.iter().filter(|o| o.kind == Kind::Read) {
            match read.outcome {
                Outcome::Ok { id, version, .. } => {
                    if let Some(&(at, newer)) = alters
                        .get(&id)
                        .into_iter()
                        .flatten()
                        .filter(|(at, v)| *at < read.invoked && *v > version)
                        .max_by_key(|(_, v)| *v)
                    {
                        violations.push(format!("stale read: {name} (id {id}) read at version {version} from {} µs, but version {newer} was acknowledged at {at} µs", read.invoked));
                    }
                    if let Some(&at) = dropped.get(&id).filter(|at| **at < read.invoked) {
                        violations.push(format!("stale read: {name} (id {id}) read from {} µs, but it was acknowledged dropped at {at} µs", read.invoked));
                    }
                }
                Outcome::Absent => {
                    // A create acknowledged before the read began, with no drop that may fall
                    // between the create and the read's end.
                    let created = ops.iter().filter(|c| {
                        c.kind == Kind::Create && c.acked().is_some() && c.completed < read.invoked
                    });
                    for c in created {
                        let dropped_between = ops.iter().any(|d| {
                            d.kind == Kind::Drop
                                && d.may_have_applied()
                                && d.invoked < read.completed
                                && d.may_apply_until() > c.invoked
                        });
                        if !dropped_between {
                            violations.push(format!("stale read: {name} not found from {} µs, but it was acknowledged created at {} µs and nothing could drop it", read.invoked, c.completed));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn final_versions(ops: &[Op], end: &Final, violations: &mut Vec<String>) {
    for op in ops {
        let (Kind::Alter { .. }, Some((id, version, _))) = (op.kind, op.acked()) else { continue };
        if let Some(&(found, at, _)) = end.get(&op.name) {
            if found == id && at < version {
                violations.push(format!("lost alter: {} (id {id}) acknowledged at version {version} at {} µs, but the end has version {at}", op.name, op.completed));
            }
        }
    }
}

/// Histories with a planted fault, each of which the checker must catch, and a clean one full
/// of unknown outcomes that it must pass: the checker proves something only if it can fail.
pub fn self_check() -> usize {
    let op = |name: &str, kind: Kind, invoked: Micros, completed: Micros, outcome: Outcome| Op {
        name: name.into(),
        kind,
        invoked,
        completed,
        outcome,
    };
    let ok = |id, version, tag| Outcome::Ok { id, version, tag };
    let created = |name: &str| op(name, Kind::Create, 0, 10, ok(1, 1, 0));
    let table = |v: u32, tag: u64| Final::from([("a".to_owned(), (1, v, tag))]);
    let planted: Vec<(&str, Vec<Op>, Final)> = vec![
        ("lost create", vec![created("a")], Final::new()),
        ("undone drop", vec![created("a"), op("a", Kind::Drop, 20, 30, ok(1, 1, 0))], table(1, 0)),
        (
            "two values",
            vec![
                created("a"),
                op("a", Kind::Alter { expected: 1, tag: 7 }, 20, 30, ok(1, 2, 7)),
                op("a", Kind::Alter { expected: 1, tag: 8 }, 21, 31, ok(1, 2, 8)),
            ],
            table(2, 8),
        ),
        (
            "stale read",
            vec![
                created("a"),
                op("a", Kind::Alter { expected: 1, tag: 7 }, 20, 30, ok(1, 2, 7)),
                op("a", Kind::Read, 40, 50, ok(1, 1, 0)),
            ],
            table(2, 7),
        ),
        (
            "stale read",
            vec![created("a"), op("a", Kind::Read, 40, 50, Outcome::Absent)],
            table(1, 0),
        ),
        (
            "lost alter",
            vec![created("a"), op("a", Kind::Alter { expected: 1, tag: 7 }, 20, 30, ok(1, 2, 7))],
            table(1, 0),
        ),
    ];
    for (what, ops, end) in &planted {
        let found = check(ops, end);
        assert!(
            found.iter().any(|v| v.starts_with(what)),
            "the checker missed a planted {what}: {found:?}"
        );
    }
    // Clean: a drop of unknown outcome may land any time later, so the create need not
    // survive, and a read concurrent with an alter may see either version.
    let clean = vec![
        created("a"),
        op("a", Kind::Alter { expected: 1, tag: 7 }, 20, 40, ok(1, 2, 7)),
        op("a", Kind::Read, 30, 35, ok(1, 1, 0)),
        op("a", Kind::Drop, 50, 60, Outcome::Unknown),
        op("a", Kind::Read, 70, 80, ok(1, 2, 7)),
        op("b", Kind::Create, 0, 10, Outcome::Unknown),
        op("b", Kind::Read, 20, 30, Outcome::Absent),
    ];
    let found = check(&clean, &Final::new());
    assert!(found.is_empty(), "the checker flagged a clean history: {found:?}");
    planted.len()
}
