//! The tests that drive the core in process, without I/O: one file per subject, one test binary
//! for them all. (Each file was its own binary once; each built and linked the harness and the
//! library's generic code again, which cost CI minutes.)

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../source/mod.rs"]
mod source;

mod alter_table;
mod bad_input;
mod drain;
mod drop_cluster;
mod drop_scale;
mod drop_schema;
mod failover;
mod heartbeats;
mod identity;
mod ladder;
mod leadership;
mod listing;
mod merge;
mod placement;
mod purity;
mod remove_node;
mod resize_auto;
mod restart;
mod rules;
mod scale_balance;
mod scheduler;
mod split;
mod split_scale;
mod storage;
mod table_reads;
mod transfer;
mod watch_routes;
mod what_if;
