//! The per-person questions', experts' and trends' requests and answers, to and from
//! `service::capability`; no rules of its own.

use crate::api::convert::{required_id, source_to_pb, timestamp_from_pb_any, timestamp_to_pb};
use crate::api::pb;
use crate::domain::{PersonId, RoleId, SkillId, TeamId, Timestamp};
use crate::error::{Error, Result};
use crate::service::capability::{
    Experts, ExpertsQuery, Gaps, GapsQuery, Profile, Trend, TrendQuery,
};

impl From<Profile> for pb::GetPersonProfileResponse {
    fn from(p: Profile) -> Self {
        let skills = p
            .view
            .skills
            .into_iter()
            .map(|skill| pb::SkillProficiency {
                skill_id: skill.skill.to_string(),
                level: skill.proficiency.map(|p| f64::from(p.level)),
                confidence: skill.proficiency.map_or(0.0, |p| f64::from(p.confidence)),
                last_assessed: skill.proficiency.map(|p| timestamp_to_pb(p.last_assessed)),
                self_gap: skill.self_gap.map(f64::from),
                evidence: skill
                    .evidence
                    .into_iter()
                    .map(|(a, weight)| pb::EvidenceItem {
                        assessment_id: a.id.to_string(),
                        source: source_to_pb(a.source).into(),
                        score: f64::from(a.score.value()),
                        assessed_at: Some(timestamp_to_pb(a.assessed_at)),
                        assessor_id: a.assessor.map(|p| p.to_string()).unwrap_or_default(),
                        weight,
                    })
                    .collect(),
            })
            .collect();
        Self {
            person: Some((&p.person).into()),
            skills,
            calibration: p.view.calibration.map(f64::from),
        }
    }
}

impl TryFrom<&pb::GetPersonGapsRequest> for GapsQuery {
    type Error = Error;

    fn try_from(r: &pb::GetPersonGapsRequest) -> Result<Self> {
        Ok(Self {
            person: required_id(&r.person_id, "person_id", PersonId::parse)?,
            role: (!r.role_id.is_empty())
                .then(|| required_id(&r.role_id, "role_id", RoleId::parse))
                .transpose()?,
            target_role: r.target_role,
        })
    }
}

impl From<Gaps> for pb::GetPersonGapsResponse {
    fn from(g: Gaps) -> Self {
        Self {
            role_id: g.role.to_string(),
            gaps: g
                .gaps
                .into_iter()
                .map(|(skill, g)| pb::SkillGap {
                    skill_id: skill.to_string(),
                    required_level: f64::from(g.required),
                    level: g.level.map(f64::from),
                    gap: f64::from(g.gap),
                    weight: f64::from(g.weight),
                    priority: f64::from(g.priority),
                    confidence: f64::from(g.confidence),
                })
                .collect(),
            readiness: f64::from(g.readiness),
        }
    }
}

impl TryFrom<pb::FindExpertsRequest> for ExpertsQuery {
    type Error = Error;

    fn try_from(r: pb::FindExpertsRequest) -> Result<Self> {
        // Bounded before parsing; 21 are enough for the service to refuse more than 20.
        let asked = &r.requirements[..r.requirements.len().min(21)];
        let requirements = asked
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let field = format!("requirements[{i}].skill_id");
                Ok((
                    required_id(&q.skill_id, &field, SkillId::parse)?,
                    q.min_level,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            requirements,
            min_confidence: r.min_confidence,
            scope: (!r.scope_team_id.is_empty())
                .then(|| required_id(&r.scope_team_id, "scope_team_id", TeamId::parse))
                .transpose()?,
            page_size: r.page_size,
            page_token: r.page_token,
        })
    }
}

impl From<Experts> for pb::FindExpertsResponse {
    fn from(e: Experts) -> Self {
        Self {
            experts: e
                .experts
                .into_iter()
                .map(|(person, r)| pb::Expert {
                    person_id: person.id.to_string(),
                    display_name: person.display_name.as_str().to_owned(),
                    team_id: person.team.to_string(),
                    levels: r.levels.iter().map(|l| f64::from(*l)).collect(),
                    min_confidence: f64::from(r.min_confidence),
                    score: f64::from(r.score),
                })
                .collect(),
            total: u32::try_from(e.total).unwrap_or(u32::MAX),
            next_page_token: e.next_page_token,
        }
    }
}

impl TryFrom<pb::GetCapabilityTrendRequest> for TrendQuery {
    type Error = Error;

    fn try_from(r: pb::GetCapabilityTrendRequest) -> Result<Self> {
        let team = required_id(&r.team_id, "team_id", TeamId::parse)?;
        // Bounded before parsing; 51 are enough for the service to refuse more than 50.
        let asked = &r.skill_ids[..r.skill_ids.len().min(51)];
        let skills = asked
            .iter()
            .enumerate()
            .map(|(i, s)| required_id(s, &format!("skill_ids[{i}]"), SkillId::parse))
            .collect::<Result<Vec<_>>>()?;
        let at = |raw: Option<prost_types::Timestamp>, field: &str| -> Result<Timestamp> {
            let raw = raw.ok_or_else(|| {
                Error::InvalidArgument(vec![crate::domain::FieldViolation::new(
                    field,
                    "is required",
                )])
            })?;
            timestamp_from_pb_any(raw).map_err(|v| Error::InvalidArgument(vec![v.under(field)]))
        };
        Ok(Self {
            team,
            skills,
            from: at(r.from, "from")?,
            to: at(r.to, "to")?,
            interval_days: r.interval_days,
        })
    }
}

impl From<Trend> for pb::GetCapabilityTrendResponse {
    fn from(t: Trend) -> Self {
        Self {
            points: t
                .points
                .into_iter()
                .map(|(skill, p)| pb::TrendPoint {
                    at: Some(timestamp_to_pb(p.at)),
                    skill_id: skill.to_string(),
                    mean_level: p.mean.map(f64::from),
                    known_count: p.known,
                    proficient_count: p.proficient,
                })
                .collect(),
            improvements: t
                .improvements
                .into_iter()
                .map(|i| pb::Improvement {
                    person_id: i.person.to_string(),
                    skill_id: i.skill.to_string(),
                    from_level: f64::from(i.from),
                    to_level: f64::from(i.to),
                    delta: f64::from(i.to - i.from),
                })
                .collect(),
        }
    }
}
