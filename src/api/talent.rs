//! `capsight.v1.TalentService`: requests to `service::talent` queries and its answers to
//! response messages. The rules (who may name whom, limits, defaults, optimality) are
//! the service's.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{required_id, timestamp_to_pb};
use super::insights::{scope_team, want};
use super::pb;
use crate::domain::{FieldViolation, Mentorship, PersonId, SkillId, TeamId};
use crate::engine::Engine;
use crate::engine::Want;
use crate::engine::compose::Proposal;
use crate::engine::insights::MentorView;
use crate::error::{Error, Result};
use crate::service::page::{self, PageRequest};
use crate::service::talent::{
    ComposeQuery, Composed, ListQuery, Listed, Mentors, MentorsQuery, Plan, PlanQuery, Requirement,
    StartQuery, Started, Talent,
};

/// The talent service.
pub struct TalentApi {
    service: Talent,
}

impl TalentApi {
    /// A service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            service: Talent::new(engine),
        }
    }
}

/// Parses each of `raw` with `parse`, recording violations under `field[i]`.
fn parse_all<T>(
    raw: &[String],
    field: &str,
    parse: fn(&str) -> Result<T, FieldViolation>,
    violations: &mut Vec<FieldViolation>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, id) in raw.iter().enumerate() {
        match parse(id) {
            Ok(v) => out.push(v),
            Err(v) => violations.push(v.under(&format!("{field}[{i}]"))),
        }
    }
    out
}

fn checked<T>(value: T, violations: Vec<FieldViolation>) -> Result<T> {
    if violations.is_empty() {
        Ok(value)
    } else {
        Err(Error::InvalidArgument(violations))
    }
}

/// The wire form of a mentoring relationship.
pub(super) fn mentorship_to_pb(m: &Mentorship) -> pb::Mentorship {
    pb::Mentorship {
        mentee_id: m.mentee.to_string(),
        mentor_id: m.mentor.to_string(),
        skill_ids: m.skills.iter().map(ToString::to_string).collect(),
        started_at: Some(timestamp_to_pb(m.started)),
    }
}

impl TryFrom<&pb::FindMentorsRequest> for MentorsQuery {
    type Error = Error;

    fn try_from(r: &pb::FindMentorsRequest) -> Result<Self> {
        let person = required_id(&r.person_id, "person_id", PersonId::parse)?;
        let mut violations = Vec::new();
        let skills = parse_all(&r.skill_ids, "skill_ids", SkillId::parse, &mut violations);
        checked(
            Self {
                person,
                skills,
                use_target_role: r.use_target_role,
                limit: (r.limit != 0).then_some(r.limit),
                capacity: r.mentor_capacity,
                allow_same_team: r.allow_same_team,
            },
            violations,
        )
    }
}

fn mentor_to_pb(m: MentorView) -> pb::MentorSuggestion {
    pb::MentorSuggestion {
        person_id: m.mentor.id.to_string(),
        display_name: m.mentor.display_name.as_str().to_owned(),
        team_id: m.mentor.team.to_string(),
        expected_gain: f64::from(m.gain),
        similarity: f64::from(m.similarity),
        score: f64::from(m.score),
        skills: m
            .skills
            .into_iter()
            .map(|s| pb::MentorSkill {
                skill_id: s.skill.to_string(),
                mentee_level: s.mentee_level.map(f64::from),
                mentor_level: f64::from(s.mentor_level),
                confidence: f64::from(s.confidence),
                target_level: s.target.map(f64::from),
                expected_gain: f64::from(s.gain),
            })
            .collect(),
        rationale: m.rationale,
        current_mentees: u32::try_from(m.current_mentees).unwrap_or(u32::MAX),
    }
}

impl From<Mentors> for pb::FindMentorsResponse {
    fn from(m: Mentors) -> Self {
        Self {
            mentors: m.mentors.into_iter().map(mentor_to_pb).collect(),
            skill_ids: m.skills.iter().map(ToString::to_string).collect(),
        }
    }
}

impl TryFrom<&pb::PlanMentoringRequest> for PlanQuery {
    type Error = Error;

    fn try_from(r: &pb::PlanMentoringRequest) -> Result<Self> {
        // A plan is computed in full unless the caller asks for the last one at once.
        let want = match r.result_policy {
            0 => Want::Current,
            raw => want(raw)?,
        };
        let page = PageRequest::parse(
            r.page_size,
            &r.page_token,
            page::context(&[
                "PlanMentoring",
                &r.scope_team_id,
                &format!("{:?}", r.capacity_per_mentor),
                &format!("{:?}", r.max_mentors_per_mentee),
                &r.allow_same_team.to_string(),
            ]),
        )?;
        Ok(Self {
            scope: scope_team(&r.scope_team_id)?,
            capacity: r.capacity_per_mentor,
            mentors_per_mentee: r.max_mentors_per_mentee,
            allow_same_team: r.allow_same_team,
            want,
            page,
        })
    }
}

impl From<Plan> for pb::PlanMentoringResponse {
    fn from(p: Plan) -> Self {
        let plan = &p.plan;
        Self {
            mentees_matched: p.mentees_matched,
            pairs: plan.pairs[p.page.clone()]
                .iter()
                .map(|pair| pb::MentoringPair {
                    mentee_id: pair.mentee.to_string(),
                    mentor_id: pair.mentor.to_string(),
                    expected_gain: pair.gain,
                    skill_ids: pair.skills.iter().map(ToString::to_string).collect(),
                })
                .collect(),
            total_gain: plan.total,
            greedy_total_gain: plan.greedy_total,
            mentees_with_options: plan.mentees_with_options,
            candidate_pairs: plan.candidate_pairs,
            total_gain_bound: plan.upper_bound,
            proven_optimal: plan.exact,
            next_page_token: p.next_page_token,
            freshness: Some(p.freshness.into()),
        }
    }
}

fn pair_ids(mentee: &str, mentor: &str) -> Result<(PersonId, PersonId)> {
    Ok((
        required_id(mentee, "mentee_id", PersonId::parse)?,
        required_id(mentor, "mentor_id", PersonId::parse)?,
    ))
}

impl TryFrom<&pb::StartMentoringRequest> for StartQuery {
    type Error = Error;

    fn try_from(r: &pb::StartMentoringRequest) -> Result<Self> {
        let (mentee, mentor) = pair_ids(&r.mentee_id, &r.mentor_id)?;
        let mut violations = Vec::new();
        // Bounded before parsing: the service refuses more than 50 skills.
        let raw = &r.skill_ids[..r
            .skill_ids
            .len()
            .min(crate::domain::MAX_MENTORING_SKILLS + 1)];
        let skills = parse_all(raw, "skill_ids", SkillId::parse, &mut violations);
        checked(
            Self {
                mentee,
                mentor,
                skills,
                capacity: r.mentor_capacity,
            },
            violations,
        )
    }
}

impl From<Started> for pb::StartMentoringResponse {
    fn from(s: Started) -> Self {
        Self {
            mentorship: Some(mentorship_to_pb(&s.mentorship)),
            mentor_load: s.mentor_load,
        }
    }
}

impl From<Mentorship> for pb::EndMentoringResponse {
    fn from(m: Mentorship) -> Self {
        Self {
            mentorship: Some(mentorship_to_pb(&m)),
        }
    }
}

impl TryFrom<&pb::ListMentorshipsRequest> for ListQuery {
    type Error = Error;

    fn try_from(r: &pb::ListMentorshipsRequest) -> Result<Self> {
        let page = PageRequest::parse(
            r.page_size,
            &r.page_token,
            page::context(&["ListMentorships", &r.scope_team_id, &r.person_id]),
        )?;
        let person = (!r.person_id.is_empty())
            .then(|| required_id(&r.person_id, "person_id", PersonId::parse))
            .transpose()?;
        let scope = (!r.scope_team_id.is_empty())
            .then(|| required_id(&r.scope_team_id, "scope_team_id", TeamId::parse))
            .transpose()?;
        Ok(Self {
            person,
            scope,
            page,
        })
    }
}

impl From<Listed> for pb::ListMentorshipsResponse {
    fn from(l: Listed) -> Self {
        Self {
            mentorships: l.mentorships.iter().map(mentorship_to_pb).collect(),
            next_page_token: l.next_page_token,
        }
    }
}

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

#[tonic::async_trait]
impl pb::talent_service_server::TalentService for TalentApi {
    #[tracing::instrument(skip_all)]
    async fn compose_team(
        &self,
        request: Request<pb::ComposeTeamRequest>,
    ) -> Result<Response<pb::ComposeTeamResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match ComposeQuery::try_from(request.get_ref()) {
            Ok(query) => self.service.compose(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn find_mentors(
        &self,
        request: Request<pb::FindMentorsRequest>,
    ) -> Result<Response<pb::FindMentorsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = MentorsQuery::try_from(request.get_ref())
            .and_then(|query| self.service.mentors(&caller.grant, query));
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn start_mentoring(
        &self,
        request: Request<pb::StartMentoringRequest>,
    ) -> Result<Response<pb::StartMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match StartQuery::try_from(request.get_ref()) {
            Ok(query) => self.service.start(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn end_mentoring(
        &self,
        request: Request<pb::EndMentoringRequest>,
    ) -> Result<Response<pb::EndMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.get_ref();
        let answer = match pair_ids(&r.mentee_id, &r.mentor_id) {
            Ok((mentee, mentor)) => self.service.end(&caller.grant, mentee, mentor).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn list_mentorships(
        &self,
        request: Request<pb::ListMentorshipsRequest>,
    ) -> Result<Response<pb::ListMentorshipsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = ListQuery::try_from(request.get_ref())
            .and_then(|query| self.service.list(&caller.grant, query));
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn plan_mentoring(
        &self,
        request: Request<pb::PlanMentoringRequest>,
    ) -> Result<Response<pb::PlanMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match PlanQuery::try_from(request.get_ref()) {
            Ok(query) => self.service.plan(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }
}
