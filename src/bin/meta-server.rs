//! Placeholder until the runtime lands (tokio + tonic driver, etcd and embedded storage). It
//! says so, and points at what already runs: the sans-IO core under the in-process simulator.

fn main() {
    eprintln!(
        "meta-server: the networked server is not built yet; it arrives with the production runtime.\n\
         What exists today is the sans-IO meta core, proven under the in-process simulator.\n\
         Watch one simulated cluster (3 meta nodes, data nodes, crashes, partitions) run:\n\n\
         \x20   SIM_SEED=7 cargo test --release --test sim seeds_hold_every_invariant -- --nocapture\n"
    );
    std::process::exit(2);
}
