//! ComposeTeam's request and answer to and from `service::talent`; no rules of its own.

use super::{checked, parse_all};
use crate::api::pb;
use crate::domain::{FieldViolation, PersonId, SkillId, TeamId};
use crate::error::{Error, Result};
use crate::service::talent::{ComposeQuery, Composed, Proposal, Requirement};

impl TryFrom<&pb::ComposeTeamRequest> for ComposeQuery {
    type Error = Error;

    fn try_from(r: &pb::ComposeTeamRequest) -> Result<Self> {
        let mut v = Vec::new();
        // Bounded before parsing: the service refuses more than 100 requirements.
        let asked = &r.requirements[..r.requirements.len().min(101)];
        let mut requirements = Vec::with_capacity(asked.len());
        for (i, q) in asked.iter().enumerate() {
            match SkillId::parse(&q.skill_id) {
                Ok(skill) => requirements.push(Requirement {
                    skill,
                    min_level: q.min_level,
                    min_people: q.min_people,
                    weight: q.weight,
                }),
                Err(e) => v.push(e.under(&format!("requirements[{i}].skill_id"))),
            }
        }
        if r.requirements.len() > asked.len() {
            v.push(FieldViolation::new(
                "requirements",
                "between 1 and 100 requirements",
            ));
        }
        let query = Self {
            requirements,
            min_size: r.min_size,
            max_size: r.max_size,
            pool_teams: parse_all(&r.pool_team_ids, "pool_team_ids", TeamId::parse, &mut v),
            include: parse_all(
                &r.include_person_ids,
                "include_person_ids",
                PersonId::parse,
                &mut v,
            ),
            exclude: parse_all(
                &r.exclude_person_ids,
                "exclude_person_ids",
                PersonId::parse,
                &mut v,
            ),
            must_include: parse_all(
                &r.must_include_person_ids,
                "must_include_person_ids",
                PersonId::parse,
                &mut v,
            ),
            min_availability: r.min_availability,
            min_confidence: r.min_confidence,
            max_per_source_team: r.max_per_source_team,
            protect_source_teams: r.protect_source_teams,
            alternatives: r.alternatives,
            prefer_archetype_diversity: r.prefer_archetype_diversity,
        };
        checked(query, v)
    }
}

fn proposal_to_pb(p: Proposal) -> pb::ProposedTeam {
    pb::ProposedTeam {
        members: p
            .members
            .into_iter()
            .map(|m| pb::MemberContribution {
                person_id: m.person.id.to_string(),
                display_name: m.person.display_name.as_str().to_owned(),
                team_id: m.person.team.to_string(),
                availability: f64::from(m.person.availability.value()),
                satisfies_skill_ids: m.satisfies.iter().map(ToString::to_string).collect(),
                reason: m.reason,
                archetype: m.archetype.unwrap_or_default(),
            })
            .collect(),
        coverage: p.coverage,
        objective: p.objective,
        requirements: p
            .requirements
            .into_iter()
            .map(|c| pb::RequirementCoverage {
                skill_id: c.skill.to_string(),
                min_level: f64::from(c.level),
                wanted: c.wanted,
                met: u32::try_from(c.people.len()).unwrap_or(u32::MAX),
                weight: f64::from(c.weight),
                person_ids: c.people.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        impacts: p
            .impacts
            .into_iter()
            .map(|i| pb::SourceTeamImpact {
                team_id: i.team.to_string(),
                person_ids: i.people.iter().map(ToString::to_string).collect(),
                skills_lost: i
                    .bus_factor
                    .iter()
                    .filter(|(_, _, after)| *after == 0)
                    .map(|(s, _, _)| s.to_string())
                    .collect(),
                bus_factor: i
                    .bus_factor
                    .into_iter()
                    .map(|(s, before, after)| pb::BusFactorChange {
                        skill_id: s.to_string(),
                        before,
                        after,
                    })
                    .collect(),
            })
            .collect(),
    }
}

impl From<Composed> for pb::ComposeTeamResponse {
    fn from(c: Composed) -> Self {
        let (composition, optimality) = (c.composition, c.optimality);
        Self {
            best: Some(proposal_to_pb(composition.best)),
            alternatives: composition
                .alternatives
                .into_iter()
                .map(proposal_to_pb)
                .collect(),
            optimality: if optimality.proven {
                pb::Optimality::ProvenOptimal
            } else {
                pb::Optimality::Bounded
            }
            .into(),
            upper_bound: optimality.upper_bound,
            gap: optimality.gap,
            optimality_statement: optimality.statement,
            protection_conflicts: composition
                .conflicts
                .into_iter()
                .map(|x| pb::ProtectionConflict {
                    person_id: x.person.to_string(),
                    team_id: x.team.to_string(),
                    skill_ids: x.skills.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            pool_size: u32::try_from(composition.pool_size).unwrap_or(u32::MAX),
        }
    }
}
