//! The cluster model: durable records and the catalog built from them.

pub mod catalog;
pub mod mutation;
pub mod records;
pub mod rule;
pub mod tables;

pub use catalog::{Catalog, ClusterCatalog, SHARDS_PER_CLUSTER_CEILING};
pub use mutation::{DecodeError, Mutation};
pub use records::*;
pub use rule::{Constraint, ConstraintKind, PlacementRecord};
pub use tables::{Table, TableExtra, Tables};
