//! What data nodes and frontends embed to talk to meta: the networked [`MetaClient`], and
//! [`ShardHost`], the sans-IO part that decides what a data node does with meta's messages.

#[cfg(feature = "node-config")]
pub mod config;
pub mod credentials;
pub mod lease_log;
pub mod listing;
pub mod load_source;
pub mod meta_client;
pub mod metrics;
pub mod node;
pub mod routes;
pub mod session;
pub mod shard_host;
pub mod write_service;

pub use credentials::{ClientTls, Credentials};
pub use meta_client::MetaClient;
pub use routes::RouteCache;
pub use session::{Applied, Beat, NodeIdentity, NodeSession};

pub use lease_log::{LeaseEvent, LeaseTracker, TableLeaseEvent, TableLeaseTracker};
pub use load_source::LoadSource;
pub use shard_host::{HostCounters, HostedShard, Reports, ShardHost};
pub use write_service::WriteService;
