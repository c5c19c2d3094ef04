//! A seeded smoke run of the `snapshot_load` fuzz harness, so `cargo test` exercises the
//! decoders on malformed storage without cargo-fuzz.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardmeta::check::snapshot_fuzz::load_snapshot;

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
    let record = ClusterRecord { id: 1, name: "x".into(), shard_count: u32::MAX, ..Default::default() };
    let kvs = [("/shardmeta/v1/clusters/0000000001", record.encode_to_vec())];
    let err = shardmeta::core::model::Catalog::load(kvs.iter().map(|(k, v)| (*k, v.as_slice()))).unwrap_err();
    assert!(err.to_string().contains("claims"), "{err}");
}
