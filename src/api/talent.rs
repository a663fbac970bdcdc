//! `capsight.v1.TalentService`: mentors for a person, and an organisation-wide
//! mentoring plan.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{known_skill_ids, required_id, timestamp_to_pb, want_from_pb};
use super::insights::scope_team;
use super::page::{self, PageRequest};
use super::pb;
use crate::domain::TeamId;
use crate::domain::{
    AccessRole, FieldViolation, MAX_MENTORING_SKILLS, Mentorship, PersonId, Scope, SkillId,
    Timestamp,
};
use crate::engine::Engine;
use crate::engine::compose::{Composition, Proposal, SkillAsk, TeamAsk, compose_team};
use crate::engine::insights::{find_mentors, mentee_needs};
use crate::engine::{Cancel, Want};
use crate::error::{Error, Result};
use crate::service::insights::Freshness;

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
        let id = required_id(&r.person_id, "person_id", PersonId::parse)?;
        let mentee = caller.readable_person(directory, &id)?;
        let limit = bounded(
            (r.limit != 0).then_some(r.limit),
            DEFAULT_LIMIT,
            MAX_LIMIT,
            "limit",
        )?;
        let capacity = bounded(
            r.mentor_capacity,
            DEFAULT_CAPACITY,
            MAX_CAPACITY,
            "mentor_capacity",
        )?;
        let mut violations = Vec::new();
        let skills = known_skill_ids(&r.skill_ids, directory, &mut violations);
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
            capacity as usize,
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
                current_mentees: m.current_mentees as u32,
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
        let scope = crate::service::scope::admit_aggregate(
            &caller.grant,
            &snapshot.directory,
            scope_team(&r.scope_team_id)?.as_ref(),
        )?;
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
        let want = want_from_pb(r.result_policy, Want::Current)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let fresh = self
            .engine
            .mentoring_plan(scope, capacity, max_mentors, r.allow_same_team, want)
            .await?;
        let plan = &fresh.value;
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
                freshness: Some(Freshness::of(&fresh).into()),
            },
            subjects,
        ))
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

impl TalentApi {
    /// The mentee and mentor of a request, both readable by the caller.
    fn pair(&self, caller: &Caller, mentee: &str, mentor: &str) -> Result<(PersonId, PersonId)> {
        let snapshot = self.engine.snapshot();
        let mentee = required_id(mentee, "mentee_id", PersonId::parse)?;
        let mentor = required_id(mentor, "mentor_id", PersonId::parse)?;
        caller.readable_person(&snapshot.directory, &mentee)?;
        caller.readable_person(&snapshot.directory, &mentor)?;
        Ok((mentee, mentor))
    }

    async fn start(
        &self,
        caller: &Caller,
        r: &pb::StartMentoringRequest,
    ) -> Result<(pb::StartMentoringResponse, Vec<String>)> {
        let (mentee, mentor) = self.pair(caller, &r.mentee_id, &r.mentor_id)?;
        let capacity = bounded(
            r.mentor_capacity,
            DEFAULT_CAPACITY,
            MAX_CAPACITY,
            "mentor_capacity",
        )?;
        if r.skill_ids.len() > MAX_MENTORING_SKILLS {
            return Err(invalid("skill_ids", "at most 50 skills"));
        }
        let mut violations = Vec::new();
        let skills = known_skill_ids(
            &r.skill_ids,
            &self.engine.snapshot().directory,
            &mut violations,
        );
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let mentorship = Mentorship {
            mentee,
            mentor,
            skills,
            started: Timestamp::now(),
        };
        let subjects = vec![mentorship.mentee.to_string(), mentorship.mentor.to_string()];
        let recorded = mentorship_to_pb(&mentorship);
        let load = self
            .engine
            .start_mentoring(mentorship, capacity as usize)
            .await?;
        Ok((
            pb::StartMentoringResponse {
                mentorship: Some(recorded),
                mentor_load: load as u32,
            },
            subjects,
        ))
    }

    async fn end(
        &self,
        caller: &Caller,
        r: &pb::EndMentoringRequest,
    ) -> Result<(pb::EndMentoringResponse, Vec<String>)> {
        let (mentee, mentor) = self.pair(caller, &r.mentee_id, &r.mentor_id)?;
        let subjects = vec![mentee.to_string(), mentor.to_string()];
        let ended = self.engine.end_mentoring(mentee, mentor).await?;
        Ok((
            pb::EndMentoringResponse {
                mentorship: Some(mentorship_to_pb(&ended)),
            },
            subjects,
        ))
    }

    /// Relationships with either side readable by the caller (a manager sees who mentors
    /// their people, and whom their people mentor).
    fn list(
        &self,
        caller: &Caller,
        r: &pb::ListMentorshipsRequest,
    ) -> Result<(pb::ListMentorshipsResponse, Vec<String>)> {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let page = PageRequest::parse(
            r.page_size,
            &r.page_token,
            page::context(&["ListMentorships", &r.scope_team_id, &r.person_id]),
        )?;
        let scope = caller.scope(directory);
        let person = if r.person_id.is_empty() {
            None
        } else {
            let id = required_id(&r.person_id, "person_id", PersonId::parse)?;
            caller.readable_person(directory, &id)?;
            Some(id)
        };
        let subtree = if r.scope_team_id.is_empty() {
            None
        } else {
            let team = required_id(&r.scope_team_id, "scope_team_id", TeamId::parse)?;
            crate::service::scope::admit_team(&scope, directory, &team)?;
            directory.subtree(team.as_str())
        };
        let visible = |id: &PersonId| {
            directory
                .person(id.as_str())
                .is_some_and(|p| scope.covers_person(p))
        };
        let selected: std::collections::BTreeMap<String, &Mentorship> = snapshot
            .mentorships
            .iter()
            .filter(|m| visible(&m.mentee) || visible(&m.mentor))
            .filter(|m| {
                person
                    .as_ref()
                    .is_none_or(|p| &m.mentee == p || &m.mentor == p)
            })
            .filter(|m| {
                subtree.as_ref().is_none_or(|teams| {
                    directory
                        .person(m.mentee.as_str())
                        .is_some_and(|p| teams.contains(&p.team))
                })
            })
            .map(|m| (format!("{}\u{0}{}", m.mentee, m.mentor), m))
            .collect();
        let (items, next_page_token) = page.apply(&selected, |_| true);
        let mut subjects: Vec<String> = items
            .iter()
            .flat_map(|m| [m.mentee.to_string(), m.mentor.to_string()])
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        Ok((
            pb::ListMentorshipsResponse {
                mentorships: items.iter().map(|m| mentorship_to_pb(m)).collect(),
                next_page_token,
            },
            subjects,
        ))
    }
}

const MAX_TEAM_SIZE: u32 = 50;
const MAX_REQUIREMENTS: usize = 100;
const MAX_ALTERNATIVES: u32 = 5;

/// Checks a number against a range, recording a violation when outside it.
fn in_range(
    v: f64,
    low: f64,
    high: f64,
    field: String,
    violations: &mut Vec<FieldViolation>,
) -> f32 {
    if !(v.is_finite() && (low..=high).contains(&v)) {
        violations.push(FieldViolation::new(
            field,
            format!("must be between {low} and {high}"),
        ));
    }
    v as f32
}

impl TalentApi {
    /// The validated request; ids outside the caller's scope are denied.
    fn team_ask(&self, caller: &Caller, r: &pb::ComposeTeamRequest) -> Result<TeamAsk> {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let scope = caller.scope(directory);
        let mut v = Vec::new();
        if r.requirements.is_empty() || r.requirements.len() > MAX_REQUIREMENTS {
            v.push(FieldViolation::new(
                "requirements",
                "between 1 and 100 requirements",
            ));
        }
        let mut requirements = Vec::new();
        for (i, q) in r.requirements.iter().enumerate() {
            let at = |f: &str| format!("requirements[{i}].{f}");
            let skill = match SkillId::parse(&q.skill_id) {
                Ok(s) if directory.skills().contains_key(&s) => Some(s),
                Ok(_) => {
                    v.push(FieldViolation::new(at("skill_id"), "no such skill"));
                    None
                }
                Err(e) => {
                    v.push(e.under(&at("skill_id")));
                    None
                }
            };
            let level = in_range(q.min_level, 0.0, 5.0, at("min_level"), &mut v);
            let people = if q.min_people == 0 { 1 } else { q.min_people };
            if people > MAX_TEAM_SIZE {
                v.push(FieldViolation::new(at("min_people"), "must be at most 50"));
            }
            let weight = if q.weight == 0.0 { 1.0 } else { q.weight };
            let weight = in_range(weight, 1e-6, 100.0, at("weight"), &mut v);
            if let Some(skill) = skill {
                requirements.push(SkillAsk {
                    skill,
                    level,
                    people,
                    weight,
                });
            }
        }
        if !(1..=MAX_TEAM_SIZE).contains(&r.max_size) {
            v.push(FieldViolation::new("max_size", "must be between 1 and 50"));
        }
        let min_size = r.min_size.max(1);
        if min_size > r.max_size {
            v.push(FieldViolation::new("min_size", "must not exceed max_size"));
        }
        let min_availability = in_range(
            r.min_availability,
            0.0,
            1.0,
            "min_availability".into(),
            &mut v,
        );
        let min_confidence = in_range(r.min_confidence, 0.0, 1.0, "min_confidence".into(), &mut v);
        if r.alternatives > MAX_ALTERNATIVES {
            v.push(FieldViolation::new("alternatives", "must be at most 5"));
        }
        if r.max_per_source_team == Some(0) {
            v.push(FieldViolation::new(
                "max_per_source_team",
                "must be at least 1",
            ));
        }
        let mut pool_teams = Vec::new();
        for (i, raw) in r.pool_team_ids.iter().enumerate() {
            match TeamId::parse(raw) {
                Err(e) => v.push(e.under(&format!("pool_team_ids[{i}]"))),
                Ok(t) => {
                    crate::service::scope::admit_team(&scope, directory, &t)?;
                    pool_teams.push(t);
                }
            }
        }
        let people =
            |list: &[String], field: &str, v: &mut Vec<FieldViolation>| -> Result<Vec<PersonId>> {
                let mut out = Vec::new();
                for (i, raw) in list.iter().enumerate() {
                    match PersonId::parse(raw) {
                        Err(e) => v.push(e.under(&format!("{field}[{i}]"))),
                        Ok(id) => out.push(caller.readable_person(directory, &id)?.id.clone()),
                    }
                }
                Ok(out)
            };
        let include = people(&r.include_person_ids, "include_person_ids", &mut v)?;
        let exclude = people(&r.exclude_person_ids, "exclude_person_ids", &mut v)?;
        let must_include = people(
            &r.must_include_person_ids,
            "must_include_person_ids",
            &mut v,
        )?;
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        Ok(TeamAsk {
            requirements,
            min_size: min_size as usize,
            max_size: r.max_size as usize,
            pool_teams,
            include,
            exclude,
            min_availability,
            min_confidence,
            must_include,
            max_per_team: r.max_per_source_team.map(|m| m as usize),
            protect: r.protect_source_teams,
            alternatives: r.alternatives as usize,
            archetypes: None,
            archetype_labels: Vec::new(),
        })
    }

    async fn compose(
        &self,
        caller: &Caller,
        r: &pb::ComposeTeamRequest,
    ) -> Result<(pb::ComposeTeamResponse, Vec<String>)> {
        let mut ask = self.team_ask(caller, r)?;
        if r.prefer_archetype_diversity {
            // The organisation's archetypes (cached); too little evidence means none.
            match self.engine.archetypes(None, None, Want::Latest).await {
                Ok(fresh) => {
                    let view = &fresh.value;
                    ask.archetypes = Some(
                        view.people
                            .iter()
                            .cloned()
                            .zip(view.set.assignments.iter().copied())
                            .collect(),
                    );
                    ask.archetype_labels = view
                        .set
                        .archetypes
                        .iter()
                        .map(|a| a.label.clone())
                        .collect();
                }
                Err(Error::FailedPrecondition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let snapshot = self.engine.snapshot();
        let scope = caller.scope(&snapshot.directory);
        let composition = self
            .engine
            .jobs()
            .run(Cancel::new(), move |_| {
                compose_team(&snapshot, &ask, &scope)
            })
            .await?;
        let mut subjects: Vec<String> = std::iter::once(&composition.best)
            .chain(&composition.alternatives)
            .flat_map(|p| p.members.iter().map(|m| m.person.id.to_string()))
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        Ok((composition_to_pb(composition), subjects))
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
                met: c.people.len() as u32,
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

fn composition_to_pb(c: Composition) -> pb::ComposeTeamResponse {
    let objective = c.best.objective;
    let gap = if c.proven || c.upper_bound <= 0.0 {
        0.0
    } else {
        ((c.upper_bound - objective) / c.upper_bound).max(0.0)
    };
    let statement = if c.proven {
        format!(
            "Proven optimal: an exact search of all {} candidates found no better team.",
            c.pool_size
        )
    } else {
        format!(
            "Best found by greedy search and swaps; no team can score above {:.4}, so this one is within {:.1}% of the optimum.",
            c.upper_bound,
            gap * 100.0
        )
    };
    pb::ComposeTeamResponse {
        best: Some(proposal_to_pb(c.best)),
        alternatives: c.alternatives.into_iter().map(proposal_to_pb).collect(),
        optimality: if c.proven {
            pb::Optimality::ProvenOptimal
        } else {
            pb::Optimality::Bounded
        }
        .into(),
        upper_bound: c.upper_bound,
        gap,
        optimality_statement: statement,
        protection_conflicts: c
            .conflicts
            .into_iter()
            .map(|x| pb::ProtectionConflict {
                person_id: x.person.to_string(),
                team_id: x.team.to_string(),
                skill_ids: x.skills.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        pool_size: c.pool_size as u32,
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
        let answer = self.compose(&caller, request.get_ref()).await;
        caller.respond(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn find_mentors(
        &self,
        request: Request<pb::FindMentorsRequest>,
    ) -> Result<Response<pb::FindMentorsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.mentors(&caller, request.get_ref());
        caller.respond(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn start_mentoring(
        &self,
        request: Request<pb::StartMentoringRequest>,
    ) -> Result<Response<pb::StartMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.start(&caller, request.get_ref()).await;
        caller.respond(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn end_mentoring(
        &self,
        request: Request<pb::EndMentoringRequest>,
    ) -> Result<Response<pb::EndMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.end(&caller, request.get_ref()).await;
        caller.respond(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn list_mentorships(
        &self,
        request: Request<pb::ListMentorshipsRequest>,
    ) -> Result<Response<pb::ListMentorshipsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.list(&caller, request.get_ref());
        caller.respond(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn plan_mentoring(
        &self,
        request: Request<pb::PlanMentoringRequest>,
    ) -> Result<Response<pb::PlanMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.plan(&caller, request.get_ref()).await;
        caller.respond(answer)
    }
}
