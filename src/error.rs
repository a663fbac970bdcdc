//! The crate's one error type. Variants are chosen by what the caller can do about
//! them: fix the request, look elsewhere, retry later, or nothing (internal).

use crate::domain::FieldViolation;

/// Every failure capsight reports. `Clone` so that one shared computation can answer
/// every caller waiting for it, failures included.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or references what does not exist; nothing was written.
    #[error("invalid request: {}", violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The addressed entity does not exist.
    #[error("{kind} not found")]
    NotFound {
        /// What was looked for ("person").
        kind: &'static str,
    },
    /// What the request would create exists already.
    #[error("{kind} already exists")]
    AlreadyExists {
        /// What exists ("mentorship").
        kind: &'static str,
    },
    /// The system is not in a state where the question can be answered (e.g. too few
    /// people with evidence to find archetypes); it may be answerable later.
    #[error("failed precondition: {0}")]
    FailedPrecondition(&'static str),
    /// The caller did not present a valid token.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// The caller's token does not allow this call or this subject. Says nothing more, so
    /// that a denial does not reveal whether the subject exists.
    #[error("permission denied")]
    PermissionDenied,
    /// The server's configuration is unusable (e.g. a malformed CORS origin).
    #[error("configuration: {0}")]
    Config(String),
    /// The data directory cannot be opened by this build (schema, lock, layout).
    #[error("data directory cannot be used: {0}")]
    DataDir(String),
    /// sled reported an I/O or storage failure.
    #[error("storage failure: {0}")]
    Storage(#[from] sled::Error),
    /// A stored record could not be decoded or failed validation.
    #[error("corrupt record in tree `{tree}`: {detail}")]
    Corrupt {
        /// Tree holding the record.
        tree: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A bug or broken invariant inside capsight.
    #[error("internal error: {0}")]
    Internal(String),
    /// The server is shutting down and accepts no more work.
    #[error("the service is shutting down")]
    ShuttingDown,
    /// Past an admission limit: the server is busy with other work and refused this
    /// call before starting it. Retry after `retry_after`.
    #[error("the server is busy; retry in {} ms", .retry_after.as_millis())]
    Overloaded {
        /// When a retry is likely to be admitted.
        retry_after: std::time::Duration,
    },
    /// The caller's deadline passed before the answer was ready. Shared work goes on and
    /// its result is kept for the next caller.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// A computation stopped because no one needs its result any more (superseded, or
    /// the server is stopping).
    #[error("the computation was cancelled")]
    Cancelled,
    /// A service this node depends on (the cluster log) cannot be reached or did not
    /// answer in time; the write's outcome is unknown (retrying it with the same ids
    /// is safe).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An earlier flush failed; writes are refused until restart so that no write is
    /// acknowledged on a store whose durability is unknown.
    #[error("storage is unavailable after an earlier failure; restart the server")]
    StoragePoisoned,
}

/// The violations as one line: `field: reason; …` (at most three, then a count).
fn violations(list: &[FieldViolation]) -> String {
    let mut text: Vec<String> = list
        .iter()
        .take(3)
        .map(|v| format!("{}: {}", v.field, v.reason))
        .collect();
    if list.len() > 3 {
        text.push(format!("and {} more", list.len() - 3));
    }
    text.join("; ")
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
