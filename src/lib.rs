//! shardmeta: the meta service of a sharded database cluster.
//!
//! - [`core`] is the sans-IO state machine that makes every decision.
//! - [`client`] is what data nodes and frontends embed: the sans-IO shard host, the node's
//!   heartbeat loop and the meta client.
//! - [`server`] is the runtime that drives the core: tokio, tonic, etcd or an embedded store.
//!   It is the `server` feature (on by default); `--no-default-features --features client`
//!   builds the rest without etcd-client, redb, clap, toml, serde or tonic-health.
//! - [`convert`] translates between the gRPC API and the core's types, for both sides.
//! - `check` (feature `check`) holds the safety invariants that tests and simulations check
//!   after every step.
//! - [`proto`] is the gRPC API that the runtime serves.

// Items are `pub` only where another crate may name them; the rest say how far they reach.
#![warn(unreachable_pub)]

#[cfg(feature = "check")]
pub mod check;
pub mod client;
pub mod convert;
pub mod core;
#[cfg(feature = "server")]
pub mod server;

/// The generated gRPC API (`proto/shardmeta.proto`).
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("shardmeta.v1");

    /// The API's descriptors, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/shardmeta_descriptor.bin"));
}
