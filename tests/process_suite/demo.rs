//! The README's one-command demo runs to the end: a hot node relieved (with the plan and the
//! events), two shards merged and the merged shard split again by the scheduler once it is
//! hot, a failover and a drain, with real processes on loopback.

use std::process::Command;

use crate::process::serial_blocking;

#[test]
fn the_demo_relieves_a_hot_node_fails_over_and_drains() {
    let _turn = serial_blocking(); // its clusters run on the same two cores as the others'
    let out = Command::new(env!("CARGO_BIN_EXE_demo")).output().expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let seen_all = [
        "overfull",
        "takes it by",
        "finish transfer",
        "heads the busiest tables",
        "merge of shard",
        "retired shards (never reused): [",
        "above the split line",
        "failover done",
        "holds nothing",
    ];
    for seen in seen_all {
        assert!(stdout.contains(seen), "the demo never printed {seen:?}:\n{stdout}");
    }
}
