//! A seeded smoke run of the `snapshot_load` fuzz harness, so `cargo test` exercises the
//! decoders on malformed storage without cargo-fuzz: random bytes, and (since those rarely get
//! past the first decode) mutations of a real stored catalog. Whatever loads must pass the
//! integrity check and let a core lead over it.

mod harness;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardmeta::check::snapshot_fuzz::{load_pairs, load_snapshot};

#[test]
fn malformed_snapshots_are_refused_or_loaded_never_crash() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xdec0de);
    for _ in 0..20_000 {
        let mut data = vec![0u8; (rng.next_u64() % 256) as usize];
        rng.fill_bytes(&mut data);
        load_snapshot(&data);
    }
}

#[test]
fn a_cluster_claiming_billions_of_shards_is_refused() {
    use prost::Message;
    use shardmeta::core::model::ClusterRecord;
    let record =
        ClusterRecord { id: 1, name: "x".into(), shard_count: u32::MAX, ..Default::default() };
    let kvs = [("/shardmeta/v1/clusters/0000000001", record.encode_to_vec())];
    let err = shardmeta::core::model::Catalog::load(kvs.iter().map(|(k, v)| (*k, v.as_slice())))
        .unwrap_err();
    assert!(err.to_string().contains("claims"), "{err}");
}

/// What a real leader stored: a cluster with followers, tables and two nodes.
fn stored_catalog() -> Vec<(String, Vec<u8>)> {
    let (mut h, _nodes) = harness::steady_cluster_with(4, 1);
    for i in 0..6 {
        h.create_table(&format!("t{i}"), false).expect("create");
    }
    h.store.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// One random change to stored pairs: a flipped, truncated or extended value, a value moved
/// to another key, a record dropped, or one copied under a neighbour's key.
fn mutate(rng: &mut ChaCha8Rng, pairs: &mut Vec<(String, Vec<u8>)>) {
    let pick = |rng: &mut ChaCha8Rng, n: usize| (rng.next_u64() % n as u64) as usize;
    let i = pick(rng, pairs.len());
    match rng.next_u64() % 6 {
        0 if !pairs[i].1.is_empty() => {
            let at = pick(rng, pairs[i].1.len());
            pairs[i].1[at] ^= 1 << (rng.next_u64() % 8);
        }
        1 => {
            let len = pick(rng, pairs[i].1.len() + 1);
            pairs[i].1.truncate(len);
        }
        2 => pairs[i].1.extend((0..1 + pick(rng, 8)).map(|_| rng.next_u64() as u8)),
        3 => {
            let j = pick(rng, pairs.len());
            pairs[i].1 = pairs[j].1.clone();
        }
        4 if pairs.len() > 1 => {
            pairs.remove(i);
        }
        _ => {
            let j = pick(rng, pairs.len());
            if i != j {
                let value = pairs[i].1.clone();
                pairs[j].1 = value;
            }
        }
    }
}

#[test]
fn mutated_real_catalogs_are_refused_or_load_consistently() {
    let stored = stored_catalog();
    assert!(stored.len() > 12, "a catalog worth mutating: {} pairs", stored.len());
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let (mut loaded, runs) = (0, 4_000);
    for _ in 0..runs {
        let mut pairs = stored.clone();
        for _ in 0..1 + rng.next_u64() % 3 {
            mutate(&mut rng, &mut pairs);
        }
        load_pairs(&pairs);
        loaded += shardmeta::core::storage::Snapshot::load(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        )
        .is_ok() as u32;
    }
    // Both outcomes are exercised: mutations that still decode, and ones the loader refuses.
    assert!(
        loaded > runs / 10 && loaded < runs * 9 / 10,
        "{loaded} of {runs} mutated catalogs loaded"
    );
}
