//! The storage *protocol*: key schema, record encoding and write batches. The adapters that talk
//! to etcd or a file live in the runtime; this module only says what to write.

pub mod batch;
pub mod codec;
pub mod keys;
pub mod load;
pub mod snapshot;

pub use batch::{Op, Verdict, WriteBatch, WriteResult};
pub use keys::{Key, FENCE_KEY, ROOT};
pub use load::LoadCause;
pub use snapshot::{Snapshot, SnapshotLoader, SNAPSHOT_PREFIXES};
