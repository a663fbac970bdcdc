//! Mentoring's requests and answers (FindMentors, PlanMentoring, Start/End/ListMentorships)
//! to and from `service::talent`; no rules of its own.

use super::{checked, parse_all};
use crate::api::convert::{required_id, timestamp_to_pb};
use crate::api::insights::{scope_team, want};
use crate::api::pb;
use crate::domain::{Mentorship, PersonId, SkillId, TeamId};
use crate::error::{Error, Result};
use crate::service::Want;
use crate::service::page::{self, PageRequest};
use crate::service::talent::{
    ListQuery, Listed, MentorView, Mentors, MentorsQuery, Plan, PlanQuery, StartQuery, Started,
};

/// The wire form of a mentoring relationship.
pub(in crate::api) fn mentorship_to_pb(m: &Mentorship) -> pb::Mentorship {
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

pub(super) fn pair_ids(mentee: &str, mentor: &str) -> Result<(PersonId, PersonId)> {
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
