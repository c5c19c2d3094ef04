//! A failed load as the runtime reports it: its cause (`core::storage::LoadCause`, which also
//! sets the pause before the next attempt) and what storage said. Each distinct cause is logged
//! once at warning level, not on every attempt.

use std::time::Duration;

use crate::core::model::DecodeError;
pub use crate::core::storage::LoadCause;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub cause: LoadCause,
    pub detail: String,
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
        let pause = Duration::from_millis(e.cause.retry_pause(self.failures).0);
        self.record(what, e, Some(pause));
        pause
    }

    /// Records a failure whose retry someone else times (the core times reloads).
    pub fn note(&mut self, what: &str, e: &LoadError) {
        self.failures = self.failures.saturating_add(1);
        self.record(what, e, None);
    }

    /// Counts the failure by cause, and logs it: at warning level once per cause.
    fn record(&mut self, what: &str, e: &LoadError, retry_in: Option<Duration>) {
        crate::server::metrics::metrics().snapshot_failed(e.cause);
        let retry_in_ms = retry_in.map(|d| d.as_millis() as u64);
        if self.last_cause != Some(e.cause) {
            tracing::warn!(error = %e, attempt = self.failures, retry_in_ms, "{what}");
            self.last_cause = Some(e.cause);
        } else {
            tracing::debug!(error = %e, attempt = self.failures, retry_in_ms, "{what}");
        }
    }

    /// A load succeeded: the next failure starts from the first pause and is logged again.
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failed_attempts = self.failures, "snapshot loaded after failures");
        }
        *self = LoadBackoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_and_reset_on_success() {
        let mut b = LoadBackoff::default();
        let e = LoadError::new(LoadCause::Corrupt, "clusters/9");
        let pauses: Vec<u64> = (0..3).map(|_| b.failed("load", &e).as_millis() as u64).collect();
        assert_eq!(pauses, [500, 1_000, 2_000]);
        b.succeeded();
        assert_eq!(b.failed("load", &e), Duration::from_millis(500));
    }

    #[test]
    fn the_message_names_the_cause() {
        let e = LoadError::new(LoadCause::TooLarge, "key /x is 70 MB, the limit is 64 MiB");
        assert!(
            e.to_string().starts_with("a stored record is over the snapshot decode limit"),
            "{e}"
        );
    }
}
