//! The competency model (skills, roles), the org (teams, people) and the evidence
//! (assessments), with the scalar types whose ranges the domain defines.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{AssessmentId, FieldViolation, PersonId, RoleId, SkillId, TeamId};

/// Bounded, printable text: names, descriptions, evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    /// Longest name accepted, in characters.
    pub const MAX_NAME: usize = 200;
    /// Longest description or evidence accepted, in characters.
    pub const MAX_LONG: usize = 4_000;

    /// A required one-line name: 1-200 characters, no control characters.
    pub fn name(raw: &str) -> Result<Self, FieldViolation> {
        if raw.trim().is_empty() {
            return Err(FieldViolation::new("", "must not be empty"));
        }
        Self::bounded(raw, Self::MAX_NAME, false)
    }

    /// Optional long text (may be empty): up to 4,000 characters, newlines and tabs allowed.
    pub fn long(raw: &str) -> Result<Self, FieldViolation> {
        Self::bounded(raw, Self::MAX_LONG, true)
    }

    fn bounded(raw: &str, max: usize, multiline: bool) -> Result<Self, FieldViolation> {
        let count = raw.chars().count();
        if count > max {
            return Err(FieldViolation::new(
                "",
                format!("must be at most {max} characters, not {count}"),
            ));
        }
        let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\t' | '\r'));
        if let Some(c) = raw.chars().find(|&c| !allowed(c)) {
            return Err(FieldViolation::new(
                "",
                format!(
                    "must not contain control characters (found U+{:04X})",
                    u32::from(c)
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for empty optional text.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A proficiency level on the 0-5 scale (0 none, 3 proficient, 5 expert).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Level(f32);

impl Level {
    /// Highest level of the scale.
    pub const MAX: f32 = 5.0;
    /// Level from which a person counts as proficient (can do unaided).
    pub const PROFICIENT: f32 = 3.0;

    /// A finite value within 0-5.
    pub fn parse(raw: f64) -> Result<Self, FieldViolation> {
        if !raw.is_finite() || !(0.0..=f64::from(Self::MAX)).contains(&raw) {
            return Err(FieldViolation::new(
                "",
                format!("must be a number from 0 to 5, not {raw}"),
            ));
        }
        Ok(Self(raw as f32))
    }

    /// The level as a number.
    pub fn value(self) -> f32 {
        self.0
    }
}

/// Relative importance of a role requirement: finite, > 0 and at most 1,000.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Weight(f32);

impl Weight {
    /// A finite value in (0, 1000].
    pub fn parse(raw: f64) -> Result<Self, FieldViolation> {
        if !raw.is_finite() || raw <= 0.0 || raw > 1_000.0 {
            return Err(FieldViolation::new(
                "",
                format!("must be a number greater than 0 and at most 1000, not {raw}"),
            ));
        }
        Ok(Self(raw as f32))
    }

    /// The weight as a number.
    pub fn value(self) -> f32 {
        self.0
    }
}

/// A point in time, in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// How far in the future an assessment may be dated (clock skew between systems).
    pub const MAX_FUTURE_MS: i64 = 24 * 60 * 60 * 1000;

    /// Earliest time a protobuf `Timestamp` may hold: 0001-01-01T00:00:00Z, in seconds.
    pub const MIN_SECONDS: i64 = -62_135_596_800;

    /// Latest time a protobuf `Timestamp` may hold: 9999-12-31T23:59:59Z, in seconds.
    pub const MAX_SECONDS: i64 = 253_402_300_799;

    /// A timestamp from protobuf's seconds and nanos, within the range the protobuf
    /// specification allows (years 1 to 9999). Every request time passes through here, so
    /// differences of two request times and sums with bounded durations cannot overflow.
    pub fn parse_seconds(seconds: i64, nanos: i32) -> Result<Self, FieldViolation> {
        if !(0..1_000_000_000).contains(&nanos) {
            return Err(FieldViolation::new(
                "",
                "nanos must be from 0 to 999,999,999",
            ));
        }
        if !(Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&seconds) {
            return Err(FieldViolation::new(
                "",
                format!(
                    "must be between 0001-01-01 and 9999-12-31, not {seconds} seconds from 1970"
                ),
            ));
        }
        // In range, seconds * 1000 is below 2^59: no overflow.
        Ok(Self(seconds * 1000 + i64::from(nanos / 1_000_000)))
    }

    /// The timestamp `millis` after the epoch.
    pub fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// The current time.
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self(millis)
    }

    /// An assessment date: not before 1970 and at most one day after `now`.
    pub fn parse_assessed(millis: i64, now: Timestamp) -> Result<Self, FieldViolation> {
        if millis < 0 {
            return Err(FieldViolation::new("", "must not be before 1970-01-01"));
        }
        if millis > now.0.saturating_add(Self::MAX_FUTURE_MS) {
            return Err(FieldViolation::new(
                "",
                "must not be more than one day in the future",
            ));
        }
        Ok(Self(millis))
    }

    /// Milliseconds since the epoch.
    pub fn unix_millis(self) -> i64 {
        self.0
    }
}

/// Broad family of a skill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkillCategory {
    /// Hands-on technical skills.
    Technical,
    /// Interpersonal skills.
    Soft,
    /// Commercial and organisational skills.
    Business,
    /// Leading people.
    Leadership,
    /// Industry or product knowledge.
    Domain,
    /// A body of knowledge (regulations, a method, a theory): what someone knows, as
    /// public frameworks (ESCO, O*NET) separate it from what they can do.
    Knowledge,
}

impl SkillCategory {
    /// Every category, in code order.
    pub const ALL: [SkillCategory; 6] = [
        Self::Technical,
        Self::Soft,
        Self::Business,
        Self::Leadership,
        Self::Domain,
        Self::Knowledge,
    ];

    /// Stable storage code.
    pub fn code(self) -> u8 {
        match self {
            Self::Technical => 1,
            Self::Soft => 2,
            Self::Business => 3,
            Self::Leadership => 4,
            Self::Domain => 5,
            Self::Knowledge => 6,
        }
    }

    /// The category of a storage code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Lower-case name, as used in CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Technical => "technical",
            Self::Soft => "soft",
            Self::Business => "business",
            Self::Leadership => "leadership",
            Self::Domain => "domain",
            Self::Knowledge => "knowledge",
        }
    }
}

/// Where a piece of evidence comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The person rated themself.
    SelfRating,
    /// A colleague's rating.
    Peer,
    /// The manager's rating.
    Manager,
    /// Watched doing the work.
    ObservedPractice,
    /// A scored objective test.
    ObjectiveTest,
    /// An earned certification.
    Certification,
}

impl Source {
    /// Every source, in code order.
    pub const ALL: [Source; 6] = [
        Self::SelfRating,
        Self::Peer,
        Self::Manager,
        Self::ObservedPractice,
        Self::ObjectiveTest,
        Self::Certification,
    ];

    /// Stable storage code.
    pub fn code(self) -> u8 {
        match self {
            Self::SelfRating => 1,
            Self::Peer => 2,
            Self::Manager => 3,
            Self::ObservedPractice => 4,
            Self::ObjectiveTest => 5,
            Self::Certification => 6,
        }
    }

    /// The source of a storage code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Upper-case name, as used in CSV files and the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::SelfRating => "SELF",
            Self::Peer => "PEER",
            Self::Manager => "MANAGER",
            Self::ObservedPractice => "OBSERVED_PRACTICE",
            Self::ObjectiveTest => "OBJECTIVE_TEST",
            Self::Certification => "CERTIFICATION",
        }
    }
}

/// What a person shows at one level of a skill.
#[derive(Clone, Debug, PartialEq)]
pub struct Indicator {
    /// Level 1-5.
    pub level: u8,
    /// Observable behaviour at that level.
    pub description: Text,
}

impl Indicator {
    /// An indicator for `level` (1-5).
    pub fn parse(level: u32, description: Text) -> Result<Self, FieldViolation> {
        match u8::try_from(level) {
            Ok(level @ 1..=5) => Ok(Self { level, description }),
            _ => Err(FieldViolation::new("level", "must be from 1 to 5")),
        }
    }
}

/// A skill of the competency model.
#[derive(Clone, Debug, PartialEq)]
pub struct Skill {
    /// Stable id.
    pub id: SkillId,
    /// Name.
    pub name: Text,
    /// Family.
    pub category: SkillCategory,
    /// What the skill covers.
    pub description: Text,
    /// Behavioural indicators, at most one per level.
    pub indicators: Vec<Indicator>,
}

impl Skill {
    /// Field violations of rules spanning several fields (one indicator per level).
    pub fn check(&self) -> Vec<FieldViolation> {
        let mut seen = [false; 6];
        let mut violations = Vec::new();
        for (i, indicator) in self.indicators.iter().enumerate() {
            let slot = &mut seen[usize::from(indicator.level)];
            if *slot {
                violations.push(FieldViolation::new(
                    format!("indicators[{i}].level"),
                    "a level may have only one indicator",
                ));
            }
            *slot = true;
        }
        violations
    }
}

/// One line of a role profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    /// Required skill.
    pub skill: SkillId,
    /// Level required.
    pub level: Level,
    /// Importance within the role.
    pub weight: Weight,
}

/// A role and what good looks like in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    /// Stable id.
    pub id: RoleId,
    /// Name.
    pub name: Text,
    /// Required skills, each at most once.
    pub requirements: Vec<Requirement>,
}

impl Role {
    /// Field violations of rules spanning several fields (each skill at most once).
    pub fn check(&self) -> Vec<FieldViolation> {
        let mut violations = Vec::new();
        for (i, requirement) in self.requirements.iter().enumerate() {
            if self.requirements[..i]
                .iter()
                .any(|earlier| earlier.skill == requirement.skill)
            {
                violations.push(FieldViolation::new(
                    format!("requirements[{i}].skill_id"),
                    "a skill may be required only once per role",
                ));
            }
        }
        violations
    }
}

/// An org unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    /// Stable id.
    pub id: TeamId,
    /// Name.
    pub name: Text,
    /// Parent unit; `None` for a root.
    pub parent: Option<TeamId>,
    /// Managing person.
    pub manager: Option<PersonId>,
}

/// Share of a person's time available for staffing, 0-1.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Availability(f32);

impl Availability {
    /// A finite value within 0-1.
    pub fn parse(raw: f64) -> Result<Self, FieldViolation> {
        if !raw.is_finite() || !(0.0..=1.0).contains(&raw) {
            return Err(FieldViolation::new(
                "",
                format!("must be a number from 0 to 1, not {raw}"),
            ));
        }
        Ok(Self(raw as f32))
    }

    /// The share as a number.
    pub fn value(self) -> f32 {
        self.0
    }
}

/// A person whose skills are assessed.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    /// Stable id.
    pub id: PersonId,
    /// Display name (personal data).
    pub display_name: Text,
    /// Team.
    pub team: TeamId,
    /// Current role.
    pub role: RoleId,
    /// Role the person grows into.
    pub target_role: Option<RoleId>,
    /// Availability for staffing.
    pub availability: Availability,
}

/// One piece of evidence about one person's proficiency in one skill.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// Idempotency key.
    pub id: AssessmentId,
    /// Person assessed.
    pub person: PersonId,
    /// Skill assessed.
    pub skill: SkillId,
    /// Score 0-5.
    pub score: Level,
    /// Evidence source.
    pub source: Source,
    /// Assessing person, when known to capsight.
    pub assessor: Option<PersonId>,
    /// When it was assessed.
    pub assessed_at: Timestamp,
    /// Free-text evidence (may be empty).
    pub evidence: Text,
}

impl Assessment {
    /// The violation of rules spanning several fields: a peer or manager cannot assess
    /// themself, and a self-rating's assessor, if given, is the person.
    pub fn check(&self) -> Result<(), FieldViolation> {
        let Some(assessor) = &self.assessor else {
            return Ok(());
        };
        match self.source {
            Source::Peer | Source::Manager if *assessor == self.person => Err(FieldViolation::new(
                "assessor_id",
                "a peer or manager cannot assess themself",
            )),
            Source::SelfRating if *assessor != self.person => Err(FieldViolation::new(
                "assessor_id",
                "the assessor of a self-rating must be the person",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_value_is_quoted_in_the_reason() {
        let reason = |r: Result<(), FieldViolation>| r.unwrap_err().reason;
        assert!(reason(Level::parse(9.0).map(|_| ())).ends_with("not 9"));
        assert!(reason(Availability::parse(1.5).map(|_| ())).ends_with("not 1.5"));
        assert!(reason(Weight::parse(-2.0).map(|_| ())).ends_with("not -2"));
        assert!(reason(Text::name(&"x".repeat(201)).map(|_| ())).ends_with("not 201"));
        assert!(reason(Text::name("a\u{7}b").map(|_| ())).contains("U+0007"));
        assert!(
            reason(crate::domain::PersonId::parse("ada lovelace").map(|_| ()))
                .contains(r#"' ' in "ada lovelace""#)
        );
    }

    #[test]
    fn levels_outside_the_scale_or_nan_are_rejected() {
        assert!(Level::parse(0.0).is_ok());
        assert!(Level::parse(5.0).is_ok());
        assert!(Level::parse(-0.01).is_err());
        assert!(Level::parse(5.01).is_err());
        assert!(Level::parse(f64::NAN).is_err());
        assert!(Level::parse(f64::INFINITY).is_err());
    }

    #[test]
    fn timestamps_more_than_a_day_ahead_are_rejected() {
        let now = Timestamp::from_unix_millis(1_000_000_000_000);
        let day = Timestamp::MAX_FUTURE_MS;
        assert!(Timestamp::parse_assessed(now.unix_millis() + day, now).is_ok());
        assert!(Timestamp::parse_assessed(now.unix_millis() + day + 1, now).is_err());
        assert!(Timestamp::parse_assessed(-1, now).is_err());
    }

    #[test]
    fn names_must_be_present_bounded_and_single_line() {
        assert!(Text::name("Rust").is_ok());
        assert!(Text::name("  ").is_err());
        assert!(Text::name("a\nb").is_err());
        assert!(Text::name(&"x".repeat(Text::MAX_NAME + 1)).is_err());
        assert!(Text::long("line one\nline two").is_ok());
    }

    #[test]
    fn codes_round_trip() {
        for source in Source::ALL {
            assert_eq!(Source::from_code(source.code()), Some(source));
        }
        for category in SkillCategory::ALL {
            assert_eq!(SkillCategory::from_code(category.code()), Some(category));
        }
        assert_eq!(Source::from_code(0), None);
    }

    #[test]
    fn a_role_may_require_a_skill_only_once() {
        let skill = SkillId::parse("rust").unwrap();
        let requirement = Requirement {
            skill,
            level: Level::parse(3.0).unwrap(),
            weight: Weight::parse(1.0).unwrap(),
        };
        let role = Role {
            id: RoleId::parse("dev").unwrap(),
            name: Text::name("Dev").unwrap(),
            requirements: vec![requirement.clone(), requirement],
        };
        assert_eq!(role.check()[0].field, "requirements[1].skill_id");
    }

    proptest::proptest! {
        /// Any seconds/nanos pair either parses to a time whose millisecond differences
        /// with any other parsed time cannot overflow, or is refused; never a panic.
        #[test]
        fn protobuf_times_parse_within_the_spec_range_or_are_refused(
            a in proptest::num::i64::ANY, an in proptest::num::i32::ANY,
            b in proptest::num::i64::ANY, bn in proptest::num::i32::ANY,
        ) {
            let (x, y) = (Timestamp::parse_seconds(a, an), Timestamp::parse_seconds(b, bn));
            let in_range = |s: i64, n: i32| {
                (Timestamp::MIN_SECONDS..=Timestamp::MAX_SECONDS).contains(&s)
                    && (0..1_000_000_000).contains(&n)
            };
            proptest::prop_assert_eq!(x.is_ok(), in_range(a, an));
            if let (Ok(x), Ok(y)) = (x, y) {
                let span = x.unix_millis().checked_sub(y.unix_millis());
                proptest::prop_assert!(span.is_some_and(|d| d.abs() < 320_000_000_000_000));
            }
        }
    }

    #[test]
    fn the_ends_of_the_protobuf_range_parse_and_one_second_beyond_does_not() {
        assert!(Timestamp::parse_seconds(Timestamp::MIN_SECONDS, 0).is_ok());
        assert!(Timestamp::parse_seconds(Timestamp::MAX_SECONDS, 999_999_999).is_ok());
        assert!(Timestamp::parse_seconds(Timestamp::MIN_SECONDS - 1, 0).is_err());
        assert!(Timestamp::parse_seconds(Timestamp::MAX_SECONDS + 1, 0).is_err());
        assert!(Timestamp::parse_seconds(0, -1).is_err());
    }
}
