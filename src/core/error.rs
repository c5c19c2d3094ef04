//! Errors for the outside world. Each kind maps to one gRPC status code; the message names what
//! was wrong. Bugs are not errors: they panic.

use std::fmt;

/// A refusal, as the outside world sees it: its kind, and a message that says what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaError {
    /// The request is malformed: a bad name, an oversized value, a zero count.
    InvalidArgument(String),
    /// An unknown cluster, schema, table or node.
    NotFound(String),
    /// A duplicate create without if-not-exists.
    AlreadyExists(String),
    /// The target is in a state that forbids the request.
    FailedPrecondition(String),
    /// This meta node is not the leader; the driver forwards or redirects.
    NotLeader,
    /// The leader cannot serve right now (storage recovering, a conflicting change in flight).
    Unavailable(String),
    /// Not completed in time; the outcome of a write is unknown.
    DeadlineExceeded,
    /// A configured limit was reached.
    ResourceExhausted(String),
    /// A compare-and-set lost: what it expected changed since it was read. Read again, then
    /// decide again.
    Aborted(String),
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            MetaError::NotFound(m) => write!(f, "not found: {m}"),
            MetaError::AlreadyExists(m) => write!(f, "already exists: {m}"),
            MetaError::FailedPrecondition(m) => write!(f, "failed precondition: {m}"),
            MetaError::NotLeader => write!(f, "this meta node is not the leader"),
            MetaError::Unavailable(m) => write!(f, "unavailable: {m}"),
            MetaError::DeadlineExceeded => write!(f, "request deadline exceeded; outcome unknown"),
            MetaError::ResourceExhausted(m) => write!(f, "limit reached: {m}"),
            MetaError::Aborted(m) => write!(f, "aborted: {m}"),
        }
    }
}

impl std::error::Error for MetaError {}

/// A result whose error is a [`MetaError`].
pub type MetaResult<T> = Result<T, MetaError>;

/// The most of an input a message quotes.
pub const QUOTE_BYTES_MAX: usize = 128;

/// An input as a message quotes it: whole when short, else its first [`QUOTE_BYTES_MAX`] bytes
/// (cut at a character) and its length.
pub struct Quoted<'a>(&'a str);

/// `input`, ready to be quoted in a message (see [`Quoted`]).
pub fn quoted(input: &str) -> Quoted<'_> {
    Quoted(input)
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= QUOTE_BYTES_MAX {
            return write!(f, "{:?}", self.0);
        }
        write!(f, "{:?}... ({} bytes)", prefix(self.0, QUOTE_BYTES_MAX), self.0.len())
    }
}

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    let cut = (0..=max.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    &text[..cut]
}
