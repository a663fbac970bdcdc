//! Plain domain types and the rules that make them valid: ids, skills, roles, teams,
//! people, assessments and the org tree. Values are valid by construction (`parse`).
//! Must never depend on tonic, prost-generated types or sled.

mod access;
mod directory;
mod ids;
mod mentoring;
mod model;
mod violation;

pub use access::{AccessRole, AuditEvent, Grant, Scope, TokenInfo};
pub use directory::{Directory, Erasure};
pub use ids::{AssessmentId, PersonId, RoleId, SkillId, TeamId, TokenId};
pub use mentoring::{MAX_MENTORING_SKILLS, Mentorship, Mentorships};
pub use model::{
    Assessment, Availability, Indicator, Level, Person, Requirement, Role, Skill, SkillCategory,
    Source, Team, Text, Timestamp, Weight,
};
pub use violation::{FieldViolation, Rejection, RejectionKind, Violations};

/// Largest number of items accepted in one batch request.
pub const MAX_BATCH_ITEMS: usize = 10_000;
