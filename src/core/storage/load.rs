//! Why a snapshot did not load, and how long to wait before the next attempt. A meta node that
//! cannot load must not try again at once: it would fail the same way in a tight loop (and, as
//! a new leader, win and give up its term over and over). Each failure doubles the pause, up to
//! a cap that depends on whether the failure passes by itself.

use crate::core::time::Duration;

/// The first pause after a failed load.
pub const LOAD_RETRY_FIRST_MS: u64 = 500;
/// The longest pause after a failure that will happen again until an operator acts (a record
/// over the limit, undecodable metadata).
pub const LOAD_RETRY_MAX_MS: u64 = 30_000;
/// The longest pause after a failure that passes by itself (a timeout, storage unreachable, a
/// compacted revision): once storage is back, a meta node must lead again within seconds.
pub const LOAD_RETRY_TRANSIENT_MAX_MS: u64 = 2_000;

/// What went wrong, in the terms an operator acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadCause {
    /// A page read did not answer in time: storage is slow or overloaded.
    Timeout,
    /// One stored record is larger than the client's decode limit.
    TooLarge,
    /// Storage refused or could not be reached.
    Unavailable,
    /// The revision the load started at was compacted away before the last page.
    Compacted,
    /// Storage holds something the core cannot read back.
    Corrupt,
}

impl LoadCause {
    /// Whether the next attempt may well succeed with nothing changed.
    pub fn is_transient(self) -> bool {
        matches!(self, LoadCause::Timeout | LoadCause::Unavailable | LoadCause::Compacted)
    }

    /// The pause after the `failures`-th failure in a row (counting from 1).
    pub fn retry_pause(self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        let max = if self.is_transient() { LOAD_RETRY_TRANSIENT_MAX_MS } else { LOAD_RETRY_MAX_MS };
        Duration((LOAD_RETRY_FIRST_MS << doublings).min(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let pauses: Vec<u64> = (1..=8).map(|n| LoadCause::Corrupt.retry_pause(n).0).collect();
        assert_eq!(pauses, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    }

    /// After an etcd outage every meta node has failed many times; none may sit out long
    /// pauses once etcd is back.
    #[test]
    fn transient_failures_pause_briefly_however_many() {
        assert_eq!(LoadCause::Timeout.retry_pause(20), Duration(LOAD_RETRY_TRANSIENT_MAX_MS));
        assert_eq!(
            LoadCause::Unavailable.retry_pause(u32::MAX),
            Duration(LOAD_RETRY_TRANSIENT_MAX_MS)
        );
    }
}
