//! The README's one-command demo runs to the end: a hot node relieved (with the plan and the
//! events), a failover and a drain, with real processes on loopback.

use std::process::Command;

#[test]
fn the_demo_relieves_a_hot_node_fails_over_and_drains() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo")).output().expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for seen in ["overfull", "takes it by", "finish transfer", "heads the busiest tables", "failover done", "holds nothing"] {
        assert!(stdout.contains(seen), "the demo never printed {seen:?}:\n{stdout}");
    }
}
