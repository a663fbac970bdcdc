//! Conversions between protobuf messages and domain types. Inbound conversions
//! destructure each message exhaustively, so a new proto field breaks the build until it
//! is handled, and report every violation with its field path. Zero/unknown enum values
//! are rejected.

use crate::domain::{
    AccessRole, AuditEvent, FieldViolation, MAX_BATCH_ITEMS, SkillCategory, Source, Timestamp,
    TokenInfo, Violations,
};
use crate::error::Error;
use crate::service::Want;

use super::pb;

mod assessment;
mod directory;

pub(crate) use assessment::assessment_from_pb;
pub(super) use assessment::{assessment_batch, merge_rejections};

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
    use crate::domain::Skill;

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
