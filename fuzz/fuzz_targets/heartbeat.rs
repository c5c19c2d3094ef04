//! Heartbeats of any shape, through the proto decoder, to a core leading a live cluster: no
//! panic, no integrity violation, no write over the store's limits.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run heartbeat` from the repository root.
#![no_main]

use std::sync::Mutex;

use shardmeta::check::heartbeat_fuzz::{run, LiveCluster};

/// Building the live cluster costs more than one input: it is built once, and each input goes
/// on from the state the earlier ones left (a crash still replays from the corpus in order).
static LIVE: Mutex<Option<LiveCluster>> = Mutex::new(None);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    run(live.get_or_insert_with(LiveCluster::new), data);
});
