//! Field-level validation errors and per-item rejections of batch writes.

/// One invalid field, addressed by its path in the request (`"people[3].team_id"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request.
    pub field: String,
    /// Why the value is not accepted.
    pub reason: String,
}

impl FieldViolation {
    /// A violation of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same violation nested under `prefix` (`"name"` under `"skills[2]"`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// Accumulates every violation of a request instead of stopping at the first, so that a
/// caller can fix them all in one round trip.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Records `reason` for `field`.
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldViolation::new(field, reason));
    }

    /// Records an already built violation.
    pub fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    /// Keeps the value of `result`, or records its violation under `prefix`.
    pub fn take<T>(&mut self, prefix: &str, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violation) => {
                self.0.push(violation.under(prefix));
                None
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else every violation.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldViolation>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }

    /// The recorded violations.
    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }
}

/// Why one item of a batch write was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    /// A field is malformed.
    Invalid,
    /// A referenced entity does not exist.
    UnknownReference,
    /// The id is stored with other content.
    Conflict,
}

/// One item of a batch write that was not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the item in the request.
    pub index: u32,
    /// Path of the offending field inside the item.
    pub field: String,
    /// Human-readable reason.
    pub reason: String,
    /// Reason class.
    pub kind: RejectionKind,
}
