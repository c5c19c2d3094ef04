//! Why a snapshot did not load, and how long to wait before the next attempt. A meta node that
//! cannot load gives its term up; without a pause it would win again at once and fail the same
//! way, in a loop that keeps every meta node from serving. So each failure doubles the pause,
//! and each distinct cause is logged once at warning level, not on every attempt.

use std::time::Duration;

use crate::core::storage::DecodeError;

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub cause: LoadCause,
    pub detail: String,
}

impl LoadCause {
    /// Whether the next attempt may well succeed with nothing changed.
    pub fn is_transient(self) -> bool {
        matches!(self, LoadCause::Timeout | LoadCause::Unavailable | LoadCause::Compacted)
    }
}

impl LoadError {
    pub fn new(cause: LoadCause, detail: impl Into<String>) -> LoadError {
        LoadError { cause, detail: detail.into() }
    }
}

impl From<DecodeError> for LoadError {
    fn from(e: DecodeError) -> LoadError {
        LoadError::new(LoadCause::Corrupt, e.0)
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.cause {
            LoadCause::Timeout => "a snapshot page read timed out",
            LoadCause::TooLarge => "a stored record is over the snapshot decode limit",
            LoadCause::Unavailable => "storage is unavailable",
            LoadCause::Compacted => "storage compacted the snapshot's revision during the load",
            LoadCause::Corrupt => "stored metadata cannot be decoded",
        };
        write!(f, "{what}: {}", self.detail)
    }
}

impl std::error::Error for LoadError {}

/// The pause between failed loads, and the log that says why once per cause.
#[derive(Default)]
pub struct LoadBackoff {
    failures: u32,
    last_cause: Option<LoadCause>,
}

impl LoadBackoff {
    /// Records a failure; returns how long to wait before the next attempt.
    pub fn failed(&mut self, what: &str, e: &LoadError) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let pause = self.pause(e.cause);
        if self.last_cause != Some(e.cause) {
            tracing::warn!(error = %e, attempt = self.failures, retry_in_ms = pause.as_millis() as u64, "{what}");
            self.last_cause = Some(e.cause);
        } else {
            tracing::debug!(error = %e, attempt = self.failures, retry_in_ms = pause.as_millis() as u64, "{what}");
        }
        pause
    }

    /// A load succeeded: the next failure starts from the first pause and is logged again.
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failed_attempts = self.failures, "snapshot loaded after failures");
        }
        *self = LoadBackoff::default();
    }

    fn pause(&self, cause: LoadCause) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        let max = if cause.is_transient() { LOAD_RETRY_TRANSIENT_MAX_MS } else { LOAD_RETRY_MAX_MS };
        Duration::from_millis((LOAD_RETRY_FIRST_MS << doublings).min(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_reset_on_success() {
        let mut b = LoadBackoff::default();
        let e = LoadError::new(LoadCause::Corrupt, "clusters/9");
        let pauses: Vec<u64> = (0..8).map(|_| b.failed("load", &e).as_millis() as u64).collect();
        assert_eq!(pauses, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        b.succeeded();
        assert_eq!(b.failed("load", &e), Duration::from_millis(LOAD_RETRY_FIRST_MS));
    }

    /// After an etcd outage every meta node has failed many times; none may sit out long
    /// pauses once etcd is back.
    #[test]
    fn transient_failures_pause_briefly_however_many() {
        let mut b = LoadBackoff::default();
        let e = LoadError::new(LoadCause::Timeout, "page 3");
        let last = (0..20).map(|_| b.failed("load", &e)).last().unwrap();
        assert_eq!(last, Duration::from_millis(LOAD_RETRY_TRANSIENT_MAX_MS));
    }

    #[test]
    fn the_message_names_the_cause() {
        let e = LoadError::new(LoadCause::TooLarge, "key /x is 70 MB, the limit is 64 MiB");
        assert!(e.to_string().starts_with("a stored record is over the snapshot decode limit"), "{e}");
    }
}
