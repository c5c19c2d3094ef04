//! The sans-IO meta core: every decision of the meta service, with no IO.
//!
//! # The contract
//!
//! 1. Feed one [`Input`] to [`MetaCore::handle`]: a heartbeat, a request, a leadership change,
//!    a storage result, a snapshot, or a timeout.
//! 2. Drain [`MetaCore::poll_output`] until it returns `None`, doing what each [`Output`] says.
//! 3. Sleep until [`MetaCore::poll_timeout`] (or the next input), then hand in
//!    [`Input::Timeout`], which is safe early or twice.
//!
//! Drivers do steps 2 and 3 through [`Dispatch`], which also numbers requests and pairs each
//! reply with its caller; a driver supplies only its [`Effects`].
//!
//! Inside the core no clock is read (`now` is passed in, as [`time::Instant`]), nothing does IO,
//! spawns, blocks or awaits, the only randomness comes from the seed given to [`MetaCore::new`],
//! and no `HashMap` is iterated: the same inputs always give the same outputs. A test
//! (`tests/core_suite/purity.rs`) enforces this by scanning these files.
//!
//! # Persist before effect
//!
//! A change becomes visible (in a reply, a route or a shard command) only after storage has
//! acknowledged the write that records it. The catalog ([`model::Catalog`]) is exactly what
//! storage holds; decisions not yet written live in the leader's *intent*.

#![warn(missing_docs)]

pub mod cause;
pub mod config;
mod dispatch;
pub mod error;
pub mod ids;
pub mod input;
pub mod leader;
pub mod live;
mod meta;
pub mod model;
mod outbox;
pub mod output;
mod request_ids;
pub mod scheduler;
pub mod settings;
pub mod storage;
pub mod time;
pub mod validate;

pub use config::{CoreConfig, PlantedBug};
pub use dispatch::{Dispatch, Effects};
pub use error::{MetaError, MetaResult};
pub use ids::*;
pub use input::*;
pub use meta::{MetaCore, Timer};
pub use output::*;
pub use request_ids::RequestIds;
pub use time::{Duration, Instant};
