//! `capsight.v1.TalentService`: mentors for a person, and an organisation-wide
//! mentoring plan.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::insights::aggregate_scope;
use super::pb;
use crate::domain::{AccessRole, FieldViolation, PersonId, Scope, SkillId};
use crate::engine::Engine;
use crate::engine::insights::{find_mentors, mentee_needs, people_in, plan_mentoring};
use crate::error::{Error, Result};

const DEFAULT_LIMIT: u32 = 5;
const MAX_LIMIT: u32 = 50;
const DEFAULT_CAPACITY: u32 = 3;
const MAX_CAPACITY: u32 = 50;
const DEFAULT_MENTORS_PER_MENTEE: u32 = 1;
const MAX_MENTORS_PER_MENTEE: u32 = 5;

/// The talent service.
pub struct TalentApi {
    engine: Arc<Engine>,
}

impl TalentApi {
    /// A service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
}

fn bounded(value: Option<u32>, default: u32, max: u32, field: &str) -> Result<u32> {
    match value {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v) => Ok(v),
        Some(_) => Err(invalid(field, &format!("must be between 1 and {max}"))),
    }
}

impl TalentApi {
    fn mentors(
        &self,
        caller: &Caller,
        r: &pb::FindMentorsRequest,
    ) -> Result<(pb::FindMentorsResponse, Vec<String>)> {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let id = super::convert::required_id(&r.person_id, "person_id", PersonId::parse)?;
        let mentee = caller.readable_person(directory, &id)?;
        let limit = bounded(
            (r.limit != 0).then_some(r.limit),
            DEFAULT_LIMIT,
            MAX_LIMIT,
            "limit",
        )?;
        let mut violations = Vec::new();
        let mut skills = Vec::new();
        for (i, raw) in r.skill_ids.iter().enumerate() {
            match SkillId::parse(raw) {
                Ok(s) if directory.skills().contains_key(&s) => skills.push(s),
                Ok(_) => violations.push(FieldViolation::new(
                    format!("skill_ids[{i}]"),
                    "no such skill",
                )),
                Err(v) => violations.push(v.under(&format!("skill_ids[{i}]"))),
            }
        }
        let role_id = if r.use_target_role {
            match &mentee.target_role {
                Some(role) => role,
                None => {
                    violations.push(FieldViolation::new(
                        "use_target_role",
                        "the person has no target role",
                    ));
                    &mentee.role
                }
            }
        } else {
            &mentee.role
        };
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let role = directory.roles().get(role_id);
        let needs = mentee_needs(&snapshot, mentee, role, &skills);
        // Scoped callers see mentors inside their scope; the person and admins, everyone.
        let scope = match caller.grant.role {
            AccessRole::Person => Scope::Everything,
            _ => caller.scope(directory),
        };
        let pool = directory
            .people()
            .values()
            .filter(|p| scope.covers_person(p));
        let found = find_mentors(
            &snapshot,
            mentee,
            &needs,
            pool,
            r.allow_same_team,
            limit as usize,
        );
        let mut subjects = vec![mentee.id.to_string()];
        subjects.extend(found.iter().map(|m| m.mentor.id.to_string()));
        let mentors = found
            .into_iter()
            .map(|m| pb::MentorSuggestion {
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
            })
            .collect();
        Ok((
            pb::FindMentorsResponse {
                mentors,
                skill_ids: needs.iter().map(|(s, _)| s.to_string()).collect(),
            },
            subjects,
        ))
    }

    async fn plan(
        &self,
        caller: &Caller,
        r: &pb::PlanMentoringRequest,
    ) -> Result<(pb::PlanMentoringResponse, Vec<String>)> {
        let snapshot = self.engine.snapshot();
        if caller.grant.role == AccessRole::Analyst {
            return Err(Error::PermissionDenied);
        }
        let scope = aggregate_scope(caller, &snapshot.directory, &r.scope_team_id)?;
        let capacity = bounded(
            r.capacity_per_mentor,
            DEFAULT_CAPACITY,
            MAX_CAPACITY,
            "capacity_per_mentor",
        )?;
        let max_mentors = bounded(
            r.max_mentors_per_mentee,
            DEFAULT_MENTORS_PER_MENTEE,
            MAX_MENTORS_PER_MENTEE,
            "max_mentors_per_mentee",
        )?;
        let allow_same_team = r.allow_same_team;
        let plan = tokio::task::spawn_blocking(move || {
            let people = people_in(&snapshot, scope.as_ref())?;
            Ok::<_, Error>(plan_mentoring(
                &snapshot,
                &people,
                capacity,
                max_mentors,
                allow_same_team,
            ))
        })
        .await
        .map_err(|e| Error::Internal(format!("mentoring plan panicked: {e}")))??;
        let mut subjects: Vec<String> = plan
            .pairs
            .iter()
            .flat_map(|p| [p.mentee.to_string(), p.mentor.to_string()])
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        let mut matched: Vec<&PersonId> = plan.pairs.iter().map(|p| &p.mentee).collect();
        matched.dedup();
        Ok((
            pb::PlanMentoringResponse {
                mentees_matched: matched.len() as u32,
                pairs: plan
                    .pairs
                    .iter()
                    .map(|p| pb::MentoringPair {
                        mentee_id: p.mentee.to_string(),
                        mentor_id: p.mentor.to_string(),
                        expected_gain: p.gain,
                        skill_ids: p.skills.iter().map(ToString::to_string).collect(),
                    })
                    .collect(),
                total_gain: plan.total,
                greedy_total_gain: plan.greedy_total,
                mentees_with_options: plan.mentees_with_options,
                candidate_pairs: plan.candidate_pairs,
            },
            subjects,
        ))
    }
}

#[tonic::async_trait]
impl pb::talent_service_server::TalentService for TalentApi {
    #[tracing::instrument(skip_all)]
    async fn find_mentors(
        &self,
        request: Request<pb::FindMentorsRequest>,
    ) -> Result<Response<pb::FindMentorsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.mentors(&caller, request.get_ref());
        let subjects = answer.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
        let result = answer
            .map(|(response, _)| Response::new(response))
            .map_err(Status::from);
        caller.audit(&self.engine, subjects, &result).await;
        result
    }

    #[tracing::instrument(skip_all)]
    async fn plan_mentoring(
        &self,
        request: Request<pb::PlanMentoringRequest>,
    ) -> Result<Response<pb::PlanMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.plan(&caller, request.get_ref()).await;
        let subjects = answer.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
        let result = answer
            .map(|(response, _)| Response::new(response))
            .map_err(Status::from);
        caller.audit(&self.engine, subjects, &result).await;
        result
    }
}
