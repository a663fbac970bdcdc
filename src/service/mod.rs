//! Policy, free of transport: one module per proto service, one function per rpc, each
//! taking the caller's grant and a validated domain request and returning a domain
//! result with the ids it reveals (its audit subjects). Here live scope admission,
//! privacy suppression, limits and defaults; never tonic or prost. See
//! `docs/architecture-status.md` for what still lives in `api`.

pub mod insights;
pub mod scope;

/// A service's result and the people, teams or tokens it concerns (for the audit trail).
#[derive(Clone, Debug)]
pub struct Answer<T> {
    /// The result.
    pub value: T,
    /// Ids of whom it reveals or concerns.
    pub subjects: Vec<String>,
}

impl<T> Answer<T> {
    /// `value`, concerning `subjects`.
    pub fn new(value: T, subjects: Vec<String>) -> Self {
        Self { value, subjects }
    }

    /// The answer with its value converted (e.g. to a response message).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        Answer {
            value: f(self.value),
            subjects: self.subjects,
        }
    }
}
