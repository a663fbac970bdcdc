//! Conversions between protobuf messages and domain types. Inbound conversions
//! destructure each message exhaustively, so a new proto field breaks the build until it
//! is handled, and report every violation with its field path. Zero/unknown enum values
//! are rejected.

use crate::domain::{
    AccessRole, Assessment, AssessmentId, AuditEvent, Availability, FieldViolation, Indicator,
    Level, MAX_BATCH_ITEMS, Person, PersonId, Rejection, RejectionKind, Requirement, Role, RoleId,
    Skill, SkillCategory, SkillId, Source, Team, TeamId, Text, Timestamp, TokenInfo, Violations,
    Weight,
};
use crate::engine::{IngestOutcome, Want};
use crate::error::Error;

use super::pb;

/// Converts a request list, reporting every item's violations under `list[i]`, and
/// enforcing the batch size limits.
pub(super) fn batch<P, D>(items: Vec<P>, list: &str) -> Result<Vec<D>, Error>
where
    D: TryFrom<P, Error = Vec<FieldViolation>>,
{
    check_batch_len(items.len(), list)?;
    let mut violations = Violations::default();
    let mut converted = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match D::try_from(item) {
            Ok(value) => converted.push(value),
            Err(errors) => errors
                .into_iter()
                .for_each(|v| violations.push(v.under(&format!("{list}[{i}]")))),
        }
    }
    violations.finish(converted).map_err(Error::InvalidArgument)
}

/// Rejects empty and over-long batches.
pub(super) fn check_batch_len(len: usize, list: &str) -> Result<(), Error> {
    if len == 0 || len > MAX_BATCH_ITEMS {
        return Err(Error::InvalidArgument(vec![FieldViolation::new(
            list,
            format!("must contain 1 to {MAX_BATCH_ITEMS} items"),
        )]));
    }
    Ok(())
}

/// Parses a required id field of a request.
pub(super) fn required_id<T>(
    raw: &str,
    field: &str,
    parse: fn(&str) -> Result<T, FieldViolation>,
) -> Result<T, Error> {
    parse(raw).map_err(|v| Error::InvalidArgument(vec![v.under(field)]))
}

fn optional_id<T>(
    raw: &str,
    parse: fn(&str) -> Result<T, FieldViolation>,
) -> Result<Option<T>, FieldViolation> {
    if raw.is_empty() {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

pub(super) fn category_from_pb(raw: i32) -> Result<SkillCategory, FieldViolation> {
    match pb::SkillCategory::try_from(raw) {
        Ok(pb::SkillCategory::Technical) => Ok(SkillCategory::Technical),
        Ok(pb::SkillCategory::Soft) => Ok(SkillCategory::Soft),
        Ok(pb::SkillCategory::Business) => Ok(SkillCategory::Business),
        Ok(pb::SkillCategory::Leadership) => Ok(SkillCategory::Leadership),
        Ok(pb::SkillCategory::Domain) => Ok(SkillCategory::Domain),
        Ok(pb::SkillCategory::Knowledge) => Ok(SkillCategory::Knowledge),
        Ok(pb::SkillCategory::Unspecified) | Err(_) => Err(FieldViolation::new(
            "",
            "must be a known category, not unspecified",
        )),
    }
}

pub(super) fn category_to_pb(category: SkillCategory) -> pb::SkillCategory {
    match category {
        SkillCategory::Technical => pb::SkillCategory::Technical,
        SkillCategory::Soft => pb::SkillCategory::Soft,
        SkillCategory::Business => pb::SkillCategory::Business,
        SkillCategory::Leadership => pb::SkillCategory::Leadership,
        SkillCategory::Domain => pb::SkillCategory::Domain,
        SkillCategory::Knowledge => pb::SkillCategory::Knowledge,
    }
}

fn source_from_pb(raw: i32) -> Result<Source, FieldViolation> {
    match pb::AssessmentSource::try_from(raw) {
        Ok(pb::AssessmentSource::Self_) => Ok(Source::SelfRating),
        Ok(pb::AssessmentSource::Peer) => Ok(Source::Peer),
        Ok(pb::AssessmentSource::Manager) => Ok(Source::Manager),
        Ok(pb::AssessmentSource::ObservedPractice) => Ok(Source::ObservedPractice),
        Ok(pb::AssessmentSource::ObjectiveTest) => Ok(Source::ObjectiveTest),
        Ok(pb::AssessmentSource::Certification) => Ok(Source::Certification),
        Ok(pb::AssessmentSource::Unspecified) | Err(_) => Err(FieldViolation::new(
            "",
            "must be a known source, not unspecified",
        )),
    }
}

pub(super) fn source_to_pb(source: Source) -> pb::AssessmentSource {
    match source {
        Source::SelfRating => pb::AssessmentSource::Self_,
        Source::Peer => pb::AssessmentSource::Peer,
        Source::Manager => pb::AssessmentSource::Manager,
        Source::ObservedPractice => pb::AssessmentSource::ObservedPractice,
        Source::ObjectiveTest => pb::AssessmentSource::ObjectiveTest,
        Source::Certification => pb::AssessmentSource::Certification,
    }
}

/// A protobuf timestamp of a domain timestamp.
pub fn timestamp_to_pb(at: Timestamp) -> prost_types::Timestamp {
    let millis = at.unix_millis();
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A protobuf timestamp as a domain timestamp, without the assessment-date rules.
pub(super) fn timestamp_from_pb_any(
    raw: prost_types::Timestamp,
) -> Result<Timestamp, FieldViolation> {
    Timestamp::parse_seconds(raw.seconds, raw.nanos)
}

pub(super) fn role_from_pb(raw: i32) -> Result<AccessRole, FieldViolation> {
    match pb::AccessRole::try_from(raw) {
        Ok(pb::AccessRole::Admin) => Ok(AccessRole::Admin),
        Ok(pb::AccessRole::Ingest) => Ok(AccessRole::Ingest),
        Ok(pb::AccessRole::Manager) => Ok(AccessRole::Manager),
        Ok(pb::AccessRole::Planner) => Ok(AccessRole::Planner),
        Ok(pb::AccessRole::Analyst) => Ok(AccessRole::Analyst),
        Ok(pb::AccessRole::Person) => Ok(AccessRole::Person),
        Ok(pb::AccessRole::Unspecified) | Err(_) => Err(FieldViolation::new(
            "",
            "must be a known role, not unspecified",
        )),
    }
}

/// The protobuf role of a domain role.
pub fn role_to_pb(role: AccessRole) -> pb::AccessRole {
    match role {
        AccessRole::Admin => pb::AccessRole::Admin,
        AccessRole::Ingest => pb::AccessRole::Ingest,
        AccessRole::Manager => pb::AccessRole::Manager,
        AccessRole::Planner => pb::AccessRole::Planner,
        AccessRole::Analyst => pb::AccessRole::Analyst,
        AccessRole::Person => pb::AccessRole::Person,
    }
}

impl From<&TokenInfo> for pb::TokenInfo {
    fn from(info: &TokenInfo) -> Self {
        Self {
            token_id: info.id.to_string(),
            role: role_to_pb(info.grant.role).into(),
            team_ids: info.grant.teams.iter().map(ToString::to_string).collect(),
            person_id: info
                .grant
                .person
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            description: info.description.as_str().to_owned(),
            created_at: Some(timestamp_to_pb(info.created_at)),
            expires_at: info.expires_at.map(timestamp_to_pb),
            revoked_at: info.revoked_at.map(timestamp_to_pb),
        }
    }
}

impl From<&AuditEvent> for pb::AuditEvent {
    fn from(event: &AuditEvent) -> Self {
        Self {
            sequence: event.sequence,
            at: Some(timestamp_to_pb(event.at)),
            token_id: event
                .token
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            role: event
                .role
                .map_or(pb::AccessRole::Unspecified, role_to_pb)
                .into(),
            rpc: event.rpc.clone(),
            subject_ids: event.subjects.clone(),
            outcome: event.outcome.clone(),
            source: event.source.clone().unwrap_or_default(),
            count: event.count,
        }
    }
}

fn timestamp_from_pb(
    raw: Option<prost_types::Timestamp>,
    now: Timestamp,
) -> Result<Timestamp, FieldViolation> {
    let raw = raw.ok_or_else(|| FieldViolation::new("", "is required"))?;
    let at = timestamp_from_pb_any(raw)?;
    Timestamp::parse_assessed(at.unix_millis(), now)
}

/// Widens a stored f32 to the f64 with the same shortest decimal form, so that a
/// stored 0.3 is answered as 0.3, not 0.30000001192092896.
fn widen(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

impl TryFrom<pb::Skill> for Skill {
    type Error = Vec<FieldViolation>;

    fn try_from(value: pb::Skill) -> Result<Self, Self::Error> {
        let pb::Skill {
            id,
            name,
            category,
            description,
            indicators,
        } = value;
        let mut v = Violations::default();
        let id = v.take("id", SkillId::parse(&id));
        let name = v.take("name", Text::name(&name));
        let category = v.take("category", category_from_pb(category));
        let description = v.take("description", Text::long(&description));
        let mut parsed = Vec::with_capacity(indicators.len());
        for (i, indicator) in indicators.into_iter().enumerate() {
            let pb::BehaviouralIndicator { level, description } = indicator;
            let prefix = format!("indicators[{i}]");
            let text = v.take(&format!("{prefix}.description"), Text::long(&description));
            if let Some(indicator) = text.and_then(|t| v.take(&prefix, Indicator::parse(level, t)))
            {
                parsed.push(indicator);
            }
        }
        let (Some(id), Some(name), Some(category), Some(description), true) =
            (id, name, category, description, v.is_empty())
        else {
            return Err(v.into_vec());
        };
        let skill = Skill {
            id,
            name,
            category,
            description,
            indicators: parsed,
        };
        let cross = skill.check();
        if cross.is_empty() {
            Ok(skill)
        } else {
            Err(cross)
        }
    }
}

impl From<&Skill> for pb::Skill {
    fn from(skill: &Skill) -> Self {
        Self {
            id: skill.id.to_string(),
            name: skill.name.as_str().to_owned(),
            category: category_to_pb(skill.category).into(),
            description: skill.description.as_str().to_owned(),
            indicators: skill
                .indicators
                .iter()
                .map(|i| pb::BehaviouralIndicator {
                    level: u32::from(i.level),
                    description: i.description.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::Role> for Role {
    type Error = Vec<FieldViolation>;

    fn try_from(value: pb::Role) -> Result<Self, Self::Error> {
        let pb::Role {
            id,
            name,
            requirements,
        } = value;
        let mut v = Violations::default();
        let id = v.take("id", RoleId::parse(&id));
        let name = v.take("name", Text::name(&name));
        let mut parsed = Vec::with_capacity(requirements.len());
        for (i, requirement) in requirements.into_iter().enumerate() {
            let pb::RoleRequirement {
                skill_id,
                required_level,
                weight,
            } = requirement;
            let prefix = format!("requirements[{i}]");
            let skill = v.take(&format!("{prefix}.skill_id"), SkillId::parse(&skill_id));
            let level = v.take(
                &format!("{prefix}.required_level"),
                Level::parse(required_level),
            );
            let weight = v.take(&format!("{prefix}.weight"), Weight::parse(weight));
            if let (Some(skill), Some(level), Some(weight)) = (skill, level, weight) {
                parsed.push(Requirement {
                    skill,
                    level,
                    weight,
                });
            }
        }
        let (Some(id), Some(name), true) = (id, name, v.is_empty()) else {
            return Err(v.into_vec());
        };
        let role = Role {
            id,
            name,
            requirements: parsed,
        };
        let cross = role.check();
        if cross.is_empty() {
            Ok(role)
        } else {
            Err(cross)
        }
    }
}

impl From<&Role> for pb::Role {
    fn from(role: &Role) -> Self {
        Self {
            id: role.id.to_string(),
            name: role.name.as_str().to_owned(),
            requirements: role
                .requirements
                .iter()
                .map(|r| pb::RoleRequirement {
                    skill_id: r.skill.to_string(),
                    required_level: widen(r.level.value()),
                    weight: widen(r.weight.value()),
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::Team> for Team {
    type Error = Vec<FieldViolation>;

    fn try_from(value: pb::Team) -> Result<Self, Self::Error> {
        let pb::Team {
            id,
            name,
            parent_id,
            manager_id,
        } = value;
        let mut v = Violations::default();
        let id = v.take("id", TeamId::parse(&id));
        let name = v.take("name", Text::name(&name));
        let parent = v.take("parent_id", optional_id(&parent_id, TeamId::parse));
        let manager = v.take("manager_id", optional_id(&manager_id, PersonId::parse));
        match (id, name, parent, manager) {
            (Some(id), Some(name), Some(parent), Some(manager)) => Ok(Team {
                id,
                name,
                parent,
                manager,
            }),
            _ => Err(v.into_vec()),
        }
    }
}

impl From<&Team> for pb::Team {
    fn from(team: &Team) -> Self {
        Self {
            id: team.id.to_string(),
            name: team.name.as_str().to_owned(),
            parent_id: team
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            manager_id: team
                .manager
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

impl TryFrom<pb::Person> for Person {
    type Error = Vec<FieldViolation>;

    fn try_from(value: pb::Person) -> Result<Self, Self::Error> {
        let pb::Person {
            id,
            display_name,
            team_id,
            role_id,
            target_role_id,
            availability,
        } = value;
        let mut v = Violations::default();
        let id = v.take("id", PersonId::parse(&id));
        let display_name = v.take("display_name", Text::name(&display_name));
        let team = v.take("team_id", TeamId::parse(&team_id));
        let role = v.take("role_id", RoleId::parse(&role_id));
        let target_role = v.take(
            "target_role_id",
            optional_id(&target_role_id, RoleId::parse),
        );
        let availability = v.take("availability", Availability::parse(availability));
        match (id, display_name, team, role, target_role, availability) {
            (
                Some(id),
                Some(display_name),
                Some(team),
                Some(role),
                Some(target_role),
                Some(availability),
            ) => Ok(Person {
                id,
                display_name,
                team,
                role,
                target_role,
                availability,
            }),
            _ => Err(v.into_vec()),
        }
    }
}

impl From<&Person> for pb::Person {
    fn from(person: &Person) -> Self {
        Self {
            id: person.id.to_string(),
            display_name: person.display_name.as_str().to_owned(),
            team_id: person.team.to_string(),
            role_id: person.role.to_string(),
            target_role_id: person
                .target_role
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            availability: widen(person.availability.value()),
        }
    }
}

fn at_field(field: &'static str) -> impl Fn(FieldViolation) -> FieldViolation {
    move |v| v.under(field)
}

impl From<&Assessment> for pb::Assessment {
    fn from(a: &Assessment) -> Self {
        Self {
            id: a.id.to_string(),
            person_id: a.person.to_string(),
            skill_id: a.skill.to_string(),
            score: widen(a.score.value()),
            source: source_to_pb(a.source).into(),
            assessor_id: a
                .assessor
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            assessed_at: Some(timestamp_to_pb(a.assessed_at)),
            evidence: a.evidence.as_str().to_owned(),
        }
    }
}

/// Converts one received assessment; `now` bounds its timestamp. Reports the first
/// violation, so that every rejected item has exactly one rejection.
pub(crate) fn assessment_from_pb(
    value: pb::Assessment,
    now: Timestamp,
) -> Result<Assessment, FieldViolation> {
    let pb::Assessment {
        id,
        person_id,
        skill_id,
        score,
        source,
        assessor_id,
        assessed_at,
        evidence,
    } = value;
    let assessment = Assessment {
        id: AssessmentId::parse(&id).map_err(at_field("id"))?,
        person: PersonId::parse(&person_id).map_err(at_field("person_id"))?,
        skill: SkillId::parse(&skill_id).map_err(at_field("skill_id"))?,
        score: Level::parse(score).map_err(at_field("score"))?,
        source: source_from_pb(source).map_err(at_field("source"))?,
        assessor: optional_id(&assessor_id, PersonId::parse).map_err(at_field("assessor_id"))?,
        assessed_at: timestamp_from_pb(assessed_at, now).map_err(at_field("assessed_at"))?,
        evidence: Text::long(&evidence).map_err(at_field("evidence"))?,
    };
    assessment.check()?;
    Ok(assessment)
}

/// Converts a received batch into the valid items (with their positions) and the
/// rejections of the invalid ones.
pub(super) fn assessment_batch(
    items: Vec<pb::Assessment>,
    now: Timestamp,
) -> (Vec<(u32, Assessment)>, Vec<Rejection>) {
    let mut valid = Vec::with_capacity(items.len());
    let mut rejections = Vec::new();
    for (index, item) in (0u32..).zip(items) {
        match assessment_from_pb(item, now) {
            Ok(assessment) => valid.push((index, assessment)),
            Err(v) => rejections.push(Rejection {
                index,
                field: v.field,
                reason: v.reason,
                kind: RejectionKind::Invalid,
            }),
        }
    }
    (valid, rejections)
}

fn rejection_to_pb(rejection: Rejection) -> pb::Rejection {
    let kind = match rejection.kind {
        RejectionKind::Invalid => pb::RejectionKind::Invalid,
        RejectionKind::UnknownReference => pb::RejectionKind::UnknownReference,
        RejectionKind::Conflict => pb::RejectionKind::Conflict,
    };
    pb::Rejection {
        index: rejection.index,
        field: rejection.field,
        reason: rejection.reason,
        kind: kind.into(),
    }
}

/// Merges conversion rejections into the engine's outcome, in item order.
pub(super) fn merge_rejections(
    mut outcome: IngestOutcome,
    invalid: Vec<Rejection>,
) -> (u32, u32, Vec<pb::Rejection>) {
    outcome.rejections.extend(invalid);
    outcome.rejections.sort_by_key(|r| r.index);
    let rejections = outcome
        .rejections
        .into_iter()
        .map(rejection_to_pb)
        .collect();
    (outcome.accepted, outcome.duplicates, rejections)
}

/// The engine's choice of cached result for a request's policy, `default` when unset.
pub(super) fn want_from_pb(raw: i32, default: Want) -> Result<Want, FieldViolation> {
    match pb::ResultPolicy::try_from(raw) {
        Ok(pb::ResultPolicy::Unspecified) => Ok(default),
        Ok(pb::ResultPolicy::Latest) => Ok(Want::Latest),
        Ok(pb::ResultPolicy::Current) => Ok(Want::Current),
        Err(_) => Err(FieldViolation::new(
            "result_policy",
            "must be a known policy",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment() -> pb::Assessment {
        pb::Assessment {
            id: "a1".into(),
            person_id: "p1".into(),
            skill_id: "rust".into(),
            score: 3.5,
            source: pb::AssessmentSource::Peer.into(),
            assessor_id: "p2".into(),
            assessed_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 250_000_000,
            }),
            evidence: String::new(),
        }
    }

    #[test]
    fn a_valid_assessment_converts_with_millisecond_time() {
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let a = assessment_from_pb(assessment(), now).unwrap();
        assert_eq!(a.assessed_at.unix_millis(), 1_700_000_000_250);
        assert_eq!(timestamp_to_pb(a.assessed_at).nanos, 250_000_000);
    }

    #[test]
    fn each_invalid_field_is_named() {
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        type Mutation = fn(&mut pb::Assessment);
        let cases: Vec<(Mutation, &str)> = vec![
            (|a| a.id.clear(), "id"),
            (|a| a.score = f64::NAN, "score"),
            (|a| a.score = 5.5, "score"),
            (|a| a.source = 0, "source"),
            (|a| a.source = 99, "source"),
            (|a| a.assessed_at = None, "assessed_at"),
            (|a| a.person_id = "x".repeat(200), "person_id"),
            (|a| a.assessor_id = "p1".into(), "assessor_id"),
        ];
        for (mutate, field) in cases {
            let mut a = assessment();
            mutate(&mut a);
            assert_eq!(assessment_from_pb(a, now).unwrap_err().field, field);
        }
    }

    #[test]
    fn skill_violations_carry_nested_paths() {
        let skill = pb::Skill {
            id: String::new(),
            name: "Rust".into(),
            category: 0,
            description: String::new(),
            indicators: vec![pb::BehaviouralIndicator {
                level: 7,
                description: "x".into(),
            }],
        };
        let errors = batch::<_, Skill>(vec![skill], "skills").unwrap_err();
        let Error::InvalidArgument(violations) = errors else {
            panic!("expected invalid argument")
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "skills[0].id",
                "skills[0].category",
                "skills[0].indicators[0].level"
            ]
        );
    }
}
