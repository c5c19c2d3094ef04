//! shardmeta: the meta service of a sharded database cluster.
//!
//! - [`core`] is the sans-IO state machine that makes every decision.
//! - [`client`] is what data nodes embed: for now the sans-IO shard host.
//! - [`server`] is the runtime that drives the core: tokio, tonic, etcd or an embedded store.
//! - [`check`] holds the safety invariants that tests and simulations check after every step.
//! - [`proto`] is the gRPC API that the runtime serves.

pub mod check;
pub mod client;
pub mod core;
pub mod server;

/// The generated gRPC API (`proto/shardmeta.proto`).
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("shardmeta.v1");
}
