//! Who may see what: access roles, the grant a token carries, the person-level scope a
//! grant yields in the org tree, token listings and audit events.

use std::collections::HashSet;

use super::{Directory, FieldViolation, Person, PersonId, TeamId, Text, Timestamp, TokenId};

/// What a token's holder may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessRole {
    /// Everything.
    Admin,
    /// Directory and assessment writes only.
    Ingest,
    /// Person-level reads inside team subtrees.
    Manager,
    /// Staffing reads inside team subtrees.
    Planner,
    /// Organisation-wide aggregates only.
    Analyst,
    /// One person's own data.
    Person,
}

impl AccessRole {
    /// Every role, in code order.
    pub const ALL: [AccessRole; 6] = [
        Self::Admin,
        Self::Ingest,
        Self::Manager,
        Self::Planner,
        Self::Analyst,
        Self::Person,
    ];

    /// Stable storage code.
    pub fn code(self) -> u8 {
        match self {
            Self::Admin => 1,
            Self::Ingest => 2,
            Self::Manager => 3,
            Self::Planner => 4,
            Self::Analyst => 5,
            Self::Person => 6,
        }
    }

    /// The role of a storage code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Lower-case name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Ingest => "ingest",
            Self::Manager => "manager",
            Self::Planner => "planner",
            Self::Analyst => "analyst",
            Self::Person => "person",
        }
    }
}

/// The role and scope a token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Role.
    pub role: AccessRole,
    /// Team subtrees (manager, planner).
    pub teams: Vec<TeamId>,
    /// Bound person (person role).
    pub person: Option<PersonId>,
}

impl Grant {
    /// A grant whose scope fields fit its role: manager and planner need at least one
    /// team, person needs a person, the others take neither.
    pub fn parse(
        role: AccessRole,
        teams: Vec<TeamId>,
        person: Option<PersonId>,
    ) -> Result<Self, FieldViolation> {
        let scoped = matches!(role, AccessRole::Manager | AccessRole::Planner);
        if scoped && teams.is_empty() {
            return Err(FieldViolation::new(
                "team_ids",
                "a manager or planner token needs at least one team",
            ));
        }
        if !scoped && !teams.is_empty() {
            return Err(FieldViolation::new(
                "team_ids",
                "only manager and planner tokens are scoped to teams",
            ));
        }
        let bound = role == AccessRole::Person;
        if bound && person.is_none() {
            return Err(FieldViolation::new(
                "person_id",
                "a person token needs a person",
            ));
        }
        if !bound && person.is_some() {
            return Err(FieldViolation::new(
                "person_id",
                "only person tokens are bound to a person",
            ));
        }
        Ok(Self {
            role,
            teams,
            person,
        })
    }

    /// Reference violations against the directory: teams and person must exist.
    pub fn check(&self, directory: &Directory) -> Vec<FieldViolation> {
        let mut violations: Vec<FieldViolation> = self
            .teams
            .iter()
            .enumerate()
            .filter(|(_, t)| !directory.teams().contains_key(*t))
            .map(|(i, _)| FieldViolation::new(format!("team_ids[{i}]"), "unknown team"))
            .collect();
        if let Some(person) = &self.person
            && directory.person(person.as_str()).is_none()
        {
            violations.push(FieldViolation::new("person_id", "unknown person"));
        }
        violations
    }

    /// The person-level data this grant may read, resolved against the current org tree
    /// (so that moving a team moves its people in or out of scope).
    pub fn person_scope(&self, directory: &Directory) -> Scope {
        match self.role {
            AccessRole::Admin => Scope::Everything,
            AccessRole::Manager | AccessRole::Planner => Scope::Teams(
                self.teams
                    .iter()
                    .filter_map(|t| directory.subtree(t.as_str()))
                    .flatten()
                    .collect(),
            ),
            AccessRole::Person => self.person.clone().map_or(Scope::Nothing, Scope::Person),
            AccessRole::Ingest | AccessRole::Analyst => Scope::Nothing,
        }
    }
}

/// The person-level data a caller may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everyone.
    Everything,
    /// People in these teams.
    Teams(HashSet<TeamId>),
    /// One person.
    Person(PersonId),
    /// No one.
    Nothing,
}

impl Scope {
    /// True when the scope includes `person`.
    pub fn covers_person(&self, person: &Person) -> bool {
        match self {
            Self::Everything => true,
            Self::Teams(teams) => teams.contains(&person.team),
            Self::Person(id) => *id == person.id,
            Self::Nothing => false,
        }
    }

    /// True when the scope includes every person of `team`.
    pub fn covers_team(&self, team: &TeamId) -> bool {
        match self {
            Self::Everything => true,
            Self::Teams(teams) => teams.contains(team),
            Self::Person(_) | Self::Nothing => false,
        }
    }
}

/// A token as listed; the secret's hash is kept by the store, never here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// Public id.
    pub id: TokenId,
    /// Role and scope.
    pub grant: Grant,
    /// Who or what holds it.
    pub description: Text,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
}

impl TokenInfo {
    /// True when the token may be used at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// One audited call. Holds ids and outcomes, never scores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// Position in the log (assigned by the store).
    pub sequence: u64,
    /// When the call was decided.
    pub at: Timestamp,
    /// Token used, if valid.
    pub token: Option<TokenId>,
    /// Its role.
    pub role: Option<AccessRole>,
    /// Full rpc name.
    pub rpc: String,
    /// Ids of the people, teams or tokens concerned.
    pub subjects: Vec<String>,
    /// gRPC status code name of the outcome.
    pub outcome: String,
    /// Where the calls came from, for aggregated unauthenticated denials (the peer's
    /// IP address); `None` for an event of one authenticated call.
    pub source: Option<String>,
    /// How many calls this event stands for: unauthenticated denials are aggregated
    /// per source, rpc, outcome and minute; 1 otherwise.
    pub count: u32,
}

impl AuditEvent {
    /// What an erased person's id becomes in the audit log.
    pub const ERASED: &'static str = "erased";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_need_the_scope_their_role_implies() {
        let team = || vec![TeamId::parse("t").unwrap()];
        let person = || Some(PersonId::parse("p").unwrap());
        assert!(Grant::parse(AccessRole::Manager, vec![], None).is_err());
        assert!(Grant::parse(AccessRole::Manager, team(), None).is_ok());
        assert!(Grant::parse(AccessRole::Person, vec![], None).is_err());
        assert!(Grant::parse(AccessRole::Person, vec![], person()).is_ok());
        assert!(Grant::parse(AccessRole::Analyst, team(), None).is_err());
        assert!(Grant::parse(AccessRole::Admin, vec![], person()).is_err());
        assert!(Grant::parse(AccessRole::Manager, team(), person()).is_err());
    }

    #[test]
    fn expired_and_revoked_tokens_are_inactive() {
        let info = TokenInfo {
            id: TokenId::parse("t1").unwrap(),
            grant: Grant::parse(AccessRole::Admin, vec![], None).unwrap(),
            description: Text::default(),
            created_at: Timestamp::from_unix_millis(0),
            expires_at: Some(Timestamp::from_unix_millis(100)),
            revoked_at: None,
        };
        assert!(info.is_active(Timestamp::from_unix_millis(99)));
        assert!(!info.is_active(Timestamp::from_unix_millis(100)));
        let revoked = TokenInfo {
            expires_at: None,
            revoked_at: Some(Timestamp::from_unix_millis(5)),
            ..info
        };
        assert!(!revoked.is_active(Timestamp::from_unix_millis(6)));
    }
}
