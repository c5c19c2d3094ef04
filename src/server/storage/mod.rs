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

/// What a store must do with a batch, given the fence value it holds now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Land,
    /// A replay of a batch that already landed: report `Ok`, change nothing.
    AlreadyLanded,
    Conflict,
}

/// The write-chain rule for stores that check it themselves (memory, embedded).
pub fn judge(batch: &WriteBatch, holder_term: crate::core::Term, current_fence: Option<&[u8]>) -> Verdict {
    if batch.term == holder_term && current_fence == batch.expected_fence.as_deref() {
        Verdict::Land
    } else if batch.landed_already(current_fence) {
        Verdict::AlreadyLanded
    } else {
        Verdict::Conflict
    }
}

impl From<Verdict> for Option<WriteResult> {
    /// `None`: land the batch, then report `Ok`.
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Land => None,
            Verdict::AlreadyLanded => Some(WriteResult::Ok),
            Verdict::Conflict => Some(WriteResult::Conflict),
        }
    }
}

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
