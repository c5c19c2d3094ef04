//! Storage adapters: they execute the core's write batches and read snapshots. Each keeps the
//! batch contract of `core::storage::batch`: land only under the writer's term and the expected
//! fence value, advance the fence in the same transaction, and tell a replay of a landed batch
//! from a conflict.

pub mod embedded;
pub mod etcd;
pub mod load;
pub mod memory;
pub mod page_window;
pub mod standby;

use self::load::LoadError;
use crate::core::storage::{Snapshot, WriteBatch, WriteResult};

/// The store a meta node runs on.
pub enum Storage {
    Memory(memory::MemoryStore),
    Embedded(embedded::EmbeddedStore),
    Etcd(Box<etcd::EtcdStore>),
}

impl Storage {
    /// Executes one batch. `Error` means the outcome is unknown.
    pub async fn write(&self, batch: &WriteBatch) -> WriteResult {
        match self {
            Storage::Memory(s) => s.write(batch),
            Storage::Embedded(s) => s.write(batch).await,
            Storage::Etcd(s) => s.write(batch).await,
        }
    }

    /// What storage holds, decoded page by page into a catalog.
    pub async fn snapshot(&self) -> Result<Snapshot, LoadError> {
        match self {
            Storage::Memory(s) => s.snapshot(),
            Storage::Embedded(s) => s.snapshot().await,
            Storage::Etcd(s) => s.snapshot().await,
        }
    }
}
