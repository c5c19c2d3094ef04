//! The tests that run the real binaries: meta servers, node-agents, etcd members, metactl and
//! the demo, on loopback ports and in network namespaces. One file per subject, one test binary
//! for them all (each file was its own binary once, and built the kit in `process` again). The
//! tests that start clusters take turns (`process::serial`): they assert timings.

#[path = "../process/mod.rs"]
mod process;

mod admin;
mod balance;
mod big_catalog;
mod dashboard;
mod demo;
mod doc_commands;
mod embedded;
mod etcd;
mod etcd_member_faults;
mod health;
mod leader_view;
mod meta_failover;
mod metadata;
mod page;
mod partitions;
mod secure;
mod shutdown;
mod standby;
