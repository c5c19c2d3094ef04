//! The one command line a failed seed prints so that anyone can rerun exactly that seed, for
//! both simulators. Kept here so that the two never drift from how their tests read seeds.

/// The in-process simulator (`tests/sim.rs`): `SIM_SEED` runs one seed of test `test`.
pub fn inproc(test: &str, seed: u64) -> String {
    format!("SIM_SEED={seed} cargo test --test sim {test} -- --exact --nocapture")
}

/// The madsim simulation (`sim/`): `MADSIM_TEST_SEED` and `MADSIM_TEST_NUM=1` run one seed of
/// test `test` in test binary `binary`, built in its own target directory.
pub fn madsim(binary: &str, test: &str, seed: u64) -> String {
    format!("RUSTFLAGS=\"--cfg madsim\" MADSIM_TEST_SEED={seed} MADSIM_TEST_NUM=1 cargo test --target-dir target/sim -p shardmeta-sim --test {binary} {test} -- --exact --nocapture")
}
