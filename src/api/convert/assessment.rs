//! Assessments to and from their messages: one at a time with its first violation, a
//! batch split into the valid items and the rejections, merged back in item order.

use super::{optional_id, source_from_pb, source_to_pb, timestamp_from_pb, timestamp_to_pb, widen};
use crate::api::pb;
use crate::domain::{
    Assessment, AssessmentId, FieldViolation, Level, PersonId, Rejection, RejectionKind, SkillId,
    Text, Timestamp,
};
use crate::service::ingest::IngestOutcome;

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
pub(in crate::api) fn assessment_batch(
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
pub(in crate::api) fn merge_rejections(
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
