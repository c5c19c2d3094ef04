//! The harness behind the `snapshot_load` fuzz target, shared with a seeded smoke test: storage
//! bytes of any shape must be refused with an error or loaded into a consistent catalog, never
//! crash the core.

use crate::core::storage::keys::ROOT;
use crate::core::storage::Snapshot;
use crate::core::{CoreConfig, Input, Instant, Leadership, MetaCore, Term};

/// Splits fuzz input into key-value pairs. Keys are drawn from the real key schema's shapes so
/// that most inputs reach the record decoders rather than dying at key parsing.
pub fn pairs(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    const SHAPES: [&str; 8] = [
        "clusters/",
        "c/1/epoch",
        "c/1/id_ceiling",
        "c/1/schemas/",
        "c/1/tables/",
        "c/1/shards/",
        "c/1/nodes/",
        "fence",
    ];
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 && out.len() < 64 {
        let shape = SHAPES[(rest[0] % SHAPES.len() as u8) as usize];
        let id = rest[1] % 8;
        let len = (rest[2] as usize).min(rest.len() - 3);
        let key = if shape.ends_with('/') {
            format!("{ROOT}{shape}{id}")
        } else {
            format!("{ROOT}{shape}")
        };
        out.push((key, rest[3..3 + len].to_vec()));
        rest = &rest[3 + len..];
    }
    out
}

/// Loads stored pairs as [`load_snapshot`] does: refused, or consistent and usable.
pub fn load_pairs(pairs: &[(String, Vec<u8>)]) {
    let Ok(snapshot) = Snapshot::load(pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))) else {
        return;
    };
    lead_over(snapshot);
}

/// Loads fuzzed pairs; whatever loads must pass the integrity check (S5) and is handed to a
/// core gaining leadership, which must be able to tick over it. Panics only on a real bug.
pub fn load_snapshot(data: &[u8]) {
    load_pairs(&pairs(data));
}

fn lead_over(snapshot: Snapshot) {
    // Whatever loads is consistent: the loader refuses what would break S5.
    if let Err(v) = super::integrity(&snapshot.catalog) {
        panic!("a snapshot that breaks integrity loaded: {v}");
    }
    let mut core = MetaCore::new(CoreConfig::default(), 0);
    core.handle(
        Instant(1),
        Input::Leadership(Leadership::Gained {
            term: Term(1),
            valid_until: Instant(10_000),
            snapshot,
        }),
    );
    core.handle(Instant(20), Input::Timeout);
    while core.poll_output().is_some() {}
}
