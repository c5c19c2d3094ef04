//! Storage bytes of any shape: refused with an error or loaded consistently, never a crash.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run snapshot_load` from the repository root.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shardmeta::check::snapshot_fuzz::load_snapshot(data);
});
